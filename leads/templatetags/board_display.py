"""Card details for the pipeline boards: the response clock, age in stage,
the close date."""

from datetime import date, datetime, timedelta

from django import template
from django.utils.dateformat import format as date_format
from django.utils.html import format_html
from django.utils.safestring import mark_safe

from leads.selectors import SlaStatus

register = template.Library()


def _span(delta: timedelta) -> str:
    """2d 4h, 3h 20m, 45m."""
    minutes = max(int(delta.total_seconds() // 60), 0)
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    if days:
        return f"{days}d {hours}h" if hours and days < 7 else f"{days}d"
    if hours:
        return f"{hours}h {minutes}m" if minutes else f"{hours}h"
    return f"{minutes}m"


@register.simple_tag
def response_clock(lead, now: datetime):
    """Time left on the lead's response clock, or how long it is overdue (red)."""
    status = SlaStatus.of(lead, now)
    if status == SlaStatus.NONE:
        return ""
    due = lead.response_due_at
    if status == SlaStatus.WAITING:
        css = "badge-warn" if due - now < timedelta(hours=1) else "badge-brand"
        return format_html(
            '<span class="badge {}" title="Respond by {}">{} left</span>',
            css,
            date_format(due, "M j, H:i"),
            _span(due - now),
        )
    if status == SlaStatus.OVERDUE:
        return format_html(
            '<span class="badge badge-bad" title="Was due {}">Overdue {}</span>',
            date_format(due, "M j, H:i"),
            _span(now - due),
        )
    if status == SlaStatus.MET:
        return mark_safe('<span class="badge badge-ok">Contacted in time</span>')
    return mark_safe('<span class="badge badge-warn">Contacted late</span>')


@register.simple_tag
def age_in_stage(record, now: datetime) -> str:
    """How long the card has been in its column: 'today', '1 day', '12 days'."""
    days = (now - record.stage_changed_at).days
    if days < 1:
        return "today"
    return "1 day" if days == 1 else f"{days} days"


@register.simple_tag
def close_date(deal, today: date):
    """The close date a deal card shows: when it closed, or when it is expected
    to (flagged once that date has passed)."""
    if deal.closed_on:
        return format_html("Closed {}", date_format(deal.closed_on, "M j, Y"))
    if deal.expected_close_on is None:
        return mark_safe('<span class="muted">No close date</span>')
    if deal.expected_close_on < today:
        return format_html(
            '<span class="board-late" title="The expected close date has passed">Close {}</span>',
            date_format(deal.expected_close_on, "M j, Y"),
        )
    return format_html("Close {}", date_format(deal.expected_close_on, "M j, Y"))
