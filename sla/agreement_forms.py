"""Forms of the SLA and ICP editor: one form (and/or formset) per section of a
draft. Forms validate input; writes go through `sla.editor`.

Labels come from `versions.FIELD_LABELS`, the words the diff uses too.
"""

import re
import zoneinfo
from datetime import date
from decimal import Decimal

from django import forms
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.forms import BaseModelFormSet, modelformset_factory

from leads.models import ContentAsset, FunnelStage, Segment, TouchpointType
from sla import editor, versions
from sla.models import (
    WEEKDAYS,
    BehaviourCriterion,
    EngagementGroup,
    EngagementRule,
    FitRule,
    IcpVersion,
    Persona,
    SlaVersion,
)

# --- Fields --------------------------------------------------------------------------------


class ListField(forms.CharField):
    """A list of short texts typed as "a, b, c" (commas or new lines)."""

    def __init__(self, *, item_label="value", **kwargs):
        self.item_label = item_label
        kwargs.setdefault("widget", forms.TextInput(attrs={"autocomplete": "off"}))
        super().__init__(**kwargs)

    def prepare_value(self, value):
        if isinstance(value, list | tuple):
            return ", ".join(value)
        return value

    def to_python(self, value):
        text = super().to_python(value)
        items = []
        for item in re.split(r"[,\n]", text or ""):
            item = item.strip()
            if item and item.lower() not in (seen.lower() for seen in items):
                items.append(item)
        return items

    def validate(self, value):
        if self.required and not value:
            raise ValidationError(f"List at least one {self.item_label}.", code="required")
        for item in value:
            if len(item) > 100:
                raise ValidationError(f"“{item[:30]}…” is longer than 100 characters.")


class DateListField(forms.CharField):
    """Dates typed one per line (or separated by commas) as YYYY-MM-DD."""

    widget = forms.Textarea(attrs={"rows": 3, "placeholder": "2026-12-25\n2026-12-26"})

    def prepare_value(self, value):
        if isinstance(value, list | tuple):
            return "\n".join(d.isoformat() if isinstance(d, date) else str(d) for d in value)
        return value

    def to_python(self, value):
        text = super().to_python(value)
        dates, bad = set(), []
        for item in re.split(r"[,;\s]+", text or ""):
            if not item:
                continue
            try:
                dates.add(date.fromisoformat(item))
            except ValueError:
                bad.append(item)
        if bad:
            raise ValidationError(
                f"Not a date: {', '.join(bad[:5])}. Write dates as YYYY-MM-DD, one per line."
            )
        return sorted(dates)


class PlainDecimalField(forms.DecimalField):
    """A decimal shown as typed: 24, not 24.00; 1000, not 1000.00."""

    def prepare_value(self, value):
        if isinstance(value, Decimal):
            return f"{value.normalize():f}"
        return value


def _choices_with(choices, current: str):
    """Choices plus the stored value if it is not one of them (kept, not lost)."""
    if current and current not in {value for value, _ in choices}:
        return [*choices, (current, current)]
    return choices


# --- Version sections ---------------------------------------------------------------------


class VersionSectionForm(forms.ModelForm):
    """A section of a version's own fields. Errors the model reports on fields
    this section does not show (its `clean()` checks the whole version) are
    shown at the top of the section rather than raising."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name, form_field in self.fields.items():
            if name in versions.FIELD_LABELS:
                form_field.label = versions.FIELD_LABELS[name]

    def _update_errors(self, errors):
        super()._update_errors(self.errors_for_section(errors))

    def errors_for_section(self, errors: ValidationError) -> ValidationError:
        if not hasattr(errors, "error_dict"):
            return errors
        placed: dict = {}
        for name, messages in errors.error_dict.items():
            key = name if name in self.fields else NON_FIELD_ERRORS
            placed.setdefault(key, []).extend(messages)
        return ValidationError(placed)

    def add_service_error(self, error: ValidationError) -> None:
        self.add_error(None, self.errors_for_section(error))


class AboutForm(VersionSectionForm):
    class Meta:
        model = SlaVersion
        fields = ["title", "changelog"]
        widgets = {"changelog": forms.Textarea(attrs={"rows": 3})}
        help_texts = {"changelog": "What changed and why, in words both teams understand."}


class IcpAboutForm(AboutForm):
    class Meta(AboutForm.Meta):
        model = IcpVersion


class QualificationForm(VersionSectionForm):
    mql_threshold = forms.IntegerField(
        min_value=1,
        max_value=100,
        help_text="The score (fit + engagement, 0–100) at which a lead qualifies.",
        error_messages={
            "min_value": "The threshold is a score from 1 to 100.",
            "max_value": "The threshold is a score from 1 to 100.",
        },
    )
    required_segments = forms.TypedMultipleChoiceField(
        choices=Segment.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="None chosen: any segment.",
    )
    required_min_employees = forms.IntegerField(
        min_value=1, required=False, help_text="Empty: any company size."
    )

    class Meta:
        model = SlaVersion
        fields = [
            "mql_threshold",
            "required_seniority",
            "required_min_employees",
            "required_segments",
            "behaviour_match",
            "hand_raise_qualifies",
        ]
        widgets = {"behaviour_match": forms.RadioSelect}


class EngagementForm(VersionSectionForm):
    decay_half_life_days = forms.IntegerField(
        min_value=1,
        max_value=365,
        help_text="Engagement points halve after this many days (1–365).",
    )

    class Meta:
        model = SlaVersion
        fields = ["decay_half_life_days"]


HOURS_ERRORS = {
    "min_value": "Give a positive number of business hours (at least 0.25).",
    "max_digits": "That is more business hours than an agreement can hold.",
}


def _hours_field(**kwargs):
    return PlainDecimalField(
        min_value=Decimal("0.25"),
        max_digits=5,
        decimal_places=2,
        error_messages=HOURS_ERRORS,
        widget=forms.NumberInput(attrs={"step": "0.25"}),
        **kwargs,
    )


class SalesForm(VersionSectionForm):
    response_hours_high_intent = _hours_field(help_text="Hand-raisers: demo or contact requests.")
    response_hours_standard = _hours_field()
    calendar_time_zone = forms.CharField(
        max_length=64,
        widget=forms.TextInput(attrs={"list": "time-zones", "autocomplete": "off"}),
        help_text="A name like America/Chicago or Europe/Berlin.",
    )
    working_days = forms.TypedMultipleChoiceField(
        choices=WEEKDAYS,
        coerce=int,
        widget=forms.CheckboxSelectMultiple,
        error_messages={"required": "Choose at least one working day."},
    )
    holidays = DateListField(
        required=False, help_text="Days the clock does not run: one date per line, YYYY-MM-DD."
    )

    class Meta:
        model = SlaVersion
        fields = [
            "response_hours_high_intent",
            "response_hours_standard",
            "calendar_time_zone",
            "working_days",
            "day_starts",
            "day_ends",
            "holidays",
        ]
        widgets = {
            "day_starts": forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
            "day_ends": forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
        }

    def clean_calendar_time_zone(self):
        value = self.cleaned_data["calendar_time_zone"].strip()
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError) as error:
            raise ValidationError(
                f"“{value}” is not a time zone. Use a name like Europe/Berlin or America/New_York."
            ) from error
        return value

    @staticmethod
    def time_zones() -> list[str]:
        return sorted(zoneinfo.available_timezones())


class EscalationForm(VersionSectionForm):
    reassign_after_hours = _hours_field(
        required=False,
        help_text="Business hours after a breach before the lead goes to another rep "
        "(empty: never).",
    )

    class Meta:
        model = SlaVersion
        fields = ["notify_manager_on_breach", "reassign_after_hours"]


class MarketingForm(VersionSectionForm):
    mql_commitment_per_month = forms.IntegerField(min_value=1, help_text="All segments together.")
    mql_commitment_enterprise = forms.IntegerField(
        min_value=0, required=False, help_text="Optional: a part of the total per segment."
    )
    mql_commitment_mid_market = forms.IntegerField(min_value=0, required=False)
    mql_commitment_smb = forms.IntegerField(min_value=0, required=False)
    min_acceptance_rate = forms.IntegerField(
        min_value=0,
        max_value=100,
        help_text="Percent of MQLs sales should accept (0–100).",
    )

    class Meta:
        model = SlaVersion
        fields = [
            "mql_commitment_per_month",
            "mql_commitment_enterprise",
            "mql_commitment_mid_market",
            "mql_commitment_smb",
            "min_acceptance_rate",
        ]

    def clean(self):
        data = super().clean()
        total = data.get("mql_commitment_per_month")
        parts = [
            data.get(name)
            for name in (
                "mql_commitment_enterprise",
                "mql_commitment_mid_market",
                "mql_commitment_smb",
            )
        ]
        if total and sum(p or 0 for p in parts) > total:
            raise ValidationError("The segment commitments add up to more than the monthly total.")
        return data


class FeedbackForm(VersionSectionForm):
    retro_amount_threshold = PlainDecimalField(
        min_value=Decimal("0"), max_digits=14, decimal_places=2
    )
    retro_due_days = forms.IntegerField(min_value=1, max_value=365)

    class Meta:
        model = SlaVersion
        fields = ["retro_amount_threshold", "retro_due_days"]


class FitForm(VersionSectionForm):
    max_fit_points = forms.IntegerField(
        min_value=1,
        max_value=100,
        help_text="Fit points are capped here (1–100); engagement makes up the rest.",
    )

    class Meta:
        model = IcpVersion
        fields = ["max_fit_points"]


# --- Part formsets ------------------------------------------------------------------------


class PartFormSet(BaseModelFormSet):
    """Rows of one kind of part of a draft: edit, add (the blank row) and
    delete (a checkbox). `version` is the draft they belong to."""

    def __init__(self, *args, version, **kwargs):
        self.version = version
        super().__init__(*args, **kwargs)

    def kept_forms(self):
        """Valid forms of rows that stay (not deleted, not left blank)."""
        return [
            form
            for form in self.forms
            if (form.has_changed() or form.instance.pk)
            and not self._should_delete_form(form)
            and not form.errors
        ]

    def changes(self) -> editor.SectionChanges:
        changes = editor.SectionChanges()
        for form in self.forms:
            if self._should_delete_form(form):
                if form.instance.pk:
                    changes.deletes.append(form.instance)
            elif form.has_changed():
                data = {name: form.cleaned_data[name] for name in form._meta.fields}
                changes.saves.append((form.instance, data))
        return changes


class CriterionForm(forms.ModelForm):
    touchpoint_types = forms.TypedMultipleChoiceField(
        choices=TouchpointType.choices,
        label="Touchpoints",
        widget=forms.SelectMultiple(attrs={"size": 4}),
        error_messages={"required": "Choose at least one kind of touchpoint."},
    )
    asset_kind = forms.ChoiceField(required=False, label="Asset kind")
    min_count = forms.IntegerField(min_value=1, max_value=1000, label="At least")
    within_days = forms.IntegerField(min_value=1, max_value=365, label="Within days")

    class Meta:
        model = BehaviourCriterion
        fields = [
            "label",
            "touchpoint_types",
            "asset_stage",
            "asset_kind",
            "min_count",
            "within_days",
        ]
        labels = {"label": "Criterion", "asset_stage": "Asset stage"}
        widgets = {"label": forms.TextInput(attrs={"placeholder": "Pricing page 3+ in 7 days"})}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["asset_kind"].choices = _choices_with(
            [("", "Any asset"), *ContentAsset.Kind.choices], self.instance.asset_kind
        )
        self.fields["asset_stage"].choices = [("", "Any stage"), *FunnelStage.choices]


class CriterionFormSet(PartFormSet):
    pass


class GroupForm(forms.ModelForm):
    cap = forms.IntegerField(min_value=0, max_value=100, help_text=None, label="Cap (points)")

    class Meta:
        model = EngagementGroup
        fields = ["name", "cap"]
        labels = {"name": "Group"}


class GroupFormSet(PartFormSet):
    def clean(self):
        super().clean()
        names = {}
        for form in self.kept_forms():
            name = form.cleaned_data.get("name", "").strip().lower()
            if name in names:
                form.add_error("name", "Two groups have this name.")
            names[name] = form
        # Errors on rows marked for deletion do not count, so these go on the formset.
        refusals = []
        for form in self.forms:
            if not (self._should_delete_form(form) and form.instance.pk):
                continue
            count = form.instance.rules.count()
            if count:
                refusals.append(
                    f"The group “{form.instance.name}” still holds {count} "
                    f"rule{'s' if count != 1 else ''}: move them to another group or delete "
                    "them first."
                )
        if refusals:
            raise ValidationError(refusals)


class RuleForm(forms.ModelForm):
    group = forms.TypedChoiceField(
        label="Group",
        coerce=int,
        error_messages={"invalid_choice": "Choose one of this version's groups."},
    )
    points = forms.IntegerField(min_value=-50, max_value=50, label="Points")

    class Meta:
        model = EngagementRule
        fields = ["touchpoint_type", "asset_stage", "points", "group"]
        labels = {"touchpoint_type": "Touchpoint", "asset_stage": "Only on assets of stage"}

    def __init__(self, *args, groups=(), **kwargs):
        self.groups = {group.pk: group for group in groups}
        super().__init__(*args, **kwargs)
        self.fields["group"].choices = [("", "—"), *((g.pk, g.name) for g in groups)]
        self.fields["asset_stage"].choices = [("", "Any asset or none"), *FunnelStage.choices]

    def clean_group(self):
        group = self.groups.get(self.cleaned_data["group"])
        if group is None:
            raise ValidationError("Choose one of this version's groups.")
        return group


class RuleFormSet(PartFormSet):
    def __init__(self, *args, version, **kwargs):
        # One query for the groups, shared by every row's choices.
        self.groups = list(EngagementGroup.objects.filter(version=version))
        super().__init__(*args, version=version, **kwargs)

    def get_form_kwargs(self, index):
        return {**super().get_form_kwargs(index), "groups": self.groups}

    def clean(self):
        super().clean()
        seen = {}
        for form in self.kept_forms():
            key = (form.cleaned_data.get("touchpoint_type"), form.cleaned_data.get("asset_stage"))
            if key in seen:
                form.add_error(
                    "touchpoint_type",
                    "Another row already scores this touchpoint on this asset stage.",
                )
            seen[key] = form


class FitRuleForm(forms.ModelForm):
    values = ListField(
        required=False, label="Values", help_text="For lists: comma-separated, e.g. software, saas"
    )
    min_value = PlainDecimalField(required=False, max_digits=14, decimal_places=2, label="From")
    max_value = PlainDecimalField(required=False, max_digits=14, decimal_places=2, label="To")
    points = forms.IntegerField(min_value=-50, max_value=50, label="Points")

    class Meta:
        model = FitRule
        fields = ["attribute", "values", "min_value", "max_value", "points"]
        labels = {"attribute": "Rule"}

    def clean(self):
        data = super().clean()
        attribute = data.get("attribute")
        if attribute in FitRule.BANDED:
            low, high = data.get("min_value"), data.get("max_value")
            if low is None and high is None:
                raise ValidationError("Give a lower bound, an upper bound, or both.")
            if low is not None and high is not None and low > high:
                self.add_error("max_value", "The upper bound is below the lower one.")
            data["values"] = []
        elif attribute:
            if not data.get("values"):
                self.add_error("values", "List at least one value.")
            elif attribute == FitRule.Attribute.SEGMENT:
                data["values"] = self._segments(data["values"])
            data["min_value"] = data["max_value"] = None
        return data

    def _segments(self, values):
        """Segments by key or label ("mid_market" or "Mid-market"), stored as keys,
        which is what scoring compares."""
        known = {}
        for key, label in Segment.choices:
            known[key.lower()] = known[str(label).lower()] = key
        unknown = [value for value in values if value.lower() not in known]
        if unknown:
            self.add_error(
                "values",
                f"Not a segment: {', '.join(unknown)}. Use "
                f"{', '.join(str(label) for _, label in Segment.choices)}.",
            )
            return values
        return list(dict.fromkeys(known[value.lower()] for value in values))


class FitRuleFormSet(PartFormSet):
    def clean(self):
        super().clean()
        banded = [
            (form, form.cleaned_data["attribute"], editor.Band(
                form.cleaned_data.get("min_value"), form.cleaned_data.get("max_value")
            ))
            for form in self.kept_forms()
            if form.cleaned_data.get("attribute") in FitRule.BANDED
        ]  # fmt: skip
        for i, (_, attribute, band) in enumerate(banded):
            for other_form, other_attribute, other in banded[i + 1 :]:
                if attribute == other_attribute and band.overlaps(other):
                    other_form.add_error(None, editor.band_overlap_message(attribute, band, other))


def _formset(form, formset, *, extra=1, fields=None):
    return modelformset_factory(
        form.Meta.model, form=form, formset=formset, extra=extra, can_delete=True,
        fields=fields or form.Meta.fields,
    )  # fmt: skip


CriteriaFormSetClass = _formset(CriterionForm, CriterionFormSet)
GroupFormSetClass = _formset(GroupForm, GroupFormSet)
RuleFormSetClass = _formset(RuleForm, RuleFormSet)
FitRuleFormSetClass = _formset(FitRuleForm, FitRuleFormSet)


class PersonaForm(forms.ModelForm):
    title_keywords = ListField(
        item_label="title keyword",
        label="Title keywords",
        help_text="Job titles containing any of these words match the persona, "
        "e.g. head of it, cio, it director",
    )

    class Meta:
        model = Persona
        fields = [
            "name",
            "buying_role",
            "title_keywords",
            "summary",
            "pain_points",
            "value_propositions",
            "proof_points",
            "objections",
        ]
        labels = {"buying_role": "Role in the buying committee"}
        help_texts = {
            "pain_points": "One per line.",
            "value_propositions": "One per line.",
            "proof_points": "Customer stories, numbers, references; one per line.",
            "objections": "One per line: the objection, then how to answer it.",
        }
        widgets = {
            "summary": forms.Textarea(attrs={"rows": 2}),
            "pain_points": forms.Textarea(attrs={"rows": 3}),
            "value_propositions": forms.Textarea(attrs={"rows": 3}),
            "proof_points": forms.Textarea(attrs={"rows": 3}),
            "objections": forms.Textarea(attrs={"rows": 3}),
        }


class PublishForm(forms.Form):
    changelog = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        label="Changelog",
        help_text="What changed and why, in words both teams understand. Everyone reads it.",
        error_messages={"required": "Say what changed and why before publishing."},
    )

    def __init__(self, *args, model=None, **kwargs):
        super().__init__(*args, **kwargs)
        if model is not None:
            # Win/loss action items this version makes happen ("why it changed").
            from reporting.winloss_forms import ClosesActionsField

            self.fields["closes_actions"] = ClosesActionsField(model=model)
