#!/usr/bin/env python
"""The floor of each dashboard figure: the best hand-written SQL for it over
the raw tables (leads, stage changes, touchpoints, deals, spend, SLA
versions), with no derived tables, timed on its own.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/accord_bench_1_0 \\
        .venv/bin/python scripts/bench_floors.py [--periods month,quarter] [--runs 5] [--json]

For every period, each floor runs once to warm the cache, then --runs times;
its best time counts. Like the dashboard, each floor computes the period and
the previous period (the page shows both). Some floors compute several
figures, because one scan of a table gives them all (the dashboard's own
queries do the same): timing them apart would count that scan twice and
flatter the app. Each floor's result is checked against what the app shows
(reporting.kpis, the functions the page calls): a difference is printed as a
warning and reported, because a floor that computes something else is no
floor.

scripts/bench.py divides each dashboard period's page server time (p50) by
the sum of its floors: how far the page is from the limit of the data.
"""

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PERIODS = ("month", "last_month", "quarter", "last_quarter", "90d", "year")

# --- The floors ----------------------------------------------------------------------------------
# Parameters: cur_start/cur_before and prev_start/prev_before are the periods'
# first moment and the first moment after them; cur_first/cur_last and
# prev_first/prev_last their first and last days; tz the site's time zone;
# marketing the marketing channels; now the moment "resolved" is judged at.

OPPORTUNITIES_SQL = """
    SELECT count(*) FILTER (WHERE created_at >= %(cur_start)s AND created_at < %(cur_before)s),
           sum(amount) FILTER (WHERE created_at >= %(cur_start)s AND created_at < %(cur_before)s),
           sum(amount) FILTER (WHERE created_at >= %(cur_start)s AND created_at < %(cur_before)s
                                 AND is_marketing_sourced),
           count(*) FILTER (WHERE stage = 'won' AND closed_on BETWEEN %(cur_first)s AND %(cur_last)s),
           sum(amount) FILTER (WHERE stage = 'won' AND closed_on BETWEEN %(cur_first)s AND %(cur_last)s),
           count(*) FILTER (WHERE stage = 'lost' AND closed_on BETWEEN %(cur_first)s AND %(cur_last)s),
           percentile_cont(0.5) WITHIN GROUP (ORDER BY closed_on - (created_at AT TIME ZONE %(tz)s)::date)
               FILTER (WHERE stage = 'won' AND closed_on BETWEEN %(cur_first)s AND %(cur_last)s),
           count(*) FILTER (WHERE created_at >= %(prev_start)s AND created_at < %(prev_before)s),
           sum(amount) FILTER (WHERE created_at >= %(prev_start)s AND created_at < %(prev_before)s),
           sum(amount) FILTER (WHERE created_at >= %(prev_start)s AND created_at < %(prev_before)s
                                 AND is_marketing_sourced),
           count(*) FILTER (WHERE stage = 'won' AND closed_on BETWEEN %(prev_first)s AND %(prev_last)s),
           sum(amount) FILTER (WHERE stage = 'won' AND closed_on BETWEEN %(prev_first)s AND %(prev_last)s),
           count(*) FILTER (WHERE stage = 'lost' AND closed_on BETWEEN %(prev_first)s AND %(prev_last)s),
           percentile_cont(0.5) WITHIN GROUP (ORDER BY closed_on - (created_at AT TIME ZONE %(tz)s)::date)
               FILTER (WHERE stage = 'won' AND closed_on BETWEEN %(prev_first)s AND %(prev_last)s)
      FROM leads_opportunity
     WHERE (created_at >= %(prev_start)s AND created_at < %(cur_before)s)
        OR closed_on BETWEEN %(prev_first)s AND %(cur_last)s
"""  # fmt: skip


def floor_opportunities(cursor, p: dict) -> dict:
    """New pipeline, marketing-sourced pipeline (and its share), won revenue,
    win rate, average deal and the median sales cycle: one pass over the
    deals created or closed in the two periods."""
    cursor.execute(OPPORTUNITIES_SQL, p)
    row = cursor.fetchone()
    result = {}
    for name, values in (("cur", row[:7]), ("prev", row[7:])):
        new_count, new_amount, sourced, won_count, won_amount, lost_count, cycle = values
        result[name] = {
            "new_count": new_count,
            "new_amount": new_amount or Decimal(0),
            "sourced_amount": sourced or Decimal(0),
            "won_count": won_count,
            "won_amount": won_amount or Decimal(0),
            "lost_count": lost_count,
            "cycle_median": cycle,
        }
    return result


def app_opportunities(flt) -> dict:
    from reporting import kpis

    keys = ("new_count", "new_amount", "sourced_amount", "won_count", "won_amount",
            "lost_count", "cycle_median")  # fmt: skip
    totals = kpis.opportunity_totals(flt)
    return {name: {key: totals[name][key] for key in keys} for name in ("cur", "prev")}


INFLUENCED_SQL = """
    SELECT sum(o.amount) FILTER (WHERE o.closed_on BETWEEN %(cur_first)s AND %(cur_last)s),
           sum(o.amount) FILTER (WHERE o.closed_on BETWEEN %(prev_first)s AND %(prev_last)s)
      FROM leads_opportunity o
     WHERE o.stage = 'won' AND o.closed_on BETWEEN %(prev_first)s AND %(cur_last)s
       AND EXISTS (
           SELECT 1 FROM leads_touchpoint t
            WHERE t.lead_id = o.source_lead_id AND t.channel = ANY(%(marketing)s)
              AND t.occurred_at < ((o.closed_on + 1)::timestamp AT TIME ZONE %(tz)s))
"""


def floor_influenced(cursor, p: dict) -> dict:
    """Marketing-influenced revenue: deals won in the period whose source
    lead had a marketing-channel touch before the end of the close day."""
    cursor.execute(INFLUENCED_SQL, p)
    cur, prev = cursor.fetchone()
    return {"cur": cur or Decimal(0), "prev": prev or Decimal(0)}


def app_influenced(flt) -> dict:
    from reporting import kpis

    return kpis.influenced_revenue(flt)


STAGE_FLOWS_SQL = """
    SELECT count(*) FILTER (WHERE to_stage = 'mql' AND changed_at < %(prev_before)s),
           count(*) FILTER (WHERE from_stage = 'mql' AND to_stage = 'sal'
                              AND changed_at < %(prev_before)s),
           count(*) FILTER (WHERE from_stage IN ('mql', 'sal') AND to_stage = 'rejected'
                              AND changed_at < %(prev_before)s),
           count(*) FILTER (WHERE to_stage = 'mql' AND changed_at >= %(cur_start)s),
           count(*) FILTER (WHERE from_stage = 'mql' AND to_stage = 'sal'
                              AND changed_at >= %(cur_start)s),
           count(*) FILTER (WHERE from_stage IN ('mql', 'sal') AND to_stage = 'rejected'
                              AND changed_at >= %(cur_start)s)
      FROM leads_leadstagechange
     WHERE to_stage IN ('mql', 'sal', 'rejected')
       AND changed_at >= %(prev_start)s AND changed_at < %(cur_before)s
"""


def floor_stage_flows(cursor, p: dict) -> dict:
    """MQLs and the lead acceptance rate (accepted ÷ (accepted + rejected)):
    the stage changes of the two periods, by the (to_stage, changed_at)
    index."""
    cursor.execute(STAGE_FLOWS_SQL, p)
    row = cursor.fetchone()
    return {
        name: {"mqls": mqls, "accepted": accepted, "rejected": rejected}
        for name, (mqls, accepted, rejected) in (("prev", row[:3]), ("cur", row[3:]))
    }


def app_stage_flows(flt) -> dict:
    from reporting import kpis

    flows = kpis.stage_flow_totals(flt)
    return {
        name: {key: flows[name][key] for key in ("mqls", "accepted", "rejected")}
        for name in ("cur", "prev")
    }


COMMITMENT_SQL = """
    SELECT sum(v.mql_commitment_per_month::float
               / extract(day FROM date_trunc('month', d) + interval '1 month - 1 day'))
               FILTER (WHERE d >= %(cur_first)s),
           sum(v.mql_commitment_per_month::float
               / extract(day FROM date_trunc('month', d) + interval '1 month - 1 day'))
               FILTER (WHERE d <= %(prev_last)s)
      FROM generate_series(%(prev_first)s::date, %(cur_last)s::date, interval '1 day') AS d
      JOIN LATERAL (
          SELECT mql_commitment_per_month FROM sla_slaversion
           WHERE status IN ('published', 'superseded') AND published_at IS NOT NULL
             AND (published_at AT TIME ZONE %(tz)s)::date <= d
             AND (superseded_at IS NULL OR (superseded_at AT TIME ZONE %(tz)s)::date > d)
           ORDER BY published_at DESC LIMIT 1
      ) v ON true
"""


def floor_commitment(cursor, p: dict) -> dict:
    """Marketing's MQL commitment for the period: each day adds the monthly
    commitment of the SLA version in force that day ÷ the days of its month."""
    cursor.execute(COMMITMENT_SQL, p)
    cur, prev = cursor.fetchone()
    return {"cur": cur, "prev": prev}


def app_commitment(flt) -> dict:
    from reporting import kpis

    versions = kpis.sla_versions_published()
    return {
        "cur": kpis.mql_commitment(flt.period, versions),
        "prev": kpis.mql_commitment(flt.period.previous(), versions),
    }


# date_part, not EXTRACT (numeric since PostgreSQL 14, several times slower to
# sort): the best SQL for a median of hours.
FIRST_CONTACT_SQL = """
    SELECT CASE WHEN mql_at >= %(cur_start)s THEN 'cur' ELSE 'prev' END,
           count(*),
           count(first_contact_at),
           percentile_cont(ARRAY[0.5, 0.9]) WITHIN GROUP
               (ORDER BY date_part('epoch', first_contact_at - mql_at) / 3600.0),
           count(*) FILTER (WHERE first_contact_at <= response_due_at),
           count(*) FILTER (WHERE response_due_at IS NOT NULL
                              AND (first_contact_at IS NOT NULL OR response_due_at <= %(now)s))
      FROM leads_lead
     WHERE (mql_at >= %(cur_start)s AND mql_at < %(cur_before)s)
        OR (mql_at >= %(prev_start)s AND mql_at < %(prev_before)s)
     GROUP BY 1
"""


def floor_first_contact(cursor, p: dict) -> dict:
    """Time to first contact (median and p90 hours over contacted MQLs of the
    period) and the share contacted within SLA (of resolved clocks)."""
    cursor.execute(FIRST_CONTACT_SQL, p)
    rows = {row[0]: row[1:] for row in cursor.fetchall()}
    result = {}
    for name in ("cur", "prev"):
        mqls, contacted, hours, within, resolved = rows.get(name, (0, 0, None, 0, 0))
        median, p90 = hours or (None, None)
        result[name] = {"mqls": mqls, "contacted": contacted, "median_hours": median,
                        "p90_hours": p90, "within": within, "resolved": resolved}  # fmt: skip
    return result


def app_first_contact(flt, now) -> dict:
    from reporting import kpis

    times = kpis.response_times(flt, now=now)
    keys = ("mqls", "contacted", "median_hours", "p90_hours", "within", "resolved")
    return {name: {key: times[name][key] for key in keys} for name in ("cur", "prev")}


FUNNEL_STAGES = ("mql", "sal", "sql", "opportunity", "customer")
FUNNEL_SQL = """
    WITH cohort AS (
        SELECT l.id, l.created_at,
               CASE WHEN l.created_at >= %(cur_start)s THEN 'cur' ELSE 'prev' END AS bucket
          FROM leads_lead l
         WHERE (l.created_at >= %(cur_start)s AND l.created_at < %(cur_before)s)
            OR (l.created_at >= %(prev_start)s AND l.created_at < %(prev_before)s)
    ), reached AS (
        SELECT c.bucket, c.created_at AS created,
               min(s.changed_at) FILTER (WHERE s.to_stage = 'mql') AS mql,
               min(s.changed_at) FILTER (WHERE s.to_stage = 'sal') AS sal,
               min(s.changed_at) FILTER (WHERE s.to_stage = 'sql') AS sql,
               min(s.changed_at) FILTER (WHERE s.to_stage = 'opportunity') AS opportunity,
               min(s.changed_at) FILTER (WHERE s.to_stage = 'customer') AS customer
          FROM cohort c
          LEFT JOIN leads_leadstagechange s
            ON s.lead_id = c.id AND s.to_stage IN ('mql', 'sal', 'sql', 'opportunity', 'customer')
         GROUP BY c.id, c.bucket, c.created_at
    )
    SELECT bucket, count(*),
           {stages}
      FROM reached
     GROUP BY bucket
"""


def _funnel_sql() -> str:
    columns, previous = [], "created"
    for stage in FUNNEL_STAGES:
        both = f"{stage} IS NOT NULL AND {previous} IS NOT NULL"
        columns += [
            f"count({stage})",
            f"count(*) FILTER (WHERE {both})",
            f"percentile_cont(0.5) WITHIN GROUP (ORDER BY date_part('epoch', {stage} - "
            f"{previous}) / 3600.0 / 24.0) FILTER (WHERE {both})",
        ]
        previous = stage
    return FUNNEL_SQL.format(stages=",\n           ".join(columns))


def floor_funnel(cursor, p: dict) -> dict:
    """The funnel of the leads created in the period (how many reached each
    stage, how many of the previous stage's went on, the median days between)
    and lead → opportunity conversion for this and the previous cohort: the
    cohort's leads joined to their stage changes."""
    cursor.execute(_funnel_sql(), p)
    rows = {row[0]: row[1:] for row in cursor.fetchall()}
    result = {}
    for name in ("cur", "prev"):
        row = rows.get(name)
        stages = {"created": {"reached": row[0] if row else 0}}
        for index, stage in enumerate(FUNNEL_STAGES):
            reached, from_previous, days = (
                row[1 + 3 * index : 4 + 3 * index] if row else (0, 0, None)
            )
            stages[stage] = {"reached": reached, "from_previous": from_previous,
                             "median_days": days}  # fmt: skip
        result[name] = stages
    # The page shows the stages of this period's cohort and the previous
    # cohort's conversion only.
    prev = result["prev"]
    return {
        "cur": result["cur"],
        "prev": {
            "created": prev["created"],
            "opportunity": {"reached": prev["opportunity"]["reached"]},
        },
    }


def app_funnel(flt) -> dict:
    from reporting import kpis

    cohort = kpis.funnel(flt)
    cur = {}
    for stage in cohort["stages"]:
        values = {"reached": stage["reached"]}
        if stage["key"] != "created":
            values |= {"from_previous": stage["from_previous"], "median_days": stage["median_days"]}
        cur[stage["key"]] = values
    prev = cohort["prev"]
    return {
        "cur": cur,
        "prev": {
            "created": {"reached": prev["created"]},
            "opportunity": {"reached": prev["opportunity"]},
        },
    }


CUSTOMERS_SQL = """
    SELECT l.source_channel,
           count(*) FILTER (WHERE f.became >= %(cur_start)s),
           coalesce(sum(won.revenue) FILTER (WHERE f.became >= %(cur_start)s), 0),
           count(*) FILTER (WHERE f.became < %(prev_before)s),
           coalesce(sum(won.revenue) FILTER (WHERE f.became < %(prev_before)s), 0)
      FROM (
          SELECT c.lead_id, min(c.changed_at) AS became
            FROM leads_leadstagechange c
           WHERE c.to_stage = 'customer'
             AND c.changed_at >= %(prev_start)s AND c.changed_at < %(cur_before)s
             AND NOT EXISTS (SELECT 1 FROM leads_leadstagechange e
                              WHERE e.lead_id = c.lead_id AND e.to_stage = 'customer'
                                AND e.changed_at < %(prev_start)s)
           GROUP BY c.lead_id
      ) f
      JOIN leads_lead l ON l.id = f.lead_id
      LEFT JOIN LATERAL (
          SELECT sum(o.amount) AS revenue FROM leads_opportunity o
           WHERE o.source_lead_id = f.lead_id AND o.stage = 'won' AND o.closed_on <= %(cur_last)s
      ) won ON true
     GROUP BY l.source_channel
"""


def floor_customers(cursor, p: dict) -> dict:
    """New customers and their historical LTV by channel (what CAC divides by
    and LTV averages): leads that first became customers in the period, and
    the won revenue of the deals they are the source of, to the period's end."""
    cursor.execute(CUSTOMERS_SQL, p)
    result = {"cur": {}, "prev": {}}
    for channel, cur_n, cur_revenue, prev_n, prev_revenue in cursor.fetchall():
        if cur_n:
            result["cur"][channel] = {"customers": cur_n, "revenue": cur_revenue}
        if prev_n:
            result["prev"][channel] = {"customers": prev_n, "revenue": prev_revenue}
    return result


def app_customers(flt) -> dict:
    from reporting import kpis

    return kpis.customers_by_channel(flt)


SPEND_SQL = """
    WITH months AS (
        SELECT c.channel, s.month, s.amount,
               (s.month + interval '1 month - 1 day')::date AS month_last,
               extract(day FROM s.month + interval '1 month - 1 day')::numeric AS days
          FROM leads_campaignspend s
          JOIN leads_campaign c ON c.id = s.campaign_id
         WHERE s.month >= date_trunc('month', %(prev_first)s::date)
           AND s.month <= date_trunc('month', %(cur_last)s::date)
    )
    SELECT channel,
           sum(amount * (least(month_last, %(cur_last)s::date)
                         - greatest(month, %(cur_first)s::date) + 1) / days)
               FILTER (WHERE least(month_last, %(cur_last)s::date)
                             >= greatest(month, %(cur_first)s::date)),
           sum(amount * (least(month_last, %(prev_last)s::date)
                         - greatest(month, %(prev_first)s::date) + 1) / days)
               FILTER (WHERE least(month_last, %(prev_last)s::date)
                             >= greatest(month, %(prev_first)s::date))
      FROM months
     GROUP BY channel
"""


def floor_spend(cursor, p: dict) -> dict:
    """Marketing spend by channel in the period, pro-rated by day within each
    month (CAC's numerator)."""
    cursor.execute(SPEND_SQL, p)
    result = {"cur": {}, "prev": {}}
    for channel, cur, prev in cursor.fetchall():
        if cur is not None:
            result["cur"][channel] = cur
        if prev is not None:
            result["prev"][channel] = prev
    return result


def app_spend(flt) -> dict:
    from reporting import kpis

    return kpis.spend_by({"cur": flt.period, "prev": flt.period.previous()})


CYCLE_BY_CHANNEL_SQL = """
    SELECT source_channel, count(*), sum(amount),
           percentile_cont(0.5) WITHIN GROUP
               (ORDER BY closed_on - (created_at AT TIME ZONE %(tz)s)::date),
           avg(closed_on - (created_at AT TIME ZONE %(tz)s)::date)
      FROM leads_opportunity
     WHERE stage = 'won' AND closed_on BETWEEN %(cur_first)s AND %(cur_last)s
     GROUP BY source_channel
"""


def floor_cycle_by_channel(cursor, p: dict) -> dict:
    """Sales cycle by source channel: deals won in the period, their revenue,
    median and mean days from creation to close."""
    cursor.execute(CYCLE_BY_CHANNEL_SQL, p)
    return {
        channel: {"deals": deals, "revenue": revenue, "median_days": median,
                  "mean_days": float(mean)}
        for channel, deals, revenue, median, mean in cursor.fetchall()
    }  # fmt: skip


def app_cycle_by_channel(flt) -> dict:
    from reporting import kpis

    return {
        row["source_channel"]: {"deals": row["deals"], "revenue": row["revenue"],
                                "median_days": row["median_days"],
                                "mean_days": float(row["mean_days"])}
        for row in kpis.cycle_by_channel(flt)
    }  # fmt: skip


TREND_SQL = """
    WITH created AS (
        SELECT date_trunc('month', created_at AT TIME ZONE %(tz)s)::date AS month,
               sum(amount) AS total, sum(amount) FILTER (WHERE is_marketing_sourced) AS sourced
          FROM leads_opportunity
         WHERE created_at >= %(trend_start)s AND created_at < %(trend_before)s
         GROUP BY 1
    ), won AS (
        SELECT date_trunc('month', closed_on)::date AS month, sum(amount) AS total
          FROM leads_opportunity
         WHERE stage = 'won' AND closed_on >= %(trend_first)s AND closed_on < %(trend_after)s
         GROUP BY 1
    ), mqls AS (
        SELECT date_trunc('month', changed_at AT TIME ZONE %(tz)s)::date AS month, count(*) AS mqls
          FROM leads_leadstagechange
         WHERE to_stage = 'mql' AND changed_at >= %(trend_start)s AND changed_at < %(trend_before)s
         GROUP BY 1
    )
    SELECT m::date, coalesce(c.total, 0), coalesce(c.sourced, 0), coalesce(w.total, 0),
           coalesce(q.mqls, 0)
      FROM generate_series(%(trend_first)s::date, %(trend_last_month)s::date, interval '1 month') m
      LEFT JOIN created c ON c.month = m::date
      LEFT JOIN won w ON w.month = m::date
      LEFT JOIN mqls q ON q.month = m::date
     ORDER BY 1
"""


def floor_trend(cursor, p: dict) -> dict:
    """The monthly trend charts: new and marketing-sourced pipeline, won
    revenue and MQLs per month (at least 12 months)."""
    cursor.execute(TREND_SQL, p)
    return {
        month.isoformat(): {"new_pipeline": total, "sourced_pipeline": sourced,
                            "won_revenue": won, "mqls": mqls}
        for month, total, sourced, won, mqls in cursor.fetchall()
    }  # fmt: skip


def app_trend(flt) -> dict:
    from reporting import kpis

    return {
        row["month"].isoformat(): {key: row[key] for key in ("new_pipeline", "sourced_pipeline",
                                                            "won_revenue", "mqls")}
        for row in kpis.monthly_trend(flt)
    }  # fmt: skip


@dataclass
class Floor:
    key: str
    figures: str
    run: object  # (cursor, params) -> values
    app: object  # (flt, now) -> the app's values, the same shape


FLOORS = (
    Floor("opportunities", "New pipeline, marketing-sourced pipeline, won revenue, win rate, "
          "average deal, sales cycle", floor_opportunities, lambda f, n: app_opportunities(f)),
    Floor("influenced_revenue", "Marketing-influenced revenue", floor_influenced,
          lambda f, n: app_influenced(f)),
    Floor("mqls_acceptance", "MQLs, lead acceptance rate", floor_stage_flows,
          lambda f, n: app_stage_flows(f)),
    Floor("mql_commitment", "MQLs against the commitment (the commitment)", floor_commitment,
          lambda f, n: app_commitment(f)),
    Floor("first_contact", "Time to first contact (median, p90), first contact within SLA",
          floor_first_contact, app_first_contact),
    Floor("funnel", "Funnel by stage, lead → opportunity conversion", floor_funnel,
          lambda f, n: app_funnel(f)),
    Floor("customers", "New customers, LTV (and CAC's customers) by channel", floor_customers,
          lambda f, n: app_customers(f)),
    Floor("spend", "Spend by channel (CAC)", floor_spend, lambda f, n: app_spend(f)),
    Floor("cycle_by_channel", "Sales cycle by source channel", floor_cycle_by_channel,
          lambda f, n: app_cycle_by_channel(f)),
    Floor("trend", "Pipeline, revenue and MQLs by month", floor_trend, lambda f, n: app_trend(f)),
)  # fmt: skip


# --- Running them --------------------------------------------------------------------------------


def params_for(flt, now) -> dict:
    from django.conf import settings

    from leads.models import Channel
    from reporting import kpis
    from reporting.periods import add_months

    cur, prev = flt.period, flt.period.previous()
    months = kpis.trend_months(cur)
    trend_after = add_months(months[-1], 1)
    return {
        "cur_start": cur.start_at, "cur_before": cur.end_before,
        "prev_start": prev.start_at, "prev_before": prev.end_before,
        "cur_first": cur.start, "cur_last": cur.end,
        "prev_first": prev.start, "prev_last": prev.end,
        "tz": settings.TIME_ZONE, "marketing": sorted(Channel.marketing()), "now": now,
        "trend_first": months[0], "trend_last_month": months[-1], "trend_after": trend_after,
        "trend_start": kpis.timezone.make_aware(kpis._midnight(months[0])),
        "trend_before": kpis.timezone.make_aware(kpis._midnight(trend_after)),
    }  # fmt: skip


def differences(floor, app, path="") -> list[str]:
    """Where two results differ (numbers compared to a relative 1e-6)."""
    if isinstance(floor, dict) and isinstance(app, dict):
        found = []
        for key in sorted(set(floor) | set(app), key=str):
            found += differences(floor.get(key), app.get(key), f"{path}.{key}".strip("."))
        return found
    if floor is None or app is None:
        return [] if floor == app or (_zero(floor) and _zero(app)) else [f"{path}: {floor} ≠ {app}"]
    try:
        a, b = float(floor), float(app)
    except (TypeError, ValueError):
        return [] if floor == app else [f"{path}: {floor} ≠ {app}"]
    if abs(a - b) <= 1e-6 * max(1.0, abs(a), abs(b)):
        return []
    return [f"{path}: {floor} ≠ {app}"]


def _zero(value) -> bool:
    return value is None or value == 0


@dataclass
class FloorResult:
    key: str
    figures: str
    ms: float
    equal: bool
    differences: list = field(default_factory=list)


def floors_measure(periods=PERIODS, *, runs: int = 5, url: str | None = None) -> dict:
    """{period: {"label", "floors": [FloorResult as dict], "total_ms"}}; needs
    Django set up (the app's values come from reporting.kpis)."""
    import psycopg
    from django.db import connection
    from django.utils import timezone

    from reporting.periods import ReportFilter, period_for

    url = url or os.environ["DATABASE_URL"]
    now = timezone.now()
    today = timezone.localdate()
    result = {}
    with psycopg.connect(url, autocommit=True) as conn, conn.cursor() as cursor:
        for key in periods:
            flt = ReportFilter(period=period_for(key, today=today))
            params = params_for(flt, now)
            rows = []
            for floor in FLOORS:
                values = floor.run(cursor, params)  # warm
                best = float("inf")
                for _ in range(runs):
                    started = time.perf_counter()
                    floor.run(cursor, params)
                    best = min(best, time.perf_counter() - started)
                found = differences(_jsonable(values), _jsonable(floor.app(flt, now)))
                if found:
                    print(f"WARNING: the {floor.key} floor differs from the app for {key}: "
                          + "; ".join(found[:5]), file=sys.stderr)  # fmt: skip
                rows.append(FloorResult(floor.key, floor.figures, round(best * 1000, 2),
                                        not found, found[:10]))  # fmt: skip
            result[key] = {
                "label": flt.period.label,
                "floors": [row.__dict__ for row in rows],
                "total_ms": round(sum(row.ms for row in rows), 2),
            }
    connection.close()
    return result


def _jsonable(value):
    """Dict keys as strings (channel '' included), numbers as they are."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return value


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--periods", default=",".join(PERIODS))
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--json", action="store_true", help="Print JSON (for scripts/bench.py).")
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("DEBUG", "1")
    import django

    django.setup()
    result = floors_measure(args.periods.split(","), runs=args.runs)
    if args.json:
        print(json.dumps(result))
        return
    for key, period in result.items():
        print(f"{key} ({period['label']}): floor {period['total_ms']:.1f} ms")
        for row in period["floors"]:
            flag = "" if row["equal"] else "  DIFFERS: " + "; ".join(row["differences"][:3])
            print(f"  {row['key']:<20} {row['ms']:8.2f} ms  {row['figures']}{flag}")


if __name__ == "__main__":
    main()
