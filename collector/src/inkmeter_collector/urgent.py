"""Which polls must reach the portal at once rather than at the next upload interval.

A snapshot is urgent when, compared with the previous poll of the same printer, a supply has
crossed the portal's reorder threshold (level / max_capacity x 100 at or below it, as the
portal computes it from the same wire fields) or a critical alert has appeared (a new `id`: a
new row of the printer's alert table, so also one cleared and raised again between two polls). A supply that
stays low, or an alert that stays raised, is not urgent again: only the crossing is.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Seen:
    """What the previous poll of one printer found: its low supplies and critical alerts."""

    low: frozenset[str] = field(default_factory=frozenset)
    critical: frozenset[str] = field(default_factory=frozenset)

    def to_json(self) -> dict[str, list[str]]:
        return {"low": sorted(self.low), "critical": sorted(self.critical)}

    @classmethod
    def from_json(cls, data: Any) -> Seen:
        if not isinstance(data, dict):
            return cls()
        return cls(
            low=frozenset(str(x) for x in data.get("low", ())),
            critical=frozenset(str(x) for x in data.get("critical", ())),
        )


def supply_percent(supply: Mapping[str, Any]) -> float | None:
    """Percent remaining, as the portal derives it (devices/normalise.py supply_percent)."""
    level, capacity = supply.get("level"), supply.get("max_capacity")
    if supply.get("level_state", "ok") != "ok":
        return None
    if not isinstance(level, int | float) or not isinstance(capacity, int | float):
        return None
    if not (math.isfinite(level) and math.isfinite(capacity)) or capacity <= 0 or level < 0:
        return None
    return round(min(100.0, level / capacity * 100.0), 2)


def _alert_key(alert: Mapping[str, Any]) -> str:
    """One raise of an alert: its id (its alert table row), else its code and description."""
    if alert.get("id"):
        return json.dumps(["id", alert["id"]])
    return json.dumps([alert.get("code"), alert.get("description", "")])


def examine(
    snapshot: Mapping[str, Any], threshold: float | None, previous: Seen
) -> tuple[list[str], Seen]:
    """The reasons this snapshot is urgent (empty: it is not), and what to remember of it."""
    low = set()
    reasons = []
    if threshold is not None:
        for supply in snapshot.get("supplies", ()):
            percent = supply_percent(supply)
            if percent is not None and percent <= threshold:
                supply_id = str(supply.get("id"))
                low.add(supply_id)
                if supply_id not in previous.low:
                    reasons.append(f"{supply_id} at {percent:g}% (reorder at {threshold:g}%)")
    critical = set()
    for alert in snapshot.get("alerts", ()):
        if alert.get("severity") == "critical":
            key = _alert_key(alert)
            critical.add(key)
            if key not in previous.critical:
                reasons.append(f"critical alert {alert.get('code')}")
    return reasons, Seen(frozenset(low), frozenset(critical))
