"""Charts drawn on the server as inline SVG.

The Content-Security-Policy allows no inline scripts or styles and no CDN, so charts are plain
SVG elements: geometry in presentation attributes (points, x, y, width, height), colour through
classes from app.css. Every function returns markup that is safe to embed; text is escaped.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from django.utils import dateformat
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _

# The drawing area inside the viewBox; the margins hold the axis labels.
LEFT, RIGHT, TOP, BOTTOM = 48, 12, 12, 28


@dataclass(frozen=True)
class Series:
    """One line of a line chart: (x, y) points, x a datetime, y a number or None (a gap)."""

    label: str
    points: Sequence[tuple[datetime, float | None]]
    css_class: str = "series-default"


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    css_class: str = "bar-default"
    title: str = field(default="")


def nice_max(value: float) -> float:
    """The smallest 1, 2, 2.5 or 5 times a power of ten at or above `value` (axis top)."""
    if value <= 0:
        return 1.0
    exponent = math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        candidate = step * 10**exponent
        if candidate >= value:
            return float(candidate)
    return float(10 ** (exponent + 1))  # pragma: no cover - the loop ends at 10


def _tick_intervals(top_value: float) -> int:
    """Four steps for a top of 2, 20, 200...; five otherwise, so every tick is a round number."""
    leading = top_value / 10 ** math.floor(math.log10(top_value))
    return 4 if round(leading, 6) == 2 else 5


def _number(value: float) -> str:
    """A tick label: 12.5k rather than 12500, whole numbers without a decimal point."""
    for limit, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= limit:
            scaled = value / limit
            return f"{scaled:.1f}".rstrip("0").rstrip(".") + suffix
    if value == int(value):
        return str(int(value))
    return f"{value:.1f}"


def _coordinate(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _y_axis(*, width: int, height: int, top_value: float, unit: str) -> list[str]:
    parts: list[str] = []
    plot_height = height - TOP - BOTTOM
    intervals = _tick_intervals(top_value)
    for i in range(intervals + 1):
        value = top_value * i / intervals
        y = TOP + plot_height - plot_height * i / intervals
        parts.append(
            format_html(
                '<line class="chart-grid" x1="{}" y1="{}" x2="{}" y2="{}"/>'
                '<text class="chart-label" x="{}" y="{}" text-anchor="end">{}{}</text>',
                LEFT,
                _coordinate(y),
                width - RIGHT,
                _coordinate(y),
                LEFT - 6,
                _coordinate(y + 4),
                _number(value),
                unit,
            )
        )
    return parts


def _open(width: int, height: int, title: str) -> str:
    return format_html(
        '<svg class="chart" viewBox="0 0 {} {}" width="100%" role="img" aria-label="{}" '
        'preserveAspectRatio="xMidYMid meet"><title>{}</title>',
        width,
        height,
        title,
        title,
    )


def _empty(width: int, height: int, title: str, message: str) -> SafeString:
    return mark_safe(  # noqa: S308 - every part is built by format_html
        _open(width, height, title)
        + format_html(
            '<text class="chart-empty" x="{}" y="{}" text-anchor="middle">{}</text></svg>',
            width // 2,
            height // 2,
            message or _("No data yet"),
        )
    )


def line_chart(
    series: Sequence[Series],
    *,
    title: str,
    width: int = 640,
    height: int = 220,
    y_max: float | None = None,
    unit: str = "",
    empty: str = "",
) -> SafeString:
    """A time-series chart: one polyline per series, dated x axis, numbered y axis.

    A None value breaks the line (the supply was not reported); a series with a single point is
    drawn as a dot so it does not vanish.
    """
    known = [(x, y) for s in series for x, y in s.points if y is not None]
    if not known:
        return _empty(width, height, title, empty)
    start = min(x for x, _ in known)
    end = max(x for x, _ in known)
    span = (end - start).total_seconds() or 1.0
    top_value = y_max if y_max is not None else nice_max(max(y for _, y in known))
    plot_width = width - LEFT - RIGHT
    plot_height = height - TOP - BOTTOM

    def place(x: datetime, y: float) -> str:
        px = LEFT + plot_width * (x - start).total_seconds() / span
        py = TOP + plot_height - plot_height * min(max(y, 0.0), top_value) / top_value
        return f"{_coordinate(px)},{_coordinate(py)}"

    parts = [
        _open(width, height, title),
        *_y_axis(width=width, height=height, top_value=top_value, unit=unit),
    ]
    date_format = "d M H:i" if span < 2 * 86400 else "d M"
    for when, label_x, anchor in ((start, LEFT, "start"), (end, width - RIGHT, "end")):
        parts.append(
            format_html(
                '<text class="chart-label" x="{}" y="{}" text-anchor="{}">{}</text>',
                label_x,
                height - 8,
                anchor,
                dateformat.format(when, date_format),
            )
        )
    for s in series:
        runs: list[list[str]] = [[]]
        for when, value in s.points:
            if value is None:
                runs.append([])
            else:
                runs[-1].append(place(when, value))
        for run in runs:
            if len(run) == 1:
                cx, cy = run[0].split(",")
                parts.append(
                    format_html(
                        '<circle class="chart-dot {}" cx="{}" cy="{}" r="3"/>', s.css_class, cx, cy
                    )
                )
            elif run:
                parts.append(
                    format_html(
                        '<polyline class="chart-line {}" fill="none" points="{}">'
                        "<title>{}</title></polyline>",
                        s.css_class,
                        " ".join(run),
                        s.label,
                    )
                )
    parts.append(
        format_html(
            '<line class="chart-axis" x1="{}" y1="{}" x2="{}" y2="{}"/></svg>',
            LEFT,
            TOP + plot_height,
            width - RIGHT,
            TOP + plot_height,
        )
    )
    return mark_safe("".join(parts))  # noqa: S308 - every part is built by format_html


def bar_chart(
    bars: Sequence[Bar],
    *,
    title: str,
    width: int = 640,
    height: int = 220,
    unit: str = "",
    empty: str = "",
    label_every: int = 1,
) -> SafeString:
    """Vertical bars with a numbered y axis; every `label_every`-th bar gets its label."""
    if not bars or all(b.value <= 0 for b in bars):
        return _empty(width, height, title, empty)
    top_value = nice_max(max(b.value for b in bars))
    plot_width = width - LEFT - RIGHT
    plot_height = height - TOP - BOTTOM
    slot = plot_width / len(bars)
    bar_width = max(slot * 0.7, 1.0)
    parts = [
        _open(width, height, title),
        *_y_axis(width=width, height=height, top_value=top_value, unit=unit),
    ]
    for i, bar in enumerate(bars):
        bar_height = plot_height * max(bar.value, 0.0) / top_value
        x = LEFT + slot * i + (slot - bar_width) / 2
        parts.append(
            format_html(
                '<rect class="chart-bar {}" x="{}" y="{}" width="{}" height="{}">'
                "<title>{}</title></rect>",
                bar.css_class,
                _coordinate(x),
                _coordinate(TOP + plot_height - bar_height),
                _coordinate(bar_width),
                _coordinate(bar_height),
                bar.title or f"{bar.label}: {_number(bar.value)}{unit}",
            )
        )
        if i % label_every == 0:
            parts.append(
                format_html(
                    '<text class="chart-label" x="{}" y="{}" text-anchor="middle">{}</text>',
                    _coordinate(x + bar_width / 2),
                    height - 8,
                    bar.label,
                )
            )
    parts.append(
        format_html(
            '<line class="chart-axis" x1="{}" y1="{}" x2="{}" y2="{}"/></svg>',
            LEFT,
            TOP + plot_height,
            width - RIGHT,
            TOP + plot_height,
        )
    )
    return mark_safe("".join(parts))  # noqa: S308 - every part is built by format_html


def gauge(percent: float | None, *, css_class: str = "", label: str = "") -> SafeString:
    """A horizontal level bar, 0-100 %; unknown levels show an empty hatched track."""
    title = label or _("Supply level")
    if percent is None:
        return format_html(
            '<svg class="gauge {}" viewBox="0 0 100 10" preserveAspectRatio="none" role="img" '
            'aria-label="{}: {}"><title>{}: {}</title>'
            '<rect class="gauge-track gauge-unknown" x="0" y="0" width="100" height="10" rx="2"/>'
            "</svg>",
            css_class,
            title,
            _("level unknown"),
            title,
            _("level unknown"),
        )
    clamped = min(max(percent, 0.0), 100.0)
    return format_html(
        '<svg class="gauge {}" viewBox="0 0 100 10" preserveAspectRatio="none" role="img" '
        'aria-label="{}: {}%"><title>{}: {}%</title>'
        '<rect class="gauge-track" x="0" y="0" width="100" height="10" rx="2"/>'
        '<rect class="gauge-fill" x="0" y="0" width="{}" height="10" rx="2"/></svg>',
        css_class,
        title,
        round(clamped),
        title,
        round(clamped),
        _coordinate(clamped),
    )


def supply_css_class(color: str) -> str:
    """The colour class of a supply: the four process colours by name, the rest neutral."""
    name = color.strip().lower()
    known = {"cyan", "magenta", "yellow", "black", "matte black", "photo black", "gray", "grey"}
    if name in known:
        return "supply-" + name.replace(" ", "-").replace("grey", "gray")
    return "supply-other"


# Colours for supplies without a process colour (maintenance kit, printhead, drum, fuser...),
# handed out in order so that two of them on one device never look alike (app.css).
OTHER_SUPPLY_CLASSES = 6


def supply_css_classes(colors: Sequence[str]) -> list[str]:
    """One colour class per supply of a device, no two alike: the colour's own class, the next
    of the neutral palette for colourless supplies, and a dash pattern for a repeated colour
    (two black cartridges), so every line of the chart and its legend entry can be told apart.
    """
    classes: list[str] = []
    others = 0
    for color in colors:
        base = supply_css_class(color)
        if base == "supply-other":
            base = f"supply-other-{others % OTHER_SUPPLY_CLASSES}"
            others += 1
        css, repeat = base, 0
        while css in classes:
            repeat += 1
            css = f"{base} series-dash-{min(repeat, 3)}"
        classes.append(css)
    return classes


def level_bar(percent: float | None, *, css_class: str = "", label: str = "") -> SafeString:
    """A small upright level bar (the device list shows one per supply)."""
    title = label or _("Supply level")
    text = _("level unknown") if percent is None else f"{round(min(max(percent, 0.0), 100.0))}%"
    fill = ""
    if percent is not None:
        height = min(max(percent, 0.0), 100.0) * 24 / 100
        fill = format_html(
            '<rect class="gauge-fill" x="0" y="{}" width="10" height="{}" rx="1.5"/>',
            _coordinate(24 - height),
            _coordinate(height),
        )
    return format_html(
        '<svg class="level-bar {}" viewBox="0 0 10 24" width="10" height="24" role="img" '
        'aria-label="{}: {}"><title>{}: {}</title>'
        '<rect class="gauge-track{}" x="0" y="0" width="10" height="24" rx="1.5"/>{}</svg>',
        css_class,
        title,
        text,
        title,
        text,
        " gauge-unknown" if percent is None else "",
        fill,
    )
