"""Template filters of the billing pages and documents."""

from decimal import Decimal
from typing import Any

from django import template

register = template.Library()


@register.filter
def units(value: Any) -> str:
    """A counter quantity or price without trailing zeros or exponent: 1600.0000 -> 1,600."""
    if value is None or value == "":
        return ""
    number = value if isinstance(value, Decimal) else Decimal(str(value))
    return format(number.normalize(), ",f")
