"""What a draft would change before it is published: the leads of the last
days re-evaluated under the draft and under the versions in force, side by side.

Reads only (`sla.scoring.evaluate` is pure). Lead ids are read and evaluated
in chunks, so memory stays bounded however many leads the period holds: per
chunk, two evaluations (draft and in force), then only counters and a small
sample of leads that change side are kept.

The in-force side is the same for every draft, so it is cached (Django's
cache) per lead, as (qualifies, score), under a key of the SLA and ICP
versions in force and the local day: publishing a version puts another
version in force, hence another key, and the next day starts afresh. Leads
created since it was cached are evaluated and added. So the in-force side is
as of its first evaluation that day (`in_force_as_of`), while the draft side
is always evaluated now; at 200,000 leads (25,000 in 90 days) each side takes
seconds, which is why the page loads these figures in a second request.
"""

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from django.core.cache import cache
from django.utils import timezone

from leads.models import Lead
from sla import versions
from sla.scoring import evaluate

CHUNK_SIZE = 5000
IN_FORCE_CACHE_SECONDS = 24 * 3600


@dataclass
class InForceSide:
    """The versions in force evaluated on the period's leads: {lead id:
    (qualifies, score)}; (False, None) for a lead that could not be scored."""

    as_of: datetime
    leads: dict[int, tuple[bool, int | None]] = field(default_factory=dict)


def in_force_cache_key(sla, icp, days: int) -> str:
    return f"sla:impact:in-force:v1:{sla.pk}:{icp.pk}:{days}:{timezone.localdate().isoformat()}"


def _in_force_side(sla, icp, days: int, now) -> tuple[InForceSide, str]:
    key = in_force_cache_key(sla, icp, days)
    side = cache.get(key)
    if not isinstance(side, InForceSide):
        side = InForceSide(as_of=now)
    return side, key


def _in_force_fill(side: InForceSide, ids: list[int], *, sla, icp, now) -> bool:
    """Evaluate the chunk's leads the cached side does not hold yet. Returns
    whether it added any."""
    missing = [lead_id for lead_id in ids if lead_id not in side.leads]
    if not missing:
        return False
    found = {
        e.lead_id: (e.qualifies, e.total) for e in evaluate(missing, sla=sla, icp=icp, now=now)
    }
    for lead_id in missing:
        side.leads[lead_id] = found.get(lead_id, (False, None))
    return True


def impact_preview(*, draft_sla=None, draft_icp=None, days: int = 90, sample: int = 20) -> dict:
    """Evaluate the leads created in the last `days` days under (draft SLA or
    the SLA in force, draft ICP or the ICP in force) and under (SLA in force,
    ICP in force); count who qualifies per calendar month (of the lead's
    creation, in the current time zone) against each SLA's monthly MQL
    commitment, and sample leads that switch side in each direction.

    Returns {"available": False, "reason": ...} when there is nothing to
    compare with (no version of the other kind in force)."""
    current_sla, current_icp = versions.sla_in_force(), versions.icp_in_force()
    sla = draft_sla or current_sla
    icp = draft_icp or current_icp
    if sla is None or icp is None:
        missing = "SLA" if sla is None else "ICP"
        return {
            "available": False,
            "reason": f"No {missing} is in force yet, so leads cannot be scored for a comparison.",
        }
    now = timezone.now()
    since = now - timedelta(days=days)
    has_current = current_sla is not None and current_icp is not None
    months: dict[date, dict] = {}
    totals = {"leads": 0, "draft": 0, "current": 0}
    gained_ids: list[int] = []
    lost_ids: list[int] = []
    gained = lost = 0
    scores: dict[int, tuple] = {}
    in_force, in_force_key, in_force_added = None, "", False
    if has_current:
        in_force, in_force_key = _in_force_side(current_sla, current_icp, days, now)

    for chunk in _lead_chunks(since, now):
        created = dict(chunk)
        ids = list(created)
        draft_result = {e.lead_id: e for e in evaluate(ids, sla=sla, icp=icp, now=now)}
        if has_current:
            in_force_added |= _in_force_fill(in_force, ids, sla=current_sla, icp=current_icp,
                                             now=now)  # fmt: skip
        for lead_id in ids:
            month = timezone.localtime(created[lead_id]).date().replace(day=1)
            row = months.setdefault(month, {"month": month, "leads": 0, "draft": 0, "current": 0})
            draft_eval = draft_result.get(lead_id)
            in_current, current_score = in_force.leads[lead_id] if has_current else (False, None)
            in_draft = bool(draft_eval and draft_eval.qualifies)
            row["leads"] += 1
            row["draft"] += in_draft
            row["current"] += in_current
            if has_current and in_draft and not in_current:
                gained += 1
                if len(gained_ids) < sample:
                    gained_ids.append(lead_id)
                    scores[lead_id] = (draft_eval.total, current_score)
            elif has_current and in_current and not in_draft:
                lost += 1
                if len(lost_ids) < sample:
                    lost_ids.append(lead_id)
                    scores[lead_id] = (draft_eval.total if draft_eval else None, current_score)
            totals["draft"] += in_draft
            totals["current"] += in_current
        totals["leads"] += len(ids)
    if in_force_added:
        cache.set(in_force_key, in_force, IN_FORCE_CACHE_SECONDS)

    first_month = timezone.localtime(since).date().replace(day=1)
    this_month = timezone.localtime(now).date().replace(day=1)
    draft_commitment = sla.mql_commitment_per_month
    current_commitment = current_sla.mql_commitment_per_month if current_sla else None
    month_rows = []
    for month in _month_starts(first_month, this_month):
        row = months.get(month, {"month": month, "leads": 0, "draft": 0, "current": 0})
        row["partial"] = month in (first_month, this_month)
        row["draft_commitment"] = draft_commitment
        row["current_commitment"] = current_commitment
        row["draft_meets"] = row["draft"] >= draft_commitment
        row["current_meets"] = (
            row["current"] >= current_commitment if has_current and current_commitment else None
        )
        month_rows.append(row)

    samples = _sample_leads(scores)
    return {
        "available": True,
        "days": days,
        "since": since,
        "now": now,
        "sla": sla,
        "icp": icp,
        "current_sla": current_sla,
        "current_icp": current_icp,
        "has_current": has_current,
        "in_force_as_of": in_force.as_of if in_force else None,
        "totals": totals,
        "months": month_rows,
        "gained_count": gained,
        "lost_count": lost,
        "gained": [samples[i] for i in gained_ids if i in samples],
        "lost": [samples[i] for i in lost_ids if i in samples],
    }


def _lead_chunks(since, until):
    """(id, created_at) of the period's leads, CHUNK_SIZE at a time, by id."""
    after = 0
    while True:
        chunk = list(
            Lead.objects.filter(created_at__gte=since, created_at__lte=until, pk__gt=after)
            .order_by("pk")
            .values_list("pk", "created_at")[:CHUNK_SIZE]
        )
        if not chunk:
            return
        yield chunk
        after = chunk[-1][0]


def _month_starts(first: date, last: date):
    month = first
    while month <= last:
        yield month
        month = (month + timedelta(days=32)).replace(day=1)


def _sample_leads(scores: dict[int, tuple]) -> dict[int, Lead]:
    """The sampled leads, each with `draft_score` and `current_score`."""
    if not scores:
        return {}
    leads = {}
    for lead in Lead.objects.filter(pk__in=list(scores)).select_related("account", "owner"):
        lead.draft_score, lead.current_score = scores[lead.pk]
        leads[lead.pk] = lead
    return leads
