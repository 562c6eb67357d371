"""Scoring and qualification: how every lead is held to the agreement in force.

score = fit (ICP fit rules, capped at the ICP's max fit points)
      + engagement (the SLA's points per touchpoint type and asset funnel
        stage, each halved every `decay_half_life_days`, summed per group and
        capped per group), clamped to 0..100.

A lead qualifies (becomes an MQL) when it meets the explicit criteria
(seniority, company size, segment) and either raised its hand (a demo or
contact request in the last 30 days, when the SLA lets hand-raisers in) or
reaches the threshold and meets the behavioural criteria.

Engagement and behaviour are computed in PostgreSQL, in one scan of the
touchpoints per chunk of leads; fit in Python from one query of lead and
account data. The same code scores one lead after a new touchpoint and
200,000 leads after a publish.
"""

import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from django.db import connection, transaction
from django.db.models import F
from django.db.models.functions import Greatest
from django.utils import timezone

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


@dataclass
class _Signals:
    """What a lead's touchpoints say, under an SLA version."""

    engagement: dict[str, float]  # group name: decayed points before the cap
    criteria: list[bool]  # each behaviour criterion met?
    hand_raise: bool


def _touchpoint_signals(
    lead_ids, sla: SlaVersion, now: datetime, *, criteria
) -> dict[int, _Signals]:
    """{lead id: _Signals} for the leads that have touchpoints, in one scan of
    their touchpoints: points per engagement group (each touchpoint's rule
    points halved every half-life), the SLA's behaviour `criteria` (in their
    order) and whether the lead raised its hand lately.

    The decay is computed in double precision: EXTRACT yields numeric, whose
    power() is an order of magnitude slower, and the points end up as floats
    anyway. Grouped by lead and engagement group first (the touchpoints no
    rule gives points to make a group of their own, which only the criteria
    count), then by lead."""
    if not lead_ids:
        return {}
    rules = list(sla.engagement_rules.select_related("group"))
    rule_params: list = []
    if rules:
        rule_rows = "VALUES " + ", ".join(["(%s, %s, %s::integer, %s)"] * len(rules))
        for rule in rules:
            rule_params += [rule.touchpoint_type, rule.asset_stage, rule.points, rule.group.name]
    else:
        rule_rows = "SELECT ''::text, ''::text, 0, ''::text WHERE false"
    counts, count_params, met, met_params = [], [], [], []
    for number, criterion in enumerate(criteria):
        condition = "t.type = ANY(%s) AND t.occurred_at >= %s"
        count_params += [criterion.touchpoint_types, now - timedelta(days=criterion.within_days)]
        if criterion.asset_stage:
            condition += " AND a.funnel_stage = %s"
            count_params.append(criterion.asset_stage)
        if criterion.asset_kind:
            condition += " AND a.kind = %s"
            count_params.append(criterion.asset_kind)
        counts.append(f"COUNT(*) FILTER (WHERE {condition}) AS seen_{number}")
        met.append(f"SUM(seen_{number}) >= %s")
        met_params.append(criterion.min_count)
    sql = f"""
        WITH rules(touchpoint_type, asset_stage, points, group_name) AS ({rule_rows})
        SELECT lead_id,
               array_agg(group_name) FILTER (WHERE group_name IS NOT NULL),
               array_agg(points) FILTER (WHERE group_name IS NOT NULL),
               BOOL_OR(hand_raise) {"".join(", " + m for m in met)}
          FROM (
            SELECT t.lead_id,
                   COALESCE(specific.group_name, generic.group_name) AS group_name,
                   SUM(COALESCE(specific.points, generic.points)
                       * power(0.5::float8, EXTRACT(EPOCH FROM (%s - t.occurred_at))::float8
                                            / 86400.0::float8 / %s::float8)) AS points,
                   BOOL_OR(t.type = ANY(%s) AND t.occurred_at >= %s) AS hand_raise
                   {"".join(", " + c for c in counts)}
              FROM leads_touchpoint t
              LEFT JOIN leads_contentasset a ON a.id = t.asset_id
              LEFT JOIN rules specific
                     ON specific.touchpoint_type = t.type
                    AND specific.asset_stage <> '' AND specific.asset_stage = a.funnel_stage
              LEFT JOIN rules generic
                     ON generic.touchpoint_type = t.type AND generic.asset_stage = ''
             WHERE t.lead_id = ANY(%s) AND t.occurred_at <= %s
             GROUP BY 1, 2
          ) AS per_group
         GROUP BY lead_id
    """
    params = [
        *rule_params, *met_params,
        now, sla.decay_half_life_days, sorted(TouchpointType.hand_raises()), now - HAND_RAISE_WINDOW,
        *count_params, list(lead_ids), now,
    ]  # fmt: skip
    signals = {}
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        for lead_id, groups, points, hand_raise, *criteria_met in cursor.fetchall():
            signals[lead_id] = _Signals(
                engagement=dict(zip(groups, points, strict=True)) if groups else {},
                criteria=criteria_met,
                hand_raise=bool(hand_raise),
            )
    return signals


# --- Fit (Python) ------------------------------------------------------------------------


def _lead_facts(lead_ids) -> dict[int, dict]:
    """{lead id: what fit and the explicit criteria look at}: the lead's own
    firmographics, else its account's. One query, the ids as one array (an
    IN list of thousands of placeholders costs more to build than to run)."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT lead.id, lead.title, lead.industry, lead.segment, lead.country, lead.region,
                   lead.employees, account.industry, account.segment, account.country,
                   account.region, account.employees, account.annual_revenue,
                   account.technologies
              FROM leads_lead AS lead
              LEFT JOIN leads_account AS account ON account.id = lead.account_id
             WHERE lead.id = ANY(%s)
            """,
            [list(lead_ids)],
        )
        rows = cursor.fetchall()
    facts = {}
    for (pk, title, industry, segment, country, region, employees, account_industry,
         account_segment, account_country, account_region, account_employees, revenue,
         technologies) in rows:  # fmt: skip
        segment = segment or account_segment or ""
        facts[pk] = {
            "title": title,
            "industry": (industry or account_industry or "").lower(),
            "segment": segment,
            "segment_lower": segment.lower(),
            "country": (country or account_country or "").lower(),
            "region": (region or account_region or "").lower(),
            "employees": employees if employees is not None else account_employees,
            "revenue": revenue,
            "technologies": {t.lower() for t in technologies} if technologies else set(),
        }
    return facts


_FIT_FACT = {
    FitRule.Attribute.INDUSTRY: "industry",
    FitRule.Attribute.SEGMENT: "segment_lower",
    FitRule.Attribute.COUNTRY: "country",
    FitRule.Attribute.REGION: "region",
    FitRule.Attribute.EMPLOYEES: "employees",
    FitRule.Attribute.REVENUE: "revenue",
    FitRule.Attribute.TECHNOLOGY: "technologies",
}


@dataclass(frozen=True)
class _FitCheck:
    """A fit rule made ready to test many leads: its bounds or its lowered
    values, and its part's label (the same for every lead)."""

    fact: str
    banded: bool
    low: Decimal | None
    high: Decimal | None
    wanted: frozenset
    label: str
    points: int

    @classmethod
    def of(cls, rule: FitRule) -> "_FitCheck":
        return cls(
            fact=_FIT_FACT[rule.attribute],
            banded=rule.attribute in FitRule.BANDED,
            low=rule.min_value,
            high=rule.max_value,
            wanted=frozenset(v.lower() for v in rule.values),
            label=rule.describe(),
            points=rule.points,
        )

    def matches(self, facts: dict) -> bool:
        value = facts[self.fact]
        if self.banded:  # ints and Decimals compare exactly
            return (
                value is not None
                and (self.low is None or value >= self.low)
                and (self.high is None or value <= self.high)
            )
        if self.fact == "technologies":
            return not self.wanted.isdisjoint(value)
        return value in self.wanted


# --- Putting it together ----------------------------------------------------------------------


def evaluate(lead_ids, *, sla: SlaVersion, icp: IcpVersion, now: datetime | None = None):
    """Score and check qualification of these leads under an SLA and an ICP
    version. Pure: reads only. Two queries per call (plus the versions'
    rules); call it with chunks of a few thousand ids."""
    now = now or timezone.now()
    lead_ids = list(lead_ids)
    facts = _lead_facts(lead_ids)
    criteria = list(sla.behaviour_criteria.all())
    signals = _touchpoint_signals(lead_ids, sla, now, criteria=criteria)
    checks = [_FitCheck.of(rule) for rule in icp.fit_rules.all()]
    personas = list(icp.personas.all())
    groups = {g.name: g.cap for g in sla.groups.all()}
    max_fit = icp.max_fit_points
    threshold = sla.mql_threshold
    required_rank = SENIORITY_RANK[sla.required_seniority]
    required_label = sla.get_required_seniority_display().lower()
    required_employees = sla.required_min_employees
    required_segments = sla.required_segments
    match_all = sla.behaviour_match == "all"
    hand_raise_qualifies = sla.hand_raise_qualifies
    not_seen = _Signals(engagement={}, criteria=[False] * len(criteria), hand_raise=False)
    # Titles repeat across leads: match each title once.
    rank_of: dict[str, int] = {}
    persona_of: dict[str, int | None] = {}
    evaluations = []
    for lead_id in lead_ids:
        lead = facts.get(lead_id)
        if lead is None:
            continue
        title = lead["title"]
        parts = []
        fit_raw = 0
        for check in checks:
            if check.matches(lead):
                fit_raw += check.points
                parts.append({"kind": "fit", "label": check.label, "points": check.points})
        fit = max(0, min(max_fit, fit_raw))
        if fit != fit_raw:
            parts.append({"kind": "cap", "label": f"Fit capped at {max_fit}",
                          "points": fit - fit_raw})  # fmt: skip
        seen = signals.get(lead_id, not_seen)
        engagement_points = 0.0
        for group_name, raw in sorted(seen.engagement.items()):
            cap = groups.get(group_name, 100)
            capped = min(raw, cap)
            engagement_points += capped
            label = f"{group_name}: {raw:.1f} points after decay"
            if raw > cap:
                label += f", capped at {cap}"
            parts.append({"kind": "engagement", "label": label, "points": round(capped, 1)})
        engagement_int = round(engagement_points)
        total = max(0, min(100, fit + engagement_int))
        hand_raise = seen.hand_raise
        reasons = []
        explicit_ok = True
        if required_rank:
            rank = rank_of.get(title)
            if rank is None:
                rank = rank_of[title] = seniority_rank(title)
            if rank < required_rank:
                explicit_ok = False
                reasons.append(f"Title “{title or 'unknown'}” is below {required_label}.")
        if required_employees and (lead["employees"] or 0) < required_employees:
            explicit_ok = False
            reasons.append(
                f"Company size {lead['employees'] or 'unknown'} is below {required_employees}."
            )
        if required_segments and lead["segment"] not in required_segments:
            explicit_ok = False
            reasons.append(f"Segment {lead['segment'] or 'unknown'} is not one the SLA accepts.")
        met = seen.criteria
        behaviour_ok = (all(met) if match_all else any(met)) if criteria else True
        if not behaviour_ok:
            missing = [c.label for c, ok in zip(criteria, met, strict=True) if not ok]
            reasons.append("Behaviour not yet seen: " + "; ".join(missing) + ".")
        score_ok = total >= threshold
        if not score_ok:
            reasons.append(f"Score {total} is below the threshold of {threshold}.")
        qualifies = explicit_ok and (
            (hand_raise and hand_raise_qualifies) or (score_ok and behaviour_ok)
        )
        if qualifies:
            reasons = ["Hand-raiser (demo or contact request)."] if hand_raise and not (
                score_ok and behaviour_ok
            ) else [f"Score {total} reaches {threshold} and the criteria are met."]  # fmt: skip
        if title in persona_of:
            persona_id = persona_of[title]
        else:
            persona = next((p for p in personas if p.matches(title)), None)
            persona_id = persona_of[title] = persona.pk if persona else None
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
                persona_id=persona_id,
            )
        )
    return evaluations


# A lead row the score did not change is left alone when asked: leads_lead
# carries many indexes and `score` is one of them, so every written lead is a
# non-HOT update that adds an entry to each index (and its WAL).
_LEAD_CHANGED = """
   AND (lead.scored_at IS NULL OR lead.score <> batch.total
        OR lead.persona_id IS DISTINCT FROM batch.persona_id
        OR (batch.high_intent AND NOT lead.is_high_intent))
"""


@transaction.atomic
def evaluations_save(evaluations, *, sla: SlaVersion, icp: IcpVersion, now: datetime,
                     write_unchanged_leads: bool = True) -> None:  # fmt: skip
    """Store evaluations (one row per lead and version pair, replaced) and the
    lead's current score, persona and intent, and when it was scored. With
    `write_unchanged_leads=False`, a lead already scored whose score, persona
    and intent stay the same is not written (its `scored_at` stays that of
    the scoring that set them); its evaluation row is stored all the same,
    so the lead page shows the versions it was last evaluated under.

    One statement whatever the count: the evaluations travel as one JSON
    document (a single encoding pass in Python, parsed by PostgreSQL), which
    feeds the upsert of the evaluations and the update of the leads."""
    if not evaluations:
        return
    rows = [
        [e.lead_id, e.fit, e.engagement, e.total, e.parts, e.qualifies, e.high_intent,
         e.reasons, e.persona_id]
        for e in evaluations
    ]  # fmt: skip
    document = json.dumps(rows)
    # The ids let the planner fetch the leads by key (it cannot count the
    # document's rows, and would otherwise scan all of leads_lead).
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            WITH batch AS MATERIALIZED (
                SELECT (e->>0)::bigint AS lead_id, (e->>1)::smallint AS fit,
                       (e->>2)::smallint AS engagement, (e->>3)::smallint AS total,
                       e->4 AS parts, (e->>5)::boolean AS qualifies,
                       (e->>6)::boolean AS high_intent, e->7 AS reasons,
                       (e->>8)::bigint AS persona_id
                  FROM jsonb_array_elements(%s::jsonb) AS e
            ), stored AS (
                INSERT INTO sla_scoreevaluation (lead_id, sla_version_id, icp_version_id, fit,
                    engagement, total, parts, qualifies, high_intent, reasons, persona_id,
                    evaluated_at)
                SELECT lead_id, %s, %s, fit, engagement, total, parts, qualifies, high_intent,
                       reasons, persona_id, %s
                  FROM batch
                ON CONFLICT (lead_id, sla_version_id, icp_version_id) DO UPDATE SET
                    fit = EXCLUDED.fit, engagement = EXCLUDED.engagement, total = EXCLUDED.total,
                    parts = EXCLUDED.parts, qualifies = EXCLUDED.qualifies,
                    high_intent = EXCLUDED.high_intent, reasons = EXCLUDED.reasons,
                    persona_id = EXCLUDED.persona_id, evaluated_at = EXCLUDED.evaluated_at
            )
            UPDATE leads_lead AS lead
               SET score = batch.total, persona_id = batch.persona_id,
                   is_high_intent = lead.is_high_intent OR batch.high_intent, scored_at = %s
              FROM batch
             WHERE lead.id = batch.lead_id AND lead.id = ANY(%s)
                   {"" if write_unchanged_leads else _LEAD_CHANGED}
            """,
            [document, sla.pk, icp.pk, now, now, [e.lead_id for e in evaluations]],
        )


@dataclass
class ScoreRun:
    evaluations: list[Evaluation]
    qualified: list  # leads that became MQLs in this run


def leads_score(lead_ids, *, now: datetime | None = None, qualify: bool = True,
                sla: SlaVersion | None = None, icp: IcpVersion | None = None,
                write_unchanged_leads: bool = True) -> ScoreRun:  # fmt: skip
    """Score leads under the versions in force (or those given), store the
    evaluations, and make open leads that qualify MQLs (stamped, routed,
    clock started). Runs in one transaction; idempotent: scoring again gives
    the same result, and a lead that is already an MQL is not qualified twice.
    `write_unchanged_leads` as in `evaluations_save`."""
    from sla import versions

    sla = sla or versions.sla_in_force()
    icp = icp or versions.icp_in_force()
    if sla is None or icp is None:
        return ScoreRun([], [])
    now = now or timezone.now()
    qualified = []
    with transaction.atomic():
        evaluations = evaluate(lead_ids, sla=sla, icp=icp, now=now)
        evaluations_save(
            evaluations, sla=sla, icp=icp, now=now, write_unchanged_leads=write_unchanged_leads
        )
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
    longer in force stops: the newer publish has its own job. Every lead gets
    its evaluation under the job's versions; a lead whose score, persona and
    intent do not change is not rewritten."""
    from sla import versions

    with transaction.atomic():
        # Lock the lane row only: FOR UPDATE on the join would also lock the
        # job's row, and the lanes would take turns instead of running at once.
        lane = (
            RescoreLane.objects.select_for_update(of=("self",))
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
        # The open leads after the resume point, for every lane, read in key
        # order; this lane takes its own (id modulo the lane count). Asking
        # PostgreSQL for the modulo instead makes it guess that few rows
        # match, and sort the whole table for each chunk.
        window = list(
            open_lead_ids()
            .filter(pk__gt=lane.last_lead_id)
            .order_by("pk")
            .values_list("pk", flat=True)[: chunk_size * job.lane_count]
        )
        if not window:
            lane.finished_at = timezone.now()
            lane.save(update_fields=["finished_at"])
            if not RescoreLane.objects.filter(job=job, finished_at__isnull=True).exists():
                RescoreJob.objects.filter(pk=job.pk).update(
                    status=RescoreJob.Status.DONE,
                    finished_at=timezone.now(),
                    processed=Greatest(F("processed"), F("total")),
                )
            return False
        ids = [pk for pk in window if pk % job.lane_count == number][:chunk_size]
        qualified = 0
        if ids:  # a window may hold none of this lane's leads
            run = leads_score(
                ids, sla=job.sla_version, icp=job.icp_version, write_unchanged_leads=False
            )
            qualified = len(run.qualified)
        # Once this commits, every lead of the lane up to here has been scored.
        lane.last_lead_id = ids[-1] if len(ids) == chunk_size else window[-1]
        lane.processed += len(ids)
        lane.save(update_fields=["last_lead_id", "processed"])
        RescoreJob.objects.filter(pk=job.pk).update(
            processed=F("processed") + len(ids), qualified=F("qualified") + qualified
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


# A lead counts as scored after a moment only when its scoring began this long
# after it: room for the clocks of the web and worker machines to disagree.
SCORED_SINCE_MARGIN = timedelta(seconds=2)


def leads_scored_since(lead_ids, moment: datetime) -> set[int]:
    """The leads among `lead_ids` whose last scoring began after `moment`
    (plus SCORED_SINCE_MARGIN). `scored_at` is the moment a scoring run took
    before reading any touchpoint, so such a score counts every touchpoint
    committed by `moment`. One query."""
    return set(
        Lead.objects.filter(
            pk__in=list(lead_ids), scored_at__gt=moment + SCORED_SINCE_MARGIN
        ).values_list("pk", flat=True)
    )


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
