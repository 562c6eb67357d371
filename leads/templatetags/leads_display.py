"""Display helpers for the shared record: stage and SLA badges, money."""

from decimal import Decimal

from django import template
from django.contrib.humanize.templatetags.humanize import intcomma
from django.utils.html import format_html

from leads.selectors import SlaStatus

register = template.Library()

STAGE_BADGES = {
    "new": "",
    "mql": "badge-marketing",
    "sal": "badge-brand",
    "sql": "badge-sales",
    "opportunity": "badge-sales",
    "customer": "badge-ok",
    "rejected": "badge-warn",
    "recycled": "badge-warn",
    "disqualified": "badge-bad",
    "discovery": "badge-brand",
    "demo": "badge-brand",
    "proposal": "badge-sales",
    "negotiation": "badge-sales",
    "won": "badge-ok",
    "lost": "badge-bad",
}

SLA_BADGES = {
    SlaStatus.WAITING: ("badge-warn", "Waiting"),
    SlaStatus.OVERDUE: ("badge-bad", "Overdue"),
    SlaStatus.MET: ("badge-ok", "Met"),
    SlaStatus.LATE: ("badge-warn", "Late"),
    SlaStatus.NONE: ("", "—"),
}


@register.simple_tag
def stage_badge(record):
    """The record's stage as a coloured badge (leads and deals)."""
    return format_html(
        '<span class="badge {}">{}</span>',
        STAGE_BADGES.get(record.stage, ""),
        record.get_stage_display(),
    )


@register.simple_tag
def sla_badge(lead, now=None):
    """Where the lead stands against its response clock."""
    status = SlaStatus.of(lead, now)
    css, label = SLA_BADGES[status]
    if status == SlaStatus.NONE:
        return format_html('<span class="muted">{}</span>', label)
    return format_html('<span class="badge {}">{}</span>', css, label)


@register.filter
def money(value):
    """$12,345 (no cents for whole amounts)."""
    if value in (None, ""):
        return "—"
    value = Decimal(value)
    if value == value.to_integral_value():
        return f"${intcomma(int(value))}"
    return f"${intcomma(f'{value:.2f}')}"


@register.filter
def score_class(score):
    if score >= 70:
        return "badge-ok"
    if score >= 40:
        return "badge-warn"
    return ""


@register.filter
def person(user, empty="—"):
    """A user's full name, else username; `empty` when there is no user."""
    if user is None:
        return empty
    return user.get_full_name() or user.username
