"""Supply colours: the printer's own colour name, and the canonical family it belongs to.

"Black Ink Cartridge" is black; "Matte Black" stays matte black, of the black family; "PK" is
photo black. The portal normalises what it receives the same way (devices/normalise.py), and
tests/collector/test_colours.py holds both to one table of cases.
"""

from __future__ import annotations

import re

# The families a supply's colour belongs to (the wire's `color_family`).
FAMILIES = (
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
CHROMATIC = frozenset(FAMILIES) - {"black", "gray", "white", "clear"}

# Ink-set abbreviations printers and drivers use for a whole colour value.
_ABBREVIATIONS = {
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
_BASES = {"grey": "gray", "purple": "violet", "transparent": "clear"}
_COLOUR = re.compile(
    r"\b((?:(?:matte|photo|light|vivid|dark)\s+)*)"
    r"(black|cyan|magenta|yellow|gr[ae]y|red|green|blue|orange|violet|purple|white|clear)\b"
)
_TRICOLOUR = re.compile(r"\btri-?colou?r\b")
_OPTIMISER = re.compile(r"\b(gloss|chroma) optimi[sz]er\b")


def name(text: str | None) -> str | None:
    """The colour a text names, in the printer's own words made canonical, or None."""
    cleaned = " ".join((text or "").replace("\x00", "").lower().replace("_", " ").split())
    if not cleaned:
        return None
    if cleaned in _ABBREVIATIONS:
        return _ABBREVIATIONS[cleaned]
    if _TRICOLOUR.search(cleaned):
        return "tri-colour"
    optimiser = _OPTIMISER.search(cleaned)
    if optimiser:
        return f"{optimiser.group(1)} optimizer"
    match = _COLOUR.search(cleaned)
    if match is None:
        return None
    return match.group(1) + _BASES.get(match.group(2), match.group(2))


def family(colour: str | None) -> str | None:
    """The family of a colour name from `name()`: matte black is black, light cyan is cyan."""
    if not colour:
        return None
    if colour == "tri-colour":
        return colour
    if _OPTIMISER.fullmatch(colour):
        return "clear"
    match = _COLOUR.fullmatch(colour)
    return _BASES.get(match.group(2), match.group(2)) if match else None


def of_supply(description: str, colorant: str | None) -> tuple[str | None, str | None, bool]:
    """Colour name, family, and whether the colorant table was overruled.

    The colorant table (prtMarkerColorantValue) is the printer's own statement, but some
    firmware links supplies to the wrong row (magenta and yellow swapped): when the supply's
    description names a colour of another family, the description wins. Of two names of one
    family, the more specific one is kept (description "Black", colorant "photo black").
    """
    described = name(description)
    table = name(colorant)
    if described is None or table is None:
        chosen = described or table
        return chosen, family(chosen), False
    if family(described) != family(table):
        return described, family(described), True
    chosen = table if len(table) > len(described) else described
    return chosen, family(chosen), False
