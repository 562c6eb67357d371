"""What a draft would change before it is published: the leads of the period
re-evaluated under the draft and under the versions in force, side by side.

The period is the `days` days before today (local time) and today so far, so
it stays put all day. Evaluating its leads takes seconds per side at 200,000
leads (25,000 a quarter), so what is evaluated is kept in Django's cache (the
database cache, shared by every web and worker process):

- A draft's figures (`ImpactFigures`: MQLs per month on each side, who changes
  side, a sample) are cached under `figures_cache_key`: a fingerprint of the
  draft's whole content (`version_fingerprint`: its row and every row of its
  parts, hashed by PostgreSQL, so an edit made in the editor, the admin or SQL
  gives another key), the versions in force and the local day. They are as of
  their evaluation (`as_of`); leads created since are evaluated, on both
  sides and alone, and counted in when the figures are next read.
- The in-force side is the same for every draft, so it is also cached per
  lead, as (qualifies, score), under the versions in force and the local day
  (`in_force_cache_key`): a new draft's figures evaluate the draft only.
  Publishing puts other versions in force, hence other keys; the next day
  starts afresh.
- Saving a draft enqueues `sla.tasks.impact_preview_prepare_run` after commit,
  so a worker has usually computed the figures before anyone asks; when it
  has not (no worker, or not yet), the request computes them itself.
- `refresh=True` ("Re-evaluate now") evaluates both sides afresh.

Reads only, apart from the cache (`sla.scoring.evaluate` is pure). Leads are
read and evaluated CHUNK_SIZE at a time: the queries of a computation grow
with the period's leads, those of figures found in the cache do not.
"""

import bisect
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import partial

from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from config.queue import enqueue
from leads.models import Lead
from sla import versions
from sla.models import (
    BehaviourCriterion,
    EngagementGroup,
    EngagementRule,
    FitRule,
    IcpVersion,
    Persona,
    SlaVersion,
    VersionStatus,
)
from sla.scoring import evaluate

CHUNK_SIZE = 5000
IN_FORCE_CACHE_SECONDS = 24 * 3600
FIGURES_CACHE_SECONDS = 24 * 3600

# The rows of each kind of version that `evaluate` reads, besides the version's own.
VERSION_PARTS = {
    SlaVersion: (EngagementGroup, EngagementRule, BehaviourCriterion),
    IcpVersion: (FitRule, Persona),
}
KINDS = {"sla": SlaVersion, "icp": IcpVersion}


@dataclass
class InForceSide:
    """The versions in force evaluated on the period's leads: {lead id:
    (qualifies, score)}; (False, None) for a lead that could not be scored."""

    as_of: datetime
    leads: dict[int, tuple[bool, int | None]] = field(default_factory=dict)


@dataclass
class ImpactFigures:
    """One draft's preview as counted (picklable, for the cache). Counted: the
    leads created from `since` up to `until`, and later ones with an id up to
    `last_lead_id`. `months` maps a month (of the lead's creation, local time)
    to [leads, MQLs under the draft, MQLs in force]; `gained` and `lost` sample
    (lead id, score under the draft, score in force) of leads that change side."""

    since: datetime
    until: datetime
    as_of: datetime
    in_force_as_of: datetime | None
    last_lead_id: int = 0
    months: dict[date, list[int]] = field(default_factory=dict)
    gained_count: int = 0
    lost_count: int = 0
    gained: list[tuple] = field(default_factory=list)
    lost: list[tuple] = field(default_factory=list)


def period_start(days: int, now: datetime) -> datetime:
    """Midnight (local time) `days` days before today: the period holds those
    days and today so far."""
    midnight = timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0)
    return midnight - timedelta(days=days)


def version_fingerprint(version) -> str:
    """A hash of everything the version says: its row and every row of its
    parts (engagement groups, rules and behavioural criteria; fit rules and
    personas), every column, as PostgreSQL serialises them. Any change to any
    of them changes it, however it was made; one query."""
    model = type(version)
    quote = connection.ops.quote_name
    selects = [
        f"(SELECT row_to_json(v)::text FROM {quote(model._meta.db_table)} v WHERE v.id = %s)"
    ]
    for part in VERSION_PARTS[model]:
        table = quote(part._meta.db_table)
        column = quote(part._meta.get_field("version").column)
        selects.append(
            f"COALESCE((SELECT json_agg(p ORDER BY p.id)::text FROM {table} p "
            f"WHERE p.{column} = %s), '[]')"
        )
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT md5(concat_ws('|', {', '.join(selects)}))", [version.pk] * len(selects)
        )
        return cursor.fetchone()[0]


def _pk(version) -> str:
    return str(version.pk) if version is not None else "none"


def figures_cache_key(draft, current_sla, current_icp, *, days: int, sample: int, now) -> str:
    """Where a draft's figures are cached: its content, the versions in force,
    the period and the local day."""
    draft_part = (
        f"{draft._meta.model_name}:{draft.pk}:{version_fingerprint(draft)}" if draft else "none"
    )
    day = timezone.localdate(now).isoformat()
    return (
        f"sla:impact:figures:v1:{draft_part}:{_pk(current_sla)}:{_pk(current_icp)}:"
        f"{days}:{sample}:{day}"
    )


def in_force_cache_key(sla, icp, days: int, now) -> str:
    day = timezone.localdate(now).isoformat()
    return f"sla:impact:in-force:v1:{sla.pk}:{icp.pk}:{days}:{day}"


def _in_force_side(sla, icp, days: int, now, *, fresh: bool) -> tuple[InForceSide, str]:
    key = in_force_cache_key(sla, icp, days, now)
    side = None if fresh else cache.get(key)
    if not isinstance(side, InForceSide):
        side = InForceSide(as_of=now)
    return side, key


def _in_force_fill(side: InForceSide, ids: list[int], *, sla, icp, now) -> bool:
    """Evaluate the chunk's leads the cached side does not hold yet. Returns
    whether it added any."""
    missing = [lead_id for lead_id in ids if lead_id not in side.leads]
    if not missing:
        return False
    found = _evaluated(missing, sla=sla, icp=icp, now=now)
    for lead_id in missing:
        side.leads[lead_id] = found.get(lead_id, (False, None))
    return True


def _evaluated(ids, *, sla, icp, now) -> dict[int, tuple[bool, int]]:
    """{lead id: (qualifies, score)} under these versions; a lead that could
    not be scored is missing."""
    return {e.lead_id: (e.qualifies, e.total) for e in evaluate(ids, sla=sla, icp=icp, now=now)}


def impact_preview(
    *, draft_sla=None, draft_icp=None, days: int = 90, sample: int = 20, refresh: bool = False
) -> dict:
    """Evaluate the period's leads (see `period_start`) under (draft SLA or the
    SLA in force, draft ICP or the ICP in force) and under (SLA in force, ICP
    in force); count who qualifies per calendar month (of the lead's creation,
    in the current time zone) against each SLA's monthly MQL commitment, and
    sample leads that switch side in each direction.

    Figures cached for the draft as it stands are reused, with the leads
    created since counted in; otherwise (or with `refresh`, which also
    evaluates the in-force side afresh) they are computed and cached. Returns
    {"available": False, "reason": ...} when there is nothing to compare with
    (no version of the other kind in force)."""
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
    sides = {"sla": sla, "icp": icp, "current_sla": current_sla, "current_icp": current_icp}
    key = figures_cache_key(
        draft_sla or draft_icp, current_sla, current_icp, days=days, sample=sample, now=now
    )
    figures = None if refresh else cache.get(key)
    if not isinstance(figures, ImpactFigures):
        figures = _figures_compute(
            **sides, days=days, since=period_start(days, now), now=now, sample=sample,
            fresh=refresh,
        )  # fmt: skip
        cache.set(key, figures, FIGURES_CACHE_SECONDS)
    elif _figures_catch_up(figures, **sides, now=now, sample=sample):
        cache.set(key, figures, FIGURES_CACHE_SECONDS)
    return _preview(figures, **sides, days=days, now=now)


def impact_preview_prepare(*, kind: str, version_id: int) -> bool:
    """Compute and cache the impact preview of a draft as it stands, so the
    page finds it ready; figures already cached for it are kept (new leads
    counted in). Idempotent. Returns False, doing nothing, for a version that
    is gone or no longer a draft."""
    draft = KINDS[kind].objects.filter(pk=version_id, status=VersionStatus.DRAFT).first()
    if draft is None:
        return False
    impact_preview(**{f"draft_{kind}": draft})
    return True


def impact_preview_prepare_on_commit(*, version) -> None:
    """Once the current transaction commits, have a worker prepare the draft's
    preview (`impact_preview_prepare`). Sent once per draft and transaction,
    however many of the draft's rows the transaction writes: the task
    evaluates the draft as it stands when it runs."""
    from sla.tasks import impact_preview_prepare_run

    job = ("sla" if isinstance(version, SlaVersion) else "icp", version.pk)
    pending = transaction.get_connection().run_on_commit
    if any(getattr(callback, "impact_preview_job", None) == job for _, callback, *_ in pending):
        return
    send = partial(enqueue, impact_preview_prepare_run, *job)
    send.impact_preview_job = job
    transaction.on_commit(send)


# --- Counting ------------------------------------------------------------------------------------


def _figures_compute(*, sla, icp, current_sla, current_icp, days, since, now, sample,
                     fresh) -> ImpactFigures:  # fmt: skip
    """Evaluate the period's leads under the draft, and under the versions in
    force where the cached in-force side (unless `fresh`) lacks them."""
    in_force, in_force_key, in_force_added = None, "", False
    if current_sla is not None and current_icp is not None:
        in_force, in_force_key = _in_force_side(current_sla, current_icp, days, now, fresh=fresh)
    figures = ImpactFigures(
        since=since, until=now, as_of=now, in_force_as_of=in_force.as_of if in_force else None
    )
    months = _MonthFinder(since, now)
    for chunk in _lead_chunks(since, now):
        ids = [lead_id for lead_id, _ in chunk]
        draft = _evaluated(ids, sla=sla, icp=icp, now=now)
        if in_force is not None:
            in_force_added |= _in_force_fill(in_force, ids, sla=current_sla, icp=current_icp,
                                             now=now)  # fmt: skip
        _figures_count(figures, chunk, draft, in_force.leads if in_force else None,
                       months=months, sample=sample)  # fmt: skip
    if in_force_added:
        cache.set(in_force_key, in_force, IN_FORCE_CACHE_SECONDS)
    return figures


def _figures_catch_up(figures: ImpactFigures, *, sla, icp, current_sla, current_icp, now,
                      sample) -> bool:  # fmt: skip
    """Count in the leads created since the figures were counted (or with a
    higher id than any counted: a lead committed late), evaluated on both
    sides. Returns whether there were any (one query when there were none)."""
    has_current = current_sla is not None and current_icp is not None
    newer = Q(created_at__gt=figures.until) | Q(pk__gt=figures.last_lead_id)
    months = _MonthFinder(figures.since, now)
    found = False
    for chunk in _lead_chunks(figures.since, now, newer):
        ids = [lead_id for lead_id, _ in chunk]
        draft = _evaluated(ids, sla=sla, icp=icp, now=now)
        current = (
            _evaluated(ids, sla=current_sla, icp=current_icp, now=now) if has_current else None
        )
        _figures_count(figures, chunk, draft, current, months=months, sample=sample)
        found = True
    if found:
        figures.until = now
    return found


def _figures_count(figures: ImpactFigures, chunk, draft: dict, current: dict | None, *, months,
                   sample: int) -> None:  # fmt: skip
    """Count a chunk of (lead id, created at): `draft` and `current` hold each
    lead's (qualifies, score) on each side; `current` is None when nothing is
    in force to compare with."""
    for lead_id, created_at in chunk:
        row = figures.months.setdefault(months.of(created_at), [0, 0, 0])
        in_draft, draft_score = draft.get(lead_id, (False, None))
        in_current, current_score = (
            current.get(lead_id, (False, None)) if current else (False, None)
        )
        row[0] += 1
        row[1] += in_draft
        row[2] += in_current
        figures.last_lead_id = max(figures.last_lead_id, lead_id)
        if current is None or in_draft == in_current:
            continue
        if in_draft:
            figures.gained_count += 1
            if len(figures.gained) < sample:
                figures.gained.append((lead_id, draft_score, current_score))
        else:
            figures.lost_count += 1
            if len(figures.lost) < sample:
                figures.lost.append((lead_id, draft_score, current_score))


class _MonthFinder:
    """The month (its first day) a moment falls in, in the current time zone,
    for the months from `first` to `last`."""

    def __init__(self, first: datetime, last: datetime):
        first_month = timezone.localtime(first).date().replace(day=1)
        last_month = timezone.localtime(last).date().replace(day=1)
        self.months = list(_month_starts(first_month, last_month))
        zone = timezone.get_current_timezone()
        self.starts = [datetime(m.year, m.month, 1, tzinfo=zone) for m in self.months]

    def of(self, moment: datetime) -> date:
        return self.months[max(0, bisect.bisect_right(self.starts, moment) - 1)]


def _preview(figures: ImpactFigures, *, sla, icp, current_sla, current_icp, days, now) -> dict:
    """The figures as the page shows them: totals, a row per month with each
    side's commitment, and the sampled leads."""
    has_current = current_sla is not None and current_icp is not None
    first_month = timezone.localtime(figures.since).date().replace(day=1)
    this_month = timezone.localtime(now).date().replace(day=1)
    draft_commitment = sla.mql_commitment_per_month
    current_commitment = current_sla.mql_commitment_per_month if current_sla else None
    totals = {"leads": 0, "draft": 0, "current": 0}
    month_rows = []
    for month in _month_starts(first_month, this_month):
        leads, draft, current = figures.months.get(month, (0, 0, 0))
        totals["leads"] += leads
        totals["draft"] += draft
        totals["current"] += current
        month_rows.append(
            {
                "month": month,
                "leads": leads,
                "draft": draft,
                "current": current,
                "partial": month in (first_month, this_month),
                "draft_commitment": draft_commitment,
                "current_commitment": current_commitment,
                "draft_meets": draft >= draft_commitment,
                "current_meets": (
                    current >= current_commitment if has_current and current_commitment else None
                ),
            }
        )
    samples = _sample_leads(
        {lead_id: (draft_score, current_score)
         for lead_id, draft_score, current_score in figures.gained + figures.lost}
    )  # fmt: skip
    return {
        "available": True,
        "days": days,
        "since": figures.since,
        "now": now,
        "as_of": figures.as_of,
        "in_force_as_of": figures.in_force_as_of,
        "sla": sla,
        "icp": icp,
        "current_sla": current_sla,
        "current_icp": current_icp,
        "has_current": has_current,
        "totals": totals,
        "months": month_rows,
        "gained_count": figures.gained_count,
        "lost_count": figures.lost_count,
        "gained": [samples[i] for i, _, _ in figures.gained if i in samples],
        "lost": [samples[i] for i, _, _ in figures.lost if i in samples],
    }


def _lead_chunks(since, until, *conditions):
    """(id, created_at) of the period's leads (that also meet `conditions`),
    CHUNK_SIZE at a time, by id."""
    after = 0
    while True:
        chunk = list(
            Lead.objects.filter(
                *conditions, created_at__gte=since, created_at__lte=until, pk__gt=after
            )
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
