"""Reporting periods and the filters every reporting page shares.

A period is a range of whole days [start, end] in the site's time zone. Each
has a previous period to compare with:

- this month / this quarter (to date): the same days of the previous month or
  quarter (Nov 1–24 compares with Oct 1–24);
- last month / last quarter / a year: the whole month, quarter or year before;
- last 90 days and custom ranges: the same number of days just before.
"""

from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta

from django import forms
from django.utils import timezone

from leads.models import Segment, Team

PERIOD_CHOICES = [
    ("month", "This month"),
    ("last_month", "Last month"),
    ("quarter", "This quarter"),
    ("last_quarter", "Last quarter"),
    ("90d", "Last 90 days"),
    ("year", "Last 12 months"),
    ("custom", "Custom"),
]
PERIOD_LABELS = dict(PERIOD_CHOICES)


def month_start(day: date) -> date:
    return day.replace(day=1)


def add_months(day: date, months: int) -> date:
    """The first day of the month `months` after `day`'s month."""
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def month_end(day: date) -> date:
    return add_months(day, 1) - timedelta(days=1)


def quarter_start(day: date) -> date:
    return date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)


def quarter_label(day: date) -> str:
    return f"Q{(day.month - 1) // 3 + 1} {day.year}"


def _clamp_day(year_month_start: date, day_number: int) -> date:
    return min(
        year_month_start.replace(day=1) + timedelta(days=day_number - 1),
        month_end(year_month_start),
    )


@dataclass(frozen=True)
class Period:
    key: str
    start: date
    end: date
    label: str

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    @property
    def start_at(self) -> datetime:
        """The first moment of the period (aware, local time)."""
        return timezone.make_aware(datetime.combine(self.start, time.min))

    @property
    def end_before(self) -> datetime:
        """The first moment after the period."""
        return timezone.make_aware(datetime.combine(self.end + timedelta(days=1), time.min))

    def contains(self, day: date) -> bool:
        return self.start <= day <= self.end

    def months(self) -> list[date]:
        """The first days of the months the period touches."""
        months, current = [], month_start(self.start)
        while current <= self.end:
            months.append(current)
            current = add_months(current, 1)
        return months

    def previous(self) -> "Period":
        if self.key == "month":
            start = add_months(self.start, -1)
            end = _clamp_day(start, self.end.day)
        elif self.key == "quarter":
            start = add_months(self.start, -3)
            end = min(start + (self.end - self.start), add_months(start, 3) - timedelta(days=1))
        elif self.key == "last_month":
            start = add_months(self.start, -1)
            end = self.start - timedelta(days=1)
        elif self.key == "last_quarter":
            start = add_months(self.start, -3)
            end = self.start - timedelta(days=1)
        else:
            end = self.start - timedelta(days=1)
            start = end - timedelta(days=self.days - 1)
        return replace(self, start=start, end=end, label=range_label(start, end))

    def query(self) -> dict:
        """The URL parameters that select this period."""
        if self.key == "custom":
            return {
                "period": "custom",
                "start": self.start.isoformat(),
                "end": self.end.isoformat(),
            }
        return {"period": self.key}


def range_label(start: date, end: date) -> str:
    if start.year == end.year:
        return f"{start:%b} {start.day} – {end:%b} {end.day}, {end.year}"
    return f"{start:%b} {start.day}, {start.year} – {end:%b} {end.day}, {end.year}"


def period_for(key: str, *, today: date, start: date | None = None, end: date | None = None):
    if key == "month":
        begin, finish = month_start(today), today
    elif key == "last_month":
        begin = add_months(today, -1)
        finish = month_start(today) - timedelta(days=1)
    elif key == "quarter":
        begin, finish = quarter_start(today), today
    elif key == "last_quarter":
        begin = add_months(quarter_start(today), -3)
        finish = quarter_start(today) - timedelta(days=1)
    elif key == "90d":
        begin, finish = today - timedelta(days=89), today
    elif key == "year":
        begin, finish = add_months(month_start(today), -11), today
    else:
        key = "custom"
        begin, finish = start or today - timedelta(days=29), end or today
    label = PERIOD_LABELS[key]
    if key in ("last_month",):
        label = f"{begin:%B %Y}"
    elif key in ("quarter", "last_quarter"):
        label = f"{PERIOD_LABELS[key]} ({quarter_label(begin)})"
    elif key == "custom":
        label = range_label(begin, finish)
    return Period(key=key, start=begin, end=finish, label=label)


class ReportFilterForm(forms.Form):
    """The period and the segment/team filter of the dashboard and the
    attribution page. Invalid input falls back to defaults (a hand-edited
    URL shows the default view with the errors, never a 500)."""

    period = forms.ChoiceField(choices=PERIOD_CHOICES, required=False, initial="quarter")
    start = forms.DateField(
        required=False, widget=forms.DateInput(attrs={"type": "date"}), label="From"
    )
    end = forms.DateField(
        required=False, widget=forms.DateInput(attrs={"type": "date"}), label="To"
    )
    segment = forms.ChoiceField(choices=[("", "Every segment"), *Segment.choices], required=False)
    team = forms.ModelChoiceField(
        queryset=Team.objects.all(), required=False, empty_label="Every team"
    )

    def clean(self):
        data = super().clean()
        start, end = data.get("start"), data.get("end")
        if data.get("period") == "custom":
            if not start or not end:
                raise forms.ValidationError("A custom period needs a start and an end day.")
            if end < start:
                raise forms.ValidationError("The period must end on or after its start.")
            if (end - start).days > 366 * 5:
                raise forms.ValidationError("Choose a period of five years or less.")
        return data

    def report_filter(self, *, today: date | None = None, default_period: str = "quarter"):
        today = today or timezone.localdate()
        data = self.cleaned_data if self.is_valid() else {}
        key = data.get("period") or default_period
        period = period_for(key, today=today, start=data.get("start"), end=data.get("end"))
        return ReportFilter(period=period, segment=data.get("segment") or "", team=data.get("team"))


@dataclass(frozen=True)
class ReportFilter:
    """What a reporting page shows: a period, and optionally one segment and
    one team. The team filter keeps rows owned by the team's members (its
    current members: a rep who moves team takes their history along)."""

    period: Period
    segment: str = ""
    team: Team | None = None

    def with_period(self, period: Period) -> "ReportFilter":
        return replace(self, period=period)

    @property
    def previous(self) -> "ReportFilter":
        return self.with_period(self.period.previous())

    def owner_ids(self) -> list[int] | None:
        if self.team is None:
            return None
        ids = getattr(self, "_owner_ids", None)
        if ids is None:
            ids = list(self.team.memberships.values_list("user_id", flat=True))
            if self.team.manager_id:
                ids.append(self.team.manager_id)
            object.__setattr__(self, "_owner_ids", ids)
        return ids

    def query(self) -> dict:
        params = self.period.query()
        if self.segment:
            params["segment"] = self.segment
        if self.team is not None:
            params["team"] = str(self.team.pk)
        return params

    @property
    def description(self) -> str:
        parts = [self.period.label]
        if self.segment:
            parts.append(Segment(self.segment).label)
        if self.team is not None:
            parts.append(self.team.name)
        return " · ".join(parts)
