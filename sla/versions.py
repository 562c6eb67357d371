"""Writes and reads of the agreement's versions: drafts cloned from the version
in force, edits of drafts, publishing, and the field-by-field diff.

Publishing is serialised per kind with a transaction-level advisory lock, so
two admins publishing at once leave exactly one version in force (the partial
unique index `*_one_version_in_force` is the backstop).
"""

from dataclasses import dataclass
from decimal import Decimal

from django.core.exceptions import NON_FIELD_ERRORS, PermissionDenied, ValidationError
from django.db import connection, transaction
from django.db.models import Max
from django.forms.models import model_to_dict
from django.utils import timezone

from config import roles
from config.audit import audit_record
from leads.models import ContentAsset, Segment, TouchpointType
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


class VersionError(Exception):
    """A version operation that the version's state does not allow."""


_PUBLISH_LOCKS = {SlaVersion: 0x51A, IcpVersion: 0x1C9}


def can_publish(user) -> bool:
    return user.is_superuser or roles.has_role(user, roles.REVOPS_ADMIN)


def can_draft(user) -> bool:
    """Marketing drafts changes to the agreement; RevOps admins too; sales
    managers may propose SLA changes as well."""
    return can_publish(user) or roles.has_role(user, roles.MARKETING, roles.SALES_MANAGER)


def in_force(model):
    """The version of this kind in force now (None before the first publish)."""
    return model.objects.filter(status=VersionStatus.PUBLISHED).first()


def sla_in_force() -> SlaVersion | None:
    return in_force(SlaVersion)


def icp_in_force() -> IcpVersion | None:
    return in_force(IcpVersion)


def _next_number(model) -> int:
    return (model.objects.aggregate(n=Max("number"))["n"] or 0) + 1


def _copy_fields(instance, exclude=()) -> dict:
    skip = {"id", "number", "status", "created_by", "created_at", "published_by",
            "published_at", "superseded_at", "based_on", "changelog", *exclude}  # fmt: skip
    return {
        field.attname: getattr(instance, field.attname)
        for field in instance._meta.concrete_fields
        if field.name not in skip and field.attname not in skip
    }


@transaction.atomic
def sla_draft_create(*, actor, based_on: SlaVersion | None = None, title: str = "") -> SlaVersion:
    """A new SLA draft, a copy of `based_on` (default: the version in force)
    with its engagement groups, rules and behavioural criteria."""
    if not can_draft(actor):
        raise PermissionDenied("Marketing, sales managers and RevOps admins draft SLA changes.")
    source = based_on or sla_in_force()
    if source is None:
        draft = SlaVersion(
            number=_next_number(SlaVersion), title=title or "First agreement", created_by=actor
        )
        draft.working_days = [0, 1, 2, 3, 4]
        draft.save()
        audit_record(actor=actor, action="sla.draft", obj=draft)
        _impact_preview_prepare(draft)
        return draft
    draft = SlaVersion(
        **_copy_fields(source),
        number=_next_number(SlaVersion),
        based_on=source,
        created_by=actor,
    )
    if title:
        draft.title = title
    draft.save()
    groups = {}
    for group in source.groups.all():
        groups[group.pk] = EngagementGroup.objects.create(
            version=draft, name=group.name, cap=group.cap
        )
    EngagementRule.objects.bulk_create(
        EngagementRule(
            version=draft,
            touchpoint_type=rule.touchpoint_type,
            asset_stage=rule.asset_stage,
            points=rule.points,
            group=groups[rule.group_id],
        )
        for rule in source.engagement_rules.all()
    )
    BehaviourCriterion.objects.bulk_create(
        BehaviourCriterion(version=draft, **_copy_fields(criterion, exclude=("version",)))
        for criterion in source.behaviour_criteria.all()
    )
    audit_record(actor=actor, action="sla.draft", obj=draft, changes={"based_on": source.label})
    _impact_preview_prepare(draft)
    return draft


@transaction.atomic
def icp_draft_create(*, actor, based_on: IcpVersion | None = None, title: str = "") -> IcpVersion:
    """A new ICP draft, a copy of `based_on` (default: the version in force)
    with its fit rules and personas."""
    if not can_draft(actor):
        raise PermissionDenied("Marketing, sales managers and RevOps admins draft ICP changes.")
    source = based_on or icp_in_force()
    draft = IcpVersion(number=_next_number(IcpVersion), created_by=actor, based_on=source)
    if source is not None:
        for name, value in _copy_fields(source).items():
            setattr(draft, name, value)
    draft.title = title or (source.title if source else "First ideal customer profile")
    draft.save()
    if source is not None:
        FitRule.objects.bulk_create(
            FitRule(version=draft, **_copy_fields(rule, exclude=("version",)))
            for rule in source.fit_rules.all()
        )
        Persona.objects.bulk_create(
            Persona(version=draft, **_copy_fields(persona, exclude=("version",)))
            for persona in source.personas.all()
        )
    audit_record(
        actor=actor,
        action="icp.draft",
        obj=draft,
        changes={"based_on": source.label} if source else {},
    )
    _impact_preview_prepare(draft)
    return draft


def _kind(version) -> str:
    return "sla" if isinstance(version, SlaVersion) else "icp"


def _impact_preview_prepare(draft) -> None:
    """A draft was written: its impact preview is computed after commit."""
    from sla.impact import impact_preview_prepare_on_commit

    impact_preview_prepare_on_commit(version=draft)


def require_draft(version) -> None:
    if not version.is_draft:
        raise VersionError(
            f"{version.label} is {version.get_status_display().lower()}; only drafts can be edited."
        )


@transaction.atomic
def version_update(*, version, actor, data: dict):
    """Save edited fields of a draft (already validated by a form)."""
    if not can_draft(actor):
        raise PermissionDenied("You cannot edit the agreement.")
    require_draft(version)
    changes = {
        field: [getattr(version, field), value]
        for field, value in data.items()
        if getattr(version, field) != value
    }
    for field, value in data.items():
        setattr(version, field, value)
    version.full_clean()
    version.save()
    if changes:
        audit_record(actor=actor, action=f"{_kind(version)}.edit", obj=version, changes=changes)
        _impact_preview_prepare(version)
    return version


@transaction.atomic
def version_discard(*, version, actor) -> None:
    """Delete a draft (and its parts)."""
    if not can_draft(actor):
        raise PermissionDenied("You cannot discard drafts.")
    require_draft(version)
    audit_record(actor=actor, action=f"{_kind(version)}.discard", obj=version)
    version.delete()


@transaction.atomic
def version_publish(*, version, actor, changelog: str = "", closes_actions=()):
    """Put a draft in force: the version in force becomes superseded, the
    draft published. RevOps admins only. Serialised per kind, so concurrent
    publishes leave exactly one version in force. Refused (VersionError) for
    a draft that was not cloned from the version in force now (another was
    published since: publishing it would silently undo that one), and
    (ValidationError) for a draft the editor would not accept, e.g. one
    changed in the admin. After commit, every open lead is re-scored under
    the new versions (a background job)."""
    if not can_publish(actor):
        raise PermissionDenied("Only RevOps admins can publish a version.")
    model = type(version)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_PUBLISH_LOCKS[model]])
    version = model.objects.select_for_update().get(pk=version.pk)
    require_draft(version)
    stale = draft_staleness(version)
    if stale:
        raise VersionError(stale)
    if changelog:
        version.changelog = changelog
    if not version.changelog.strip():
        raise VersionError("Say what changed and why in the changelog before publishing.")
    _check_publishable(version)
    now = timezone.now()
    model.objects.filter(status=VersionStatus.PUBLISHED).update(
        status=VersionStatus.SUPERSEDED, superseded_at=now
    )
    version.status = VersionStatus.PUBLISHED
    version.published_at = now
    version.published_by = actor
    model.objects.filter(pk=version.pk).update(
        status=version.status,
        published_at=now,
        published_by=actor,
        changelog=version.changelog,
    )
    audit_record(
        actor=actor,
        action=f"{_kind(version)}.publish",
        obj=version,
        changes={"changelog": version.changelog},
    )
    if closes_actions:
        _link_closed_actions(version, closes_actions)
    from sla.scoring import rescore_job_create

    rescore_job_create()
    return version


def _link_closed_actions(version, actions) -> None:
    """Retrospective action items this version closes (reporting app)."""
    for action in actions:
        action.close_by_version(version)


def draft_staleness(version) -> str:
    """Why this draft may not be published as it stands, because another
    version was published after it was cloned (or started), in words for
    the page; "" when it is current. A published version never is stale."""
    if not version.is_draft:
        return ""
    current = in_force(type(version))
    if current is None or current.pk == version.based_on_id:
        return ""
    if version.based_on_id is None:
        origin = "was started from scratch"
    else:
        based_on = version.based_on
        origin = f"was cloned from {based_on.label}"
    return (
        f"This draft {origin}; {current.label} has been published since. Publishing it would "
        f"undo {current.label}'s changes. Clone {current.label} again and make this draft's "
        "changes there (its diff shows them), or discard this draft."
    )


def _check_publishable(version) -> None:
    """What the editor refuses, checked again on the whole version: a draft
    can also be changed in the Django admin, which does not run the editor's
    whole-version checks. Raises VersionError (nothing to publish) or
    ValidationError (every problem found, each naming its row)."""
    from sla import editor

    problems = []

    def check(label, instance):
        """The row's own validation, each message saying which row and field."""
        try:
            instance.full_clean(exclude=["version"] if label else None)
        except ValidationError as error:
            for name, messages in error.message_dict.items():
                where = [label] if label else []
                if name != NON_FIELD_ERRORS:
                    where.append(field_label(type(instance), name).lower())
                prefix = ", ".join(where)
                problems.extend(f"{prefix}: {m}" if prefix else m for m in messages)

    check("", version)
    if isinstance(version, SlaVersion):
        rules = list(version.engagement_rules.select_related("group"))
        if not rules:
            raise VersionError("An SLA needs engagement rules before it can be published.")
        for group in version.groups.all():
            check(f"Engagement group “{group.name}”", group)
        for rule in rules:
            label = f"Engagement rule “{rule}”"
            check(label, rule)
            if rule.group.version_id != version.pk:
                problems.append(f"{label}: its group belongs to {rule.group.version.label}.")
        for criterion in version.behaviour_criteria.all():
            check(f"Behavioural criterion “{criterion.label}”", criterion)
        segments = [version.mql_commitment_enterprise, version.mql_commitment_mid_market,
                    version.mql_commitment_smb]  # fmt: skip
        if sum(n or 0 for n in segments) > version.mql_commitment_per_month:
            problems.append("The segment commitments add up to more than the monthly total.")
    else:
        fit_rules = list(version.fit_rules.all())
        if not fit_rules:
            raise VersionError("An ICP needs fit rules before it can be published.")
        for rule in fit_rules:
            label = f"Fit rule “{rule.describe()}”"
            check(label, rule)
            if rule.attribute == FitRule.Attribute.SEGMENT:
                unknown = [value for value in rule.values if value.lower() not in Segment.values]
                if unknown:
                    problems.append(
                        f"{label}: not a segment: {', '.join(unknown)}. Use "
                        f"{', '.join(Segment.values)}."
                    )
        try:
            editor.fit_bands_check(version=version)
        except ValidationError as error:
            problems.extend(error.messages)
        for persona in version.personas.all():
            check(f"Persona “{persona.name}”", persona)
    if problems:
        raise ValidationError([f"Fix this before publishing: {p}" for p in problems])


# --- The diff ------------------------------------------------------------------------


@dataclass
class Change:
    section: str
    label: str
    before: str
    after: str


SLA_SECTIONS = {
    "Qualification": [
        "mql_threshold", "required_seniority", "required_min_employees", "required_segments",
        "behaviour_match", "hand_raise_qualifies",
    ],
    "Engagement": ["decay_half_life_days"],
    "Sales commitments": [
        "response_hours_high_intent", "response_hours_standard", "calendar_time_zone",
        "working_days", "day_starts", "day_ends", "holidays", "notify_manager_on_breach",
        "reassign_after_hours",
    ],
    "Marketing commitments": [
        "mql_commitment_per_month", "mql_commitment_enterprise", "mql_commitment_mid_market",
        "mql_commitment_smb", "min_acceptance_rate",
    ],
    "Feedback commitments": ["retro_amount_threshold", "retro_due_days"],
    "About": ["title"],
}  # fmt: skip
ICP_SECTIONS = {"Fit": ["max_fit_points"], "About": ["title"]}

# What each field is called on the agreement's pages and in its diff: words a
# non-engineer reads (the models keep Django's default verbose names).
FIELD_LABELS = {
    "title": "Title",
    "changelog": "Changelog",
    "mql_threshold": "MQL score threshold",
    "required_seniority": "Required seniority",
    "required_min_employees": "Minimum company size (employees)",
    "required_segments": "Only these segments",
    "behaviour_match": "Behavioural criteria a lead must meet",
    "hand_raise_qualifies": "A demo or contact request qualifies the lead",
    "decay_half_life_days": "Engagement half-life (days)",
    "response_hours_high_intent": "First contact for high-intent leads (business hours)",
    "response_hours_standard": "First contact for other MQLs (business hours)",
    "calendar_time_zone": "Time zone of the business calendar",
    "working_days": "Working days",
    "day_starts": "Working day starts",
    "day_ends": "Working day ends",
    "holidays": "Holidays",
    "notify_manager_on_breach": "Notify the manager at a breach",
    "reassign_after_hours": "Reassign after a breach (business hours)",
    "mql_commitment_per_month": "MQLs per month",
    "mql_commitment_enterprise": "MQLs per month: Enterprise",
    "mql_commitment_mid_market": "MQLs per month: Mid-market",
    "mql_commitment_smb": "MQLs per month: SMB",
    "min_acceptance_rate": "Minimum acceptance rate (%)",
    "retro_amount_threshold": "Retrospective for closed deals above (USD)",
    "retro_due_days": "Days to hold the retrospective",
    "max_fit_points": "Maximum fit points",
}


def field_label(model, name: str) -> str:
    return FIELD_LABELS.get(name) or str(model._meta.get_field(name).verbose_name).capitalize()


def display_value(instance, field_name: str, value) -> str:
    field = instance._meta.get_field(field_name)
    if value in (None, "", []):
        return "—"
    if field.choices:
        return dict(field.flatchoices).get(value, str(value))
    base_field = getattr(field, "base_field", None)
    if base_field is not None and base_field.choices:
        labels = dict(base_field.flatchoices)
        return ", ".join(str(labels.get(item, item)) for item in value)
    if isinstance(value, list):
        return ", ".join(str(item) for item in value)
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if isinstance(value, Decimal):
        return f"{value.normalize():f}"
    if hasattr(value, "strftime"):
        return value.strftime("%H:%M") if hasattr(value, "hour") else value.isoformat()
    return str(value)


def version_diff(old, new) -> list[Change]:
    """Every difference between two versions of the same kind, field by field
    and part by part, labelled in words a non-engineer reads. `old` may be
    None (the first version): everything is then new."""
    sections = SLA_SECTIONS if isinstance(new, SlaVersion) else ICP_SECTIONS
    changes = []
    old_values = model_to_dict(old) if old else {}
    new_values = model_to_dict(new)
    for section, fields in sections.items():
        for name in fields:
            before = display_value(new, name, old_values.get(name)) if old else "—"
            after = display_value(new, name, new_values.get(name))
            if before != after:
                changes.append(Change(section, field_label(new, name), before, after))
    for section, before_parts, after_parts in _parts(old, new):
        # In the new version's order, then what it removed.
        for key in [*after_parts, *(k for k in before_parts if k not in after_parts)]:
            before = before_parts.get(key, "—")
            after = after_parts.get(key, "—")
            if before != after:
                changes.append(Change(section, key, before, after))
    return changes


def _parts(old, new):
    """(section, {key: description}) pairs for each kind of part."""
    if isinstance(new, SlaVersion):

        def rules(version):
            return {
                f"{r.get_touchpoint_type_display()}"
                + (f" ({r.get_asset_stage_display()})" if r.asset_stage else ""): (
                    f"{r.points:+d} points, group {r.group.name}"
                )
                for r in version.engagement_rules.select_related("group")
            } if version else {}  # fmt: skip

        def groups(version):
            return (
                {f"Group “{g.name}”": f"capped at {g.cap}" for g in version.groups.all()}
                if version
                else {}
            )

        def criteria(version):
            return {
                c.label: f"{c.min_count}+ of {_touchpoint_labels(c.touchpoint_types)} in {c.within_days} days"
                + (f" on {_asset_kind_label(c.asset_kind) or c.get_asset_stage_display().lower() + ' assets'}" if c.asset_kind or c.asset_stage else "")
                for c in version.behaviour_criteria.all()
            } if version else {}  # fmt: skip

        return [
            ("Engagement points", rules(old), rules(new)),
            ("Engagement caps", groups(old), groups(new)),
            ("Behavioural criteria", criteria(old), criteria(new)),
        ]

    def fit(version):
        return (
            {r.describe(): f"{r.points:+d} points" for r in version.fit_rules.all()}
            if version
            else {}
        )

    def personas(version):
        """One entry per persona and field, so a changed objection shows as
        that objection, not as a changed persona."""
        entries = {}
        for p in version.personas.all() if version else ():
            for label, value in (
                ("role", p.get_buying_role_display()),
                ("title keywords", ", ".join(p.title_keywords)),
                ("summary", p.summary),
                ("pain points", p.pain_points),
                ("value propositions", p.value_propositions),
                ("proof points", p.proof_points),
                ("objections", p.objections),
            ):
                entries[f"Persona “{p.name}”: {label}"] = value or "—"
        return entries

    return [("Fit rules", fit(old), fit(new)), ("Personas", personas(old), personas(new))]


def _touchpoint_labels(types) -> str:
    labels = dict(TouchpointType.choices)
    return " or ".join(str(labels.get(t, t)).lower() for t in types)


def _asset_kind_label(kind: str) -> str:
    return str(dict(ContentAsset.Kind.choices).get(kind, kind)).lower() if kind else ""


def previous_version(version):
    """The version this one is compared with: the one it was cloned from, else
    the highest-numbered one before it."""
    if version.based_on_id:
        return version.based_on
    return type(version).objects.filter(number__lt=version.number).order_by("-number").first()
