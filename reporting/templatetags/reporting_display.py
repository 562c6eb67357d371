"""How reporting pages show numbers: money, percentages, hours, changes
against the previous period, and links to the rows behind a figure."""

from decimal import Decimal
from urllib.parse import urlencode

from django import template
from django.contrib.humanize.templatetags.humanize import intcomma
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import mark_safe

register = template.Library()


@register.filter
def whole_money(value):
    """$12,345 (rounded to the dollar); — for none."""
    if value is None or value == "":
        return "—"
    return f"${intcomma(int(Decimal(value).quantize(Decimal(1))))}"


@register.filter
def pct(value, digits=0):
    if value is None or value == "":
        return "—"
    return f"{float(value):.{int(digits)}f}%"


@register.filter
def hours(value):
    if value is None:
        return "—"
    value = float(value)
    if value < 1:
        return f"{value * 60:.0f} min"
    return f"{value:.1f} h"


@register.filter
def days(value):
    if value is None:
        return "—"
    return f"{float(value):.0f} d"


@register.filter
def times(value):
    if value is None:
        return "—"
    return f"{float(value):.1f}×"


@register.filter
def number(value, digits=0):
    if value is None or value == "":
        return "—"
    if int(digits):
        return f"{float(value):,.{int(digits)}f}"
    return intcomma(round(float(value)))


@register.filter
def figure_value(figure):
    """A dashboard figure in its unit."""
    return unit_value(figure.value, figure.unit)


@register.filter
def figure_previous(figure):
    return unit_value(figure.previous, figure.unit)


def unit_value(value, unit: str) -> str:
    if unit == "money":
        return whole_money(value)
    if unit == "percent":
        return pct(value, 1)
    if unit == "hours":
        return hours(value)
    if unit == "days":
        return days(value)
    if unit == "ratio":
        return times(value)
    return number(value)


@register.simple_tag
def figure_change(figure):
    """▲ 12% / ▼ 3.1 pts against the previous period, coloured by whether
    the move is good; "new" when there was nothing before."""
    change = figure.change
    if change is None:
        if figure.value is not None and not figure.previous and figure.previous is not None:
            return mark_safe('<span class="change">new</span>')
        return mark_safe('<span class="change muted">no comparison</span>')
    if abs(change) < 0.05:
        return mark_safe('<span class="change muted">unchanged</span>')
    arrow = "▲" if change > 0 else "▼"
    amount = f"{abs(change):.1f} pts" if figure.unit == "percent" else f"{abs(change):.0f}%"
    css = {"good": "change-good", "bad": "change-bad"}.get(figure.trend, "")
    return format_html('<span class="change {}">{} {}</span>', css, arrow, amount)


@register.simple_tag
def rows_url(figure_key, query="", **params):
    """The list of rows behind a figure, under the page's filters."""
    url = reverse("reporting:rows", args=[figure_key])
    extra = urlencode({k: ("" if v is None else v) for k, v in params.items()})
    parts = [part for part in (query, extra) if part]
    return f"{url}?{'&'.join(parts)}" if parts else url


@register.simple_tag
def export_url(page, table, query=""):
    url = reverse("reporting:export", args=[page])
    return f"{url}?table={table}" + (f"&{query}" if query else "")


@register.filter
def get_item(mapping, key):
    if mapping is None:
        return None
    return mapping.get(key)


@register.filter
def meter_value(value):
    """A number for a <meter> value attribute (dot decimal, no grouping)."""
    if value is None:
        return 0
    return f"{float(value):.4f}"


@register.filter
def roi(row, model):
    """An attribution row's ROI under a model: (credited revenue − spend) ÷ spend."""
    return row.roi(model)
