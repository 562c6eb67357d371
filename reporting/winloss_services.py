"""Every write to win/loss retrospectives, their drivers and action items.

Retrospectives are blameless and belong to both teams: anyone with a role
(marketing, sales, RevOps) may start one on any closed deal, edit it, and add
drivers and action items; users without a role read only. Validation raises
`django.core.exceptions.ValidationError` with field errors, so a view can put
them on its form; nothing is written when it raises.
"""

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from config import roles
from leads.models import Opportunity, OpportunityStage
from reporting.models import (
    ActionItem,
    DecisionDriver,
    Retrospective,
    RetrospectiveParticipant,
)
from sla.models import IcpVersion, SlaVersion

Team = RetrospectiveParticipant.Team

# Fields of a retrospective a form may set (besides its participants).
RETROSPECTIVE_FIELDS = (
    "loss_type",
    "competitor",
    "decided_at_stage",
    "campaign",
    "pitch_match",
    "pitch_difference",
    "key_quotes",
    "learnings",
    "held_on",
)
ACTION_ITEM_FIELDS = ("title", "description", "owner", "due_on", "target_kind", "target_note")
# What a published version may close: an SLA version closes SLA items; an ICP
# version closes ICP and persona items.
CLOSABLE_KINDS = {
    SlaVersion: (ActionItem.TargetKind.SLA,),
    IcpVersion: (ActionItem.TargetKind.ICP, ActionItem.TargetKind.PERSONA),
}


def can_edit_retrospectives(user) -> bool:
    """Anyone with a role takes part in retrospectives; readers without one do not."""
    return bool(user.is_authenticated and (user.is_superuser or roles.role_names(user)))


def _require_editor(actor) -> None:
    if not can_edit_retrospectives(actor):
        raise PermissionDenied("Only marketing, sales and RevOps take part in retrospectives.")


def participant_team(user) -> str:
    """The team a participant speaks for, from their roles: Marketing, or Sales
    (rep or manager); anyone else (RevOps) counts as Other. A user in both
    marketing and sales speaks for marketing."""
    if roles.has_role(user, roles.MARKETING):
        return Team.MARKETING
    if roles.is_sales(user):
        return Team.SALES
    return Team.OTHER


def retrospective_validate(*, opportunity: Opportunity, participants, data: dict) -> None:
    """Raise ValidationError unless these values make a valid retrospective:
    the deal is closed; a loss says how it was lost (and names the competitor
    when lost to one); a pitch that did not fully match says what differed;
    at least one participant from marketing and one from sales."""
    errors = {}
    if opportunity.stage not in OpportunityStage.closed_stages():
        errors["__all__"] = "Only a closed (won or lost) deal can have a retrospective."
    if opportunity.stage == OpportunityStage.LOST:
        if not data.get("loss_type"):
            errors["loss_type"] = (
                "Say how the deal was lost: to a competitor, no decision, or unknown."
            )
        elif data["loss_type"] == Retrospective.LossType.COMPETITOR and not data.get("competitor"):
            errors["competitor"] = "Name the competitor the deal was lost to."
    elif data.get("loss_type"):
        errors["loss_type"] = "A won deal has no loss type."
    mismatch = data.get("pitch_match") in (
        Retrospective.PitchMatch.PARTLY,
        Retrospective.PitchMatch.NO,
    )
    if mismatch and not (data.get("pitch_difference") or "").strip():
        errors["pitch_difference"] = "Say what differed between the pitch and the campaign."
    teams = {participant_team(user) for user in participants}
    missing = [label for team, label in ((Team.MARKETING, "marketing"), (Team.SALES, "sales"))
               if team not in teams]  # fmt: skip
    if missing:
        errors["participants"] = (
            "A retrospective needs at least one participant from marketing and one from sales "
            f"(missing: {' and '.join(missing)})."
        )
    if errors:
        raise ValidationError(errors)


def _participants_set(retrospective: Retrospective, participants) -> None:
    wanted = {user.pk: user for user in participants}
    retrospective.participant_rows.exclude(user_id__in=wanted).delete()
    present = set(retrospective.participant_rows.values_list("user_id", flat=True))
    RetrospectiveParticipant.objects.bulk_create(
        RetrospectiveParticipant(
            retrospective=retrospective, user=user, team=participant_team(user)
        )
        for pk, user in wanted.items()
        if pk not in present
    )


@transaction.atomic
def retrospective_create(*, opportunity: Opportunity, actor, participants, **data) -> Retrospective:
    """Start the retrospective of a closed deal. Its outcome is the deal's
    stage; the campaign defaults to the source lead's campaign. Raises
    ValidationError (see `retrospective_validate`, and when the deal already
    has one) and PermissionDenied for users without a role. Runs in a transaction."""
    _require_editor(actor)
    opportunity = Opportunity.objects.select_for_update().get(pk=opportunity.pk)
    participants = list(participants)
    retrospective_validate(opportunity=opportunity, participants=participants, data=data)
    if Retrospective.objects.filter(opportunity=opportunity).exists():
        raise ValidationError("This deal already has a retrospective.")
    fields = {name: data[name] for name in RETROSPECTIVE_FIELDS if name in data}
    if "campaign" not in fields and opportunity.source_lead_id:
        fields["campaign"] = opportunity.source_lead.source_campaign
    if opportunity.stage == OpportunityStage.WON:
        fields["loss_type"] = ""
    if fields.get("held_on") is None:
        fields.pop("held_on", None)
    retrospective = Retrospective(
        opportunity=opportunity, outcome=opportunity.stage, created_by=actor, **fields
    )
    try:
        with transaction.atomic():
            retrospective.save()
    except IntegrityError as error:
        raise ValidationError("This deal already has a retrospective.") from error
    _participants_set(retrospective, participants)
    return retrospective


@transaction.atomic
def retrospective_update(*, retrospective: Retrospective, actor, participants, **data):
    """Save edits to a retrospective and its participants (same rules as
    creating one). The outcome follows the deal's current stage."""
    _require_editor(actor)
    retrospective = Retrospective.objects.select_for_update().get(pk=retrospective.pk)
    opportunity = retrospective.opportunity
    participants = list(participants)
    retrospective_validate(opportunity=opportunity, participants=participants, data=data)
    for name in RETROSPECTIVE_FIELDS:
        if name in data and not (name == "held_on" and data[name] is None):
            setattr(retrospective, name, data[name])
    retrospective.outcome = opportunity.stage
    if retrospective.outcome == Retrospective.Outcome.WON:
        retrospective.loss_type = ""
    retrospective.save()
    _participants_set(retrospective, participants)
    return retrospective


@transaction.atomic
def driver_save(
    *, retrospective: Retrospective, actor, category, sentiment: str, note: str = "", driver=None
) -> DecisionDriver:
    """Add a decision driver to a retrospective, or change `driver`. One
    driver per category: a second one in the same category is a
    ValidationError on `category`."""
    _require_editor(actor)
    if driver is not None and driver.retrospective_id != retrospective.pk:
        raise ValidationError("That driver belongs to another retrospective.")
    if sentiment not in DecisionDriver.Sentiment.values:
        raise ValidationError({"sentiment": "Choose whether it helped or hurt."})
    taken = retrospective.drivers.filter(category=category)
    if driver is not None:
        taken = taken.exclude(pk=driver.pk)
    if taken.exists():
        raise ValidationError(
            {"category": f"“{category}” is already a driver here; edit that one instead."}
        )
    driver = driver or DecisionDriver(retrospective=retrospective)
    driver.category = category
    driver.sentiment = sentiment
    driver.note = note
    try:
        with transaction.atomic():
            driver.save()
    except IntegrityError as error:
        raise ValidationError({"category": f"“{category}” is already a driver here."}) from error
    return driver


@transaction.atomic
def driver_delete(*, driver: DecisionDriver, actor) -> None:
    _require_editor(actor)
    driver.delete()


def action_item_validate(*, data: dict, target) -> None:
    """Raise ValidationError unless the item names its owner, due date and
    exactly one target of its kind (or, for 'something else', says what)."""
    errors = {}
    kind = data.get("target_kind")
    if not data.get("owner"):
        errors["owner"] = "Someone owns every action item."
    if not data.get("due_on"):
        errors["due_on"] = "Give a due date."
    if kind not in ActionItem.TargetKind.values:
        errors["target_kind"] = "Choose what the item changes."
    elif kind == ActionItem.TargetKind.OTHER:
        if not (data.get("target_note") or "").strip():
            errors["target_note"] = "Say what the item changes."
    elif target is None:
        errors["target"] = f"Choose {ActionItem.TargetKind(kind).label.lower()}."
    else:
        expected = ActionItem._meta.get_field(ActionItem.TARGET_FIELDS[kind]).related_model
        if not isinstance(target, expected):
            errors["target"] = f"Choose {ActionItem.TargetKind(kind).label.lower()}."
    if errors:
        raise ValidationError(errors)


def _target_assign(item: ActionItem, kind: str, target) -> None:
    for field_kind, field in ActionItem.TARGET_FIELDS.items():
        setattr(item, field, target if field_kind == kind else None)


def _status_apply(item: ActionItem, status: str) -> None:
    if status not in ActionItem.Status.values:
        raise ValidationError({"status": "Choose a status."})
    was_open = item.is_open
    item.status = status
    if item.is_open:
        # Reopened: it is no longer closed, by hand or by a version.
        item.closed_at = None
        item.closed_by_sla_version = None
        item.closed_by_icp_version = None
    elif was_open or item.closed_at is None:
        item.closed_at = timezone.now()


@transaction.atomic
def action_item_create(
    *, retrospective: Retrospective, actor, target=None, status=ActionItem.Status.OPEN, **data
) -> ActionItem:
    """Add an action item: what it changes (`target_kind` and `target`, or
    'other' with `target_note`), its owner and due date. Raises ValidationError."""
    _require_editor(actor)
    action_item_validate(data=data, target=target)
    item = ActionItem(
        retrospective=retrospective,
        created_by=actor,
        **{name: data.get(name, "") for name in ACTION_ITEM_FIELDS},
    )
    _target_assign(item, item.target_kind, target)
    _status_apply(item, status)
    item.save()
    return item


@transaction.atomic
def action_item_update(*, action_item: ActionItem, actor, target=None, status=None, **data):
    """Change an action item. Moving it to done or dropped stamps `closed_at`;
    reopening clears it (and any closing version)."""
    _require_editor(actor)
    item = ActionItem.objects.select_for_update().get(pk=action_item.pk)
    action_item_validate(data=data, target=target)
    for name in ACTION_ITEM_FIELDS:
        if name in data:
            setattr(item, name, data[name])
    _target_assign(item, item.target_kind, target)
    if status is not None and status != item.status:
        _status_apply(item, status)
    item.save()
    return item


@transaction.atomic
def action_item_status_set(*, action_item: ActionItem, actor, status: str) -> ActionItem:
    """Move an action item to another status (see `action_item_update`)."""
    _require_editor(actor)
    item = ActionItem.objects.select_for_update().get(pk=action_item.pk)
    if status != item.status:
        _status_apply(item, status)
        item.save()
    return item


def action_item_close_by_version(*, action_item: ActionItem, version) -> ActionItem:
    """Mark an open action item done by a published SLA or ICP version, so the
    version's page shows why it changed. An SLA version closes SLA items; an
    ICP version closes ICP and persona items (else ValidationError).

    Idempotent: closing again by the same version changes nothing. Items that
    are already done or dropped otherwise, or closed by another version, are
    refused. Called by `sla.versions.version_publish` inside its transaction;
    the permission to publish is checked there.
    """
    model = type(version)
    if model not in CLOSABLE_KINDS:
        raise ValidationError("Only an SLA or ICP version can close an action item.")
    field = "closed_by_sla_version" if model is SlaVersion else "closed_by_icp_version"
    with transaction.atomic():
        item = ActionItem.objects.select_for_update().get(pk=action_item.pk)
        if getattr(item, f"{field}_id") == version.pk:
            return item
        if item.target_kind not in CLOSABLE_KINDS[model]:
            raise ValidationError(
                f"“{item}” changes {item.get_target_kind_display().lower()}; "
                f"{'an SLA' if model is SlaVersion else 'an ICP'} version cannot close it."
            )
        if not item.is_open:
            raise ValidationError(f"“{item}” is already {item.get_status_display().lower()}.")
        item.status = ActionItem.Status.DONE
        item.closed_at = timezone.now()
        setattr(item, field, version)
        item.save(update_fields=["status", "closed_at", field, "updated_at"])
    action_item.status, action_item.closed_at = item.status, item.closed_at
    setattr(action_item, field, version)
    return item
