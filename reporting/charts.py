"""Charts as inline SVG, built on the server: printable, no JavaScript, and
clean under the Content-Security-Policy (presentation attributes and classes
only, no style attributes). Colours come from static/accord/reporting.css.

Each chart has a <title> and an aria-label; the numbers are also in the
table beside it (and its CSV).
"""

from collections.abc import Sequence
from dataclasses import dataclass

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe


@dataclass
class Series:
    name: str
    values: Sequence[float | None]
    css: str = "series-0"


def _num(value) -> float:
    return float(value or 0)


def _fmt(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def short_number(value: float, money: bool = False) -> str:
    prefix = "$" if money else ""
    value = float(value or 0)
    for limit, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= limit:
            return f"{prefix}{value / limit:.1f}".rstrip("0").rstrip(".") + suffix
    return f"{prefix}{value:,.0f}"


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1.0
    magnitude = 10 ** (len(str(int(value))) - 1)
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * magnitude:
            return step * magnitude
    return 10 * magnitude


def _svg(width: int, height: int, title: str, body: list[str], css: str = "") -> SafeString:
    return mark_safe(
        f'<svg class="chart {escape(css)}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(title)}" preserveAspectRatio="xMinYMin meet" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>{"".join(body)}</svg>'
    )


def funnel_chart(stages: list[dict], *, title: str = "Funnel") -> SafeString:
    """Horizontal bars, one per stage (label, count), with the conversion
    from the previous stage on the right."""
    width, row_height, label_width, value_width = 640, 34, 190, 150
    bar_width = width - label_width - value_width
    top = max((_num(s["reached"]) for s in stages), default=0) or 1
    body = []
    for index, stage in enumerate(stages):
        y = index * row_height
        length = max(1.0, bar_width * _num(stage["reached"]) / top)
        body.append(
            f'<text class="label" x="{label_width - 8}" y="{y + 21}" text-anchor="end">'
            f"{escape(stage['label'])}</text>"
            f'<rect class="bar series-{index % 6}" x="{label_width}" y="{y + 6}" '
            f'width="{_fmt(length)}" height="{row_height - 12}" rx="3"/>'
            f'<text class="value" x="{label_width + length + 6:.1f}" y="{y + 21}">'
            f"{int(_num(stage['reached'])):,}</text>"
        )
        if stage.get("conversion") is not None:
            days = stage.get("median_days")
            note = f"{stage['conversion']:.0f}%" + (f" · {days:.0f} d" if days is not None else "")
            body.append(
                f'<text class="note" x="{width - 4}" y="{y + 21}" text-anchor="end">'
                f"{escape(note)}</text>"
            )
    return _svg(width, row_height * len(stages) + 4, title, body, "chart-funnel")


def grouped_bar_chart(
    categories: list[str], series: list[Series], *, title: str, money: bool = True
) -> SafeString:
    """Horizontal bars per category, one bar per series (e.g. two attribution
    models side by side)."""
    width, label_width, value_width = 640, 180, 70
    bar_height, gap = 12, 10
    group_height = bar_height * len(series) + gap
    bar_width = width - label_width - value_width
    top = max((_num(v) for s in series for v in s.values), default=0) or 1
    legend_height = 22
    body = []
    for index, item in enumerate(series):
        x = label_width + index * 200
        body.append(
            f'<rect class="bar {escape(item.css)}" x="{x}" y="4" width="12" height="12" rx="2"/>'
            f'<text class="legend" x="{x + 18}" y="14">{escape(item.name)}</text>'
        )
    for row, category in enumerate(categories):
        y = legend_height + row * group_height
        body.append(
            f'<text class="label" x="{label_width - 8}" y="{y + group_height / 2 + 2:.1f}" '
            f'text-anchor="end">{escape(category[:28])}</text>'
        )
        for index, item in enumerate(series):
            value = _num(item.values[row])
            length = max(0.5, bar_width * value / top)
            by = y + index * bar_height
            body.append(
                f'<rect class="bar {escape(item.css)}" x="{label_width}" y="{by}" '
                f'width="{_fmt(length)}" height="{bar_height - 2}" rx="2"/>'
                f'<text class="value small" x="{label_width + length + 4:.1f}" y="{by + 9}">'
                f"{escape(short_number(value, money))}</text>"
            )
    height = legend_height + group_height * len(categories) + 4
    return _svg(width, height, title, body, "chart-bars")


def line_chart(
    labels: list[str],
    lines: list[Series],
    *,
    title: str,
    bars: Series | None = None,
    money: bool = True,
) -> SafeString:
    """A line per series over the labels (months), optionally over bars."""
    width, height = 640, 240
    left, right, top, bottom = 56, 12, 28, 30
    plot_w, plot_h = width - left - right, height - top - bottom
    values = [
        _num(v) for s in [*lines, *([bars] if bars else [])] for v in s.values if v is not None
    ]
    ymax = _nice_max(max(values, default=0))
    count = max(1, len(labels))
    step = plot_w / count

    def x(index):
        return left + step * index + step / 2

    def y(value):
        return top + plot_h - plot_h * _num(value) / ymax

    body = []
    for tick in range(5):
        value = ymax * tick / 4
        ty = y(value)
        body.append(
            f'<line class="grid" x1="{left}" x2="{width - right}" y1="{ty:.1f}" y2="{ty:.1f}"/>'
            f'<text class="axis" x="{left - 6}" y="{ty + 4:.1f}" text-anchor="end">'
            f"{escape(short_number(value, money))}</text>"
        )
    every = max(1, count // 12)
    for index, label in enumerate(labels):
        if index % every == 0:
            body.append(
                f'<text class="axis" x="{x(index):.1f}" y="{height - 10}" text-anchor="middle">'
                f"{escape(label)}</text>"
            )
    if bars is not None:
        bar_w = max(2.0, step * 0.6)
        for index, value in enumerate(bars.values):
            if value is None:
                continue
            by = y(value)
            body.append(
                f'<rect class="bar {escape(bars.css)}" x="{x(index) - bar_w / 2:.1f}" '
                f'y="{by:.1f}" width="{bar_w:.1f}" height="{top + plot_h - by:.1f}" rx="2">'
                f"<title>{escape(labels[index])}: {escape(short_number(value, money))}</title>"
                f"</rect>"
            )
    for item in lines:
        points = [f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(item.values) if v is not None]
        if points:
            body.append(
                f'<polyline class="line {escape(item.css)}" fill="none" points="{" ".join(points)}"/>'
            )
            for i, v in enumerate(item.values):
                if v is not None:
                    body.append(
                        f'<circle class="dot {escape(item.css)}" cx="{x(i):.1f}" cy="{y(v):.1f}" '
                        f'r="3"><title>{escape(item.name)}, {escape(labels[i])}: '
                        f"{escape(short_number(v, money))}</title></circle>"
                    )
    legend = [*([bars] if bars else []), *lines]
    for index, item in enumerate(legend):
        lx = left + index * 190
        body.append(
            f'<rect class="bar {escape(item.css)}" x="{lx}" y="6" width="12" height="12" rx="2"/>'
            f'<text class="legend" x="{lx + 18}" y="16">{escape(item.name)}</text>'
        )
    return _svg(width, height, title, body, "chart-lines")
