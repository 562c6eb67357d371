from datetime import timedelta

from django import forms
from django.contrib.auth import get_user_model
from django.utils import timezone

from config import roles
from leads.models import (
    Account,
    Activity,
    Campaign,
    Channel,
    Competitor,
    ContentAsset,
    FeedbackReason,
    LeadStage,
    Objection,
    Product,
    Segment,
    TouchpointType,
)
from leads.permissions import managed_user_ids
from leads.selectors import LEAD_SORTS, SlaStatus
from sla.models import SlaVersion, VersionStatus


def sellers():
    """Active users in a sales role, for owner pickers."""
    return (
        get_user_model()
        .objects.filter(is_active=True, groups__name__in=[roles.SALES_REP, roles.SALES_MANAGER])
        .distinct()
        .order_by("first_name", "last_name", "username")
    )


class OwnerFilterField(forms.CharField):
    """The "owner" filter of lists and boards: anyone, me, my team (the
    sellers I manage), unassigned, or one seller."""

    SPECIAL = ("", "me", "team", "none")

    def __init__(self, **kwargs):
        kwargs.setdefault("required", False)
        kwargs.setdefault("label", "Owner")
        super().__init__(**kwargs)

    def set_choices(self):
        choices = [("", "Anyone"), ("me", "Me"), ("team", "My team"), ("none", "Unassigned")]
        choices += [(str(u.pk), u.get_full_name() or u.username) for u in sellers()]
        self.widget = forms.Select(choices=choices)

    def validate(self, value):
        super().validate(value)
        if value not in self.SPECIAL and not value.isdigit():
            raise forms.ValidationError("Choose an owner from the list.")


def owner_filter_kwargs(value: str, user) -> dict:
    """Selector arguments (owner, owners, unassigned) for an owner filter value."""
    owner = None
    if value == "me":
        owner = user
    elif value.isdigit():
        owner = get_user_model()(pk=int(value))
    return {
        "owner": owner,
        "owners": managed_user_ids(user) if value == "team" and user else None,
        "unassigned": value == "none",
    }


class SellerChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, user):
        return user.get_full_name() or user.username


class SlaVersionChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, version):
        return f"{version.label} — {version.title}"


class LeadFilterForm(forms.Form):
    """The lead list's search, filters and sort (GET; kept in the URL)."""

    q = forms.CharField(
        required=False,
        label="Search",
        widget=forms.TextInput(
            attrs={"type": "search", "placeholder": "Name, email or company", "autocomplete": "off"}
        ),
    )
    stage = forms.MultipleChoiceField(
        required=False, choices=LeadStage.choices, widget=forms.SelectMultiple(attrs={"size": 4})
    )
    owner = OwnerFilterField()
    channel = forms.MultipleChoiceField(
        required=False,
        label="Source channel",
        choices=Channel.choices,
        widget=forms.SelectMultiple(attrs={"size": 4}),
    )
    campaign = forms.ModelChoiceField(
        required=False, queryset=Campaign.objects.order_by("name"), empty_label="Any campaign"
    )
    score_min = forms.IntegerField(required=False, min_value=0, max_value=100, label="Score from")
    score_max = forms.IntegerField(
        required=False,
        min_value=0,
        max_value=100,
        label="Score up to",
        widget=forms.NumberInput(attrs={"aria-label": "Score up to"}),
    )
    sla = forms.ChoiceField(
        required=False, label="SLA status", choices=[("", "Any"), *SlaStatus.CHOICES]
    )
    segment = forms.MultipleChoiceField(
        required=False, choices=Segment.choices, widget=forms.SelectMultiple(attrs={"size": 3})
    )
    sla_version = SlaVersionChoiceField(
        required=False,
        label="Qualified under",
        queryset=SlaVersion.objects.exclude(status=VersionStatus.DRAFT).order_by("-number"),
        empty_label="Any SLA version",
    )
    # Set by links such as an account's "all people"; the list shows it as a
    # removable filter rather than a picker of every account.
    account = forms.ModelChoiceField(
        required=False, queryset=Account.objects.all(), widget=forms.HiddenInput
    )
    sort = forms.ChoiceField(
        required=False, choices=[(k, v[0]) for k, v in LEAD_SORTS.items()], initial="newest"
    )

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        self.fields["owner"].set_choices()

    def clean(self):
        data = super().clean()
        low, high = data.get("score_min"), data.get("score_max")
        if low is not None and high is not None and low > high:
            self.add_error("score_max", "The upper score must not be below the lower one.")
        return data

    def selector_kwargs(self) -> dict:
        """Arguments for `selectors.leads_filtered` from valid data (invalid
        fields are ignored, so a bad parameter narrows nothing)."""
        data = self.cleaned_data if self.is_bound else {}
        return {
            "q": data.get("q") or "",
            "stages": data.get("stage") or (),
            **owner_filter_kwargs(data.get("owner") or "", self.user),
            "channels": data.get("channel") or (),
            "campaign": data.get("campaign"),
            "score_min": data.get("score_min"),
            "score_max": data.get("score_max"),
            "sla_status": data.get("sla") or "",
            "segments": data.get("segment") or (),
            "sla_version": data.get("sla_version"),
            "account": data.get("account"),
        }

    @property
    def sort_key(self) -> str:
        return (self.cleaned_data.get("sort") if self.is_bound else None) or "newest"


class ReasonChoiceField(forms.ModelChoiceField):
    def __init__(self, applies_to, **kwargs):
        super().__init__(
            queryset=FeedbackReason.objects.filter(
                is_active=True, applies_to__contains=[applies_to]
            ),
            empty_label="Choose a reason…",
            **kwargs,
        )


class FeedbackFieldsMixin(forms.Form):
    note = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="What marketing should know: what you heard, what was missing.",
    )
    objections = forms.ModelMultipleChoiceField(
        required=False,
        queryset=Objection.objects.filter(is_active=True),
        widget=forms.CheckboxSelectMultiple,
        help_text="Objections the lead raised.",
    )
    competitor = forms.ModelChoiceField(
        required=False,
        queryset=Competitor.objects.filter(is_active=True),
        empty_label="No competitor mentioned",
    )


class LeadRejectForm(FeedbackFieldsMixin):
    reason = ReasonChoiceField(FeedbackReason.AppliesTo.REJECT, label="Why are you rejecting it?")
    field_order = ["reason", "note", "objections", "competitor"]


class LeadDisqualifyForm(FeedbackFieldsMixin):
    reason = ReasonChoiceField(FeedbackReason.AppliesTo.DISQUALIFY, label="Why is it disqualified?")
    field_order = ["reason", "note", "objections", "competitor"]


class LeadFeedbackForm(FeedbackFieldsMixin):
    def clean(self):
        data = super().clean()
        if not (data.get("note") or data.get("objections") or data.get("competitor")):
            raise forms.ValidationError("Write a note, or pick an objection or a competitor.")
        return data


class NoteForm(forms.Form):
    note = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))


class ActivityForm(forms.Form):
    kind = forms.ChoiceField(choices=Activity.Kind.choices, initial=Activity.Kind.CALL)
    subject = forms.CharField(max_length=200)
    body = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}), label="Notes")
    occurred_at = forms.DateTimeField(
        required=False,
        label="When",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        help_text="Leave empty for now. The first call, email or meeting is the lead's first contact.",
    )

    def clean_occurred_at(self):
        value = self.cleaned_data.get("occurred_at")
        if value and value > timezone.now() + timedelta(minutes=5):
            raise forms.ValidationError("An activity cannot be in the future.")
        return value


class TouchpointForm(forms.Form):
    type = forms.ChoiceField(choices=TouchpointType.choices, label="What happened")
    occurred_at = forms.DateTimeField(
        label="When",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )
    channel = forms.ChoiceField(
        choices=[("", "From the campaign"), *Channel.choices], required=False
    )
    campaign = forms.ModelChoiceField(queryset=Campaign.objects.all(), required=False)
    asset = forms.ModelChoiceField(
        queryset=ContentAsset.objects.all(), required=False, label="Content asset"
    )
    note = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, *args, **kwargs):
        kwargs.setdefault(
            "initial", {"occurred_at": timezone.localtime().replace(second=0, microsecond=0)}
        )
        super().__init__(*args, **kwargs)

    def clean_occurred_at(self):
        value = self.cleaned_data["occurred_at"]
        if value > timezone.now() + timedelta(minutes=5):
            raise forms.ValidationError("A touchpoint cannot be in the future.")
        return value


class ConvertForm(forms.Form):
    name = forms.CharField(
        max_length=200, required=False, help_text="Leave empty to name it after the account."
    )
    amount = forms.DecimalField(min_value=0, max_digits=14, decimal_places=2, initial=0)
    expected_close_on = forms.DateField(
        required=False, label="Expected close", widget=forms.DateInput(attrs={"type": "date"})
    )
    product = forms.ModelChoiceField(queryset=Product.objects.all(), required=False)

    def clean_expected_close_on(self):
        value = self.cleaned_data.get("expected_close_on")
        if value and value < timezone.localdate():
            raise forms.ValidationError("The expected close date cannot be in the past.")
        return value


class AssignForm(forms.Form):
    owner = SellerChoiceField(queryset=None, empty_label="Nobody (unassigned)", required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["owner"].queryset = sellers()


class LeadForm(forms.Form):
    """A lead's contact and company data, for creating and correcting leads."""

    email = forms.EmailField(max_length=254)
    first_name = forms.CharField(max_length=100, required=False)
    last_name = forms.CharField(max_length=100, required=False)
    title = forms.CharField(max_length=200, required=False, label="Job title")
    phone = forms.CharField(max_length=50, required=False)
    company = forms.CharField(max_length=200, required=False)
    company_domain = forms.CharField(
        max_length=200, required=False, help_text="e.g. acme.com; taken from the email if empty."
    )
    country = forms.CharField(max_length=100, required=False)
    region = forms.CharField(max_length=100, required=False)
    industry = forms.CharField(max_length=100, required=False)
    employees = forms.IntegerField(min_value=0, required=False)
    channel = forms.ChoiceField(
        choices=[("", "—"), *Channel.choices], required=False, label="Source channel"
    )
    campaign = forms.ModelChoiceField(
        queryset=Campaign.objects.all(), required=False, label="Source campaign"
    )

    def clean_email(self):
        return self.cleaned_data["email"].strip().lower()


class LeadEditForm(LeadForm):
    """Editing keeps the email (the lead's identity) and its source.

    Each field carries the value the form was opened with (a hidden initial
    input), so `changed_data` names only what this user changed: a field
    someone else corrected meanwhile is not written back with the old value."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in ("email", "channel", "campaign"):
            del self.fields[name]
        for field in self.fields.values():
            field.show_hidden_initial = True


class FeedbackReportForm(forms.Form):
    """The feedback view's period and grouping (GET). A parameter left out
    takes its initial value, so a link such as ?group_by=campaign works."""

    start = forms.DateField(
        required=False, widget=forms.DateInput(attrs={"type": "date"}), label="From"
    )
    end = forms.DateField(
        required=False, widget=forms.DateInput(attrs={"type": "date"}), label="To"
    )
    group_by = forms.ChoiceField(
        required=False,
        label="Group by",
        choices=[
            ("reason", "Reason"),
            ("campaign", "Campaign"),
            ("channel", "Channel"),
            ("competitor", "Competitor"),
        ],
    )

    def clean(self):
        data = super().clean()
        for name, field in self.fields.items():
            if not data.get(name) and name not in self.errors:
                data[name] = self.get_initial_for_field(field, name)
        if data.get("start") and data.get("end") and data["start"] > data["end"]:
            self.add_error("end", "The end date must be on or after the start date.")
        return data


class AccountFilterForm(forms.Form):
    q = forms.CharField(
        required=False,
        label="Search",
        widget=forms.TextInput(attrs={"type": "search", "placeholder": "Name or domain"}),
    )
    segment = forms.MultipleChoiceField(
        required=False, choices=Segment.choices, widget=forms.SelectMultiple(attrs={"size": 3})
    )
    industry = forms.CharField(required=False)
