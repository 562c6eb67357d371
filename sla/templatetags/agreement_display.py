"""Display helpers for the agreement's pages: the SLA and ICP read as sentences."""

from decimal import Decimal

from django import template
from django.utils.html import format_html

from leads.models import ContentAsset, Segment, TouchpointType
from sla.models import WEEKDAYS, VersionStatus

register = template.Library()

STATUS_BADGES = {
    VersionStatus.DRAFT: "badge-warn",
    VersionStatus.PUBLISHED: "badge-ok",
    VersionStatus.SUPERSEDED: "",
}
DAY_NAMES = dict(WEEKDAYS)


@register.simple_tag
def version_badge(version):
    """Draft / In force / Superseded, coloured."""
    return format_html(
        '<span class="badge {}">{}</span>',
        STATUS_BADGES.get(version.status, ""),
        version.get_status_display(),
    )


def _number(value) -> str:
    value = Decimal(value)
    text = f"{value.normalize():f}"
    return text


@register.filter
def business_hours(value):
    """1 → "1 business hour", 24 → "24 business hours", 0.5 → "30 business minutes"."""
    if value in (None, ""):
        return "—"
    value = Decimal(value)
    if value < 1:
        minutes = int(value * 60)
        return f"{minutes} business minute{'s' if minutes != 1 else ''}"
    text = _number(value)
    return f"{text} business hour{'' if value == 1 else 's'}"


@register.filter
def weekday_span(days):
    """[0, 1, 2, 3, 4] → "Mon–Fri"; [0, 2, 4] → "Mon, Wed, Fri"."""
    days = sorted(set(days or ()))
    if not days:
        return "no day"
    runs, start, previous = [], days[0], days[0]
    for day in days[1:]:
        if day != previous + 1:
            runs.append((start, previous))
            start = day
        previous = day
    runs.append((start, previous))
    parts = []
    for first, last in runs:
        if first == last:
            parts.append(DAY_NAMES[first])
        elif last == first + 1:
            parts.append(f"{DAY_NAMES[first]}, {DAY_NAMES[last]}")
        else:
            parts.append(f"{DAY_NAMES[first]}–{DAY_NAMES[last]}")
    return ", ".join(parts)


@register.filter
def clock(value):
    """time(9) → "9:00"."""
    if value is None:
        return "—"
    return f"{value.hour}:{value.minute:02d}"


def _join(items, word):
    items = [str(item) for item in items]
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} {word} {items[-1]}"


@register.filter
def join_or(items):
    return _join(items, "or")


@register.filter
def join_and(items):
    return _join(items, "and")


@register.filter
def touchpoint_labels(types):
    """["page_view", "demo_request"] → "page view or demo request"."""
    labels = dict(TouchpointType.choices)
    return _join([str(labels.get(t, t)).lower() for t in types or ()], "or")


@register.filter
def segment_labels(segments):
    labels = dict(Segment.choices)
    return _join([labels.get(s, s) for s in segments or ()], "or")


@register.filter
def asset_kind_label(kind):
    return str(dict(ContentAsset.Kind.choices).get(kind, kind)).lower() if kind else ""


@register.filter
def points(value):
    """15 → "+15 points", -5 → "−5 points", 1 → "+1 point"."""
    value = int(value)
    sign = "+" if value >= 0 else "−"
    return f"{sign}{abs(value)} point{'' if abs(value) == 1 else 's'}"


@register.filter
def number(value):
    """A decimal without trailing zeros and with thousands separators: 5000.00 → 5,000."""
    if value in (None, ""):
        return "—"
    value = Decimal(value).normalize()
    if value == value.to_integral_value():
        return f"{int(value):,}"
    return f"{value:,f}"


@register.filter
def lines(text):
    """The non-empty lines of a text, without list markers: for persona pages."""
    items = []
    for line in (text or "").splitlines():
        line = line.strip().lstrip("-•*").strip()
        if line:
            items.append(line)
    return items


@register.filter
def explicit_criteria(version):
    """The SLA's explicit criteria as phrases: "whose title shows director or above", ..."""
    phrases = []
    if version.required_seniority and version.required_seniority != "any":
        label = version.get_required_seniority_display().lower().replace(" and above", " or above")
        phrases.append(f"whose job title shows {label}")
    if version.required_min_employees:
        phrases.append(f"whose company has at least {version.required_min_employees:,} employees")
    if version.required_segments:
        phrases.append(f"in the {segment_labels(version.required_segments)} segment")
    return phrases


@register.filter
def fit_rule_text(rule):
    """A fit rule in words: "Industry is one of software or saas", "Employees from 1,000"."""
    if rule.attribute in rule.BANDED:
        name = "Employees" if rule.attribute == "employees" else "Annual revenue (USD millions)"
        low, high = rule.min_value, rule.max_value
        if low is not None and high is not None:
            return f"{name} from {number(low)} to {number(high)}"
        if low is not None:
            return f"{name} from {number(low)}"
        return f"{name} up to {number(high)}"
    values = rule.values
    if rule.attribute == "segment":
        values = [dict(Segment.choices).get(value, value) for value in values]
    return f"{rule.get_attribute_display()} {_join(values, 'or')}"
