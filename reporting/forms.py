"""Forms of the reporting pages: shared goals and the QBR record. (The
period and segment/team filter is reporting.periods.ReportFilterForm.)"""

from django import forms

from reporting.models import QuarterlyReview, SharedGoal


class GoalForm(forms.ModelForm):
    class Meta:
        model = SharedGoal
        fields = ["title", "metric", "target", "starts_on", "ends_on", "segment", "team", "note"]
        widgets = {
            "starts_on": forms.DateInput(attrs={"type": "date"}),
            "ends_on": forms.DateInput(attrs={"type": "date"}),
            "note": forms.Textarea(attrs={"rows": 3}),
        }
        help_texts = {
            "title": "In words both teams use, e.g. “$2M sales-accepted pipeline from "
            "marketing-sourced leads this quarter”.",
            "target": "Amounts in dollars; rates in percent (e.g. 70 for 70%).",
        }

    def clean(self):
        data = super().clean()
        start, end = data.get("starts_on"), data.get("ends_on")
        if start and end and end < start:
            self.add_error("ends_on", "The goal must end on or after its start.")
        return data


class QuarterlyReviewForm(forms.ModelForm):
    class Meta:
        model = QuarterlyReview
        fields = ["improvement", "improvement_owner", "notes"]
        widgets = {
            "improvement": forms.Textarea(attrs={"rows": 3}),
            "notes": forms.Textarea(attrs={"rows": 4}),
        }
        labels = {"improvement": "The one improvement for next quarter"}
