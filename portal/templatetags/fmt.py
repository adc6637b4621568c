"""The filters every template uses to show numbers, money, times and codes (a builtin library:
no `{% load %}` needed). They format by the signed-in user's locale and time zone through
portal.formatting, and name codes through portal.labels.

    {{ device.state.impressions_total|number }}     1,234
    {{ statement.total|money:statement.currency }}  €1,234.50
    {{ supply.percent|percent }}                    42%
    {{ alert.first_seen_at|when }}                  31/12/2025 14:30
    {{ statement.period_start|day }}                01/12/2025
    {{ alert|alert_text }}                          Paper jam
"""

from __future__ import annotations

from typing import Any

from django import template

from portal import formatting, labels

register = template.Library()


@register.filter
def number(value: Any, places: Any = None) -> str:
    return formatting.number(value, None if places in (None, "") else int(places))


@register.filter
def money(value: Any, currency: str) -> str:
    return formatting.money(value, currency)


@register.filter
def percent(value: Any, places: Any = 0) -> str:
    """Whole percent by default (a supply level); `percent:"all"` keeps every significant
    decimal (a tax rate of 7.7 %)."""
    return formatting.percent(value, None if places == "all" else int(places))


@register.filter
def days(value: Any) -> str:
    """A number of days, whole and counted: 1 day, 12 days, 1,200 days."""
    return formatting.days(value)


@register.filter
def when(value: Any) -> str:
    return formatting.datetime(value)


@register.filter
def day(value: Any) -> str:
    return formatting.date(value)


@register.filter
def clock(value: Any) -> str:
    return formatting.time(value)


@register.filter
def supply_label(supply: Any) -> str:
    return labels.supply_label(supply)


@register.filter
def supply_kind(kind: str) -> str:
    return labels.supply_kind_label(kind)


@register.filter
def alert_text(alert: Any) -> str:
    return labels.alert_label(alert.code, alert.description)


def _counter_name(counter: Any) -> str:
    # A reading has a name, a statement line a counter.
    return str(getattr(counter, "name", None) or getattr(counter, "counter", ""))


@register.filter
def counter_label(counter: Any) -> str:
    """A counter reading or statement line (name or counter, media_type, color) in words."""
    return labels.counter_label(
        _counter_name(counter), getattr(counter, "media_type", ""), getattr(counter, "color", "")
    )


@register.filter
def counter_unit(counter: Any) -> str:
    return labels.counter_unit(_counter_name(counter), getattr(counter, "unit", ""))


@register.filter
def unit(value: str) -> str:
    return labels.unit_label(value)


@register.filter
def statement_flag(value: str) -> str:
    return labels.flag_label(value)


@register.filter
def auth_failure(reason: str) -> str:
    return labels.auth_failure_label(reason)


@register.filter
def order_status(value: str) -> str:
    return labels.order_status_label(value)


@register.filter
def role(value: str) -> str:
    return labels.role_label(value)


@register.filter
def audit_text(event: Any) -> str:
    return labels.audit_sentence(event.action, event.detail, event.object_id)


@register.simple_tag
def time_zone_name() -> str:
    return formatting.time_zone_name()
