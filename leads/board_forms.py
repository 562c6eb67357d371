"""The boards' filters (GET, kept in the URL) and the forms a move to won or
lost asks for first."""

from decimal import Decimal

from django import forms
from django.utils import timezone

from leads.forms import OwnerFilterField, ReasonChoiceField, owner_filter_kwargs
from leads.models import Channel, Competitor, FeedbackReason, Segment, Team


class BoardFilterForm(forms.Form):
    """Owner, team, source and segment; invalid values narrow nothing."""

    owner = OwnerFilterField()
    team = forms.ModelChoiceField(
        required=False, queryset=Team.objects.order_by("name"), empty_label="Any team"
    )
    source = forms.ChoiceField(
        required=False, label="Source", choices=[("", "Any source"), *Channel.choices]
    )
    segment = forms.ChoiceField(required=False, choices=[("", "Any segment"), *Segment.choices])

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        self.fields["owner"].set_choices()

    def selector_kwargs(self) -> dict:
        """Arguments for the board's selector from the valid fields."""
        data = self.cleaned_data if self.is_bound else {}
        return {
            **owner_filter_kwargs(data.get("owner") or "", self.user),
            "team": data.get("team"),
            "channels": [data["source"]] if data.get("source") else (),
            "segments": [data["segment"]] if data.get("segment") else (),
        }

    @property
    def is_filtered(self) -> bool:
        return any(self.cleaned_data.values()) if self.is_bound else False


class DealBoardFilterForm(BoardFilterForm):
    amount_min = forms.DecimalField(
        required=False, min_value=0, max_digits=14, decimal_places=2, label="Amount from"
    )
    amount_max = forms.DecimalField(
        required=False, min_value=0, max_digits=14, decimal_places=2, label="to"
    )

    def clean(self):
        data = super().clean()
        low, high = data.get("amount_min"), data.get("amount_max")
        if low is not None and high is not None and low > high:
            self.add_error("amount_max", "The upper amount must not be below the lower one.")
            data.pop("amount_max", None)
        return data

    def selector_kwargs(self) -> dict:
        data = self.cleaned_data if self.is_bound else {}
        return {
            **super().selector_kwargs(),
            "amount_min": data.get("amount_min"),
            "amount_max": data.get("amount_max"),
        }


def valid_filter_form(form_class, data, user):
    """A bound filter form with its errors found (so selector_kwargs can run)."""
    form = form_class(data or None, user=user)
    form.is_valid()
    return form


class DealWonForm(forms.Form):
    amount = forms.DecimalField(
        min_value=Decimal("0.01"), max_digits=14, decimal_places=2, label="Final amount"
    )
    closed_on = forms.DateField(label="Close date", widget=forms.DateInput(attrs={"type": "date"}))

    def clean_closed_on(self):
        value = self.cleaned_data["closed_on"]
        if value > timezone.localdate():
            raise forms.ValidationError("The close date cannot be in the future.")
        return value


class DealLostForm(forms.Form):
    loss_reason = ReasonChoiceField(FeedbackReason.AppliesTo.LOSS, label="Why was it lost?")
    competitor = forms.ModelChoiceField(
        required=False,
        queryset=Competitor.objects.filter(is_active=True),
        empty_label="No competitor / unknown",
        label="Lost to",
    )
    loss_note = forms.CharField(
        required=False,
        label="Note",
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="What both teams should learn from it.",
    )
