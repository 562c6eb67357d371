"""Writes of closed-loop reporting: shared goals, the QBR's record, and the
cached figures of the default views.

Goals are created and changed by the people who run the agreement: sales
managers, marketing and RevOps admins. Reps read them (everyone reads
everything) but do not set targets for the teams.
"""

from datetime import date

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone

from config import roles
from config.audit import audit_record
from reporting import goals, kpis, rollups, selectors
from reporting.attribution import DEFAULT_MODELS
from reporting.figure_cache import figures_cached
from reporting.models import QuarterlyReview, SharedGoal
from reporting.periods import PERIOD_CHOICES, ReportFilter, period_for

# Every period a page offers without a custom range.
WARM_PERIODS = tuple(key for key, _ in PERIOD_CHOICES if key != "custom")

GOAL_FIELDS = ("title", "metric", "target", "starts_on", "ends_on", "segment", "team", "note")


def can_manage_goals(user) -> bool:
    """Sales managers, marketing and RevOps admins set shared goals and
    record the QBR's improvement."""
    return user.is_authenticated and (
        user.is_superuser
        or roles.has_role(user, roles.SALES_MANAGER, roles.MARKETING, roles.REVOPS_ADMIN)
    )


def _require(user) -> None:
    if not can_manage_goals(user):
        raise PermissionDenied(
            "Shared goals and the QBR record are set by sales managers, marketing and RevOps admins."
        )


@transaction.atomic
def goal_create(*, actor, **data) -> SharedGoal:
    """A new shared goal (validated by the form). Audited."""
    _require(actor)
    goal = SharedGoal(created_by=actor, **{k: data[k] for k in GOAL_FIELDS if k in data})
    goal.full_clean()
    goal.save()
    audit_record(
        actor=actor,
        action="goal.create",
        obj=goal,
        changes={"metric": goal.metric, "target": str(goal.target)},
    )
    return goal


@transaction.atomic
def goal_update(*, goal: SharedGoal, actor, **data) -> SharedGoal:
    """Change a goal's fields. Audited with the old and new values."""
    _require(actor)
    goal = SharedGoal.objects.select_for_update().get(pk=goal.pk)
    changes = {}
    for name in GOAL_FIELDS:
        if name in data and getattr(goal, name) != data[name]:
            changes[name] = [str(getattr(goal, name)), str(data[name])]
            setattr(goal, name, data[name])
    goal.full_clean()
    goal.save()
    if changes:
        audit_record(actor=actor, action="goal.update", obj=goal, changes=changes)
    return goal


@transaction.atomic
def goal_delete(*, goal: SharedGoal, actor) -> None:
    _require(actor)
    audit_record(actor=actor, action="goal.delete", obj=goal, changes={"title": goal.title})
    goal.delete()


@transaction.atomic
def quarterly_review_record(
    *, quarter_start: date, actor, improvement: str, improvement_owner: str = "", notes: str = ""
) -> QuarterlyReview:
    """Record (or revise) the quarter's "one improvement for next quarter"
    and notes. Idempotent per quarter: one record, updated in place."""
    _require(actor)
    review, created = QuarterlyReview.objects.select_for_update().get_or_create(
        quarter_start=quarter_start,
        defaults={
            "improvement": improvement,
            "improvement_owner": improvement_owner,
            "notes": notes,
            "recorded_by": actor,
        },
    )
    if not created:
        review.improvement = improvement
        review.improvement_owner = improvement_owner
        review.notes = notes
        review.recorded_by = actor
        review.full_clean()
        review.save()
    audit_record(actor=actor, action="qbr.record", obj=review, changes={"improvement": improvement})
    return review


def figures_warm(*, today: date | None = None) -> int:
    """Compute and cache, under the reporting tables' current generation, the
    derived figures of the default views: for every period with no filter,
    the shared dashboard (and so the home page and last quarter's QBR, which
    read the same figures) with its goals, the attribution page with its
    default models, and the SLA scorecard. Run after a refresh or rebuild
    changed the tables, so the first viewer does not pay. Idempotent: a second
    run finds every figure cached. Returns the generation warmed."""
    today = today or timezone.localdate()
    state = rollups.refresh_state()
    with figures_cached(state.figures_tag):
        for key in WARM_PERIODS:
            flt = ReportFilter(period=period_for(key, today=today))
            kpis.dashboard(flt)
            goals.goals_progress(goals.goals_overlapping(flt.period, limit=goals.DASHBOARD_GOALS))
            selectors.attribution(flt, models=list(DEFAULT_MODELS))
            selectors.scorecard_by_version(flt.period, today=today)
            selectors.scorecard_by_rep(flt.period, today=today)
        # Last quarter's QBR reads the dashboard's figures; its goals run to the quarter's end.
        quarter = period_for("last_quarter", today=today)
        goals.goals_progress(goals.goals_overlapping(quarter), today=min(today, quarter.end))
    return state.generation
