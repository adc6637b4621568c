"""Pure normalisation of reported values into stored ones (property-tested with Hypothesis)."""

from __future__ import annotations

import hashlib
import hmac
import math
from decimal import Decimal

# CounterReading.value is DECIMAL(20, 4).
COUNTER_MAX = Decimal("1e16")
# Job.pages and copies are BIGINT.
COUNT_MAX = 2**63 - 1

# RFC 3805 prtMarkerSuppliesLevel special values, when a sender passes them through as levels.
_SPECIAL_LEVELS = {-1: "unlimited", -2: "unknown", -3: "some_remaining"}

_COLOR_ALIASES = {
    "k": "black",
    "bk": "black",
    "pk": "photo black",
    "mk": "matte black",
    "c": "cyan",
    "m": "magenta",
    "y": "yellow",
    "lc": "light cyan",
    "lm": "light magenta",
    "grey": "gray",
}


def text(value: str) -> str:
    """PostgreSQL text cannot hold NUL; nothing a printer means is lost by dropping it."""
    return value.replace("\x00", "") if "\x00" in value else value


def color(value: str) -> str:
    """Lower case, single spaces, common abbreviations spelled out: 'Cyan ' and 'C' are cyan."""
    cleaned = " ".join(text(value).lower().replace("_", " ").split())
    return _COLOR_ALIASES.get(cleaned, cleaned)


def counter_value(value: float) -> Decimal | None:
    """The stored value (4 decimal places), or None when it cannot be a cumulative counter."""
    if not math.isfinite(value) or value < 0:
        return None
    exact = Decimal(repr(value))  # the shortest decimal of this float: what the sender wrote
    if exact >= COUNTER_MAX:
        return None
    stored = round(exact, 4)
    return stored if stored < COUNTER_MAX else None


def level_state(level: float | None, reported: str | None) -> str:
    """The RFC 3805 state: as reported, else inferred from a special (negative) level."""
    if reported:
        return reported
    if level is None:
        return "unknown"
    if level < 0:
        return _SPECIAL_LEVELS.get(int(level), "unknown") if level.is_integer() else "unknown"
    return "ok"


def supply_percent(level: float | None, max_capacity: float | None, state: str) -> float | None:
    """Percent remaining, 0-100, when level and capacity are both known; otherwise None."""
    if state != "ok" or level is None or max_capacity is None:
        return None
    if not (math.isfinite(level) and math.isfinite(max_capacity)) or max_capacity <= 0:
        return None
    if level < 0:
        return None
    return round(min(100.0, level / max_capacity * 100.0), 2)


def finite(value: float | None) -> float | None:
    """Floats to store: infinities (1e400 in JSON) become unknown."""
    if value is None or not math.isfinite(value):
        return None
    return value


def personal(value: str, *, mode: str, key: bytes) -> str:
    """A job or user name under the customer's privacy policy: stored, keyed hash, or dropped."""
    if not value or mode == "drop":
        return ""
    if mode == "hash":
        digest = hmac.new(key, value.encode("utf-8", "surrogatepass"), hashlib.sha256)
        return "sha256:" + digest.hexdigest()[:32]
    return text(value)
