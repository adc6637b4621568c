"""Template helpers of the orders pages: how a forecast reads in a table cell."""

from __future__ import annotations

from typing import Any

from django import template
from django.core.exceptions import ObjectDoesNotExist

register = template.Library()


def _forecast_of(supply: Any) -> Any:
    try:
        return supply.forecast
    except ObjectDoesNotExist:
        return None


@register.inclusion_tag("orders/_forecast.html")
def forecast_cell(supply: Any) -> dict[str, Any]:
    """Days to empty, or why there is no figure (coarse levels, too few readings, stable)."""
    return {"forecast": _forecast_of(supply), "supply": supply}


@register.filter
def status_badge(status: str) -> str:
    """The badge class of an order status."""
    return {
        "delivered": "ok",
        "shipped": "ok",
        "accepted": "ok",
        "submitted": "warn",
        "pending_approval": "warn",
        "cancelled": "bad",
        "rejected": "bad",
    }.get(status, "")
