"""Template filters of the billing pages and documents."""

from typing import Any

from django import template

from portal import formatting

register = template.Library()


@register.filter
def units(value: Any) -> str:
    """A counter quantity or rate without trailing zeros or exponent, with the locale's
    separators: 1600.0000 -> 1,600 (portal.formatting.number)."""
    return formatting.number(value)
