"""Template tags of the fleet pages: supply gauges drawn by devices.charts."""

from __future__ import annotations

from html import escape
from typing import Any

from django import template
from django.utils.safestring import SafeString, mark_safe

from devices import charts

register = template.Library()


def _label(supply: Any) -> str:
    return str(supply.description or supply.color or supply.supply_key)


@register.simple_tag
def supply_gauge(supply: Any) -> SafeString:
    """A horizontal level bar in the supply's colour."""
    return charts.gauge(
        supply.percent, css_class=charts.supply_css_class(supply.color), label=_label(supply)
    )


@register.simple_tag
def supply_level(supply: Any) -> SafeString:
    """A small upright level bar, for a row of the device list."""
    return charts.level_bar(
        supply.percent, css_class=charts.supply_css_class(supply.color), label=_label(supply)
    )


@register.simple_tag
def select_options(choices: Any, selected: Any) -> SafeString:
    """The <option>s of a filter, the selected one marked. A reseller's customer and site
    filters list hundreds: rendered by the template language (or format_html), they cost more
    than the database spends on the page (issue 12). Values and labels are escaped here."""
    return mark_safe(  # noqa: S308 - every value and label is escaped
        "".join(
            f'<option value="{escape(str(value))}"{" selected" if value == selected else ""}>'
            f"{escape(str(label))}</option>"
            for value, label in choices
        )
    )
