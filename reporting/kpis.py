"""The closed-loop KPIs: one definition each, read by the dashboard, goals,
the QBR and the "rows behind a figure" lists.

Every function runs a fixed number of queries whatever the number of rows,
and computes a period and its previous period in the same query. Amounts are
the opportunities' `amount`; a period is whole local days (reporting.periods).
Functions marked `@derived_figure` read only the derived tables: a page serves
them from the cache until those tables change (reporting.figure_cache); what
reads the deals, spend and SLA versions is computed on every request.

Definitions (also on the dashboard's help, `DEFINITIONS`):

- New pipeline: the amount of opportunities created in the period (any stage).
- Marketing-sourced pipeline: new pipeline whose source lead's first touch was
  a marketing channel (`Opportunity.is_marketing_sourced`); its share is of
  all new pipeline. An opportunity exists only after sales accepted and
  qualified the lead, so this is sales-accepted pipeline.
- Marketing-influenced revenue: the amount of deals won in the period whose
  revenue path (the source lead's touches before the win) holds at least one
  marketing-channel touch.
- Won revenue, win rate, average deal: deals closed in the period (by
  `closed_on`): won amount; won ÷ (won + lost) by count; won amount ÷ won
  count.
- Sales cycle: days from an opportunity's creation (local date) to its close
  date, for deals won in the period; median (and mean) by source channel.
- MQLs: transitions into MQL in the period (a lead recycled and qualified
  again counts again), from the stage-change rows. The commitment is the SLA
  in force on each day: each day adds its version's monthly commitment ÷ the
  days of that month (a segment filter uses the version's commitment for that
  segment, if it sets one; a team filter has no commitment).
- Lead acceptance rate: sales decisions on MQLs in the period: accepted
  (mql → sal) ÷ (accepted + rejected (mql or sal → rejected)).
- Time to first contact: for leads whose (latest) MQL was in the period, the
  calendar hours from MQL to the first logged call, email or meeting: median
  and 90th percentile over contacted leads. Within SLA: contacted by the
  response due time, over the leads whose clock has resolved (contacted, or
  due time passed).
- Lead → opportunity conversion: of the leads created in the period, the share
  that has since become an opportunity (a cohort: recent cohorts are still
  converting).
- Funnel: the same cohort; for each stage, the leads that entered it (per
  stage-change rows), the share of the previous stage's leads that went on to
  it, and the median days between the two.
- New customers: leads that first became customers (their deal was won) in
  the period, by their source channel.
- CAC: (marketing spend in the period + the sales cost setting for the
  period) ÷ new customers. Spend is the campaigns' monthly spend, pro-rated
  by the days of each month in the period. By channel: the channel's spend ÷
  its new customers, plus the sales cost shared equally per new customer (so
  the blended CAC is the customers-weighted mean of the channels').
- LTV: historical, not predicted: for the customers acquired in the period,
  the won revenue of every deal they are the source of, to the end of the
  period, × the gross margin setting (100% by default: revenue LTV), on
  average per customer. Why: the sample's deals are one-off hardware
  purchases with no subscription or churn data to predict from, so revenue
  actually won is the one lifetime value the data supports.
"""

import calendar
from bisect import bisect_right
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from django.contrib.postgres.aggregates import ArrayAgg
from django.contrib.postgres.fields import ArrayField
from django.db import connection
from django.db.models import (
    Aggregate,
    Avg,
    Case,
    CharField,
    Count,
    F,
    FloatField,
    Func,
    IntegerField,
    OuterRef,
    Q,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Coalesce, NullIf, TruncDate, TruncMonth
from django.utils import timezone

from leads.models import (
    CampaignSpend,
    Channel,
    Lead,
    Opportunity,
    OpportunityStage,
    Segment,
)
from reporting.figure_cache import derived_figure
from reporting.models import (
    AttributionKind,
    AttributionPath,
    LeadFunnel,
    ReportingSettings,
)
from reporting.periods import Period, ReportFilter, add_months, month_end, month_start
from sla.models import SlaVersion, VersionStatus

ZERO = Decimal(0)
NO_CHANNEL_LABEL = "No source lead"

DEFINITIONS = {
    "new_pipeline": "Amount of opportunities created in the period, in any stage.",
    "sourced_pipeline": "New pipeline whose source lead's first touch came through a marketing "
    "channel. Opportunities exist only after sales accepted and qualified the lead.",
    "sourced_share": "Marketing-sourced pipeline ÷ all new pipeline of the period, by amount.",
    "influenced_revenue": "Amount of deals won in the period whose source lead had at least one "
    "touch in a marketing channel before the win.",
    "won_revenue": "Amount of deals won in the period (by close date).",
    "win_rate": "Deals won ÷ deals closed (won + lost) in the period, by count.",
    "average_deal": "Won revenue ÷ deals won in the period.",
    "sales_cycle": "Days from an opportunity's creation to its close, for deals won in the "
    "period: the median.",
    "mqls": "Leads that became MQLs in the period (a recycled lead that qualifies again counts "
    "again).",
    "mql_commitment": "MQLs ÷ marketing's MQL commitment for the period: each day adds the "
    "monthly commitment of the SLA in force that day ÷ the days of its month (with a segment "
    "filter, the SLA's commitment for that segment; none for one team).",
    "acceptance_rate": "Of the MQLs sales decided on in the period: accepted ÷ (accepted + "
    "rejected).",
    "first_contact": "Hours from MQL to the first logged call, email or meeting, for leads "
    "that became MQLs in the period: the median over the leads contacted so far.",
    "first_contact_p90": "Hours from MQL to first contact for leads that became MQLs in the "
    "period: the 90th percentile over the leads contacted so far (nine in ten were contacted "
    "this fast or faster).",
    "first_contact_within_sla": "Of the leads that became MQLs in the period and whose response "
    "clock has stopped (first contact logged) or run out (due time passed): the share first "
    "contacted by the due time their SLA set.",
    "conversion": "Of the leads created in the period, the share that has become an "
    "opportunity so far (recent leads are still converting).",
    "new_customers": "Leads that became customers (their deal was won) in the period.",
    "cac": "(Marketing spend in the period + the sales cost setting) ÷ new customers. Spend is "
    "pro-rated by day within each month.",
    "ltv": "Historical LTV: for customers acquired in the period, the won revenue of the deals "
    "they are the source of, up to the period's end, × gross margin (setting), per customer.",
    "ltv_cac": "Historical LTV ÷ blended CAC of the customers acquired in the period.",
    "funnel": "Of the leads created in the period, those that entered each stage (from their "
    "stage-change rows), the share of the previous stage's leads that went on to it, and the "
    "median days between the two.",
}


# --- Small SQL helpers ---------------------------------------------------------------------


class Percentile(Aggregate):
    """percentile_cont(fraction) WITHIN GROUP (ORDER BY expression)."""

    function = "percentile_cont"
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)%(filter)s"
    output_field = FloatField()

    def __init__(self, expression, fraction: float, **extra):
        super().__init__(expression, fraction=float(fraction), **extra)


class Percentiles(Aggregate):
    """percentile_cont(ARRAY[fractions]) WITHIN GROUP (ORDER BY expression):
    several percentiles from one sort, as a list (None over no rows)."""

    function = "percentile_cont"
    template = (
        "%(function)s(ARRAY[%(fractions)s]::float8[]) WITHIN GROUP (ORDER BY %(expressions)s)"
        "%(filter)s"
    )
    output_field = ArrayField(FloatField())

    def __init__(self, expression, fractions: tuple[float, ...], **extra):
        listed = ", ".join(repr(float(fraction)) for fraction in fractions)
        super().__init__(expression, fractions=listed, **extra)


class HoursBetween(Func):
    """Hours from the first timestamp to the second, as a float.

    date_part, not EXTRACT: EXTRACT returns numeric (PostgreSQL 14+), whose
    arithmetic over every row of a period made the medians' sorts several
    times slower."""

    template = "(date_part('epoch', %(expressions)s) / 3600.0)"
    arg_joiner = " - "
    output_field = FloatField()

    def __init__(self, start, end, **extra):
        super().__init__(end, start, **extra)


class DaysBetween(Func):
    """Whole days from a date to a later date."""

    template = "(%(expressions)s)"
    arg_joiner = " - "
    output_field = IntegerField()

    def __init__(self, start, end, **extra):
        super().__init__(end, start, **extra)


def ratio(numerator, denominator) -> float | None:
    """numerator ÷ denominator, None when the denominator is 0 or missing."""
    if not denominator or numerator is None:
        return None
    return float(numerator) / float(denominator)


def percent(numerator, denominator) -> float | None:
    value = ratio(numerator, denominator)
    return None if value is None else 100 * value


# --- Filters ------------------------------------------------------------------------------------


def opportunity_segment():
    """An opportunity's segment: its account's, else its source lead's.

    The lead's is a subquery, not a join: COALESCE reads it only for deals
    whose account has no segment, where a join made the planner scan every
    lead for each segment-filtered figure."""
    lead_segment = Subquery(Lead.objects.filter(pk=OuterRef("source_lead_id")).values("segment"))
    return Coalesce(NullIf(F("account__segment"), Value("")), lead_segment, Value(""))


def opportunities_for(flt: ReportFilter):
    """Opportunities in the filter's segment and team (any period)."""
    opportunities = Opportunity.objects.all()
    if flt.segment:
        opportunities = opportunities.annotate(report_segment=opportunity_segment()).filter(
            report_segment=flt.segment
        )
    owners = flt.owner_ids()
    if owners is not None:
        opportunities = opportunities.filter(owner_id__in=owners)
    return opportunities


def derived_for(queryset, flt: ReportFilter):
    """A derived table (segment and owner columns) in the filter's segment and team."""
    if flt.segment:
        queryset = queryset.filter(segment=flt.segment)
    owners = flt.owner_ids()
    if owners is not None:
        queryset = queryset.filter(owner_id__in=owners)
    return queryset


def derived_sql_filter(flt: ReportFilter, params: dict, alias: str = "") -> str:
    """`derived_for` for hand-written SQL: the conditions (each after " AND")
    that keep a derived table's rows in the filter's segment and team; adds
    their parameters to `params`. `alias`: the table's alias in the query."""
    column = f"{alias}." if alias else ""
    sql = ""
    if flt.segment:
        sql += f" AND {column}segment = %(segment)s"
        params["segment"] = flt.segment
    owners = flt.owner_ids()
    if owners is not None:
        sql += f" AND {column}owner_id = ANY(%(owners)s::int[])"
        params["owners"] = owners
    return sql


def created_in(period: Period, prefix: str = "") -> Q:
    return Q(
        **{
            f"{prefix}created_at__gte": period.start_at,
            f"{prefix}created_at__lt": period.end_before,
        }
    )


def closed_in(period: Period) -> Q:
    return Q(closed_on__gte=period.start, closed_on__lte=period.end)


def moment_in(name: str, period: Period) -> Q:
    return Q(**{f"{name}__gte": period.start_at, f"{name}__lt": period.end_before})


def day_in(period: Period, name: str = "day") -> Q:
    return Q(**{f"{name}__gte": period.start, f"{name}__lte": period.end})


# --- Figures ------------------------------------------------------------------------------------


@dataclass
class Figure:
    """One number on the dashboard, with its previous-period value."""

    key: str
    label: str
    value: object
    previous: object = None
    unit: str = "count"  # money, count, percent, hours, days, ratio
    higher_is_better: bool = True
    detail: str = ""
    rows: str = ""  # the figure key of the rows list behind it ("" for none)

    @property
    def definition(self) -> str:
        return DEFINITIONS.get(self.key, "")

    @property
    def change(self) -> float | None:
        """Percentage points for percentages; relative change (%) otherwise."""
        if self.value is None or self.previous is None:
            return None
        if self.unit == "percent":
            return float(self.value) - float(self.previous)
        if not self.previous:
            return None
        return 100 * (float(self.value) - float(self.previous)) / abs(float(self.previous))

    @property
    def trend(self) -> str:
        """'good', 'bad' or '' for the change's direction."""
        change = self.change
        if change is None or abs(change) < 0.05:
            return ""
        return "good" if (change > 0) == self.higher_is_better else "bad"


# --- Opportunities --------------------------------------------------------------------------------


def opportunity_totals(flt: ReportFilter) -> dict:
    """New pipeline, sourced pipeline, won revenue, win rate, average deal and
    median sales cycle for the period and the previous one. One query."""
    cur, prev = flt.period, flt.period.previous()
    won = Q(stage=OpportunityStage.WON)
    lost = Q(stage=OpportunityStage.LOST)
    cycle = DaysBetween(TruncDate("created_at"), F("closed_on"))
    aggregates = {}
    for name, period in (("cur", cur), ("prev", prev)):
        aggregates |= {
            f"{name}_new_count": Count("id", filter=created_in(period)),
            f"{name}_new_amount": Sum("amount", filter=created_in(period)),
            f"{name}_sourced_amount": Sum(
                "amount", filter=created_in(period) & Q(is_marketing_sourced=True)
            ),
            f"{name}_sourced_count": Count(
                "id", filter=created_in(period) & Q(is_marketing_sourced=True)
            ),
            f"{name}_won_count": Count("id", filter=closed_in(period) & won),
            f"{name}_won_amount": Sum("amount", filter=closed_in(period) & won),
            f"{name}_lost_count": Count("id", filter=closed_in(period) & lost),
            f"{name}_cycle_median": Percentile(cycle, 0.5, filter=closed_in(period) & won),
        }
    span = Period("span", prev.start, cur.end, "")
    rows = opportunities_for(flt).filter(created_in(span) | closed_in(span)).aggregate(**aggregates)
    result = {}
    for name in ("cur", "prev"):
        new_amount = rows[f"{name}_new_amount"] or ZERO
        sourced = rows[f"{name}_sourced_amount"] or ZERO
        won_count, lost_count = rows[f"{name}_won_count"], rows[f"{name}_lost_count"]
        won_amount = rows[f"{name}_won_amount"] or ZERO
        result[name] = {
            "new_count": rows[f"{name}_new_count"],
            "new_amount": new_amount,
            "sourced_amount": sourced,
            "sourced_count": rows[f"{name}_sourced_count"],
            "sourced_share": percent(sourced, new_amount),
            "won_count": won_count,
            "won_amount": won_amount,
            "lost_count": lost_count,
            "win_rate": percent(won_count, won_count + lost_count),
            "average_deal": (won_amount / won_count) if won_count else None,
            "cycle_median": rows[f"{name}_cycle_median"],
        }
    return result


@derived_figure
def influenced_revenue(flt: ReportFilter) -> dict:
    """Marketing-influenced revenue for the period and the previous one (from
    the stored revenue paths). One query."""
    cur, prev = flt.period, flt.period.previous()
    paths = derived_for(
        AttributionPath.objects.filter(
            kind=AttributionKind.REVENUE, day__gte=prev.start, day__lte=cur.end
        ),
        flt,
    )
    influenced = Q(marketing_touches__gt=0)
    rows = paths.aggregate(
        cur=Sum("amount", filter=day_in(cur) & influenced),
        prev=Sum("amount", filter=day_in(prev) & influenced),
    )
    return {"cur": rows["cur"] or ZERO, "prev": rows["prev"] or ZERO}


def cycle_by_channel(flt: ReportFilter) -> list[dict]:
    """Deals won in the period by source channel: count, revenue, median and
    mean days from creation to close, highest revenue first; each row has
    `previous`, the same figures for the previous period (zeros and None
    where the channel won nothing then). One query (grouped by period and
    channel)."""
    cur, prev = flt.period, flt.period.previous()
    cycle = DaysBetween(TruncDate("created_at"), F("closed_on"))
    rows = (
        opportunities_for(flt)
        .filter(closed_in(cur) | closed_in(prev), stage=OpportunityStage.WON)
        .annotate(bucket=period_bucket(closed_in(cur)))
        .values("bucket", "source_channel")
        .annotate(
            deals=Count("id"),
            revenue=Sum("amount"),
            median_days=Percentile(cycle, 0.5),
            mean_days=Avg(cycle),
        )
        .order_by()
    )
    by_channel: dict[str, dict] = {}
    for row in rows:
        by_channel.setdefault(row["source_channel"], {})[row["bucket"]] = row
    result = []
    for channel, buckets in by_channel.items():
        if "cur" not in buckets:
            continue
        figures = {
            name: {
                "deals": buckets.get(name, {}).get("deals", 0),
                "revenue": buckets.get(name, {}).get("revenue") or ZERO,
                "median_days": buckets.get(name, {}).get("median_days"),
                "mean_days": buckets.get(name, {}).get("mean_days"),
            }
            for name in ("cur", "prev")
        }
        result.append(
            {
                "source_channel": channel,
                "label": channel_label(channel),
                **figures["cur"],
                "previous": figures["prev"],
            }
        )
    result.sort(key=lambda row: (-row["revenue"], row["label"]))
    return result


def channel_label(value: str) -> str:
    if not value:
        return NO_CHANNEL_LABEL
    try:
        return Channel(value).label
    except ValueError:
        return value


# --- Leads ---------------------------------------------------------------------------------------


# Kinds of stage change the figures count: (from stages or None for any, to stages).
FLOW_KINDS = {
    "mqls": (None, ("mql",)),
    "accepted": (("mql",), ("sal",)),
    "rejected": (("mql", "sal"), ("rejected",)),
    # Sales rejecting or disqualifying a lead it was working.
    "dropped": (("mql", "sal", "sql"), ("rejected", "disqualified")),
}
FLOW_GROUPS = {
    "sla_version_id": "sla_version_id",
    "owner_id": "owner_id",
    "month": "date_trunc('month', day)::date",
}

_FLOWS_SQL = """
    SELECT {columns}
      FROM (
          SELECT day, from_stage, to_stage, sla_version_id, owner_id, changes, with_reason
            FROM reporting_stageflowdaily
           WHERE ({day_ranges}) AND to_stage = ANY(%(to_stages)s){filters}
          UNION ALL
          SELECT month, from_stage, to_stage, sla_version_id, owner_id, changes, with_reason
            FROM reporting_stageflowmonthly
           WHERE month = ANY(%(months)s::date[]) AND to_stage = ANY(%(to_stages)s){filters}
      ) flow
    {group_by}
"""


def flow_parts(period: Period) -> tuple[list[date], list[tuple[date, date]]]:
    """The months `period` covers whole (read from the monthly stage-flow
    rollup) and the day ranges around them (read from the daily one)."""
    months = [m for m in period.months() if m >= period.start and month_end(m) <= period.end]
    if not months:
        return [], [(period.start, period.end)]
    ranges = []
    if period.start < months[0]:
        ranges.append((period.start, months[0] - timedelta(days=1)))
    if month_end(months[-1]) < period.end:
        ranges.append((month_end(months[-1]) + timedelta(days=1), period.end))
    return months, ranges


@derived_figure
def stage_flows(
    flt: ReportFilter,
    periods: dict[str, Period],
    *,
    kinds: tuple[str, ...] = ("mqls", "accepted", "rejected"),
    group_by: tuple[str, ...] = (),
    reasons: tuple[str, ...] = (),
) -> list[dict]:
    """Stage changes of each kind (FLOW_KINDS) in each of `periods` (which do
    not overlap), in the filter's segment and team (its period is not used):
    one row per group of `group_by` (FLOW_GROUPS) holding the group's values
    and "<period>_<kind>" counts, and "<period>_<kind>_with_reason" for the
    kinds in `reasons`. A period's whole months are read from the monthly
    rollup and its other days from the daily one (the same sums, from far
    fewer rows). One query."""
    params: dict = {}
    months, ranges = [], []
    for name, period in periods.items():
        whole, days = flow_parts(period)
        months += whole
        for index, (first, last) in enumerate(days):
            params[f"{name}_{index}_first"], params[f"{name}_{index}_last"] = first, last
            ranges.append(f"day BETWEEN %({name}_{index}_first)s AND %({name}_{index}_last)s")
    params["months"] = months
    params["to_stages"] = sorted({stage for kind in kinds for stage in FLOW_KINDS[kind][1]})
    columns = [f"{FLOW_GROUPS[group]} AS {group}" for group in group_by]
    for name, period in periods.items():
        params[f"{name}_start"], params[f"{name}_end"] = period.start, period.end
        for kind in kinds:
            from_stages, to_stages = FLOW_KINDS[kind]
            params[f"{kind}_to"] = list(to_stages)
            condition = (
                f"day BETWEEN %({name}_start)s AND %({name}_end)s AND to_stage = ANY(%({kind}_to)s)"
            )
            if from_stages is not None:
                params[f"{kind}_from"] = list(from_stages)
                condition += f" AND from_stage = ANY(%({kind}_from)s)"
            columns.append(f"coalesce(sum(changes) FILTER (WHERE {condition}), 0) AS {name}_{kind}")
            if kind in reasons:
                columns.append(
                    f"coalesce(sum(with_reason) FILTER (WHERE {condition}), 0) "
                    f"AS {name}_{kind}_with_reason"
                )
    filters = derived_sql_filter(flt, params)
    positions = ", ".join(str(n) for n in range(1, len(group_by) + 1))
    sql = _FLOWS_SQL.format(
        columns=",\n           ".join(columns),
        day_ranges=" OR ".join(ranges) or "false",
        filters=filters,
        group_by=f"GROUP BY {positions}" if group_by else "",
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        names = [column.name for column in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def stage_flow_totals(flt: ReportFilter) -> dict:
    """MQLs, accepted and rejected decisions for the period and the previous
    one, from the stage-flow rollups. One query."""
    cur, prev = flt.period, flt.period.previous()
    rows = stage_flows(flt, {"cur": cur, "prev": prev})[0]
    result = {}
    for name in ("cur", "prev"):
        accepted_count = rows[f"{name}_accepted"] or 0
        rejected_count = rows[f"{name}_rejected"] or 0
        result[name] = {
            "mqls": rows[f"{name}_mqls"] or 0,
            "accepted": accepted_count,
            "rejected": rejected_count,
            "acceptance_rate": percent(accepted_count, accepted_count + rejected_count),
        }
    return result


def clock_aggregates(as_of: datetime) -> dict:
    """The response-clock aggregates over LeadFunnel rows: MQLs, contacted,
    median and p90 hours to first contact, contacted within SLA, clocks
    resolved by `as_of` (contacted, or due time passed) and "running": the
    due times after `as_of` of the uncontacted, ascending, so the clocks
    resolved by any later moment can be counted without a query
    (`clocks_resolved`)."""
    contacted = Q(first_contact_at__isnull=False)
    within = Q(
        first_contact_at__isnull=False,
        response_due_at__isnull=False,
        first_contact_at__lte=F("response_due_at"),
    )
    resolved = Q(response_due_at__isnull=False) & (contacted | Q(response_due_at__lte=as_of))
    running = Q(response_due_at__gt=as_of, first_contact_at__isnull=True)
    hours = HoursBetween(F("mql_at"), F("first_contact_at"))
    return {
        "mqls": Count("lead_id"),
        "contacted": Count("lead_id", filter=contacted),
        "hours": Percentiles(hours, (0.5, 0.9), filter=contacted),
        "within": Count("lead_id", filter=within),
        "resolved": Count("lead_id", filter=resolved),
        "running": ArrayAgg("response_due_at", filter=running, order_by="response_due_at"),
    }


def clocks_resolved(row: dict, now: datetime) -> dict:
    """A clocks row (`clock_aggregates`, computed as of an earlier moment)
    judged at `now`: "resolved" counts the running clocks due by then too;
    median/p90 hours unpacked."""
    running = row.get("running") or []
    hours = row.get("hours") or (None, None)
    return {
        "mqls": row.get("mqls", 0),
        "contacted": row.get("contacted", 0),
        "median_hours": hours[0],
        "p90_hours": hours[1],
        "within": row.get("within", 0),
        "resolved": row.get("resolved", 0) + bisect_right(running, now),
    }


def response_clocks_at(flt: ReportFilter, as_of: datetime) -> dict:
    """The response clocks of the MQLs of the period and the previous one,
    judged at `as_of`: {"as_of", "cur": {clock_aggregates}, "prev": {…}}.
    One query."""
    rows = aggregate_by_period(
        lambda period: derived_for(LeadFunnel.objects.filter(moment_in("mql_at", period)), flt),
        {"cur": flt.period, "prev": flt.period.previous()},
        clock_aggregates(as_of),
    )
    return {"as_of": as_of, **rows}


@derived_figure
def response_clocks(flt: ReportFilter) -> dict:
    """`response_clocks_at` the moment it is computed (cached: the running
    clocks make it exact at any later moment)."""
    return response_clocks_at(flt, timezone.now())


def response_times(flt: ReportFilter, *, now=None) -> dict:
    """Time to first contact for MQLs of the period and the previous one:
    median and p90 hours over contacted leads, and the share within SLA over
    clocks resolved by `now`. One query (none when cached)."""
    clocks = response_clocks(flt)
    now = now or timezone.now()  # after the clocks: at or after their moment
    if clocks["as_of"] > now:  # asked about a moment before the cached one
        clocks = response_clocks_at(flt, now)
    result = {}
    for name in ("cur", "prev"):
        row = clocks_resolved(clocks[name], now)
        row["within_share"] = percent(row["within"], row["resolved"])
        result[name] = row
    return result


def aggregate_by_period(rows_in, periods: dict[str, Period], aggregates: dict) -> dict[str, dict]:
    """`aggregates` over the rows of each period (`rows_in(period)`, a
    queryset): {period name: {aggregate name: value}}. One query: a UNION ALL
    of one aggregate per period, each reading only its own rows by their
    index, with no FILTER by period on every row and no GROUP BY sort (which
    spilled to disk over a year's leads)."""
    parts = [
        rows_in(period)
        .annotate(bucket=Value(name, output_field=CharField()))
        .values("bucket")
        .annotate(**aggregates)
        .order_by()
        for name, period in periods.items()
    ]
    rows = {row.pop("bucket"): row for row in parts[0].union(*parts[1:], all=True)}
    # A period without rows (never with one aggregate per branch, but cheap to be sure).
    empty = {key: 0 if isinstance(agg, Count) else None for key, agg in aggregates.items()}
    return {name: rows.get(name, dict(empty)) for name in periods}


def period_bucket(in_current: Q) -> Case:
    """'cur' for rows of the period, 'prev' for the others (the query keeps
    only rows of one or the other): one GROUP BY instead of a FILTER per
    aggregate and period."""
    return Case(When(in_current, then=Value("cur")), default=Value("prev"),
                output_field=CharField())  # fmt: skip


FUNNEL_STAGES = (
    ("created", "Lead created", "created_at"),
    ("mql", "MQL", "reached_mql_at"),
    ("sal", "Accepted by sales (SAL)", "reached_sal_at"),
    ("sql", "Qualified (SQL)", "reached_sql_at"),
    ("opportunity", "Opportunity", "reached_opportunity_at"),
    ("customer", "Customer", "reached_customer_at"),
)


@derived_figure
def funnel(flt: ReportFilter) -> dict:
    """The cohort of leads created in the period: leads that entered each
    stage, the share of the previous stage's leads that went on to it, the
    median days between the two, each stage with `previous`, the same for the
    previous period's cohort; and lead → opportunity conversion for both
    cohorts. One query (`aggregate_by_period`)."""
    aggregates = {}
    previous_column = None
    for key, _, column in FUNNEL_STAGES:
        reached = Q(**{f"{column}__isnull": False})
        aggregates[f"{key}_reached"] = Count("lead_id", filter=reached)
        if previous_column is not None:
            both = reached & Q(**{f"{previous_column}__isnull": False})
            aggregates[f"{key}_from_previous"] = Count("lead_id", filter=both)
            aggregates[f"{key}_days"] = Percentile(
                HoursBetween(F(previous_column), F(column)) / 24.0, 0.5, filter=both
            )
        previous_column = column
    cohorts = aggregate_by_period(
        lambda period: derived_for(LeadFunnel.objects.filter(moment_in("created_at", period)), flt),
        {"cur": flt.period, "prev": flt.period.previous()},
        aggregates,
    )
    rows, before = cohorts["cur"], cohorts["prev"]
    stages = _funnel_stages(rows)
    for stage, previous_stage in zip(stages, _funnel_stages(before), strict=True):
        stage["previous"] = previous_stage
    return {
        "stages": stages,
        "cur": _cohort_conversion(rows),
        "prev": _cohort_conversion(before),
    }


def _funnel_stages(row: dict) -> list[dict]:
    """One period's funnel stages from its grouped row."""
    stages = []
    previous = None
    for key, label, _ in FUNNEL_STAGES:
        stage = {
            "key": key,
            "label": label,
            "reached": row[f"{key}_reached"],
            "conversion": None,
            "median_days": None,
            "from_previous": None,
        }
        if previous is not None:
            stage["from_previous"] = row[f"{key}_from_previous"]
            stage["conversion"] = percent(row[f"{key}_from_previous"], previous["reached"])
            stage["median_days"] = row[f"{key}_days"]
        stages.append(stage)
        previous = stage
    return stages


def _cohort_conversion(row: dict) -> dict:
    created = row["created_reached"]
    return {
        "created": created,
        "opportunity": row["opportunity_reached"],
        "conversion": percent(row["opportunity_reached"], created),
    }


# --- The SLA's marketing commitment ----------------------------------------------------------------


def sla_versions_published() -> list[SlaVersion]:
    """Published and superseded SLA versions, oldest first. One query."""
    return list(
        SlaVersion.objects.filter(
            status__in=(VersionStatus.PUBLISHED, VersionStatus.SUPERSEDED),
            published_at__isnull=False,
        ).order_by("published_at")
    )


def version_on(versions: list[SlaVersion], day: date) -> SlaVersion | None:
    """The version in force on `day`: published on or before it and not
    superseded by its end (on the day of a switch, the new version)."""
    return versions_in_force(versions)(day)


def versions_in_force(versions: list[SlaVersion]):
    """`version_on` for many days: a function of the day, with the versions'
    local publication days computed once (a period's commitment asks about
    each of its days)."""
    spans = [
        (
            timezone.localdate(version.published_at),
            timezone.localdate(version.superseded_at) if version.superseded_at else None,
            version,
        )
        for version in versions
    ]

    def on(day: date) -> SlaVersion | None:
        found = None
        for published, superseded, version in spans:
            if published <= day and (superseded is None or superseded > day):
                found = version
        return found

    return on


def commitment_for(version: SlaVersion, segment: str = "") -> int | None:
    if not segment:
        return version.mql_commitment_per_month
    return {
        Segment.ENTERPRISE: version.mql_commitment_enterprise,
        Segment.MID_MARKET: version.mql_commitment_mid_market,
        Segment.SMB: version.mql_commitment_smb,
    }.get(segment)


def mql_commitment(period: Period, versions: list[SlaVersion], segment: str = "") -> float | None:
    """MQLs committed for the period: each day adds the monthly commitment of
    the version in force that day ÷ the days of its month. None when no day
    of the period has a commitment."""
    total, any_day = 0.0, False
    in_force = versions_in_force(versions)
    day = period.start
    while day <= period.end:
        version = in_force(day)
        if version is not None:
            commitment = commitment_for(version, segment)
            if commitment is not None:
                any_day = True
                total += commitment / calendar.monthrange(day.year, day.month)[1]
        day += timedelta(days=1)
    return total if any_day else None


# --- Spend, customers, CAC and LTV --------------------------------------------------------------


def spend_by(periods: dict[str, Period], *, by: str = "channel") -> dict[str, dict]:
    """Campaign spend in each period, pro-rated by day within a month, by
    channel (or by campaign id): {period name: {key: Decimal}}. One query."""
    first = min(p.start for p in periods.values())
    last = max(p.end for p in periods.values())
    key_field = "campaign__channel" if by == "channel" else "campaign_id"
    rows = CampaignSpend.objects.filter(
        month__gte=month_start(first), month__lte=month_start(last)
    ).values_list(key_field, "month", "amount")
    result: dict[str, dict] = {name: {} for name in periods}
    for key, month, amount in rows:
        days_in_month = calendar.monthrange(month.year, month.month)[1]
        month_last = month.replace(day=days_in_month)
        for name, period in periods.items():
            overlap = (min(month_last, period.end) - max(month, period.start)).days + 1
            if overlap <= 0:
                continue
            share = amount * Decimal(overlap) / Decimal(days_in_month)
            result[name][key] = result[name].get(key, ZERO) + share
    return result


def reporting_settings() -> ReportingSettings:
    return ReportingSettings.objects.first() or ReportingSettings()


def sales_cost(period: Period, per_month: Decimal) -> Decimal:
    """The sales cost setting for the period, pro-rated by day."""
    if not per_month:
        return ZERO
    total = ZERO
    for month in period.months():
        days_in_month = calendar.monthrange(month.year, month.month)[1]
        month_last = month.replace(day=days_in_month)
        overlap = (min(month_last, period.end) - max(month, period.start)).days + 1
        total += per_month * Decimal(overlap) / Decimal(days_in_month)
    return total


_CUSTOMERS_SQL = """
    SELECT lf.source_channel,
           count(*) FILTER (WHERE lf.reached_customer_at >= %(cur_start)s),
           coalesce(sum(won.revenue) FILTER (WHERE lf.reached_customer_at >= %(cur_start)s), 0),
           count(*) FILTER (WHERE lf.reached_customer_at < %(prev_before)s),
           coalesce(sum(won.revenue) FILTER (WHERE lf.reached_customer_at < %(prev_before)s), 0)
      FROM reporting_leadfunnel lf
      LEFT JOIN LATERAL (
          SELECT sum(o.amount) AS revenue FROM leads_opportunity o
           WHERE o.source_lead_id = lf.lead_id AND o.stage = 'won' AND o.closed_on <= %(cur_end)s
      ) won ON true
     WHERE ((lf.reached_customer_at >= %(cur_start)s AND lf.reached_customer_at < %(cur_before)s)
            OR (lf.reached_customer_at >= %(prev_start)s
                AND lf.reached_customer_at < %(prev_before)s))
       {filters}
     GROUP BY lf.source_channel
"""


def customers_by_channel(flt: ReportFilter) -> dict[str, dict[str, dict]]:
    """New customers and their lifetime revenue to the period's end, by
    source channel, for the period and the previous one:
    {"cur": {channel: {"customers", "revenue"}}, "prev": {...}}. One query.
    (The previous period's revenue is also counted to the current period's
    end: LTV keeps growing after acquisition.)"""
    cur, prev = flt.period, flt.period.previous()
    params = {
        "cur_start": cur.start_at,
        "cur_before": cur.end_before,
        "cur_end": cur.end,
        "prev_start": prev.start_at,
        "prev_before": prev.end_before,
    }
    filters = derived_sql_filter(flt, params, "lf")
    result = {"cur": {}, "prev": {}}
    with connection.cursor() as cursor:
        cursor.execute(_CUSTOMERS_SQL.format(filters=filters), params)
        for channel, cur_n, cur_rev, prev_n, prev_rev in cursor.fetchall():
            if cur_n:
                result["cur"][channel] = {"customers": cur_n, "revenue": cur_rev}
            if prev_n:
                result["prev"][channel] = {"customers": prev_n, "revenue": prev_rev}
    return result


@dataclass
class ChannelEconomics:
    channel: str
    label: str
    spend: Decimal = ZERO
    customers: int = 0
    revenue: Decimal = ZERO
    cac: Decimal | None = None
    ltv: Decimal | None = None
    previous: "ChannelEconomics | None" = None  # the channel in the previous period

    @property
    def ltv_cac(self) -> float | None:
        return ratio(self.ltv, self.cac) if self.cac else None


@dataclass
class Economics:
    channels: list[ChannelEconomics] = field(default_factory=list)
    spend: Decimal = ZERO
    sales_cost: Decimal = ZERO
    customers: int = 0
    revenue: Decimal = ZERO
    cac: Decimal | None = None
    ltv: Decimal | None = None

    @property
    def ltv_cac(self) -> float | None:
        return ratio(self.ltv, self.cac) if self.cac else None


def _economics(
    spend: dict, customers: dict, cost: Decimal, margin: Decimal, channels: list[str]
) -> Economics:
    total_customers = sum(row["customers"] for row in customers.values())
    cost_per_customer = cost / total_customers if total_customers else ZERO
    result = Economics(sales_cost=cost, customers=total_customers)
    for channel in channels:
        row = ChannelEconomics(channel=channel, label=channel_label(channel))
        row.spend = spend.get(channel, ZERO)
        row.customers = customers.get(channel, {}).get("customers", 0)
        row.revenue = customers.get(channel, {}).get("revenue", ZERO) * margin
        if row.customers:
            row.cac = row.spend / row.customers + cost_per_customer
            row.ltv = row.revenue / row.customers
        result.channels.append(row)
        result.spend += row.spend
        result.revenue += row.revenue
    if total_customers:
        result.cac = (result.spend + cost) / total_customers
        result.ltv = result.revenue / total_customers
    return result


def economics(flt: ReportFilter) -> dict[str, Economics]:
    """CAC and LTV by channel for the period and the previous one (see the
    module docstring). Spend is company-wide: with a segment or team filter,
    spend is not divided, so CAC there reads "spend per customer of this
    slice". Both periods list the same channels (those with spend or new
    customers in either), and each current channel row links its `previous`.
    Three queries."""
    cur, prev = flt.period, flt.period.previous()
    spend = spend_by({"cur": cur, "prev": prev})
    customers = customers_by_channel(flt)
    setting = reporting_settings()
    margin = Decimal(setting.gross_margin_percent) / Decimal(100)
    channels = sorted(
        {channel for name in ("cur", "prev") for channel in (*spend[name], *customers[name])},
        key=lambda c: (c == "", channel_label(c)),
    )
    result = {
        name: _economics(
            spend[name],
            customers[name],
            sales_cost(period, setting.sales_cost_per_month),
            margin,
            channels,
        )
        for name, period in (("cur", cur), ("prev", prev))
    }
    for row, previous in zip(result["cur"].channels, result["prev"].channels, strict=True):
        row.previous = previous
    return result


# --- Trends --------------------------------------------------------------------------------------


def trend_months(period: Period, count: int = 12) -> list[date]:
    """The months of the trend charts: the period's months, at least `count`,
    ending with the period's last month."""
    months = period.months()
    if len(months) >= count:
        return months[-36:]
    last = month_start(period.end)
    return [add_months(last, offset) for offset in range(-count + 1, 1)]


def monthly_trend(flt: ReportFilter) -> list[dict]:
    """Per month: new pipeline (all and marketing-sourced), won revenue, MQLs
    and the MQL commitment. Three queries."""
    months = trend_months(flt.period)
    first, last = months[0], add_months(months[-1], 1)
    opportunities = opportunities_for(flt)
    created = {
        row["month"].date() if hasattr(row["month"], "date") else row["month"]: row
        for row in opportunities.filter(
            created_at__gte=timezone.make_aware(_midnight(first)),
            created_at__lt=timezone.make_aware(_midnight(last)),
        )
        .annotate(month=TruncMonth("created_at"))
        .values("month")
        .annotate(
            total=Sum("amount"),
            sourced=Sum("amount", filter=Q(is_marketing_sourced=True)),
        )
        .order_by()
    }
    won = {
        row["month"]: row["total"]
        for row in opportunities.filter(
            stage=OpportunityStage.WON, closed_on__gte=first, closed_on__lt=last
        )
        .annotate(month=TruncMonth("closed_on"))
        .values("month")
        .annotate(total=Sum("amount"))
        .order_by()
    }
    # Whole months: read from the monthly rollup alone.
    span = Period("custom", first, last - timedelta(days=1), "")
    mqls = {
        row["month"]: row["trend_mqls"]
        for row in stage_flows(flt, {"trend": span}, kinds=("mqls",), group_by=("month",))
    }
    versions = sla_versions_published()
    team_filter = flt.team is not None
    series = []
    for month in months:
        row = created.get(month, {})
        month_period = Period("month", month, add_months(month, 1) - timedelta(days=1), "")
        series.append(
            {
                "month": month,
                "new_pipeline": row.get("total") or ZERO,
                "sourced_pipeline": row.get("sourced") or ZERO,
                "won_revenue": won.get(month) or ZERO,
                "mqls": mqls.get(month) or 0,
                "commitment": None
                if team_filter
                else mql_commitment(month_period, versions, flt.segment),
            }
        )
    return series


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time.min)


# --- The dashboard ------------------------------------------------------------------------------


def dashboard(flt: ReportFilter, *, now=None) -> dict:
    """Every figure of the shared dashboard for the filter. A fixed number of
    queries (about a dozen), whatever the data's size."""
    opportunities = opportunity_totals(flt)
    influenced = influenced_revenue(flt)
    flows = stage_flow_totals(flt)
    response = response_times(flt, now=now)
    cohort = funnel(flt)
    money = economics(flt)
    versions = sla_versions_published()
    cur, prev = opportunities["cur"], opportunities["prev"]
    commitment = None if flt.team is not None else mql_commitment(flt.period, versions, flt.segment)
    prev_commitment = (
        None
        if flt.team is not None
        else mql_commitment(flt.period.previous(), versions, flt.segment)
    )
    figures = [
        Figure(
            "new_pipeline",
            "New pipeline",
            cur["new_amount"],
            prev["new_amount"],
            "money",
            detail=f"{cur['new_count']:,} opportunities",
            rows="new_pipeline",
        ),
        Figure(
            "sourced_pipeline",
            "Marketing-sourced pipeline",
            cur["sourced_amount"],
            prev["sourced_amount"],
            "money",
            detail=f"{cur['sourced_count']:,} opportunities",
            rows="sourced_pipeline",
        ),
        Figure(
            "sourced_share",
            "Marketing-sourced share",
            cur["sourced_share"],
            prev["sourced_share"],
            "percent",
            detail="of all new pipeline",
            rows="sourced_pipeline",
        ),
        Figure(
            "influenced_revenue",
            "Marketing-influenced revenue",
            influenced["cur"],
            influenced["prev"],
            "money",
            detail=_share_detail(percent(influenced["cur"], cur["won_amount"]), "of won revenue"),
            rows="influenced_revenue",
        ),
        Figure(
            "won_revenue",
            "Won revenue",
            cur["won_amount"],
            prev["won_amount"],
            "money",
            detail=f"{cur['won_count']:,} deals won",
            rows="won_revenue",
        ),
        Figure(
            "win_rate",
            "Win rate",
            cur["win_rate"],
            prev["win_rate"],
            "percent",
            detail=f"{cur['won_count']:,} won, {cur['lost_count']:,} lost",
            rows="win_rate",
        ),
        Figure(
            "average_deal",
            "Average deal",
            cur["average_deal"],
            prev["average_deal"],
            "money",
            rows="won_revenue",
        ),
        Figure(
            "sales_cycle",
            "Sales cycle (median)",
            cur["cycle_median"],
            prev["cycle_median"],
            "days",
            higher_is_better=False,
            rows="sales_cycle",
        ),
        Figure(
            "mqls",
            "MQLs",
            flows["cur"]["mqls"],
            flows["prev"]["mqls"],
            "count",
            rows="mqls",
        ),
        Figure(
            "mql_commitment",
            "MQLs against commitment",
            percent(flows["cur"]["mqls"], commitment),
            percent(flows["prev"]["mqls"], prev_commitment),
            "percent",
            detail=_commitment_detail(flows["cur"]["mqls"], commitment),
            rows="mqls",
        ),
        Figure(
            "acceptance_rate",
            "Lead acceptance rate",
            flows["cur"]["acceptance_rate"],
            flows["prev"]["acceptance_rate"],
            "percent",
            detail=f"{flows['cur']['accepted']:,} accepted, {flows['cur']['rejected']:,} rejected",
            rows="acceptance_rate",
        ),
        Figure(
            "first_contact",
            "Time to first contact (median)",
            response["cur"]["median_hours"],
            response["prev"]["median_hours"],
            "hours",
            higher_is_better=False,
            detail=_response_detail(response["cur"]),
            rows="first_contact",
        ),
        Figure(
            "first_contact_p90",
            "Time to first contact (p90)",
            response["cur"]["p90_hours"],
            response["prev"]["p90_hours"],
            "hours",
            higher_is_better=False,
            detail="nine in ten contacted MQLs this fast or faster",
            rows="first_contact",
        ),
        Figure(
            "first_contact_within_sla",
            "First contact within SLA",
            response["cur"]["within_share"],
            response["prev"]["within_share"],
            "percent",
            detail=f"{response['cur']['within']:,} of {response['cur']['resolved']:,} MQLs",
            rows="first_contact",
        ),
        Figure(
            "conversion",
            "Lead → opportunity",
            cohort["cur"]["conversion"],
            cohort["prev"]["conversion"],
            "percent",
            detail=f"{cohort['cur']['opportunity']:,} of {cohort['cur']['created']:,} new leads",
            rows="conversion",
        ),
        Figure(
            "new_customers",
            "New customers",
            money["cur"].customers,
            money["prev"].customers,
            "count",
            rows="new_customers",
        ),
        Figure(
            "cac",
            "CAC (blended)",
            money["cur"].cac,
            money["prev"].cac,
            "money",
            higher_is_better=False,
            detail=f"spend {_money(money['cur'].spend + money['cur'].sales_cost)}",
            rows="new_customers",
        ),
        Figure(
            "ltv",
            "LTV (historical)",
            money["cur"].ltv,
            money["prev"].ltv,
            "money",
            rows="new_customers",
        ),
        Figure(
            "ltv_cac",
            "LTV : CAC",
            money["cur"].ltv_cac,
            money["prev"].ltv_cac,
            "ratio",
            rows="new_customers",
        ),
    ]
    return {
        "figures": {figure.key: figure for figure in figures},
        "figure_list": figures,
        "opportunities": opportunities,
        "flows": flows,
        "commitment": commitment,
        "prev_commitment": prev_commitment,
        "response": response,
        "funnel": cohort,
        "economics": money,
        "cycle_by_channel": cycle_by_channel(flt),
        "trend": monthly_trend(flt),
    }


def _share_detail(share, what: str) -> str:
    return "" if share is None else f"{share:.0f}% {what}"


def _commitment_detail(mqls: int, commitment: float | None) -> str:
    if commitment is None:
        return "no commitment applies"
    return f"{mqls:,} of {commitment:,.0f} committed"


def _response_detail(row: dict) -> str:
    if not row["mqls"]:
        return "no MQLs"
    if not row["contacted"]:
        return f"{row['mqls']:,} MQLs, none contacted yet"
    return f"{row['contacted']:,} of {row['mqls']:,} MQLs contacted"


def _money(value) -> str:
    return "—" if value is None else f"${value:,.0f}"


# --- Goals ---------------------------------------------------------------------------------------


def metric_value(metric: str, flt: ReportFilter):
    """The value of a goal metric for a filter (its period, segment, team).
    One or two queries."""
    from reporting.models import GoalMetric as M

    if metric in (M.SOURCED_PIPELINE, M.NEW_PIPELINE, M.WON_REVENUE, M.WIN_RATE, M.OPPORTUNITIES):
        row = opportunity_totals(flt)["cur"]
        return {
            M.SOURCED_PIPELINE: row["sourced_amount"],
            M.NEW_PIPELINE: row["new_amount"],
            M.WON_REVENUE: row["won_amount"],
            M.WIN_RATE: row["win_rate"],
            M.OPPORTUNITIES: row["new_count"],
        }[metric]
    if metric == M.INFLUENCED_REVENUE:
        return influenced_revenue(flt)["cur"]
    if metric in (M.MQLS, M.ACCEPTANCE_RATE):
        row = stage_flow_totals(flt)["cur"]
        return row["mqls"] if metric == M.MQLS else row["acceptance_rate"]
    if metric == M.RESPONSE_WITHIN_SLA:
        return response_times(flt)["cur"]["within_share"]
    if metric == M.NEW_CUSTOMERS:
        return sum(row["customers"] for row in customers_by_channel(flt)["cur"].values())
    raise ValueError(f"Unknown goal metric {metric!r}")


def as_decimal(value) -> Decimal | None:
    if value is None:
        return None
    return value if isinstance(value, Decimal) else Decimal(str(round(float(value), 4)))


PERCENT_METRICS = frozenset({"acceptance_rate", "response_within_sla", "win_rate"})
MONEY_METRICS = frozenset({"sourced_pipeline", "new_pipeline", "won_revenue", "influenced_revenue"})


def metric_unit(metric: str) -> str:
    if metric in PERCENT_METRICS:
        return "percent"
    if metric in MONEY_METRICS:
        return "money"
    return "count"
