"""Keeping the reporting tables current: stored attribution, per-lead funnel
facts and the daily and monthly stage-flow rollups.

How changes arrive. Database triggers (migration 0002) add a `PendingChange`
row in the same transaction as every insert, relevant update or delete of a
touchpoint, lead, lead stage change or opportunity, whatever wrote it (the
app, the API, an import, a COPY). A change that rolls back leaves no row; a
committed change always has one.

How they are applied. `reporting_refresh` claims pending rows in id order
(`FOR UPDATE SKIP LOCKED`), applies them and deletes them in one transaction:

- each new stage-change row is added to `StageFlowDaily` and
  `StageFlowMonthly` (upserts of counts); its pending row is deleted in the
  same transaction, so each stage change is counted exactly once in each,
  even when a worker dies mid-way (the transaction rolls back and the rows
  are claimed again);
- each touched lead's `LeadFunnel` row is recomputed from the lead and its
  stage changes (delete and insert: idempotent);
- each touched opportunity, and every opportunity of a lead that got a
  touchpoint, has its attribution recomputed from scratch (its paths and
  credit rows deleted and inserted: idempotent).

A batch that changed any derived row also bumps `RefreshState.generation` in
its transaction (a rebuild always does): cached figures are keyed by it
(reporting.figure_cache), and the caller warms the default views afterwards.

A late touchpoint (one that happened before the deal was created but arrives
afterwards) is therefore picked up by the next refresh: its lead's deals are
re-attributed with the touch in its place on the path.

One refresh or rebuild runs at a time (a session advisory lock); a refresh
that finds the lock taken returns at once, the next beat tick catches up.

`reporting_rebuild` recomputes everything from scratch in one REPEATABLE READ
transaction, taken after the lock, and deletes exactly the pending rows its
snapshot sees: changes committed after the snapshot stay pending and are
applied once by the next refresh.

Dimensions (segment, owner, channel, SLA version) are read when a row is
computed. Stage-flow counts keep the dimensions their lead had when they were
counted; the nightly rebuild re-reads them (and drops counts of deleted leads).
"""

import hashlib
import json
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from leads.models import Channel
from reporting import attribution
from reporting.attribution import SCHEMES, Touch
from reporting.models import AttributionKind, AttributionScheme, PendingChange, RefreshState

LOCK_KEY = 0x2E90_0A77  # the reporting tables' advisory lock
BATCH_SIZE = 5000
ATTRIBUTION_CHUNK = 2000
MARKETING_CHANNELS = Channel.marketing()
DERIVED_TABLES = (
    "reporting_leadfunnel",
    "reporting_stageflowdaily",
    "reporting_stageflowmonthly",
    "reporting_attributionpath",
    "reporting_attributioncredit",
)


# --- Locking ---------------------------------------------------------------------------


class _Exclusive:
    """Session advisory lock around a refresh or rebuild, taken before their
    transaction starts (so a REPEATABLE READ snapshot is taken after it)."""

    def __init__(self, *, wait: bool):
        self.wait = wait
        self.acquired = False

    def __enter__(self):
        with connection.cursor() as cursor:
            if self.wait:
                cursor.execute("SELECT pg_advisory_lock(%s)", [LOCK_KEY])
                self.acquired = True
            else:
                cursor.execute("SELECT pg_try_advisory_lock(%s)", [LOCK_KEY])
                self.acquired = cursor.fetchone()[0]
        return self.acquired

    def __exit__(self, *exc):
        if self.acquired:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [LOCK_KEY])
        return False


# --- Attribution schemes -----------------------------------------------------------------


def scheme_signature(model: str, weights: dict) -> str:
    raw = json.dumps({"model": model, "weights": weights}, sort_keys=True)
    return hashlib.sha256(raw.encode()).hexdigest()


def attribution_schemes_ensure() -> dict[str, int]:
    """The stored scheme id of each model's current weights (created when
    missing). Idempotent."""
    ids = {}
    for model, weights in SCHEMES.items():
        scheme, _ = AttributionScheme.objects.get_or_create(
            model=model,
            signature=scheme_signature(model, weights),
            defaults={"weights": weights},
        )
        ids[model] = scheme.pk
    return ids


# --- Attribution of opportunities -----------------------------------------------------------


@dataclass
class _Deal:
    id: int
    created_at: datetime
    closed_on: object
    stage: str
    amount: Decimal
    owner_id: int | None
    segment: str
    lead_id: int | None
    lead_created_at: datetime | None


_DEALS_SQL = """
    SELECT o.id, o.created_at, o.closed_on, o.stage, o.amount, o.owner_id,
           COALESCE(NULLIF(a.segment, ''), l.segment, ''), o.source_lead_id, l.created_at
      FROM leads_opportunity o
      LEFT JOIN leads_account a ON a.id = o.account_id
      LEFT JOIN leads_lead l ON l.id = o.source_lead_id
"""


def _deals(opportunity_ids: list[int]) -> list[_Deal]:
    with connection.cursor() as cursor:
        cursor.execute(_DEALS_SQL + " WHERE o.id = ANY(%s) ORDER BY o.id", [opportunity_ids])
        return [_Deal(*row) for row in cursor.fetchall()]


def _touches_by_lead(lead_ids: list[int]) -> dict[int, list[Touch]]:
    paths: dict[int, list[Touch]] = defaultdict(list)
    if not lead_ids:
        return paths
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT lead_id, id, occurred_at, channel, campaign_id, asset_id
              FROM leads_touchpoint WHERE lead_id = ANY(%s)
             ORDER BY lead_id, occurred_at, id
            """,
            [lead_ids],
        )
        for lead_id, pk, occurred_at, channel, campaign_id, asset_id in cursor.fetchall():
            paths[lead_id].append(Touch(pk, occurred_at, channel, campaign_id, asset_id))
    return paths


def close_moment(closed_on) -> datetime:
    """A deal is won at the end of its close day (local time): touches on
    that day count towards its revenue."""
    start = datetime.combine(closed_on + timedelta(days=1), datetime.min.time())
    return timezone.make_aware(start)


def deal_paths(deal: _Deal, touches: list[Touch]) -> dict[str, tuple[list[Touch], datetime]]:
    """The pipeline path (touches at or before creation) and, for won deals,
    the revenue path (touches before the end of the close day), each with the
    moment it ends."""
    paths = {
        AttributionKind.PIPELINE: (
            [t for t in touches if t.occurred_at <= deal.created_at],
            deal.created_at,
        )
    }
    if deal.stage == "won" and deal.closed_on is not None:
        end = close_moment(deal.closed_on)
        paths[AttributionKind.REVENUE] = ([t for t in touches if t.occurred_at < end], end)
    return paths


def deal_credit_rows(deal: _Deal, touches: list[Touch], schemes: dict[str, int], now) -> tuple:
    """(path rows, credit rows) for one deal, as tuples in COPY column order."""
    path_rows, credit_rows = [], []
    for kind, (path, end) in deal_paths(deal, touches).items():
        day = (
            timezone.localdate(deal.created_at)
            if kind == AttributionKind.PIPELINE
            else deal.closed_on
        )
        marketing = sum(1 for touch in path if touch.channel in MARKETING_CHANNELS)
        path_rows.append(
            (
                deal.id,
                kind,
                day,
                deal.amount,
                deal.segment,
                deal.owner_id,
                len(path),
                marketing,
                now,
            )
        )
        if not path:
            continue
        for model in attribution.MODELS:
            weights = attribution.path_weights(
                model,
                path,
                lead_created_at=deal.lead_created_at or path[0].occurred_at,
                opportunity_created_at=deal.created_at,
                end=end,
            )
            buckets: dict[tuple, list] = {}
            for touch, weight in zip(path, weights, strict=True):
                key = (touch.channel, touch.campaign_id, touch.asset_id)
                bucket = buckets.setdefault(key, [0, 0.0])
                bucket[0] += 1
                bucket[1] += weight
            for (channel, campaign_id, asset_id), (count, weight) in buckets.items():
                credit = (deal.amount * Decimal(repr(weight))).quantize(Decimal("0.0001"))
                credit_rows.append(
                    (
                        deal.id,
                        kind,
                        model,
                        schemes[model],
                        day,
                        deal.segment,
                        deal.owner_id,
                        channel,
                        campaign_id,
                        asset_id,
                        count,
                        weight,
                        credit,
                    )
                )
    return path_rows, credit_rows


_PATH_COLUMNS = (
    "opportunity_id",
    "kind",
    "day",
    "amount",
    "segment",
    "owner_id",
    "touches",
    "marketing_touches",
    "computed_at",
)
_CREDIT_COLUMNS = (
    "opportunity_id",
    "kind",
    "model",
    "scheme_id",
    "day",
    "segment",
    "owner_id",
    "channel",
    "campaign_id",
    "asset_id",
    "touches",
    "weight",
    "credit",
)


def _copy(table: str, columns: tuple[str, ...], rows: list[tuple]) -> None:
    if not rows:
        return
    sql = f"COPY {table} ({', '.join(columns)}) FROM STDIN"
    with connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
        for row in rows:
            copy.write_row(row)


def opportunities_attribute(opportunity_ids, *, schemes: dict[str, int] | None = None) -> int:
    """Recompute the stored attribution of these opportunities from scratch:
    their paths and credit rows are deleted and written again. Idempotent;
    must run inside a transaction (the callers' refresh or rebuild). Returns
    the number of credit rows written."""
    ids = sorted(set(opportunity_ids))
    if not ids:
        return 0
    schemes = schemes or attribution_schemes_ensure()
    with connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM reporting_attributioncredit WHERE opportunity_id = ANY(%s)", [ids]
        )
        cursor.execute(
            "DELETE FROM reporting_attributionpath WHERE opportunity_id = ANY(%s)", [ids]
        )
    return _attribute(ids, schemes)


def _attribute(ids: list[int], schemes: dict[str, int]) -> int:
    now = timezone.now()
    written = 0
    for start in range(0, len(ids), ATTRIBUTION_CHUNK):
        deals = _deals(ids[start : start + ATTRIBUTION_CHUNK])
        touches = _touches_by_lead(sorted({d.lead_id for d in deals if d.lead_id}))
        path_rows, credit_rows = [], []
        for deal in deals:
            paths, credits = deal_credit_rows(deal, touches.get(deal.lead_id, []), schemes, now)
            path_rows += paths
            credit_rows += credits
        _copy("reporting_attributionpath", _PATH_COLUMNS, path_rows)
        _copy("reporting_attributioncredit", _CREDIT_COLUMNS, credit_rows)
        written += len(credit_rows)
    return written


# --- Lead funnel facts and the stage-flow rollup ---------------------------------------------

_LEAD_FUNNEL_SQL = """
    INSERT INTO reporting_leadfunnel (
        lead_id, created_at, segment, owner_id, source_channel, source_campaign_id,
        sla_version_id, mql_at, response_due_at, first_contact_at, reached_mql_at,
        reached_sal_at, reached_sql_at, reached_opportunity_at, reached_customer_at,
        accepted_at, rejected_at, disqualified_at)
    SELECT l.id, l.created_at, l.segment, l.owner_id, l.source_channel, l.source_campaign_id,
           l.sla_version_id, l.mql_at, l.response_due_at, l.first_contact_at,
           s.mql, s.sal, s.sql, s.opportunity, s.customer, s.accepted, s.rejected, s.disqualified
      FROM leads_lead l
      LEFT JOIN (
          SELECT lead_id,
                 min(changed_at) FILTER (WHERE to_stage = 'mql') AS mql,
                 min(changed_at) FILTER (WHERE to_stage = 'sal') AS sal,
                 min(changed_at) FILTER (WHERE to_stage = 'sql') AS sql,
                 min(changed_at) FILTER (WHERE to_stage = 'opportunity') AS opportunity,
                 min(changed_at) FILTER (WHERE to_stage = 'customer') AS customer,
                 min(changed_at) FILTER (WHERE from_stage = 'mql' AND to_stage = 'sal')
                     AS accepted,
                 min(changed_at) FILTER (WHERE to_stage = 'rejected') AS rejected,
                 min(changed_at) FILTER (WHERE to_stage = 'disqualified') AS disqualified
            FROM leads_leadstagechange
           {change_filter}
           GROUP BY lead_id
      ) s ON s.lead_id = l.id
     {lead_filter}
"""

_STAGE_FLOW_SQL = """
    INSERT INTO reporting_stageflowdaily AS f (
        day, from_stage, to_stage, sla_version_id, segment, owner_id, channel, changes,
        with_reason)
    SELECT (c.changed_at AT TIME ZONE %s)::date, c.from_stage, c.to_stage, l.sla_version_id,
           l.segment, COALESCE(c.actor_id, l.owner_id), l.source_channel, count(*),
           count(c.reason_id)
      FROM leads_leadstagechange c
      JOIN leads_lead l ON l.id = c.lead_id
     {change_filter}
     GROUP BY 1, 2, 3, 4, 5, 6, 7
    ON CONFLICT (day, from_stage, to_stage, sla_version_id, segment, owner_id, channel)
    DO UPDATE SET changes = f.changes + EXCLUDED.changes,
                  with_reason = f.with_reason + EXCLUDED.with_reason
"""

# The same changes by month (the same dimensions, read in the same transaction).
_STAGE_FLOW_MONTHLY_SQL = """
    INSERT INTO reporting_stageflowmonthly AS f (
        month, from_stage, to_stage, sla_version_id, segment, owner_id, changes, with_reason)
    SELECT date_trunc('month', c.changed_at AT TIME ZONE %s)::date, c.from_stage, c.to_stage,
           l.sla_version_id, l.segment, COALESCE(c.actor_id, l.owner_id), count(*),
           count(c.reason_id)
      FROM leads_leadstagechange c
      JOIN leads_lead l ON l.id = c.lead_id
     WHERE c.id = ANY(%s)
     GROUP BY 1, 2, 3, 4, 5, 6
    ON CONFLICT (month, from_stage, to_stage, sla_version_id, segment, owner_id)
    DO UPDATE SET changes = f.changes + EXCLUDED.changes,
                  with_reason = f.with_reason + EXCLUDED.with_reason
"""

# A rebuild sums the daily rows it just wrote (one snapshot: equal by construction).
_STAGE_FLOW_MONTHLY_REBUILD_SQL = """
    INSERT INTO reporting_stageflowmonthly (
        month, from_stage, to_stage, sla_version_id, segment, owner_id, changes, with_reason)
    SELECT date_trunc('month', day)::date, from_stage, to_stage, sla_version_id, segment,
           owner_id, sum(changes), sum(with_reason)
      FROM reporting_stageflowdaily
     GROUP BY 1, 2, 3, 4, 5, 6
"""


def leads_funnel_recompute(lead_ids) -> None:
    """Recompute these leads' funnel facts (delete and insert; idempotent)."""
    ids = sorted(set(lead_ids))
    if not ids:
        return
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM reporting_leadfunnel WHERE lead_id = ANY(%s)", [ids])
        cursor.execute(
            _LEAD_FUNNEL_SQL.format(
                change_filter="WHERE lead_id = ANY(%s)", lead_filter="WHERE l.id = ANY(%s)"
            ),
            [ids, ids],
        )


def stage_changes_count(stage_change_ids) -> None:
    """Add these stage changes to the daily and monthly stage-flow rollups.
    NOT idempotent by itself: the caller deletes their pending rows in the
    same transaction, which is what makes each change count once."""
    ids = sorted(set(stage_change_ids))
    if not ids:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            _STAGE_FLOW_SQL.format(change_filter="WHERE c.id = ANY(%s)"),
            [settings.TIME_ZONE, ids],
        )
        cursor.execute(_STAGE_FLOW_MONTHLY_SQL, [settings.TIME_ZONE, ids])


# --- Refresh and rebuild -------------------------------------------------------------------------


@dataclass
class RefreshResult:
    ran: bool
    changes: int = 0
    leads: int = 0
    opportunities: int = 0
    credit_rows: int = 0
    generation_bumped: bool = False  # some derived row changed: cached figures are stale


def _claim(batch_size: int) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(
            """
            DELETE FROM reporting_pendingchange
             WHERE id IN (SELECT id FROM reporting_pendingchange ORDER BY id LIMIT %s
                          FOR UPDATE SKIP LOCKED)
            RETURNING source, lead_id, opportunity_id, stage_change_id
            """,
            [batch_size],
        )
        return cursor.fetchall()


def _apply(claimed: list[tuple], result: RefreshResult, schemes: dict[str, int]) -> bool:
    """Apply claimed changes; whether any derived row was recomputed (a
    touchpoint of a lead without deals changes none)."""
    S = PendingChange.Source
    stage_changes, funnel_leads, attribution_leads, opportunities = set(), set(), set(), set()
    for source, lead_id, opportunity_id, stage_change_id in claimed:
        if source == S.STAGE_CHANGE:
            if stage_change_id is not None:
                stage_changes.add(stage_change_id)
            funnel_leads.add(lead_id)
        elif source == S.LEAD:
            funnel_leads.add(lead_id)
            attribution_leads.add(lead_id)
        elif source == S.TOUCHPOINT:
            attribution_leads.add(lead_id)
        elif source == S.OPPORTUNITY:
            opportunities.add(opportunity_id)
    funnel_leads.discard(None)
    attribution_leads.discard(None)
    opportunities.discard(None)
    stage_changes_count(stage_changes)
    leads_funnel_recompute(funnel_leads)
    if attribution_leads:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT id FROM leads_opportunity WHERE source_lead_id = ANY(%s)",
                [sorted(attribution_leads)],
            )
            opportunities.update(row[0] for row in cursor.fetchall())
    result.credit_rows += opportunities_attribute(opportunities, schemes=schemes)
    result.changes += len(claimed)
    result.leads += len(funnel_leads)
    result.opportunities += len(opportunities)
    return bool(stage_changes or funnel_leads or opportunities)


def _state_touch(**fields) -> None:
    updated = RefreshState.objects.filter(pk=1).update(**fields)
    if not updated:
        RefreshState.objects.get_or_create(pk=1, defaults=fields)


def reporting_refresh(*, batch_size: int = BATCH_SIZE, max_batches: int | None = None):
    """Apply pending changes to the reporting tables, in batches of
    `batch_size`, each batch in its own transaction (applied and deleted
    together: exactly once; a batch that changed derived rows bumps the
    generation in that transaction). Returns at once when another refresh or
    a rebuild holds the lock. Safe to run twice and concurrently."""
    result = RefreshResult(ran=False)
    with _Exclusive(wait=False) as acquired:
        if not acquired:
            return result
        result.ran = True
        schemes = attribution_schemes_ensure()
        batches = 0
        while max_batches is None or batches < max_batches:
            with transaction.atomic():
                claimed = _claim(batch_size)
                changed = _apply(claimed, result, schemes) if claimed else False
                _state_touch(refreshed_at=timezone.now())
                if claimed:
                    RefreshState.objects.filter(pk=1).update(
                        changes_applied=F("changes_applied") + len(claimed),
                        generation=F("generation") + int(changed),
                    )
                result.generation_bumped |= changed
            batches += 1
            if len(claimed) < batch_size:
                break
    return result


@dataclass
class RebuildResult:
    seconds: float
    leads: int
    stage_flow_rows: int
    opportunities: int
    credit_rows: int


def reporting_rebuild(*, stdout=None) -> RebuildResult:
    """Recompute every reporting table from scratch, in one transaction with
    one snapshot (REPEATABLE READ when it is the outermost transaction), and
    drop the pending changes that snapshot sees; bumps the generation in that
    transaction. Waits for a running refresh. Idempotent."""
    started = time.monotonic()

    def say(message):
        if stdout is not None:
            stdout.write(f"  {message} ({time.monotonic() - started:.1f} s)")

    with _Exclusive(wait=True), transaction.atomic():
        if not _nested():
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM reporting_pendingchange")
            cursor.execute("DELETE FROM reporting_leadfunnel")
            cursor.execute(_LEAD_FUNNEL_SQL.format(change_filter="", lead_filter=""))
            leads = cursor.rowcount
            say(f"lead funnel: {leads} leads")
            cursor.execute("DELETE FROM reporting_stageflowdaily")
            cursor.execute(_STAGE_FLOW_SQL.format(change_filter=""), [settings.TIME_ZONE])
            flows = cursor.rowcount
            cursor.execute("DELETE FROM reporting_stageflowmonthly")
            cursor.execute(_STAGE_FLOW_MONTHLY_REBUILD_SQL)
            say(f"stage flow: {flows} daily rows, {cursor.rowcount} monthly rows")
            cursor.execute("DELETE FROM reporting_attributioncredit")
            cursor.execute("DELETE FROM reporting_attributionpath")
            cursor.execute("SELECT id FROM leads_opportunity ORDER BY id")
            opportunity_ids = [row[0] for row in cursor.fetchall()]
        credit_rows = _attribute(opportunity_ids, attribution_schemes_ensure())
        say(f"attribution: {len(opportunity_ids)} opportunities, {credit_rows} credit rows")
        now = timezone.now()
        seconds = time.monotonic() - started
        _state_touch(refreshed_at=now, rebuilt_at=now, rebuild_seconds=seconds)
        RefreshState.objects.filter(pk=1).update(generation=F("generation") + 1)
    if not connection.in_atomic_block:
        # Fresh statistics for the planner, and a visibility map for index-only scans.
        with connection.cursor() as cursor:
            for table in DERIVED_TABLES:
                cursor.execute(f"VACUUM (ANALYZE) {table}")
            cursor.execute("VACUUM reporting_pendingchange")
        say("vacuum and analyze")
    return RebuildResult(
        seconds=time.monotonic() - started,
        leads=leads,
        stage_flow_rows=flows,
        opportunities=len(opportunity_ids),
        credit_rows=credit_rows,
    )


def _nested() -> bool:
    """Is the current atomic block inside another (e.g. a test's)?"""
    return len(connection.savepoint_ids) > 0 or (
        not connection.get_autocommit()
        and (connection.atomic_blocks and len(connection.atomic_blocks) > 1)
    )


def refresh_state() -> RefreshState:
    """The refresh state row (unsaved defaults before the first refresh)."""
    return RefreshState.objects.filter(pk=1).first() or RefreshState(pk=1)


PENDING_CAP = 10_000


def pending_count() -> int:
    """Pending changes, counted up to PENDING_CAP + 1 (a bounded query)."""
    return PendingChange.objects.order_by()[: PENDING_CAP + 1].count()
