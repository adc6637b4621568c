"""Reads snmprec recordings the way snmpsim serves them (ISO-8859-1 lines, stripped)."""

from __future__ import annotations

from pathlib import Path

from inkmeter_collector.mib import SnmpValue

_INTEGER_TAGS = {"2", "65", "66", "67", "70"}


def load(path: Path) -> dict[str, SnmpValue]:
    values: dict[str, SnmpValue] = {}
    for line in path.read_text(encoding="iso-8859-1").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        oid, tag, value = line.split("|", 2)
        is_hex = tag.endswith("x")
        tag = tag.rstrip("x")
        if tag in _INTEGER_TAGS:
            try:
                values[oid] = int(value)
            except ValueError:
                continue  # snmpsim serves a broken number as No Such Instance
        elif tag in {"4", "64"}:
            values[oid] = bytes.fromhex(value) if is_hex else value.encode("iso-8859-1")
        elif tag == "6":
            values[oid] = value
    return values
