"""Writes of closed-loop reporting: shared goals and the QBR's record.

Goals are created and changed by the people who run the agreement: sales
managers, marketing and RevOps admins. Reps read them (everyone reads
everything) but do not set targets for the teams.
"""

from datetime import date

from django.core.exceptions import PermissionDenied
from django.db import transaction

from config import roles
from config.audit import audit_record
from reporting.models import QuarterlyReview, SharedGoal

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
