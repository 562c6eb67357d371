"""Forms of the win/loss pages. They parse and check input; the rules that
need the deal or the database (both teams present, a loss says how it was
lost, one driver per category) live in `reporting.winloss_services`, whose
ValidationErrors the views put back on these forms."""

from datetime import date, timedelta

from django import forms
from django.contrib.auth import get_user_model
from django.db.models import Q

from config import roles
from leads.models import Campaign, Competitor, ContentAsset, Segment
from reporting.models import ActionItem, DecisionDriver, DriverCategory, Retrospective
from reporting.winloss_selectors import quarter_bounds
from reporting.winloss_services import participant_team
from sla.models import IcpVersion, Persona, SlaVersion, VersionStatus

DATE_INPUT = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


def _roles_primed(user):
    """Fill the user's role cache from prefetched groups (no query per user)."""
    user._accord_roles = frozenset(group.name for group in user.groups.all())
    return user


def people_with_roles():
    """Active users who can take part: marketing, sales and RevOps."""
    return (
        get_user_model()
        .objects.filter(is_active=True, groups__name__in=roles.ROLES)
        .distinct()
        .prefetch_related("groups")
        .order_by("first_name", "last_name", "username")
    )


class PersonChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, user):
        return user.get_full_name() or user.username


class ParticipantsField(forms.ModelMultipleChoiceField):
    """Participants, labelled with the team they speak for."""

    TEAM_LABELS = {"marketing": "Marketing", "sales": "Sales", "other": "RevOps"}

    def label_from_instance(self, user):
        name = user.get_full_name() or user.username
        return f"{name} ({self.TEAM_LABELS[participant_team(_roles_primed(user))]})"

    def clean(self, value):
        return [_roles_primed(user) for user in super().clean(value)]


class RetrospectiveForm(forms.Form):
    """The retrospective itself. For a won deal there is no loss type."""

    participants = ParticipantsField(
        queryset=people_with_roles(),
        widget=forms.CheckboxSelectMultiple(attrs={"class": "checkbox-list"}),
        help_text="At least one person from marketing and one from sales.",
    )
    held_on = forms.DateField(label="Held on", widget=DATE_INPUT)
    loss_type = forms.ChoiceField(
        label="How was it lost?",
        choices=[("", "Choose…"), *Retrospective.LossType.choices],
        required=False,
    )
    competitor = forms.ModelChoiceField(
        queryset=Competitor.objects.filter(is_active=True),
        required=False,
        empty_label="None",
        help_text="Who we won against, or lost to.",
    )
    decided_at_stage = forms.ChoiceField(
        label="Decided at stage",
        choices=[("", "Not sure"), *Retrospective._meta.get_field("decided_at_stage").choices],
        required=False,
        help_text="When the buyer effectively made up their mind.",
    )
    campaign = forms.ModelChoiceField(
        queryset=Campaign.objects.order_by("name"),
        required=False,
        empty_label="No campaign",
        help_text="The campaign whose promise the pitch is compared with.",
    )
    pitch_match = forms.ChoiceField(
        label="Did the pitch match what the campaign promised?",
        choices=[("", "Not assessed"), *Retrospective.PitchMatch.choices],
        required=False,
    )
    pitch_difference = forms.CharField(
        label="What differed",
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
    )
    key_quotes = forms.CharField(
        label="Key quotes",
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="What the buyer said, one quote a line.",
    )
    learnings = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="What both teams take away. About the process, never about a person.",
    )

    def __init__(self, *args, opportunity, **kwargs):
        super().__init__(*args, **kwargs)
        self.opportunity = opportunity
        if opportunity.stage != Retrospective.Outcome.LOST:
            del self.fields["loss_type"]
        self.order_fields(["participants", "held_on", "loss_type", "competitor"])

    @classmethod
    def initial_for(cls, retrospective: Retrospective) -> dict:
        initial = {name: getattr(retrospective, name) for name in (
            "held_on", "loss_type", "competitor", "decided_at_stage", "campaign", "pitch_match",
            "pitch_difference", "key_quotes", "learnings",
        )}  # fmt: skip
        initial["participants"] = [row.user_id for row in retrospective.participant_rows.all()]
        return initial

    def service_kwargs(self) -> dict:
        data = dict(self.cleaned_data)
        data.setdefault("loss_type", "")
        return data


class DriverForm(forms.Form):
    category = forms.ModelChoiceField(
        queryset=DriverCategory.objects.filter(is_active=True), empty_label="Choose a category…"
    )
    sentiment = forms.ChoiceField(
        choices=DecisionDriver.Sentiment.choices, widget=forms.RadioSelect, label="It"
    )
    note = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="What happened, in a sentence or two.",
    )

    def __init__(self, *args, prefix_id="", **kwargs):
        kwargs.setdefault("auto_id", f"id_driver{prefix_id}_%s")
        super().__init__(*args, **kwargs)


class TargetChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj):
        if isinstance(obj, SlaVersion | IcpVersion):
            return f"{obj.label}: {obj.title} ({obj.get_status_display().lower()})"
        if isinstance(obj, Persona):
            return f"{obj.name} (ICP {obj.version.label})"
        return str(obj)


def _versions(model):
    return model.objects.exclude(status=VersionStatus.SUPERSEDED).order_by("-number")


class ActionItemForm(forms.Form):
    """An action item: what will change, who, by when, and the thing it changes
    (only the target field of the chosen kind is used)."""

    title = forms.CharField(max_length=200, label="What will change")
    owner = PersonChoiceField(queryset=people_with_roles(), empty_label="Choose an owner…")
    due_on = forms.DateField(label="Due", widget=DATE_INPUT)
    target_kind = forms.ChoiceField(
        label="It changes", choices=[("", "Choose…"), *ActionItem.TargetKind.choices]
    )
    sla_version = TargetChoiceField(
        queryset=_versions(SlaVersion), required=False, label="SLA version"
    )
    icp_version = TargetChoiceField(
        queryset=_versions(IcpVersion), required=False, label="ICP version"
    )
    persona = TargetChoiceField(
        queryset=Persona.objects.filter(
            ~Q(version__status=VersionStatus.SUPERSEDED)
        ).select_related("version"),
        required=False,
    )
    campaign = TargetChoiceField(queryset=Campaign.objects.order_by("name"), required=False)
    content_asset = TargetChoiceField(
        queryset=ContentAsset.objects.order_by("title"), required=False, label="Content asset"
    )
    target_note = forms.CharField(
        max_length=200, required=False, label="Something else", help_text="What it changes."
    )
    description = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 2}), label="Details"
    )
    status = forms.ChoiceField(choices=ActionItem.Status.choices, initial=ActionItem.Status.OPEN)

    TARGET_FIELDS = dict(ActionItem.TARGET_FIELDS) | {ActionItem.TargetKind.OTHER: "target_note"}

    def __init__(self, *args, prefix_id="", **kwargs):
        kwargs.setdefault("auto_id", f"id_action{prefix_id}_%s")
        super().__init__(*args, **kwargs)
        for kind, name in self.TARGET_FIELDS.items():
            self.fields[name].widget.attrs["data-target-kind"] = kind

    @classmethod
    def initial_for(cls, item: ActionItem) -> dict:
        initial = {name: getattr(item, name) for name in (
            "title", "owner", "due_on", "target_kind", "target_note", "description", "status",
        )}  # fmt: skip
        field = ActionItem.TARGET_FIELDS.get(item.target_kind)
        if field:
            initial[field] = getattr(item, field)
        return initial

    def target_field_name(self) -> str:
        return self.TARGET_FIELDS.get(self.cleaned_data.get("target_kind"), "")

    def service_kwargs(self) -> dict:
        data = self.cleaned_data
        field = ActionItem.TARGET_FIELDS.get(data["target_kind"])
        return {
            "title": data["title"],
            "owner": data["owner"],
            "due_on": data["due_on"],
            "target_kind": data["target_kind"],
            "target": data.get(field) if field else None,
            "target_note": data.get("target_note", "") if data["target_kind"] == "other" else "",
            "description": data.get("description", ""),
            "status": data["status"],
        }

    def add_service_errors(self, error) -> None:
        """Put a service ValidationError on the fields it names ('target' on
        the field of the chosen kind)."""
        for name, messages in error.message_dict.items():
            if name == "target":
                name = self.target_field_name() or None
            self.add_error(name if name in self.fields else None, messages)


class ActionStatusForm(forms.Form):
    status = forms.ChoiceField(choices=ActionItem.Status.choices)


# --- Filters and periods -----------------------------------------------------------------


class PeriodForm(forms.Form):
    """This quarter, last quarter, the last 12 months, or custom dates (GET)."""

    PERIODS = [
        ("this_quarter", "This quarter"),
        ("last_quarter", "Last quarter"),
        ("last_12_months", "Last 12 months"),
        ("custom", "Custom"),
    ]

    period = forms.ChoiceField(choices=PERIODS, required=False, initial="last_12_months")
    start = forms.DateField(required=False, label="From", widget=DATE_INPUT)
    end = forms.DateField(required=False, label="To", widget=DATE_INPUT)

    def clean(self):
        data = super().clean()
        if data.get("period") == "custom":
            if not data.get("start") or not data.get("end"):
                self.add_error("start", "Give both dates for a custom period.")
            elif data["start"] > data["end"]:
                self.add_error("end", "The end date must be on or after the start date.")
        return data

    def bounds(self, today: date) -> tuple[date, date, str]:
        """(start, end, label) of the chosen period; the default when invalid."""
        data = self.cleaned_data if self.is_bound and self.is_valid() else {}
        period = data.get("period") or self.fields["period"].initial
        if period == "custom" and data.get("start") and data.get("end"):
            return data["start"], data["end"], "Custom"
        if period == "this_quarter":
            start, end = quarter_bounds(today)
            return start, end, "This quarter"
        if period == "last_quarter":
            start, end = quarter_bounds(quarter_bounds(today)[0] - timedelta(days=1))
            return start, end, "Last quarter"
        return _month_after(date(today.year - 1, today.month, 1)), today, "Last 12 months"


def _month_after(day: date) -> date:
    return date(day.year + day.month // 12, day.month % 12 + 1, 1)


class RetrospectiveFilterForm(forms.Form):
    q = forms.CharField(
        required=False,
        label="Search",
        widget=forms.TextInput(attrs={"type": "search", "placeholder": "Deal, account, learnings"}),
    )
    outcome = forms.ChoiceField(
        required=False, choices=[("", "Won and lost"), *Retrospective.Outcome.choices]
    )
    loss_type = forms.ChoiceField(
        required=False,
        label="How lost",
        choices=[("", "Any"), *Retrospective.LossType.choices],
    )
    competitor = forms.ModelChoiceField(
        required=False, queryset=Competitor.objects.all(), empty_label="Any competitor"
    )
    segment = forms.ChoiceField(required=False, choices=[("", "Any segment"), *Segment.choices])

    def selector_kwargs(self) -> dict:
        data = self.cleaned_data if self.is_bound and self.is_valid() else {}
        return {
            "q": data.get("q") or "",
            "outcome": data.get("outcome") or "",
            "loss_type": data.get("loss_type") or "",
            "competitor": data.get("competitor"),
            "segment": data.get("segment") or "",
        }


class ActionItemFilterForm(forms.Form):
    status = forms.ChoiceField(
        required=False,
        choices=[("open", "Open or in progress"), ("closed", "Done or dropped"), ("all", "All"),
                 *ActionItem.Status.choices],
        initial="open",
    )  # fmt: skip
    target_kind = forms.ChoiceField(
        required=False, label="Changes", choices=[("", "Anything"), *ActionItem.TargetKind.choices]
    )
    mine = forms.BooleanField(required=False, label="Only mine")

    def selector_kwargs(self, user) -> dict:
        data = self.cleaned_data if self.is_bound and self.is_valid() else {}
        status = data.get("status") or "open"
        return {
            "status": "" if status == "all" else status,
            "target_kind": data.get("target_kind") or "",
            "owner": user if data.get("mine") else None,
        }


class DealSearchForm(forms.Form):
    q = forms.CharField(
        required=False,
        label="Find a closed deal",
        widget=forms.TextInput(attrs={"type": "search", "placeholder": "Deal or account name"}),
    )


class ClosesActionsField(forms.ModelMultipleChoiceField):
    """On the SLA/ICP publish form: the open action items this version closes
    (SLA items for an SLA version; ICP and persona items for an ICP version)."""

    def __init__(self, *, model, **kwargs):
        from reporting.winloss_selectors import action_items_closing

        kwargs.setdefault("required", False)
        kwargs.setdefault("label", "Retrospective action items this version closes")
        kwargs.setdefault(
            "help_text",
            "They are marked done and listed on this version's page: why it changed.",
        )
        super().__init__(
            queryset=action_items_closing(model),
            widget=forms.CheckboxSelectMultiple,
            **kwargs,
        )

    def label_from_instance(self, item):
        return f"{item.title} ({item.target_label}; from {item.retrospective.opportunity.name})"
