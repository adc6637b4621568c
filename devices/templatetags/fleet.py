"""Template tags of the fleet pages: supply gauges drawn by devices.charts."""

from __future__ import annotations

from typing import Any

from django import template
from django.utils.safestring import SafeString

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
