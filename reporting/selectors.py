"""Reads of the attribution page, the SLA scorecard and the lists of rows
behind each figure. Every function runs a fixed number of queries. Reads of
the derived tables alone are `@derived_figure`s (reporting.figure_cache):
cached on a page until those tables change."""

import calendar
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import (
    Case,
    Count,
    DateField,
    DecimalField,
    F,
    IntegerField,
    Q,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Cast, TruncMonth
from django.utils import timezone

from leads.models import (
    Campaign,
    ContentAsset,
    LeadStageChange,
    OpportunityStage,
    TeamMembership,
)
from reporting import kpis
from reporting.attribution import MODEL_HELP, MODEL_LABELS, SCHEMES
from reporting.figure_cache import derived_figure
from reporting.models import (
    AttributionCredit,
    AttributionKind,
    AttributionPath,
    AttributionScheme,
    LeadFunnel,
)
from reporting.periods import Period, ReportFilter, add_months, month_start
from reporting.rollups import scheme_signature
from sla.models import Breach

ZERO = Decimal(0)

# --- Attribution ---------------------------------------------------------------------------------


_CREDITS_SQL = """
    SELECT model, channel, campaign_id, asset_id, GROUPING(channel, campaign_id, asset_id),
           sum(credit), sum(weight)
      FROM reporting_attributioncredit
     WHERE kind = %(kind)s AND model = ANY(%(models)s) AND day >= %(start)s AND day <= %(end)s
       {filters}
     GROUP BY GROUPING SETS ((model, channel), (model, campaign_id), (model, asset_id))
"""
# GROUPING(channel, campaign_id, asset_id) is a bit mask of the columns left out.
_GROUPED_BY = {0b011: "channel", 0b101: "campaign", 0b110: "asset"}


@derived_figure
def credits_grouped(flt: ReportFilter, *, kind: str, models: list[str]) -> dict:
    """Credit and credited deals (summed weights) by channel, campaign and
    asset under each model: {dimension: {key: {model: (credit, deals)}}}.
    One query (grouping sets over the stored credit rows)."""
    params = {
        "kind": kind,
        "models": list(models),
        "start": flt.period.start,
        "end": flt.period.end,
    }
    sql = _CREDITS_SQL.format(filters=kpis.derived_sql_filter(flt, params))
    result = {
        "channel": defaultdict(dict),
        "campaign": defaultdict(dict),
        "asset": defaultdict(dict),
    }
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        for model, channel, campaign_id, asset_id, grouping, credit, weight in cursor.fetchall():
            dimension = _GROUPED_BY[grouping]
            key = {"channel": channel, "campaign": campaign_id, "asset": asset_id}[dimension]
            result[dimension][key][model] = (credit or ZERO, weight or 0.0)
    return result


@derived_figure
def path_totals(flt: ReportFilter) -> dict:
    """Per kind: deals, their amount, and the unattributed part (deals with
    no touch on their path). One query."""
    rows = (
        derived_for_paths(flt)
        .values("kind")
        .annotate(
            deals=Count("id"),
            total=Sum("amount"),
            unattributed=Sum("amount", filter=Q(touches=0)),
            unattributed_deals=Count("id", filter=Q(touches=0)),
        )
    )
    totals = {
        kind: {"deals": 0, "amount": ZERO, "unattributed": ZERO, "unattributed_deals": 0}
        for kind in AttributionKind.values
    }
    for row in rows.order_by():
        totals[row["kind"]] = {
            "deals": row["deals"],
            "amount": row["total"] or ZERO,
            "unattributed": row["unattributed"] or ZERO,
            "unattributed_deals": row["unattributed_deals"],
        }
    return totals


def derived_for_paths(flt: ReportFilter):
    return kpis.derived_for(
        AttributionPath.objects.filter(day__gte=flt.period.start, day__lte=flt.period.end), flt
    )


@dataclass
class AttributionRow:
    key: object
    label: str
    note: str = ""
    pipeline: dict = field(default_factory=dict)  # model -> credit
    revenue: dict = field(default_factory=dict)
    deals: dict = field(default_factory=dict)  # model -> credited deals (pipeline)
    spend: Decimal | None = None

    def roi(self, model: str) -> float | None:
        """(credited revenue − spend) ÷ spend."""
        if not self.spend:
            return None
        return float((self.revenue.get(model, ZERO) - self.spend) / self.spend)


def attribution(flt: ReportFilter, *, models: list[str]) -> dict:
    """The attribution page: credited pipeline and revenue by channel,
    campaign and content asset under each of `models`, spend and ROI, the
    unattributed remainder, and the weights used. Seven queries."""
    pipeline = credits_grouped(flt, kind=AttributionKind.PIPELINE, models=models)
    revenue = credits_grouped(flt, kind=AttributionKind.REVENUE, models=models)
    spend = kpis.spend_by({"cur": flt.period}, by="campaign")["cur"]
    campaigns = {c.pk: c for c in Campaign.objects.all()}
    assets = {a.pk: a for a in ContentAsset.objects.all()}
    spend_by_channel: dict[str, Decimal] = defaultdict(lambda: ZERO)
    for campaign_id, amount in spend.items():
        spend_by_channel[campaigns[campaign_id].channel] += amount

    def rows(dimension: str) -> list[AttributionRow]:
        keys = set(pipeline[dimension]) | set(revenue[dimension])
        if dimension == "channel":
            keys |= {channel for channel, amount in spend_by_channel.items() if amount}
        if dimension == "campaign":
            keys |= {campaign_id for campaign_id, amount in spend.items() if amount}
        result = []
        for key in keys:
            row = AttributionRow(key=key, label=_dimension_label(dimension, key, campaigns, assets))
            if dimension == "channel":
                row.spend = spend_by_channel.get(key, ZERO)
            elif dimension == "campaign" and key is not None:
                row.spend = spend.get(key, ZERO)
                row.note = kpis.channel_label(campaigns[key].channel) if key in campaigns else ""
            elif dimension == "asset" and key in assets:
                row.note = assets[key].get_funnel_stage_display()
            for model in models:
                credit, weight = pipeline[dimension].get(key, {}).get(model, (ZERO, 0.0))
                row.pipeline[model] = credit
                row.deals[model] = weight
                row.revenue[model] = revenue[dimension].get(key, {}).get(model, (ZERO, 0.0))[0]
            result.append(row)
        result.sort(key=lambda r: (r.key is None or r.key == "", -r.pipeline.get(models[0], 0)))
        return result

    schemes = {
        model: AttributionScheme.objects.filter(
            model=model, signature=scheme_signature(model, SCHEMES[model])
        ).first()
        for model in models
    }
    return {
        "models": [
            {
                "key": m,
                "label": MODEL_LABELS[m],
                "help": MODEL_HELP[m],
                "scheme": schemes[m],
                "weights": SCHEMES[m],
            }
            for m in models
        ],
        "channels": rows("channel"),
        "campaigns": rows("campaign"),
        "assets": rows("asset"),
        "totals": path_totals(flt),
    }


def _dimension_label(dimension: str, key, campaigns: dict, assets: dict) -> str:
    if dimension == "channel":
        return kpis.channel_label(key) if key else "No channel recorded"
    if dimension == "campaign":
        return campaigns[key].name if key in campaigns else "No campaign"
    return assets[key].title if key in assets else "No content asset"


# --- Rows behind a figure --------------------------------------------------------------------------


@dataclass
class Column:
    label: str
    value: object  # a callable taking the row
    kind: str = "text"  # text, money, date, datetime, number, percent, link
    link: object = None  # a callable giving the URL for the cell


def _lead_link(row):
    return row.lead.get_absolute_url()


def _opportunity_columns(extra=()) -> list[Column]:
    return [
        Column("Opportunity", lambda o: o.name, link=lambda o: o.get_absolute_url()),
        Column("Account", lambda o: o.account.name if o.account else ""),
        Column("Stage", lambda o: o.get_stage_display()),
        Column("Amount", lambda o: o.amount, "money"),
        Column("Created", lambda o: o.created_at, "datetime"),
        Column("Closed", lambda o: o.closed_on, "date"),
        Column("Source channel", lambda o: kpis.channel_label(o.source_channel)),
        Column("Marketing-sourced", lambda o: "yes" if o.is_marketing_sourced else "no"),
        Column("Owner", lambda o: _person(o.owner)),
        *extra,
    ]


def _person(user) -> str:
    if user is None:
        return ""
    return user.get_full_name() or user.username


def _stage_change_columns() -> list[Column]:
    return [
        Column("Lead", lambda c: str(c.lead), link=_lead_link),
        Column("When", lambda c: c.changed_at, "datetime"),
        Column("From", lambda c: c.get_from_stage_display()),
        Column("To", lambda c: c.get_to_stage_display()),
        Column("By", lambda c: _person(c.actor) or _person(c.lead.owner)),
        Column("Reason", lambda c: c.reason.label if c.reason else ""),
        Column("Segment", lambda c: c.lead.get_segment_display()),
        Column("Source channel", lambda c: kpis.channel_label(c.lead.source_channel)),
    ]


def _funnel_columns(extra=()) -> list[Column]:
    return [
        Column("Lead", lambda f: str(f.lead), link=_lead_link),
        Column("Created", lambda f: f.created_at, "datetime"),
        Column("Source channel", lambda f: kpis.channel_label(f.source_channel)),
        Column("Owner", lambda f: _person(f.owner)),
        *extra,
    ]


def _hours(row):
    if row.first_contact_at is None or row.mql_at is None:
        return None
    return round((row.first_contact_at - row.mql_at).total_seconds() / 3600, 2)


def _within(row, now=None):
    now = now or timezone.now()
    if row.response_due_at is None:
        return ""
    if row.first_contact_at is not None:
        return "yes" if row.first_contact_at <= row.response_due_at else "no"
    return "no (overdue)" if row.response_due_at <= now else "clock running"


@dataclass
class RowsSpec:
    title: str
    definition: str
    queryset: object
    keys: tuple[str, ...]
    columns: list[Column]


def _stage_changes_for(flt: ReportFilter):
    changes = LeadStageChange.objects.select_related("lead", "lead__owner", "actor", "reason")
    if flt.segment:
        changes = changes.filter(lead__segment=flt.segment)
    owners = flt.owner_ids()
    if owners is not None:
        changes = changes.filter(
            Q(actor_id__in=owners) | Q(actor__isnull=True, lead__owner_id__in=owners)
        )
    return changes.filter(kpis.moment_in("changed_at", flt.period))


def figure_rows(figure: str, flt: ReportFilter, params=None) -> RowsSpec | None:
    """What lies behind a figure: the rows it counts, their order (keys for
    keyset paging) and columns. None for an unknown figure."""
    params = params or {}
    period = flt.period
    opportunities = kpis.opportunities_for(flt).select_related("account", "owner")
    won = opportunities.filter(kpis.closed_in(period), stage=OpportunityStage.WON)
    cycle = Column(
        "Cycle (days)",
        lambda o: (o.closed_on - o.created_at.date()).days if o.closed_on else None,
        "number",
    )
    definitions = kpis.DEFINITIONS
    if figure == "new_pipeline":
        return RowsSpec(
            "Opportunities created",
            definitions["new_pipeline"],
            opportunities.filter(kpis.created_in(period)),
            ("created_at", "id"),
            _opportunity_columns(),
        )
    if figure in ("sourced_pipeline", "sourced_share"):
        return RowsSpec(
            "Marketing-sourced opportunities created",
            definitions["sourced_pipeline"],
            opportunities.filter(kpis.created_in(period), is_marketing_sourced=True),
            ("created_at", "id"),
            _opportunity_columns(),
        )
    if figure in ("won_revenue", "average_deal"):
        return RowsSpec(
            "Deals won",
            definitions["won_revenue"],
            won,
            ("closed_on", "id"),
            _opportunity_columns(),
        )
    if figure == "sales_cycle":
        title = "Deals won, with their cycle"
        if params.get("channel") is not None:
            won = won.filter(source_channel=params["channel"])
            title += f", from {kpis.channel_label(params['channel'])}"
        return RowsSpec(
            title,
            definitions["sales_cycle"],
            won,
            ("closed_on", "id"),
            _opportunity_columns([cycle]),
        )
    if figure == "win_rate":
        closed = opportunities.filter(
            kpis.closed_in(period), stage__in=OpportunityStage.closed_stages()
        )
        return RowsSpec(
            "Deals closed (won and lost)",
            definitions["win_rate"],
            closed,
            ("closed_on", "id"),
            _opportunity_columns(),
        )
    if figure == "influenced_revenue":
        influenced = AttributionPath.objects.filter(
            kind=AttributionKind.REVENUE,
            day__gte=period.start,
            day__lte=period.end,
            marketing_touches__gt=0,
        ).values("opportunity_id")
        rows = won.filter(id__in=influenced)
        return RowsSpec(
            "Won deals with marketing touches",
            definitions["influenced_revenue"],
            rows,
            ("closed_on", "id"),
            _opportunity_columns(),
        )
    if figure in ("mqls", "mql_commitment"):
        rows = _stage_changes_for(flt).filter(to_stage="mql")
        return RowsSpec(
            "Leads that became MQLs",
            definitions["mqls"],
            rows,
            ("changed_at", "id"),
            _stage_change_columns(),
        )
    if figure == "acceptance_rate":
        rows = _stage_changes_for(flt).filter(
            Q(from_stage="mql", to_stage="sal")
            | Q(from_stage__in=("mql", "sal"), to_stage="rejected")
        )
        return RowsSpec(
            "Sales decisions on MQLs",
            definitions["acceptance_rate"],
            rows,
            ("changed_at", "id"),
            _stage_change_columns(),
        )
    funnel = kpis.derived_for(LeadFunnel.objects.select_related("lead", "owner"), flt)
    if figure in ("first_contact", "first_contact_p90", "first_contact_within_sla"):
        rows = funnel.filter(kpis.moment_in("mql_at", period))
        extra = [
            Column("MQL at", lambda f: f.mql_at, "datetime"),
            Column("First contact", lambda f: f.first_contact_at, "datetime"),
            Column("Hours to contact", _hours, "number"),
            Column("Due", lambda f: f.response_due_at, "datetime"),
            Column("Within SLA", _within),
        ]
        return RowsSpec(
            "MQLs and their first contact",
            definitions["first_contact"],
            rows,
            ("mql_at", "lead_id"),
            _funnel_columns(extra),
        )
    if figure == "conversion":
        rows = funnel.filter(kpis.moment_in("created_at", period))
        return RowsSpec(
            "Leads created",
            definitions["conversion"],
            rows,
            ("created_at", "lead_id"),
            _funnel_columns(_reached_columns()),
        )
    if figure == "funnel":
        return _funnel_stage_rows(funnel.filter(kpis.moment_in("created_at", period)), params)
    if figure in ("new_customers", "ltv", "cac", "ltv_cac"):
        rows = funnel.filter(kpis.moment_in("reached_customer_at", period))
        if params.get("channel") is not None:
            rows = rows.filter(source_channel=params["channel"])
        extra = [Column("Customer since", lambda f: f.reached_customer_at, "datetime")]
        return RowsSpec(
            "New customers",
            definitions["new_customers"],
            rows,
            ("reached_customer_at", "lead_id"),
            _funnel_columns(extra),
        )
    if figure == "credited":
        return _credited_rows(flt, params)
    return None


def _reached_columns() -> list[Column]:
    """When the lead first entered each stage after creation."""
    return [
        Column(label, lambda f, column=column: getattr(f, column), "datetime")
        for key, label, column in kpis.FUNNEL_STAGES
        if key != "created"
    ]


def _funnel_stage_rows(cohort, params: dict) -> RowsSpec:
    """The period's new leads that reached one funnel stage (?stage=, default
    all of them), with when they entered it and the stage before it."""
    stages = {key: (index, label, column) for index, (key, label, column)
              in enumerate(kpis.FUNNEL_STAGES)}  # fmt: skip
    index, label, column = stages.get(params.get("stage", ""), stages["created"])
    if index == 0:
        return RowsSpec(
            "Leads created",
            kpis.DEFINITIONS["funnel"],
            cohort,
            ("created_at", "lead_id"),
            _funnel_columns(_reached_columns()),
        )
    _, before_label, before_column = kpis.FUNNEL_STAGES[index - 1]

    def days_from_previous(row):
        start, end = getattr(row, before_column), getattr(row, column)
        if start is None or end is None:
            return None
        return round((end - start).total_seconds() / 86400, 1)

    extra = [
        Column(before_label, lambda f: getattr(f, before_column), "datetime"),
        Column(label, lambda f: getattr(f, column), "datetime"),
        Column("Days from the previous stage", days_from_previous, "number"),
    ]
    return RowsSpec(
        f"New leads that reached {label}",
        kpis.DEFINITIONS["funnel"],
        cohort.filter(**{f"{column}__isnull": False}),
        ("created_at", "lead_id"),
        _funnel_columns(extra),
    )


def _id_or_none(value: str) -> int | None:
    """A campaign or asset id from the URL ("" for none; anything else: none)."""
    return int(value) if value.isdigit() else None


def _credited_rows(flt: ReportFilter, params: dict) -> RowsSpec:
    model = params.get("model") if params.get("model") in MODEL_LABELS else "linear"
    kind = params.get("kind") if params.get("kind") in AttributionKind.values else "pipeline"
    rows = kpis.derived_for(
        AttributionCredit.objects.select_related("opportunity", "campaign", "asset").filter(
            kind=kind, model=model, day__gte=flt.period.start, day__lte=flt.period.end
        ),
        flt,
    )
    dimension = ""
    if "channel" in params:
        rows = rows.filter(channel=params["channel"])
        dimension = kpis.channel_label(params["channel"]) if params["channel"] else "no channel"
    if "campaign" in params:
        rows = rows.filter(campaign_id=_id_or_none(params["campaign"]))
        dimension = "this campaign" if params["campaign"] else "no campaign"
    if "asset" in params:
        rows = rows.filter(asset_id=_id_or_none(params["asset"]))
        dimension = "this content asset" if params["asset"] else "no content asset"
    columns = [
        Column(
            "Opportunity",
            lambda c: c.opportunity.name,
            link=lambda c: c.opportunity.get_absolute_url(),
        ),
        Column("Day", lambda c: c.day, "date"),
        Column("Channel", lambda c: kpis.channel_label(c.channel) if c.channel else ""),
        Column("Campaign", lambda c: c.campaign.name if c.campaign else ""),
        Column("Content asset", lambda c: c.asset.title if c.asset else ""),
        Column("Touches", lambda c: c.touches, "number"),
        Column("Weight", lambda c: round(c.weight, 4), "number"),
        Column("Credit", lambda c: c.credit, "money"),
    ]
    title = f"{MODEL_LABELS[model]} {kind} credit" + (f" to {dimension}" if dimension else "")
    return RowsSpec(title, MODEL_HELP[model], rows, ("day", "id"), columns)


# --- The SLA scorecard ---------------------------------------------------------------------------


def scorecard_months(*, end: date, months: int = 6) -> Period:
    first = add_months(month_start(end), -(months - 1))
    return Period("custom", first, end, "")


def _month_key(value) -> date:
    """TruncMonth gives dates for date columns, local datetimes for timestamps."""
    return value.date() if isinstance(value, datetime) else value


def _pct(numerator, denominator):
    return kpis.percent(numerator, denominator)


def scorecard_by_version(
    period: Period, *, team=None, segment: str = "", today: date | None = None
) -> list[dict]:
    """Both sides of the agreement per SLA version and month: marketing (MQLs
    against the commitment, acceptance rate against the target) and sales
    (first contact within SLA, breaches, escalations, reason codes on
    rejections, retrospectives of the deals above the review threshold).
    A segment filter keeps that segment's leads, breaches and deals and
    compares MQLs with the version's commitment for the segment (none when
    it sets none); a team filter has no commitment. Five queries (six with
    a team filter)."""
    flt = ReportFilter(period=period, team=team, segment=segment)
    versions = kpis.sla_versions_published()
    flows = _flows_grouped(flt, ("sla_version_id", "month"))
    response = _response_grouped(flt, ("sla_version_id",), month=True)
    breaches = _breaches_grouped(flt, ("sla_version_id",), month=True)
    reviews = _retrospectives_grouped(flt, ("review_version_id",), versions, month=True,
                                      today=today)  # fmt: skip
    by_id = {v.pk: v for v in versions}
    table: dict[tuple, dict] = {}

    def row(version_id, month):
        key = (version_id, _month_key(month))
        if key not in table:
            table[key] = {
                "version": by_id.get(version_id),
                "month": key[1],
                "mqls": 0,
                "accepted": 0,
                "rejected": 0,
                "dropped": 0,
                "dropped_with_reason": 0,
                "contacted": 0,
                "within": 0,
                "resolved": 0,
                "median_hours": None,
                "breaches": 0,
                "notified": 0,
                "reassigned": 0,
                **dict.fromkeys(RETRO_COUNTS, 0),
            }
        return table[key]

    for flow in flows:
        target = row(flow["sla_version_id"], flow["month"])
        for name in FLOW_COUNTS:
            target[name] += flow[name]
    for item in response:
        target = row(item["sla_version_id"], item["month"])
        target.update(
            within=item["within"],
            resolved=item["resolved"],
            contacted=item["contacted"],
            median_hours=item["median_hours"],
        )
    for item in breaches:
        target = row(item["sla_version_id"], item["month"])
        target.update(
            breaches=item["breaches"], notified=item["notified"], reassigned=item["reassigned"]
        )
    for item in reviews:
        row(item["review_version_id"], item["month"]).update(
            {name: item[name] for name in RETRO_COUNTS}
        )
    result = []
    for (_, month), item in sorted(table.items(), key=lambda kv: (kv[0][1], kv[0][0] or 0)):
        version = item["version"]
        activity = item["mqls"] + item["accepted"] + item["rejected"] + item["dropped"]
        if not (activity or item["breaches"] or item["resolved"] or item["retro_eligible"]):
            continue
        month_period = Period(
            "month",
            max(month, period.start),
            min(add_months(month, 1) - timedelta(days=1), period.end),
            "",
        )
        commitment = None
        if version is not None and team is None:
            commitment = mql_commitment_of(version, month_period, versions, segment)
        item["commitment"] = commitment
        item["mql_share"] = _pct(item["mqls"], commitment) if commitment else None
        item["acceptance_target"] = version.min_acceptance_rate if version else None
        _derive_rates(item)
        item["acceptance_met"] = (
            None
            if item["acceptance_rate"] is None or version is None
            else item["acceptance_rate"] >= version.min_acceptance_rate
        )
        result.append(item)
    return result


def mql_commitment_of(version, period: Period, versions, segment: str = "") -> float | None:
    """The version's share of the MQL commitment over the period (for one
    segment: the version's commitment for it): only the days it was in force
    count. None when it commits to nothing."""
    monthly = kpis.commitment_for(version, segment)
    if not monthly:
        return None
    total, day = 0.0, period.start
    in_force = kpis.versions_in_force(versions)
    while day <= period.end:
        if in_force(day) == version:
            total += monthly / calendar.monthrange(day.year, day.month)[1]
        day += timedelta(days=1)
    return total or None


FLOW_COUNTS = ("mqls", "accepted", "rejected", "dropped", "dropped_with_reason")


def _flows_grouped(flt: ReportFilter, group_by: tuple[str, ...]) -> list[dict]:
    """The period's MQLs, sales decisions and drops (sales rejecting or
    disqualifying a lead it was working; with their reason codes) per group,
    from the stage-flow rollups. One query (none when cached)."""
    rows = kpis.stage_flows(
        flt,
        {"cur": flt.period},
        kinds=("mqls", "accepted", "rejected", "dropped"),
        group_by=group_by,
        reasons=("dropped",),
    )
    return [
        {**{group: row[group] for group in group_by},
         **{name: row[f"cur_{name}"] for name in FLOW_COUNTS}}
        for row in rows
    ]  # fmt: skip


@derived_figure
def _response_clocks_grouped(
    flt: ReportFilter, group_by: tuple[str, ...], *, month: bool, as_of=None
) -> dict:
    """The response clocks of the period's MQLs per group, judged at `as_of`
    (by default the moment computed): {"as_of", "rows": [group values and
    kpis.clock_aggregates]}. One query."""
    as_of = as_of or timezone.now()
    rows = kpis.derived_for(LeadFunnel.objects.filter(kpis.moment_in("mql_at", flt.period)), flt)
    fields = list(group_by)
    if month:
        rows = rows.annotate(month=TruncMonth("mql_at"))
        fields.append("month")
    grouped = rows.values(*fields).annotate(**kpis.clock_aggregates(as_of)).order_by()
    return {"as_of": as_of, "rows": list(grouped)}


def _response_grouped(flt: ReportFilter, group_by: tuple[str, ...], *, month: bool = False):
    """First contact per group for the period's MQLs, with clocks resolved by
    now (the cached clocks count those that ran out since)."""
    clocks = _response_clocks_grouped(flt, group_by, month=month)
    now = timezone.now()  # after the clocks: at or after their moment
    if clocks["as_of"] > now:  # another process's clock ran ahead
        clocks = _response_clocks_grouped.uncached(flt, group_by, month=month, as_of=now)
    fields = [*group_by, *(["month"] if month else [])]
    return [
        {**{name: row[name] for name in fields}, **kpis.clocks_resolved(row, now)}
        for row in clocks["rows"]
    ]


def _breaches_grouped(flt: ReportFilter, group_by: tuple[str, ...], *, month: bool = False):
    breaches = Breach.objects.filter(kpis.moment_in("breached_at", flt.period))
    if flt.segment:
        breaches = breaches.filter(lead__segment=flt.segment)
    owners = flt.owner_ids()
    if owners is not None:
        breaches = breaches.filter(owner_id__in=owners)
    fields = list(group_by)
    if month:
        breaches = breaches.annotate(month=TruncMonth("breached_at"))
        fields.append("month")
    return list(
        breaches.values(*fields)
        .annotate(
            breaches=Count("id"),
            notified=Count("id", filter=Q(manager_notified_at__isnull=False)),
            reassigned=Count("id", filter=Q(reassigned_at__isnull=False)),
        )
        .order_by()
    )


RETRO_COUNTS = ("retro_eligible", "retro_reviewed", "retro_on_time", "retro_resolved")
# The counts a team row adds up from its reps' rows.
SUMMED_COUNTS = (
    "mqls",
    "accepted",
    "rejected",
    "dropped",
    "dropped_with_reason",
    "contacted",
    "within",
    "resolved",
    "breaches",
    "notified",
    "reassigned",
    *RETRO_COUNTS,
)


def _version_in_force_on(versions, day_field: str, value_of) -> list[When]:
    """The WHENs of a CASE giving, for the day in `day_field`, `value_of(version)`
    of the SLA version in force that day (as kpis.version_on: on the day of a
    switch, the new version); the CASE's default covers days before the first."""
    whens = []
    for version in reversed(versions):  # the later version wins, as in kpis.version_on
        condition = Q(**{f"{day_field}__gte": timezone.localdate(version.published_at)})
        if version.superseded_at:
            condition &= Q(**{f"{day_field}__lt": timezone.localdate(version.superseded_at)})
        whens.append(When(condition, then=value_of(version)))
    return whens


def _retrospectives_grouped(
    flt: ReportFilter, group_by: tuple[str, ...], versions, *, month: bool = False, today=None
) -> list[dict]:
    """The feedback commitment on deals: deals closed in the period (won or
    lost) above the review threshold of the SLA in force on their close day,
    due a retrospective within that SLA's days. Per group: eligible deals,
    reviewed, reviewed on time, and resolved (reviewed, or due date passed:
    the others' clock still runs). Grouped by `review_version_id` (that SLA),
    `owner_id` and/or month. One query."""
    today = today or timezone.localdate()
    if not versions:
        return []
    deals = kpis.opportunities_for(flt).filter(
        kpis.closed_in(flt.period), stage__in=OpportunityStage.closed_stages()
    )
    version_id = _version_in_force_on(versions, "closed_on", lambda v: Value(v.pk))
    threshold = _version_in_force_on(
        versions, "closed_on", lambda v: Value(v.retro_amount_threshold)
    )
    due_on = _version_in_force_on(
        versions,
        "closed_on",
        lambda v: Cast(F("closed_on") + timedelta(days=v.retro_due_days), DateField()),
    )
    deals = deals.annotate(
        review_version_id=Case(*version_id, default=None, output_field=IntegerField()),
        review_threshold=Case(
            *threshold, default=None, output_field=DecimalField(max_digits=14, decimal_places=2)
        ),
        review_due_on=Case(*due_on, default=None, output_field=DateField()),
    ).filter(amount__gt=F("review_threshold"))
    fields = list(group_by)
    if month:
        deals = deals.annotate(month=TruncMonth("closed_on"))
        fields.append("month")
    reviewed = Q(retrospective__isnull=False)
    return list(
        deals.values(*fields)
        .annotate(
            retro_eligible=Count("id"),
            retro_reviewed=Count("id", filter=reviewed),
            retro_on_time=Count("id", filter=Q(retrospective__held_on__lte=F("review_due_on"))),
            retro_resolved=Count("id", filter=reviewed | Q(review_due_on__lt=today)),
        )
        .order_by()
    )


def scorecard_by_rep(
    period: Period, *, team=None, segment: str = "", today: date | None = None
) -> dict:
    """Both sides per rep and per team for the period: MQLs routed, sales
    decisions, acceptance rate, first contact within SLA and median hours,
    breaches and escalations, reason codes on rejections, retrospectives of
    their deals above the review threshold. Team rows add up their members'
    counts (medians are per rep only). Seven queries at most (one more with
    a team filter)."""
    flt = ReportFilter(period=period, team=team, segment=segment)
    flows = _flows_grouped(flt, ("owner_id",))
    response = _response_grouped(flt, ("owner_id",))
    breaches = _breaches_grouped(flt, ("owner_id",))
    reviews = _retrospectives_grouped(flt, ("owner_id",), kpis.sla_versions_published(),
                                      today=today)  # fmt: skip
    memberships = {
        m.user_id: m
        for m in TeamMembership.objects.select_related("user", "team").order_by("team__name")
    }
    people: dict = {}

    def person(owner_id):
        if owner_id not in people:
            membership = memberships.get(owner_id)
            people[owner_id] = {
                "owner_id": owner_id,
                "name": _person(membership.user) if membership else "",
                "team": membership.team if membership else None,
                "mqls": 0,
                "accepted": 0,
                "rejected": 0,
                "dropped": 0,
                "dropped_with_reason": 0,
                "contacted": 0,
                "within": 0,
                "resolved": 0,
                "median_hours": None,
                "breaches": 0,
                "notified": 0,
                "reassigned": 0,
                **dict.fromkeys(RETRO_COUNTS, 0),
            }
        return people[owner_id]

    for flow in flows:
        target = person(flow["owner_id"])
        for name in FLOW_COUNTS:
            target[name] += flow[name]
    for item in response:
        person(item["owner_id"]).update(
            contacted=item["contacted"],
            within=item["within"],
            resolved=item["resolved"],
            median_hours=item["median_hours"],
        )
    for item in breaches:
        person(item["owner_id"]).update(
            breaches=item["breaches"], notified=item["notified"], reassigned=item["reassigned"]
        )
    for item in reviews:
        person(item["owner_id"]).update({name: item[name] for name in RETRO_COUNTS})
    unknown = [pk for pk in people if pk is not None and not people[pk]["name"]]
    if unknown:
        for user in get_user_model().objects.filter(pk__in=unknown):
            people[user.pk]["name"] = _person(user)
    teams: dict = {}
    for item in people.values():
        _derive_rates(item)
        team_obj = item["team"]
        key = team_obj.pk if team_obj else None
        if key not in teams:
            teams[key] = {
                "team": team_obj,
                "name": team_obj.name if team_obj else "No team",
                "reps": 0,
                "median_hours": None,
            }
            teams[key] |= dict.fromkeys(SUMMED_COUNTS, 0)
        team_row = teams[key]
        if item["owner_id"] is not None:
            team_row["reps"] += 1
        for name in SUMMED_COUNTS:
            team_row[name] += item[name] or 0
    for team_row in teams.values():
        _derive_rates(team_row)
    reps = sorted(
        people.values(),
        key=lambda r: (r["team"] is None, r["team"].name if r["team"] else "", r["name"] or "~"),
    )
    return {
        "reps": reps,
        "teams": sorted(teams.values(), key=lambda r: (r["team"] is None, r["name"])),
    }


def _derive_rates(item: dict) -> None:
    item["acceptance_rate"] = _pct(item["accepted"], item["accepted"] + item["rejected"])
    item["within_share"] = _pct(item["within"], item["resolved"])
    item["feedback_share"] = _pct(item["dropped_with_reason"], item["dropped"])
    item["retro_share"] = _pct(item["retro_on_time"], item["retro_resolved"])
    item["retro_coverage"] = _pct(item["retro_reviewed"], item["retro_eligible"])
