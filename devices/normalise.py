"""Pure normalisation of reported values into stored ones (property-tested with Hypothesis)."""

from __future__ import annotations

import functools
import hashlib
import hmac
import math
import re
from decimal import Decimal

# CounterReading.value is DECIMAL(20, 4).
COUNTER_MAX = Decimal("1e16")
COUNTER_MAX_FLOAT = 1e16
_FOUR_PLACES = Decimal("0.0000")
# Job.pages and copies are BIGINT.
COUNT_MAX = 2**63 - 1

# RFC 3805 prtMarkerSuppliesLevel special values, when a sender passes them through as levels.
_SPECIAL_LEVELS = {-1: "unlimited", -2: "unknown", -3: "some_remaining"}

# Supply colours: a name in the printer's own words made canonical ("matte black") and its
# family ("black"). The collector names colours the same way (inkmeter_collector/colours.py);
# tests/collector/test_colours.py holds both to one table. The families are the wire's
# `color_family` values.
COLOR_FAMILIES = (
    "black",
    "cyan",
    "magenta",
    "yellow",
    "gray",
    "red",
    "green",
    "blue",
    "orange",
    "violet",
    "white",
    "clear",
    "tri-colour",
)
_COLOR_ABBREVIATIONS = {
    "k": "black",
    "bk": "black",
    "pk": "photo black",
    "pbk": "photo black",
    "mk": "matte black",
    "mbk": "matte black",
    "lk": "light black",
    "llk": "light light black",
    "c": "cyan",
    "m": "magenta",
    "y": "yellow",
    "lc": "light cyan",
    "lm": "light magenta",
    "vm": "vivid magenta",
    "vlm": "vivid light magenta",
    "gy": "gray",
    "r": "red",
    "g": "green",
    "b": "blue",
    "or": "orange",
    "v": "violet",
    "w": "white",
}
_COLOR_BASES = {"grey": "gray", "purple": "violet", "transparent": "clear"}
_COLOR = re.compile(
    r"\b((?:(?:matte|photo|light|vivid|dark)\s+)*)"
    r"(black|cyan|magenta|yellow|gr[ae]y|red|green|blue|orange|violet|purple|white|clear)\b"
)
_TRICOLOR = re.compile(r"\btri-?colou?r\b")
_OPTIMIZER = re.compile(r"\b(gloss|chroma) optimi[sz]er\b")


def text(value: str) -> str:
    """PostgreSQL text cannot hold NUL; nothing a printer means is lost by dropping it."""
    return value.replace("\x00", "") if "\x00" in value else value


# A batch names the same few colours on every snapshot (counters, supplies): parsed once.
@functools.lru_cache(maxsize=4096)
def color(value: str) -> str:
    """The colour a sender reported, canonical: lower case, abbreviations spelled out ('C' is
    cyan), the colour picked out of a description ('Black Ink Cartridge' is black) while
    keeping its qualifier ('Matte Black' is matte black). Text naming no colour is kept,
    cleaned."""
    cleaned = " ".join(text(value).lower().replace("_", " ").split())
    if cleaned in _COLOR_ABBREVIATIONS:
        return _COLOR_ABBREVIATIONS[cleaned]
    if _TRICOLOR.search(cleaned):
        return "tri-colour"
    optimizer = _OPTIMIZER.search(cleaned)
    if optimizer:
        return f"{optimizer.group(1)} optimizer"
    match = _COLOR.search(cleaned)
    if match is None:
        return cleaned
    return match.group(1) + _COLOR_BASES.get(match.group(2), match.group(2))


@functools.lru_cache(maxsize=4096)
def color_family(name: str, reported: str = "") -> str:
    """The family of a colour name from `color()` (matte black is black). A name the portal
    does not know takes the family its sender reported, if that is one of COLOR_FAMILIES."""
    if name == "tri-colour":
        return name
    if _OPTIMIZER.fullmatch(name):
        return "clear"
    match = _COLOR.fullmatch(name)
    if match:
        return _COLOR_BASES.get(match.group(2), match.group(2))
    return reported if reported in COLOR_FAMILIES else ""


def counter_value(value: float) -> Decimal | None:
    """The stored value (4 decimal places), or None when it cannot be a cumulative counter."""
    if not math.isfinite(value) or value < 0:
        return None
    if value.is_integer():
        # A count, the usual case: exact as an int, four places added without a decimal string.
        return Decimal(int(value)) + _FOUR_PLACES if value < COUNTER_MAX_FLOAT else None
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
