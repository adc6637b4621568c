"""Server-drawn SVG charts and the grouping of statement lines per device, for the statement
page and the PDF. Classes only (the CSP forbids inline styles); app.css colours them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from django.utils import dateformat
from django.utils.html import escape, format_html
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _

from billing.exports import initials, last_day
from billing.models import StatementLine

WIDTH, HEIGHT = 360, 110
PAD_LEFT, PAD_BOTTOM, PAD_TOP = 44, 18, 8


@dataclass
class DeviceGroup:
    device: Any
    lines: list[StatementLine] = field(default_factory=list)

    @property
    def amount(self) -> Decimal:
        return sum((line.amount for line in self.lines), Decimal(0))

    @property
    def read_at(self) -> tuple[datetime, datetime] | None:
        """The times of the start and end readings when every usage line with readings was
        read at the same two times (the usual case: one snapshot carries every counter), so
        the printed statement says them once for the printer."""
        times = {
            (line.start_at, line.end_at)
            for line in self.lines
            if line.kind == StatementLine.Kind.USAGE
            and (line.start_value is not None or line.end_value is not None)
        }
        if len(times) != 1:
            return None
        start, end = times.pop()
        return (start, end) if start is not None and end is not None else None

    @property
    def flags(self) -> list[str]:
        seen: list[str] = []
        for line in self.lines:
            for flag in line.flags:
                if flag not in seen and flag != "prorated":
                    seen.append(flag)
        return seen


def device_groups(lines: Sequence[StatementLine]) -> list[DeviceGroup]:
    """Lines per device in statement order; lines without a device are left to the totals."""
    groups: dict[int, DeviceGroup] = {}
    for line in lines:
        if line.device is None:
            continue
        groups.setdefault(line.device.pk, DeviceGroup(device=line.device)).lines.append(line)
    return list(groups.values())


@dataclass
class Charge:
    """The lines of one kind of charge added up, for the printed statement's summary."""

    kind: str
    label: str
    lines: int = 0
    usage: Decimal = Decimal(0)
    allowance: Decimal = Decimal(0)
    billable: Decimal = Decimal(0)
    amount: Decimal = Decimal(0)


def charge_summary(lines: Sequence[StatementLine]) -> list[Charge]:
    """Fees, then each priced counter in statement order, then the rest (a minimum): their
    amounts add up to the statement's net amount, which is the sum of its lines."""
    charges: dict[tuple[str, ...], Charge] = {}
    for line in lines:
        if line.kind == StatementLine.Kind.FEE:
            key: tuple[str, ...] = (line.kind,)
            label = _("Monthly device fees")
        elif line.kind == StatementLine.Kind.USAGE:
            key = (line.kind, line.counter, line.media_type, line.color)
            label = line.counter_label
        else:
            key = (line.kind, line.rate_label)
            label = " · ".join(p for p in (line.get_kind_display(), line.rate_label) if p)
        charge = charges.setdefault(key, Charge(kind=line.kind, label=label))
        charge.lines += 1
        charge.usage += line.usage
        charge.allowance += line.allowance
        charge.billable += line.billable
        charge.amount += line.amount
    order: dict[str, int] = {StatementLine.Kind.FEE: 0, StatementLine.Kind.USAGE: 1}
    return sorted(charges.values(), key=lambda c: order.get(c.kind, 2))  # stable


def site_summary(sites: Sequence[Any], groups: Sequence[DeviceGroup]) -> list[dict[str, Any]]:
    """Each site of the statement with its printers and their amount."""
    printers: dict[int, int] = {}
    amounts: dict[int, Decimal] = {}
    for group in groups:
        site_id = group.device.site_id
        printers[site_id] = printers.get(site_id, 0) + 1
        amounts[site_id] = amounts.get(site_id, Decimal(0)) + group.amount
    return [
        {
            "name": site.name,
            "address_lines": site.address_lines,
            "printers": printers.get(site.pk, 0),
            "amount": amounts.get(site.pk, Decimal(0)),
        }
        for site in sites
    ]


def _nice_max(value: Decimal) -> Decimal:
    if value <= 0:
        return Decimal(1)
    magnitude = Decimal(10) ** (len(str(int(value))) - 1)
    for step in (1, 2, 5, 10):
        if value <= magnitude * step:
            return magnitude * step
    return magnitude * 10


def _day(day: date) -> str:
    """ "01 Mar", its month named in the reader's language."""
    return dateformat.format(day, "d M")


def bar_chart(series: Sequence[tuple[date, Decimal]], *, title: str) -> SafeString:
    """Daily growth as bars, with a y scale and the first and last day labelled."""
    if not series:
        return mark_safe(  # noqa: S308 - fixed markup, no user data
            format_html(
                '<svg class="chart" viewBox="0 0 {} {}" role="img" aria-label="{}">'
                '<text class="chart-empty" x="{}" y="{}" text-anchor="middle">{}</text></svg>',
                WIDTH,
                HEIGHT,
                _("No data"),
                WIDTH / 2,
                HEIGHT / 2,
                _("No readings in this period"),
            )
        )
    top = _nice_max(max(v for _, v in series))
    plot_w, plot_h = WIDTH - PAD_LEFT - 4, HEIGHT - PAD_BOTTOM - PAD_TOP
    step = plot_w / len(series)
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{escape(title)}: daily usage">',
        f"<title>{escape(title)}</title>",
    ]
    for fraction in (0, 0.5, 1):
        y = PAD_TOP + plot_h * (1 - fraction)
        label = f"{top * Decimal(str(fraction)):,.0f}"
        parts.append(
            f'<line class="chart-grid" x1="{PAD_LEFT}" x2="{WIDTH - 4}" y1="{y:.1f}" y2="{y:.1f}"/>'
            f'<text class="chart-label" x="{PAD_LEFT - 6}" y="{y + 4:.1f}" '
            f'text-anchor="end">{label}</text>'
        )
    for index, (day, value) in enumerate(series):
        height = float(value / top) * plot_h
        x = PAD_LEFT + index * step + step * 0.15
        y = PAD_TOP + plot_h - height
        parts.append(
            f'<rect class="chart-bar" x="{x:.1f}" y="{y:.1f}" width="{step * 0.7:.1f}" '
            f'height="{height:.1f}"><title>{_day(day)}: {value.normalize():f}</title></rect>'
        )
    first, last = series[0][0], series[-1][0]
    parts.append(
        f'<text class="chart-label" x="{PAD_LEFT}" y="{HEIGHT - 4}">{_day(first)}</text>'
        f'<text class="chart-label" x="{WIDTH - 4}" y="{HEIGHT - 4}" '
        f'text-anchor="end">{_day(last)}</text></svg>'
    )
    return mark_safe("".join(parts))  # noqa: S308 - numbers and escaped text only


def device_usage_charts(
    group: DeviceGroup, daily: dict[tuple[int, str, str, str], list[tuple[date, Decimal]]]
) -> list[dict[str, Any]]:
    charts = []
    for line in group.lines:
        if line.kind != StatementLine.Kind.USAGE:
            continue
        key = (group.device.pk, line.counter, line.media_type, line.color)
        charts.append(
            {
                "label": line.counter_label,
                "usage": line.usage,
                "svg": bar_chart(daily.get(key, []), title=line.counter_label),
            }
        )
    return charts


def pdf_context(context: dict[str, Any]) -> dict[str, Any]:
    """The statement page's data, shaped for the printed document."""
    statement = context["statement"]
    reseller = context["reseller"]
    lines = context["lines"]
    logo = getattr(reseller, "logo", None)
    groups = device_groups(lines)
    return {
        **context,
        "groups": groups,
        "charges": charge_summary(lines),
        "sites": site_summary(context["sites"], groups),
        "other_lines": [line for line in lines if line.device is None],
        "reseller_initials": initials(reseller.name),
        # WeasyPrint renders without a request: it reads the uploaded file itself.
        "logo_url": Path(logo.path).as_uri() if logo else "",
        "reseller_address": [p for p in (reseller.address or "").splitlines() if p.strip()],
        "period_last_day": last_day(statement.period_end),
    }
