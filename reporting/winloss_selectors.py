"""Reads of win/loss retrospectives: due reviews, lists, the deal's review
status, and the insights both teams (and the QBR page) read.

Due reviews. A closed (won or lost) deal whose amount is above the SLA in
force's `retro_amount_threshold` is *eligible* for a retrospective, due
`retro_due_days` after it closed. The due list shows eligible deals without
one that closed within the look-back (`REVIEW_LOOKBACK_DAYS`), so years-old
deals do not nag anyone. The threshold is the SLA in force today, for every
period: the agreement says which deals are worth reviewing now.

Insight weighting. For a period (deals that closed in it, by close date), a
decision-driver category's score for an outcome counts its mentions in that
outcome's retrospectives, signed by sentiment in the outcome's direction:

    win score(c)  = (drivers of c that helped in won deals) − (that hurt in won deals)
    loss score(c) = (drivers of c that hurt in lost deals)  − (that helped in lost deals)

A retrospective has at most one driver per category, so a category appears
at most once per deal. The top drivers of wins (losses) are the categories
with a positive score, highest first; ties go to more mentions, then the
categories' own order. `share` is the percentage of that outcome's
retrospectives that mention the category at all.

Every function here runs a fixed number of queries, whatever the number of
retrospectives (asserted in tests).
"""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta

from django.db.models import (
    BooleanField,
    Count,
    DateField,
    ExpressionWrapper,
    F,
    Q,
    QuerySet,
)
from django.db.models.functions import Cast, TruncQuarter
from django.utils import timezone

from leads.models import Opportunity, OpportunityStage, Segment
from reporting.models import ActionItem, DecisionDriver, DriverCategory, Retrospective
from sla.versions import sla_in_force

REVIEW_LOOKBACK_DAYS = 90

Outcome = Retrospective.Outcome


# --- Periods --------------------------------------------------------------------------


def quarter_start(day: date) -> date:
    return date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)


def quarter_bounds(day: date) -> tuple[date, date]:
    """The first and last day of the quarter `day` is in."""
    start = quarter_start(day)
    following = date(start.year + (start.month + 2) // 12, (start.month + 2) % 12 + 1, 1)
    return start, following - timedelta(days=1)


def quarter_label(day: date) -> str:
    return f"Q{(day.month - 1) // 3 + 1} {day.year}"


def quarters_between(start: date, end: date) -> list[date]:
    """The first days of the quarters that overlap [start, end], in order."""
    quarters, current = [], quarter_start(start)
    while current <= end:
        quarters.append(current)
        current = quarter_bounds(current)[1] + timedelta(days=1)
    return quarters


# --- Due reviews -------------------------------------------------------------------------


@dataclass(frozen=True)
class ReviewRule:
    """Which closed deals are due a retrospective, from the SLA in force."""

    sla: object
    threshold: object
    due_days: int


def review_rule() -> ReviewRule | None:
    """The SLA in force's feedback commitment (None before the first SLA)."""
    sla = sla_in_force()
    if sla is None:
        return None
    return ReviewRule(sla=sla, threshold=sla.retro_amount_threshold, due_days=sla.retro_due_days)


def deals_eligible(
    *, rule: ReviewRule, start: date | None = None, end: date | None = None
) -> QuerySet:
    """Closed deals above the review threshold (closed in [start, end] when
    given), annotated with `review_due_on`."""
    deals = Opportunity.objects.filter(
        stage__in=OpportunityStage.closed_stages(),
        closed_on__isnull=False,
        amount__gt=rule.threshold,
    )
    if start is not None:
        deals = deals.filter(closed_on__gte=start)
    if end is not None:
        deals = deals.filter(closed_on__lte=end)
    return deals.annotate(
        review_due_on=Cast(F("closed_on") + timedelta(days=rule.due_days), DateField())
    )


def reviews_due(
    *, owner=None, today: date | None = None, lookback_days: int = REVIEW_LOOKBACK_DAYS
) -> QuerySet:
    """Eligible deals without a retrospective that closed in the look-back,
    soonest due first, optionally only `owner`'s. Each row has
    `review_due_on`. Empty while no SLA is in force. One query."""
    rule = review_rule()
    if rule is None:
        return Opportunity.objects.none()
    today = today or timezone.localdate()
    deals = deals_eligible(rule=rule, start=today - timedelta(days=lookback_days)).filter(
        retrospective__isnull=True
    )
    if owner is not None:
        deals = deals.filter(owner=owner)
    return deals.select_related("account", "owner", "competitor").order_by(
        "closed_on", "amount", "id"
    )


def opportunity_review(opportunity: Opportunity, *, today: date | None = None) -> dict:
    """The deal page's retrospective panel: its retrospective (or None), and
    for eligible deals without one, when the review is due. Two queries."""
    retrospective = (
        Retrospective.objects.filter(opportunity=opportunity)
        .annotate(driver_count=Count("drivers"))
        .first()
    )
    today = today or timezone.localdate()
    status = {
        "retrospective": retrospective,
        "closed": opportunity.stage in OpportunityStage.closed_stages(),
        "eligible": False,
        "due_on": None,
        "overdue": False,
    }
    rule = review_rule() if status["closed"] and opportunity.closed_on else None
    if rule is not None and opportunity.amount > rule.threshold:
        status["eligible"] = True
        status["due_on"] = opportunity.closed_on + timedelta(days=rule.due_days)
        status["overdue"] = retrospective is None and status["due_on"] < today
        status["rule"] = rule
    return status


# --- Lists ----------------------------------------------------------------------------


def retrospectives_filtered(
    *,
    outcome: str = "",
    loss_type: str = "",
    competitor=None,
    segment: str = "",
    start: date | None = None,
    end: date | None = None,
    q: str = "",
) -> QuerySet:
    """Retrospectives for the list, newest first, with the deal, its account
    and owner, the competitor, drivers and participants (prefetched), and
    `open_actions` counted. A fixed number of queries per page."""
    rows = Retrospective.objects.all()
    if outcome:
        rows = rows.filter(outcome=outcome)
    if loss_type:
        rows = rows.filter(loss_type=loss_type)
    if competitor is not None:
        rows = rows.filter(competitor=competitor)
    if segment:
        rows = rows.filter(opportunity__account__segment=segment)
    if start:
        rows = rows.filter(opportunity__closed_on__gte=start)
    if end:
        rows = rows.filter(opportunity__closed_on__lte=end)
    if q:
        rows = rows.filter(
            Q(opportunity__name__icontains=q)
            | Q(opportunity__account__name__icontains=q)
            | Q(learnings__icontains=q)
            | Q(key_quotes__icontains=q)
        )
    return (
        rows.select_related("opportunity__account", "opportunity__owner", "competitor")
        .prefetch_related("drivers__category", "participant_rows__user")
        .annotate(
            open_actions=Count(
                "action_items", filter=Q(action_items__status__in=ActionItem.OPEN_STATUSES)
            )
        )
        .order_by("-held_on", "-id")
    )


def retrospective_for_page(pk: int) -> Retrospective:
    """One retrospective with what its page shows (raises DoesNotExist)."""
    return Retrospective.objects.select_related(
        "opportunity__account",
        "opportunity__owner",
        "opportunity__product",
        "opportunity__source_lead__source_campaign",
        "opportunity__competitor",
        "opportunity__loss_reason",
        "competitor",
        "campaign",
        "created_by",
    ).get(pk=pk)


def retrospective_drivers(retrospective: Retrospective) -> list[DecisionDriver]:
    return list(retrospective.drivers.select_related("category"))


def retrospective_participants(retrospective: Retrospective) -> list:
    return list(retrospective.participant_rows.select_related("user"))


def _with_targets(items: QuerySet) -> QuerySet:
    return items.select_related(
        "owner",
        "sla_version",
        "icp_version",
        "persona__version",
        "campaign",
        "content_asset",
        "closed_by_sla_version",
        "closed_by_icp_version",
    )


def retrospective_action_items(retrospective: Retrospective) -> list[ActionItem]:
    return list(_with_targets(retrospective.action_items.all()).order_by("status", "due_on", "id"))


def action_items_filtered(*, status: str = "open", owner=None, target_kind: str = "") -> QuerySet:
    """Action items of every retrospective, with their targets, owner and deal.
    `status`: 'open' (open or in progress), 'closed' (done or dropped), a
    single status, or '' for all."""
    items = ActionItem.objects.all()
    if status == "open":
        items = items.filter(status__in=ActionItem.OPEN_STATUSES)
    elif status == "closed":
        items = items.exclude(status__in=ActionItem.OPEN_STATUSES)
    elif status:
        items = items.filter(status=status)
    if owner is not None:
        items = items.filter(owner=owner)
    if target_kind:
        items = items.filter(target_kind=target_kind)
    return _with_targets(items).select_related("retrospective__opportunity__account")


def action_items_open() -> QuerySet:
    """Open and in-progress action items, soonest due first, with owner,
    target and deal (for the insights and the QBR). One query."""
    return action_items_filtered(status="open").order_by("due_on", "id")


def action_items_closed(*, start: date, end: date) -> QuerySet:
    """Action items done (or dropped) in [start, end], with the version that
    closed them, if any: what the teams changed in a period. One query."""
    return (
        action_items_filtered(status="closed")
        .filter(closed_at__date__gte=start, closed_at__date__lte=end)
        .order_by("closed_at", "id")
    )


def action_items_closing(model) -> QuerySet:
    """Open action items a new version of `model` (SlaVersion or IcpVersion)
    can close: SLA items for the SLA; ICP and persona items for the ICP."""
    from reporting.winloss_services import CLOSABLE_KINDS

    return (
        action_items_filtered(status="open", target_kind="")
        .filter(target_kind__in=CLOSABLE_KINDS[model])
        .order_by("due_on", "id")
    )


def action_items_closed_by(version) -> list[ActionItem]:
    """The action items a published version closed: why it changed."""
    items = version.closed_action_items.all()
    return list(_with_targets(items).select_related("retrospective__opportunity"))


def closed_deals_to_review(*, q: str = "", limit: int = 50) -> QuerySet:
    """Closed deals without a retrospective, for picking one to review:
    eligible ones first, then the most recently closed."""
    rule = review_rule()
    deals = Opportunity.objects.filter(
        stage__in=OpportunityStage.closed_stages(), retrospective__isnull=True
    )
    if q:
        deals = deals.filter(Q(name__icontains=q) | Q(account__name__icontains=q))
    threshold = rule.threshold if rule else None
    if threshold is not None:
        deals = deals.annotate(
            eligible=ExpressionWrapper(Q(amount__gt=threshold), output_field=BooleanField())
        )
        order = ["-eligible", "-closed_on", "-id"]
    else:
        order = ["-closed_on", "-id"]
    return deals.select_related("account", "owner").order_by(*order)[:limit]


# --- Insights --------------------------------------------------------------------------


@dataclass
class DriverScore:
    """A category's standing for one outcome (see the module docstring)."""

    category: DriverCategory
    outcome: str
    helped: int = 0
    hurt: int = 0
    retrospectives: int = 0  # of this outcome, in scope

    @property
    def mentions(self) -> int:
        return self.helped + self.hurt

    @property
    def score(self) -> int:
        return self.helped - self.hurt if self.outcome == Outcome.WON else self.hurt - self.helped

    @property
    def share(self) -> int | None:
        """Percent of this outcome's retrospectives that mention the category."""
        if not self.retrospectives:
            return None
        return round(100 * self.mentions / self.retrospectives)


def _ranked(scores: list[DriverScore]) -> list[DriverScore]:
    return sorted(
        scores,
        key=lambda s: (-s.score, -s.mentions, s.category.position, s.category.name),
    )


def _top(scores: list[DriverScore], limit: int | None) -> list[DriverScore]:
    top = [s for s in _ranked(scores) if s.score > 0]
    return top[:limit] if limit else top


def _categories(used_ids=()) -> list[DriverCategory]:
    return list(DriverCategory.objects.filter(Q(is_active=True) | Q(pk__in=list(used_ids))))


def _scores(categories, counts, retro_counts) -> dict[str, list[DriverScore]]:
    """{'won': [...], 'lost': [...]}: one DriverScore per category, from
    counts[(outcome, category_id, sentiment)] and retro_counts[outcome]."""
    result = {}
    for outcome in (Outcome.WON, Outcome.LOST):
        result[outcome] = [
            DriverScore(
                category=category,
                outcome=outcome,
                helped=counts.get((outcome, category.pk, "helped"), 0),
                hurt=counts.get((outcome, category.pk, "hurt"), 0),
                retrospectives=retro_counts.get(outcome, 0),
            )
            for category in categories
        ]
    return result


def _in_period(prefix: str, start: date, end: date) -> Q:
    return Q(**{f"{prefix}closed_on__gte": start, f"{prefix}closed_on__lte": end})


def winloss_themes(*, start: date, end: date, limit: int = 5) -> dict:
    """The top drivers of wins and of losses for deals closed in [start, end]:
    {'wins': [DriverScore...], 'losses': [...], 'won': n, 'lost': n}, best first,
    only categories with a positive score (see the module docstring).
    Three queries."""
    retro_counts = dict(
        Retrospective.objects.filter(_in_period("opportunity__", start, end))
        .values_list("outcome")
        .annotate(n=Count("id"))
        .values_list("outcome", "n")
    )
    counts = {
        (row["retrospective__outcome"], row["category_id"], row["sentiment"]): row["n"]
        for row in DecisionDriver.objects.filter(
            _in_period("retrospective__opportunity__", start, end)
        )
        .values("retrospective__outcome", "category_id", "sentiment")
        .annotate(n=Count("id"))
        .order_by()
    }
    categories = _categories({key[1] for key in counts})
    scores = _scores(categories, counts, retro_counts)
    return {
        "wins": _top(scores[Outcome.WON], limit),
        "losses": _top(scores[Outcome.LOST], limit),
        "won": retro_counts.get(Outcome.WON, 0),
        "lost": retro_counts.get(Outcome.LOST, 0),
    }


def coverage(*, start: date, end: date, today: date | None = None) -> dict:
    """Share of eligible deals (closed in [start, end], above the SLA in
    force's threshold) that have a retrospective:
    {'eligible', 'reviewed', 'on_time', 'overdue', 'percent', 'on_time_percent',
    'threshold', 'due_days', 'sla'}. `overdue`: eligible, not reviewed, past
    due. Percentages are None when nothing is eligible. Two queries."""
    rule = review_rule()
    empty = {"eligible": 0, "reviewed": 0, "on_time": 0, "overdue": 0, "percent": None,
             "on_time_percent": None, "threshold": None, "due_days": None, "sla": None}  # fmt: skip
    if rule is None:
        return empty
    today = today or timezone.localdate()
    totals = deals_eligible(rule=rule, start=start, end=end).aggregate(
        eligible=Count("id"),
        reviewed=Count("id", filter=Q(retrospective__isnull=False)),
        on_time=Count("id", filter=Q(retrospective__held_on__lte=F("review_due_on"))),
        overdue=Count("id", filter=Q(retrospective__isnull=True, review_due_on__lt=today)),
    )
    eligible = totals["eligible"]
    return {
        **totals,
        "percent": round(100 * totals["reviewed"] / eligible) if eligible else None,
        "on_time_percent": round(100 * totals["on_time"] / eligible) if eligible else None,
        "threshold": rule.threshold,
        "due_days": rule.due_days,
        "sla": rule.sla,
    }


@dataclass
class Breakdown:
    """Retrospectives of one competitor, segment or quarter, and its top drivers."""

    key: object
    label: str
    won: int = 0
    lost: int = 0
    eligible: int | None = None  # quarters only: deals due a review
    reviewed: int | None = None
    scores: dict = field(default_factory=dict)

    @property
    def total(self) -> int:
        return self.won + self.lost

    @property
    def win_rate(self) -> int | None:
        return round(100 * self.won / self.total) if self.total else None

    @property
    def coverage_percent(self) -> int | None:
        return round(100 * self.reviewed / self.eligible) if self.eligible else None

    @property
    def top_wins(self) -> list[DriverScore]:
        return _top(self.scores.get(Outcome.WON, []), 3)

    @property
    def top_losses(self) -> list[DriverScore]:
        return _top(self.scores.get(Outcome.LOST, []), 3)


def _breakdowns(dimension, retro_rows, driver_rows, categories, labels, order) -> list[Breakdown]:
    """Roll the all-dimensions rows up by one dimension."""
    retro_counts = defaultdict(lambda: defaultdict(int))
    for row in retro_rows:
        retro_counts[row[dimension]][row["outcome"]] += row["n"]
    driver_counts = defaultdict(lambda: defaultdict(int))
    for row in driver_rows:
        key = (row["outcome"], row["category_id"], row["sentiment"])
        driver_counts[row[dimension]][key] += row["n"]
    keys = list(order) + [k for k in retro_counts if k not in order]
    result = []
    for key in keys:
        outcomes = retro_counts.get(key, {})
        result.append(
            Breakdown(
                key=key,
                label=labels(key),
                won=outcomes.get(Outcome.WON, 0),
                lost=outcomes.get(Outcome.LOST, 0),
                scores=_scores(categories, driver_counts.get(key, {}), outcomes),
            )
        )
    return result


def _segment_label(value) -> str:
    return dict(Segment.choices).get(value) or "Unknown segment"


def insights(*, start: date, end: date, today: date | None = None) -> dict:
    """Everything the insights page shows for deals closed in [start, end]:

    - `won`, `lost`, `total`: retrospectives; `loss_types`, `pitch`: counts by value
    - `drivers`: {'won': [DriverScore], 'lost': [...]} for every category, ranked
    - `categories`: [(win DriverScore, loss DriverScore)] in the categories' order
    - `themes`: {'wins': top 5, 'losses': top 5} (positive scores only)
    - `by_competitor`, `by_segment`, `by_quarter`: [Breakdown], the quarters
      with eligible and reviewed deals
    - `coverage`: see `coverage()`; `open_actions`, `overdue_actions`: counts

    Nine queries, whatever the number of retrospectives.
    """
    today = today or timezone.localdate()
    retro_rows = list(
        Retrospective.objects.filter(_in_period("opportunity__", start, end))
        .values(
            "outcome",
            "loss_type",
            "pitch_match",
            competitor_name=F("competitor__name"),
            segment=F("opportunity__account__segment"),
            quarter=TruncQuarter("opportunity__closed_on", output_field=DateField()),
        )
        .annotate(n=Count("id"))
        .order_by()
    )
    driver_rows = list(
        DecisionDriver.objects.filter(_in_period("retrospective__opportunity__", start, end))
        .values(
            "category_id",
            "sentiment",
            outcome=F("retrospective__outcome"),
            competitor_name=F("retrospective__competitor__name"),
            segment=F("retrospective__opportunity__account__segment"),
            quarter=TruncQuarter("retrospective__opportunity__closed_on", output_field=DateField()),
        )
        .annotate(n=Count("id"))
        .order_by()
    )
    categories = _categories({row["category_id"] for row in driver_rows})
    totals = defaultdict(int)
    loss_types = defaultdict(int)
    pitch = defaultdict(int)
    for row in retro_rows:
        totals[row["outcome"]] += row["n"]
        if row["loss_type"]:
            loss_types[row["loss_type"]] += row["n"]
        pitch[row["pitch_match"]] += row["n"]
    counts = defaultdict(int)
    for row in driver_rows:
        counts[(row["outcome"], row["category_id"], row["sentiment"])] += row["n"]
    unranked = _scores(categories, counts, totals)
    drivers = {outcome: _ranked(scores) for outcome, scores in unranked.items()}

    competitor_order = sorted(
        {row["competitor_name"] for row in retro_rows},
        key=lambda name: (name is None, name or ""),
    )
    by_competitor = _breakdowns(
        "competitor_name", retro_rows, driver_rows, categories,
        lambda name: name or "No competitor named", competitor_order,
    )  # fmt: skip
    segments = [value for value, _ in Segment.choices]
    seen_segments = {row["segment"] for row in retro_rows}
    by_segment = _breakdowns(
        "segment", retro_rows, driver_rows, categories, _segment_label,
        [s for s in segments if s in seen_segments]
        + sorted((s for s in seen_segments if s not in segments), key=lambda s: s or ""),
    )  # fmt: skip
    quarters = quarters_between(start, end)
    for row in retro_rows:
        row["quarter"] = _as_date(row["quarter"])
    for row in driver_rows:
        row["quarter"] = _as_date(row["quarter"])
    by_quarter = _breakdowns(
        "quarter", retro_rows, driver_rows, categories, quarter_label, quarters
    )
    cover = coverage(start=start, end=end, today=today)
    _quarter_coverage(by_quarter, start=start, end=end)
    actions = ActionItem.objects.filter(status__in=ActionItem.OPEN_STATUSES).aggregate(
        open=Count("id"), overdue=Count("id", filter=Q(due_on__lt=today))
    )
    return {
        "start": start,
        "end": end,
        "won": totals[Outcome.WON],
        "lost": totals[Outcome.LOST],
        "total": totals[Outcome.WON] + totals[Outcome.LOST],
        "loss_types": [
            (label, loss_types.get(value, 0)) for value, label in Retrospective.LossType.choices
        ],
        "pitch": [
            (label, pitch.get(value, 0))
            for value, label in [*Retrospective.PitchMatch.choices, ("", "Not assessed")]
        ],
        "drivers": drivers,
        "categories": list(zip(unranked[Outcome.WON], unranked[Outcome.LOST], strict=True)),
        "themes": {"wins": _top(drivers[Outcome.WON], 5), "losses": _top(drivers[Outcome.LOST], 5)},
        "by_competitor": by_competitor,
        "by_segment": by_segment,
        "by_quarter": by_quarter,
        "coverage": cover,
        "open_actions": actions["open"],
        "overdue_actions": actions["overdue"],
    }


def _as_date(value):
    return value.date() if hasattr(value, "date") and callable(value.date) else value


def _quarter_coverage(by_quarter: list[Breakdown], *, start: date, end: date) -> None:
    """Eligible and reviewed deals per quarter, on the quarter rows. One query."""
    rule = review_rule()
    if rule is None:
        return
    rows = (
        deals_eligible(rule=rule, start=start, end=end)
        .annotate(quarter=TruncQuarter("closed_on", output_field=DateField()))
        .values("quarter")
        .annotate(eligible=Count("id"), reviewed=Count("id", filter=Q(retrospective__isnull=False)))
        .order_by()
    )
    per_quarter = {_as_date(row["quarter"]): row for row in rows}
    for breakdown in by_quarter:
        row = per_quarter.get(breakdown.key, {})
        breakdown.eligible = row.get("eligible", 0)
        breakdown.reviewed = row.get("reviewed", 0)
