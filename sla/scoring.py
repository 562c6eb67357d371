"""Scoring and qualification: how every lead is held to the agreement in force.

score = fit (ICP fit rules, capped at the ICP's max fit points)
      + engagement (the SLA's points per touchpoint type and asset funnel
        stage, each halved every `decay_half_life_days`, summed per group and
        capped per group), clamped to 0..100.

A lead qualifies (becomes an MQL) when it meets the explicit criteria
(seniority, company size, segment) and either raised its hand (a demo or
contact request in the last 30 days, when the SLA lets hand-raisers in) or
reaches the threshold and meets the behavioural criteria.

Engagement and behaviour are computed in PostgreSQL, one query each per chunk
of leads; fit in Python from one query of lead and account data. The same
code scores one lead after a new touchpoint and 200,000 leads after a publish.
"""

import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from django.db import connection, transaction
from django.db.models import F
from django.db.models.functions import Greatest
from django.utils import timezone
from psycopg.types.json import Jsonb

from config.queue import enqueue, enqueue_on_commit
from leads.models import Lead, LeadStage, TouchpointType
from sla.models import (
    FitRule,
    IcpVersion,
    RescoreJob,
    RescoreLane,
    Seniority,
    SlaVersion,
)

HAND_RAISE_WINDOW = timedelta(days=30)
CHUNK_SIZE = 2000

SENIORITY_RANK = {
    Seniority.ANY: 0,
    Seniority.MANAGER: 1,
    Seniority.DIRECTOR: 2,
    Seniority.VP: 3,
    Seniority.C_LEVEL: 4,
}
_SENIORITY_PATTERNS = [
    (4, re.compile(r"\b(chief|c[eiotfm]o|president|founder|owner|partner)\b")),
    (3, re.compile(r"\b(vp|svp|evp|vice[ -]president)\b")),
    (2, re.compile(r"\b(director|head)\b")),
    (1, re.compile(r"\b(manager|lead|supervisor|principal)\b")),
]


def seniority_rank(title: str) -> int:
    """0 (individual contributor or unknown) to 4 (C-level), from a job title."""
    text = (title or "").lower()
    for rank, pattern in _SENIORITY_PATTERNS:
        if pattern.search(text):
            return rank
    return 0


@dataclass
class Evaluation:
    lead_id: int
    fit: int
    engagement: int
    total: int
    parts: list = field(default_factory=list)
    qualifies: bool = False
    high_intent: bool = False
    reasons: list = field(default_factory=list)
    persona_id: int | None = None


# --- Engagement and behaviour (SQL) -------------------------------------------------------


def _engagement(lead_ids, sla: SlaVersion, now: datetime) -> dict[int, dict[str, float]]:
    """{lead id: {group name: decayed points before the cap}}."""
    rules = list(sla.engagement_rules.select_related("group"))
    if not rules or not lead_ids:
        return {}
    values = ", ".join(["(%s, %s, %s, %s)"] * len(rules))
    params = []
    for rule in rules:
        params += [rule.touchpoint_type, rule.asset_stage, rule.points, rule.group.name]
    sql = f"""
        WITH rules(touchpoint_type, asset_stage, points, group_name) AS (VALUES {values})
        SELECT t.lead_id,
               COALESCE(specific.group_name, generic.group_name) AS group_name,
               SUM(COALESCE(specific.points, generic.points)
                   * power(0.5, GREATEST(EXTRACT(EPOCH FROM (%s - t.occurred_at)), 0)
                                / 86400.0 / %s))
        FROM leads_touchpoint t
        LEFT JOIN leads_contentasset a ON a.id = t.asset_id
        LEFT JOIN rules specific
               ON specific.touchpoint_type = t.type
              AND specific.asset_stage <> '' AND specific.asset_stage = a.funnel_stage
        LEFT JOIN rules generic
               ON generic.touchpoint_type = t.type AND generic.asset_stage = ''
        WHERE t.lead_id = ANY(%s) AND t.occurred_at <= %s
          AND (specific.points IS NOT NULL OR generic.points IS NOT NULL)
        GROUP BY 1, 2
    """
    params += [now, sla.decay_half_life_days, list(lead_ids), now]
    result: dict[int, dict[str, float]] = defaultdict(dict)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        for lead_id, group_name, points in cursor.fetchall():
            result[lead_id][group_name] = float(points)
    return result


def _behaviour(lead_ids, sla: SlaVersion, now: datetime) -> dict[int, dict]:
    """{lead id: {"criteria": [met?, ...], "hand_raise": bool}} in one scan."""
    criteria = list(sla.behaviour_criteria.all())
    if not lead_ids:
        return {}
    columns = []
    params: list = []
    for criterion in criteria:
        condition = "t.type = ANY(%s) AND t.occurred_at >= %s"
        params += [criterion.touchpoint_types, now - timedelta(days=criterion.within_days)]
        if criterion.asset_stage:
            condition += " AND a.funnel_stage = %s"
            params.append(criterion.asset_stage)
        if criterion.asset_kind:
            condition += " AND a.kind = %s"
            params.append(criterion.asset_kind)
        columns.append(f"COUNT(*) FILTER (WHERE {condition}) >= %s")
        params.append(criterion.min_count)
    columns.append("BOOL_OR(t.type = ANY(%s) AND t.occurred_at >= %s)")
    params += [sorted(TouchpointType.hand_raises()), now - HAND_RAISE_WINDOW]
    sql = f"""
        SELECT t.lead_id, {", ".join(columns)}
        FROM leads_touchpoint t LEFT JOIN leads_contentasset a ON a.id = t.asset_id
        WHERE t.lead_id = ANY(%s) AND t.occurred_at <= %s
        GROUP BY t.lead_id
    """
    params += [list(lead_ids), now]
    result = {}
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        for row in cursor.fetchall():
            result[row[0]] = {"criteria": list(row[1:-1]), "hand_raise": bool(row[-1])}
    return result


# --- Fit (Python) ------------------------------------------------------------------------


def _lead_facts(lead_ids) -> dict[int, dict]:
    rows = Lead.objects.filter(pk__in=lead_ids).values(
        "pk", "title", "industry", "segment", "country", "region", "employees", "stage",
        "account__industry", "account__segment", "account__country", "account__region",
        "account__employees", "account__annual_revenue", "account__technologies",
    )  # fmt: skip
    facts = {}
    for row in rows:
        facts[row["pk"]] = {
            "title": row["title"],
            "stage": row["stage"],
            "industry": (row["industry"] or row["account__industry"] or "").lower(),
            "segment": row["segment"] or row["account__segment"] or "",
            "country": (row["country"] or row["account__country"] or "").lower(),
            "region": (row["region"] or row["account__region"] or "").lower(),
            "employees": row["employees"] if row["employees"] is not None
            else row["account__employees"],
            "revenue": row["account__annual_revenue"],
            "technologies": {t.lower() for t in (row["account__technologies"] or [])},
        }  # fmt: skip
    return facts


def _fit_rule_matches(rule: FitRule, facts: dict) -> bool:
    attribute = rule.attribute
    if attribute in FitRule.BANDED:
        value = facts["employees"] if attribute == FitRule.Attribute.EMPLOYEES else facts["revenue"]
        if value is None:
            return False
        value = Decimal(value)
        if rule.min_value is not None and value < rule.min_value:
            return False
        return not (rule.max_value is not None and value > rule.max_value)
    wanted = {v.lower() for v in rule.values}
    if attribute == FitRule.Attribute.TECHNOLOGY:
        return bool(wanted & facts["technologies"])
    return facts.get(attribute, "").lower() in wanted


# --- Putting it together ----------------------------------------------------------------------


def evaluate(lead_ids, *, sla: SlaVersion, icp: IcpVersion, now: datetime | None = None):
    """Score and check qualification of these leads under an SLA and an ICP
    version. Pure: reads only. Three queries per call (plus the versions'
    rules); call it with chunks of a few thousand ids."""
    now = now or timezone.now()
    lead_ids = list(lead_ids)
    facts = _lead_facts(lead_ids)
    engagement = _engagement(lead_ids, sla, now)
    behaviour = _behaviour(lead_ids, sla, now)
    fit_rules = list(icp.fit_rules.all())
    personas = list(icp.personas.all())
    groups = {g.name: g.cap for g in sla.groups.all()}
    criteria = list(sla.behaviour_criteria.all())
    required_rank = SENIORITY_RANK[sla.required_seniority]
    evaluations = []
    for lead_id in lead_ids:
        lead = facts.get(lead_id)
        if lead is None:
            continue
        parts = []
        fit_raw = 0
        for rule in fit_rules:
            if _fit_rule_matches(rule, lead):
                fit_raw += rule.points
                parts.append({"kind": "fit", "label": rule.describe(), "points": rule.points})
        fit = max(0, min(icp.max_fit_points, fit_raw))
        if fit != fit_raw:
            parts.append({"kind": "cap", "label": f"Fit capped at {icp.max_fit_points}",
                          "points": fit - fit_raw})  # fmt: skip
        engagement_points = 0.0
        for group_name, raw in sorted(engagement.get(lead_id, {}).items()):
            cap = groups.get(group_name, 100)
            capped = min(raw, cap)
            engagement_points += capped
            label = f"{group_name}: {raw:.1f} points after decay"
            if raw > cap:
                label += f", capped at {cap}"
            parts.append({"kind": "engagement", "label": label, "points": round(capped, 1)})
        engagement_int = round(engagement_points)
        total = max(0, min(100, fit + engagement_int))
        seen = behaviour.get(lead_id, {"criteria": [False] * len(criteria), "hand_raise": False})
        hand_raise = seen["hand_raise"]
        reasons = []
        explicit_ok = True
        if required_rank and seniority_rank(lead["title"]) < required_rank:
            explicit_ok = False
            reasons.append(
                f"Title “{lead['title'] or 'unknown'}” is below {sla.get_required_seniority_display().lower()}."
            )
        if sla.required_min_employees and (lead["employees"] or 0) < sla.required_min_employees:
            explicit_ok = False
            reasons.append(
                f"Company size {lead['employees'] or 'unknown'} is below {sla.required_min_employees}."
            )
        if sla.required_segments and lead["segment"] not in sla.required_segments:
            explicit_ok = False
            reasons.append(f"Segment {lead['segment'] or 'unknown'} is not one the SLA accepts.")
        met = seen["criteria"]
        if criteria:
            behaviour_ok = all(met) if sla.behaviour_match == "all" else any(met)
        else:
            behaviour_ok = True
        if criteria and not behaviour_ok:
            missing = [c.label for c, ok in zip(criteria, met, strict=True) if not ok]
            reasons.append("Behaviour not yet seen: " + "; ".join(missing) + ".")
        score_ok = total >= sla.mql_threshold
        if not score_ok:
            reasons.append(f"Score {total} is below the threshold of {sla.mql_threshold}.")
        qualifies = explicit_ok and (
            (hand_raise and sla.hand_raise_qualifies) or (score_ok and behaviour_ok)
        )
        if qualifies:
            reasons = ["Hand-raiser (demo or contact request)."] if hand_raise and not (
                score_ok and behaviour_ok
            ) else [f"Score {total} reaches {sla.mql_threshold} and the criteria are met."]  # fmt: skip
        persona = next((p for p in personas if p.matches(lead["title"])), None)
        evaluations.append(
            Evaluation(
                lead_id=lead_id,
                fit=fit,
                engagement=engagement_int,
                total=total,
                parts=parts,
                qualifies=qualifies,
                high_intent=hand_raise,
                reasons=reasons,
                persona_id=persona.pk if persona else None,
            )
        )
    return evaluations


_BATCH_TABLE = """
    CREATE TEMPORARY TABLE IF NOT EXISTS accord_score_batch (
        lead_id bigint PRIMARY KEY, fit smallint, engagement smallint, total smallint,
        parts jsonb, qualifies boolean, high_intent boolean, reasons jsonb, persona_id bigint
    ) ON COMMIT DELETE ROWS
"""


@transaction.atomic
def evaluations_save(evaluations, *, sla: SlaVersion, icp: IcpVersion, now: datetime) -> None:
    """Store evaluations (one row per lead and version pair, replaced) and the
    lead's current score, persona and intent. COPY into a temporary table,
    then one upsert and one update, whatever the count."""
    if not evaluations:
        return
    with connection.cursor() as cursor:
        cursor.execute(_BATCH_TABLE)
        cursor.execute("DELETE FROM accord_score_batch")
        columns = (
            "lead_id, fit, engagement, total, parts, qualifies, high_intent, reasons, persona_id"
        )
        with cursor.cursor.copy(f"COPY accord_score_batch ({columns}) FROM STDIN") as copy:
            for e in evaluations:
                copy.write_row(
                    (e.lead_id, e.fit, e.engagement, e.total, Jsonb(e.parts), e.qualifies,
                     e.high_intent, Jsonb(e.reasons), e.persona_id)
                )  # fmt: skip
        cursor.execute(
            """
            INSERT INTO sla_scoreevaluation (lead_id, sla_version_id, icp_version_id, fit,
                engagement, total, parts, qualifies, high_intent, reasons, persona_id,
                evaluated_at)
            SELECT lead_id, %s, %s, fit, engagement, total, parts, qualifies, high_intent,
                   reasons, persona_id, %s
              FROM accord_score_batch
            ON CONFLICT (lead_id, sla_version_id, icp_version_id) DO UPDATE SET
                fit = EXCLUDED.fit, engagement = EXCLUDED.engagement, total = EXCLUDED.total,
                parts = EXCLUDED.parts, qualifies = EXCLUDED.qualifies,
                high_intent = EXCLUDED.high_intent, reasons = EXCLUDED.reasons,
                persona_id = EXCLUDED.persona_id, evaluated_at = EXCLUDED.evaluated_at
            """,
            [sla.pk, icp.pk, now],
        )
        cursor.execute(
            """
            UPDATE leads_lead AS lead
               SET score = batch.total, persona_id = batch.persona_id,
                   is_high_intent = lead.is_high_intent OR batch.high_intent, scored_at = %s
              FROM accord_score_batch AS batch
             WHERE lead.id = batch.lead_id
            """,
            [now],
        )
        cursor.execute("DELETE FROM accord_score_batch")


@dataclass
class ScoreRun:
    evaluations: list[Evaluation]
    qualified: list  # leads that became MQLs in this run


def leads_score(lead_ids, *, now: datetime | None = None, qualify: bool = True,
                sla: SlaVersion | None = None, icp: IcpVersion | None = None) -> ScoreRun:  # fmt: skip
    """Score leads under the versions in force (or those given), store the
    evaluations, and make open leads that qualify MQLs (stamped, routed,
    clock started). Runs in one transaction; idempotent: scoring again gives
    the same result, and a lead that is already an MQL is not qualified twice."""
    from sla import versions

    sla = sla or versions.sla_in_force()
    icp = icp or versions.icp_in_force()
    if sla is None or icp is None:
        return ScoreRun([], [])
    now = now or timezone.now()
    qualified = []
    with transaction.atomic():
        evaluations = evaluate(lead_ids, sla=sla, icp=icp, now=now)
        evaluations_save(evaluations, sla=sla, icp=icp, now=now)
        if qualify:
            from sla.services import leads_qualify

            qualified = leads_qualify(
                [e for e in evaluations if e.qualifies], sla=sla, icp=icp, now=now
            )
    return ScoreRun(evaluations, qualified)


# --- Re-scoring every open lead -----------------------------------------------------------


def open_lead_ids():
    return Lead.objects.filter(stage__in=LeadStage.open_stages())


@transaction.atomic
def rescore_job_create(*, lanes: int = 2) -> RescoreJob | None:
    """After a publish: a job to re-score every open lead under the versions in
    force, in `lanes` parallel tasks, enqueued once the publish commits."""
    from sla import versions
    from sla.tasks import rescore_lane_run

    sla, icp = versions.sla_in_force(), versions.icp_in_force()
    if sla is None or icp is None:
        return None
    job = RescoreJob.objects.create(
        sla_version=sla,
        icp_version=icp,
        total=open_lead_ids().count(),
        lane_count=lanes,
        status=RescoreJob.Status.RUNNING,
        started_at=timezone.now(),
    )
    RescoreLane.objects.bulk_create(RescoreLane(job=job, number=n) for n in range(lanes))
    for number in range(lanes):
        enqueue_on_commit(rescore_lane_run, job.pk, number)
    return job


def rescore_lane_step(job_id: int, number: int, *, chunk_size: int = CHUNK_SIZE) -> bool:
    """Score the lane's next chunk of leads and move its resume point, in one
    transaction: a crash loses the chunk's work and its progress together, so
    a re-run neither skips nor double-counts. Returns False when the lane is
    done (the last lane to finish closes the job). A job whose versions are no
    longer in force stops: the newer publish has its own job."""
    from sla import versions

    with transaction.atomic():
        lane = (
            RescoreLane.objects.select_for_update()
            .select_related("job__sla_version", "job__icp_version")
            .filter(job_id=job_id, number=number, finished_at__isnull=True)
            .first()
        )
        if lane is None:
            return False
        job = lane.job
        current = (versions.sla_in_force(), versions.icp_in_force())
        if job.status != RescoreJob.Status.RUNNING or (job.sla_version, job.icp_version) != current:
            lane.finished_at = timezone.now()
            lane.save(update_fields=["finished_at"])
            RescoreJob.objects.filter(pk=job.pk, status=RescoreJob.Status.RUNNING).update(
                status=RescoreJob.Status.DONE,
                finished_at=timezone.now(),
                failure="Stopped: a newer version was published; its own job re-scores the leads.",
            )
            return False
        ids = list(
            open_lead_ids()
            .annotate(lane=F("id") % job.lane_count)
            .filter(lane=number, pk__gt=lane.last_lead_id)
            .order_by("pk")
            .values_list("pk", flat=True)[:chunk_size]
        )
        if not ids:
            lane.finished_at = timezone.now()
            lane.save(update_fields=["finished_at"])
            if not RescoreLane.objects.filter(job=job, finished_at__isnull=True).exists():
                RescoreJob.objects.filter(pk=job.pk).update(
                    status=RescoreJob.Status.DONE,
                    finished_at=timezone.now(),
                    processed=Greatest(F("processed"), F("total")),
                )
            return False
        run = leads_score(ids, sla=job.sla_version, icp=job.icp_version)
        lane.last_lead_id = ids[-1]
        lane.processed += len(ids)
        lane.save(update_fields=["last_lead_id", "processed"])
        RescoreJob.objects.filter(pk=job.pk).update(
            processed=F("processed") + len(ids),
            qualified=F("qualified") + len(run.qualified),
        )
    return True


def rescore_jobs_resume(*, stale_after: timedelta = timedelta(minutes=2)) -> int:
    """Re-enqueue lanes of running jobs that made no progress for a while (a
    worker died, or the broker lost the message). Beat runs this every
    minute; a duplicate lane task is harmless (lanes are locked per chunk).
    Returns how many lanes were re-enqueued."""
    from sla.tasks import rescore_lane_run

    stale = RescoreLane.objects.filter(
        finished_at__isnull=True,
        job__status=RescoreJob.Status.RUNNING,
        updated_at__lte=timezone.now() - stale_after,
    ).values_list("job_id", "number")
    count = 0
    for job_id, number in stale:
        count += enqueue(rescore_lane_run, job_id, number)
    return count


SCORING_SWEEP_GRACE = timedelta(minutes=1)
SCORING_SWEEP_OVERLAP = timedelta(minutes=5)


def unscored_touchpoints_sweep(*, now: datetime | None = None) -> int:
    """Find open leads with touchpoints created after they were last scored,
    among touchpoints created since the previous sweep (minus an overlap, and
    leaving the last minute to the tasks already on their way), and enqueue
    their re-scoring. Moves its watermark only when the tasks were sent.
    Safe to run twice. Returns how many leads it enqueued."""
    from django.db.models import Max
    from django.db.models.functions import Coalesce

    from config.models import SweepState
    from leads.models import Touchpoint
    from sla.tasks import leads_rescore

    now = now or timezone.now()
    upto = now - SCORING_SWEEP_GRACE
    state, _ = SweepState.objects.get_or_create(name="scoring", defaults={"upto": upto})
    since = state.upto - SCORING_SWEEP_OVERLAP
    latest = (
        Touchpoint.objects.filter(created_at__gt=since, created_at__lte=upto)
        .values("lead_id")
        .annotate(latest=Max("created_at"))
    )
    lead_ids = list(
        Lead.objects.filter(pk__in=latest.values("lead_id"), stage__in=LeadStage.open_stages())
        .annotate(last_touch=Max("touchpoints__created_at"))
        .filter(last_touch__gt=Coalesce("scored_at", since))
        .values_list("pk", flat=True)
    )
    sent = all(
        enqueue(leads_rescore, lead_ids[start : start + CHUNK_SIZE])
        for start in range(0, len(lead_ids), CHUNK_SIZE)
    )
    if sent:
        SweepState.objects.filter(pk=state.pk).update(upto=upto)
    return len(lead_ids)


def rescore_job_latest() -> RescoreJob | None:
    return RescoreJob.objects.select_related("sla_version", "icp_version").first()


def versions_in_force_exist() -> bool:
    from sla import versions

    return versions.sla_in_force() is not None and versions.icp_in_force() is not None
