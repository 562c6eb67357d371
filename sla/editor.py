"""Writes to the parts of a draft SLA or ICP: engagement groups and rules,
behavioural criteria, fit rules and personas, and whole sections of the editor.

Every function is keyword-only, checks that the actor may draft
(`versions.can_draft`), and locks the version row (`SELECT ... FOR UPDATE`)
before checking it is still a draft, so an edit cannot slip in while the same
draft is being published (publishing locks the row too). The models and the
database triggers refuse changes to published versions as a last line.

Validation that needs the whole version (fit bands of one attribute must not
overlap) runs after the writes, inside the same transaction, so a section
that rearranges several bands at once is judged on its result.

Every write has a worker compute the draft's impact preview once the
transaction commits (`sla.impact.impact_preview_prepare_on_commit`).
"""

from dataclasses import dataclass, field
from decimal import Decimal

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from config.audit import audit_record
from sla import versions
from sla.impact import impact_preview_prepare_on_commit
from sla.models import (
    BehaviourCriterion,
    EngagementGroup,
    EngagementRule,
    FitRule,
    IcpVersion,
    Persona,
)


def draft_lock(*, version, actor):
    """The version, re-read under a row lock, if the actor may edit it.
    Must run inside a transaction. Raises PermissionDenied or VersionError."""
    if not versions.can_draft(actor):
        raise PermissionDenied("Marketing, sales managers and RevOps admins edit drafts.")
    locked = type(version).objects.select_for_update().get(pk=version.pk)
    versions.require_draft(locked)
    return locked


def _own_part(part, version) -> None:
    if part is not None and part.version_id != version.pk:
        raise ValidationError(f"That row belongs to another version than {version.label}.")


def _write(part, data: dict, *, actor, exclude=()):
    """Save a part and write who changed what to the audit log."""
    created = part.pk is None
    before = {name: getattr(part, name, None) for name in data}
    for name, value in data.items():
        setattr(part, name, value)
    part.full_clean(exclude=exclude)
    part.save()
    changes = {
        name: [str(before[name]), str(value)]
        for name, value in data.items()
        if created or before[name] != value
    }
    audit_record(
        actor=actor,
        action=f"{part._meta.model_name}.{'add' if created else 'edit'}",
        obj=part,
        changes={"version": part.version.label, **changes},
    )
    impact_preview_prepare_on_commit(version=part.version)
    return part


@transaction.atomic
def engagement_group_save(*, version, actor, data: dict, group=None) -> EngagementGroup:
    """Create or change an engagement group (name, cap) of a draft SLA."""
    version = draft_lock(version=version, actor=actor)
    _own_part(group, version)
    return _write(group or EngagementGroup(version=version), data, actor=actor)


@transaction.atomic
def engagement_rule_save(*, version, actor, data: dict, rule=None) -> EngagementRule:
    """Create or change an engagement rule (points per touchpoint type and
    optional asset stage, in one of the draft's groups)."""
    version = draft_lock(version=version, actor=actor)
    _own_part(rule, version)
    group = data.get("group") or (rule.group if rule else None)
    if group is None or group.version_id != version.pk:
        raise ValidationError({"group": f"Choose one of {version.label}'s engagement groups."})
    return _write(rule or EngagementRule(version=version), data, actor=actor)


@transaction.atomic
def behaviour_criterion_save(*, version, actor, data: dict, criterion=None) -> BehaviourCriterion:
    """Create or change a behavioural qualification criterion of a draft SLA."""
    version = draft_lock(version=version, actor=actor)
    _own_part(criterion, version)
    return _write(criterion or BehaviourCriterion(version=version), data, actor=actor)


@transaction.atomic
def fit_rule_save(*, version, actor, data: dict, rule=None, check_bands: bool = True) -> FitRule:
    """Create or change a fit rule of a draft ICP. List attributes keep their
    values and drop bounds, banded ones the reverse. With `check_bands`, the
    bands of the rule's attribute must not overlap afterwards (a batch checks
    once at its end instead)."""
    version = draft_lock(version=version, actor=actor)
    _own_part(rule, version)
    data = dict(data)
    if data.get("attribute") in FitRule.BANDED:
        data["values"] = []
    elif "attribute" in data:
        data["min_value"] = data["max_value"] = None
    rule = _write(rule or FitRule(version=version), data, actor=actor)
    if check_bands:
        fit_bands_check(version=version)
    return rule


@transaction.atomic
def persona_save(*, version, actor, data: dict, persona=None) -> Persona:
    """Create or change a persona of a draft ICP; names are unique per version."""
    version = draft_lock(version=version, actor=actor)
    _own_part(persona, version)
    data = dict(data)
    if "name" in data:
        data["name"] = name = (data["name"] or "").strip()
        taken = Persona.objects.filter(version=version, name__iexact=name)
        if persona is not None:
            taken = taken.exclude(pk=persona.pk)
        if taken.exists():
            raise ValidationError(
                {"name": f"{version.label} already has a persona called “{name}”."}
            )
    return _write(persona or Persona(version=version), data, actor=actor)


@transaction.atomic
def part_delete(*, part, actor) -> None:
    """Delete one part of a draft. A group that still holds rules stays: its
    rules would go with it, silently."""
    version = draft_lock(version=part.version, actor=actor)
    _own_part(part, version)
    if isinstance(part, EngagementGroup):
        count = part.rules.count()
        if count:
            raise ValidationError(
                f"The group “{part.name}” still holds {count} rule{'s' if count != 1 else ''}; "
                "move them to another group or delete them first."
            )
    audit_record(
        actor=actor,
        action=f"{part._meta.model_name}.delete",
        obj=part,
        changes={"version": version.label},
    )
    part.delete()
    impact_preview_prepare_on_commit(version=version)


# --- Whole sections ------------------------------------------------------------------------

PART_SAVERS = {
    EngagementGroup: (engagement_group_save, "group"),
    EngagementRule: (engagement_rule_save, "rule"),
    BehaviourCriterion: (behaviour_criterion_save, "criterion"),
    FitRule: (fit_rule_save, "rule"),
    Persona: (persona_save, "persona"),
}


@dataclass
class SectionChanges:
    """What one editor section changes: the version's own fields, then
    deletions, then rows to save (`(part, data)`; a part without a pk is new)."""

    fields: dict = field(default_factory=dict)
    deletes: list = field(default_factory=list)
    saves: list = field(default_factory=list)


@transaction.atomic
def draft_section_save(*, version, actor, changes: SectionChanges):
    """Apply one section of the editor to a draft, all or nothing. Raises
    ValidationError (with the field or row at fault where known),
    VersionError when the version is no longer a draft, PermissionDenied."""
    version = draft_lock(version=version, actor=actor)
    if changes.fields:
        version = versions.version_update(version=version, actor=actor, data=changes.fields)
    for part in changes.deletes:
        part_delete(part=part, actor=actor)
    for part, data in changes.saves:
        saver, name = PART_SAVERS[type(part)]
        extra = {"check_bands": False} if saver is fit_rule_save else {}
        saver(
            version=version,
            actor=actor,
            data=data,
            **{name: part if part.pk else None},
            **extra,
        )
    if isinstance(version, IcpVersion):
        fit_bands_check(version=version)
    return version


# --- Whole-version checks ----------------------------------------------------------------------


@dataclass(frozen=True)
class Band:
    low: Decimal | None
    high: Decimal | None

    def overlaps(self, other: "Band") -> bool:
        """Bounds are inclusive (a lead with exactly the bound matches both)."""
        below = self.high is not None and other.low is not None and self.high < other.low
        above = self.low is not None and other.high is not None and self.low > other.high
        return not (below or above)

    def __str__(self):
        low = f"{Decimal(self.low).normalize():,f}" if self.low is not None else "any"
        high = f"{Decimal(self.high).normalize():,f}" if self.high is not None else "any"
        return f"{low}–{high}"


def band_overlaps(bands) -> list[tuple]:
    """Pairs of (attribute, band, band) that overlap, from (attribute, Band) items."""
    clashes = []
    bands = list(bands)
    for i, (attribute, band) in enumerate(bands):
        for other_attribute, other in bands[i + 1 :]:
            if attribute == other_attribute and band.overlaps(other):
                clashes.append((attribute, band, other))
    return clashes


def band_overlap_message(attribute, band, other) -> str:
    label = FitRule.Attribute(attribute).label
    return (
        f"{label} {band} and {other} overlap. Bands include their bounds, so start the "
        "next band above where the previous one ends."
    )


def fit_bands_check(*, version: IcpVersion) -> None:
    """Raise ValidationError if two bands of the same attribute overlap."""
    rules = FitRule.objects.filter(version=version, attribute__in=FitRule.BANDED).order_by(
        "attribute", "min_value"
    )
    clashes = band_overlaps((r.attribute, Band(r.min_value, r.max_value)) for r in rules)
    if clashes:
        raise ValidationError([band_overlap_message(*clash) for clash in clashes])
