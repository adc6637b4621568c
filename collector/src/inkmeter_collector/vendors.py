"""Vendor knowledge as data: names, serial-number and firmware OIDs, page counters, models.

Every OID here was seen answering in one of the recordings in tests/data/printers (the file is named
beside it), so each entry is checked by the tests. A vendor is chosen by the IANA enterprise
number under sysObjectID; only that vendor's OIDs are requested, which keeps a poll small.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Final


@dataclass(frozen=True)
class CounterSpec:
    """A wire counter computed as the sum of one or more vendor OIDs."""

    name: str
    oids: tuple[str, ...]
    unit: str = "impressions"
    # A vendor total stands in only where the Printer-MIB has no prtMarkerLifeCount.
    only_if_missing: bool = False


@dataclass(frozen=True)
class SerialSpec:
    oid: str
    # HP-LASERJET-COMMON-MIB answers with a 2-byte PML header (0x01 0x15) before the text.
    strip_prefix: bytes = b""


@dataclass(frozen=True)
class Vendor:
    name: str
    serials: tuple[SerialSpec, ...] = ()
    firmware_oid: str | None = None
    counters: tuple[CounterSpec, ...] = ()
    # (sysDescr prefix, brand) of OEM brands whose hrDeviceDescr carries the model alone.
    oem_brands: tuple[tuple[str, str], ...] = ()
    # Description patterns that carry a supply's part number (group 1).
    part_number_patterns: tuple[re.Pattern[str], ...] = field(default=())

    def oids(self) -> list[str]:
        """Every OID a poll asks this vendor's printers for."""
        wanted = [spec.oid for spec in self.serials]
        if self.firmware_oid:
            wanted.append(self.firmware_oid)
        for counter in self.counters:
            wanted.extend(counter.oids)
        return wanted


HP_PML_HEADER: Final = b"\x01\x15"

# Kyocera's counter table 1.3.6.1.4.1.1347.42.3.1.2.1.1.<function>.<colour mode>: functions
# 1 printer, 2 copier, 3 fax, 4 other; modes 1 black & white, 2 single colour, 3 full colour.
# In printmaster_kyocera-cs-4053ci the modes sum to Kyocera's own total (76064).
_KYOCERA_COUNT = "1.3.6.1.4.1.1347.42.3.1.2.1.1"
_SHARP_COUNT = "1.3.6.1.4.1.2385.1.1.19.2.1.3.5.4"

VENDORS: Final[dict[int, Vendor]] = {
    11: Vendor(
        name="HP",
        # jetdirect_m130nw, printmaster_brother-hl-l8260cdw (also answers HP's OID)
        serials=(SerialSpec("1.3.6.1.4.1.11.2.3.9.4.2.1.1.3.3.0", HP_PML_HEADER),),
        counters=(
            # jetdirect_m130nw: total-engine-page-count and total-mono-page-count
            CounterSpec(
                "impressions.total",
                ("1.3.6.1.4.1.11.2.3.9.4.2.1.4.1.2.5.0",),
                only_if_missing=True,
            ),
            CounterSpec("impressions.mono", ("1.3.6.1.4.1.11.2.3.9.4.2.1.4.1.2.6.0",)),
            CounterSpec("impressions.color", ("1.3.6.1.4.1.11.2.3.9.4.2.1.4.1.2.7.0",)),
        ),
        part_number_patterns=(re.compile(r"\bHP\s+([A-Z]{1,2}\d{3,4}[A-Z]{1,2})\b"),),
    ),
    2435: Vendor(
        name="Brother",
        # brother: serial only in Brother's MIB
        serials=(
            SerialSpec("1.3.6.1.4.1.2435.2.3.9.4.2.1.5.5.1.0"),
            SerialSpec("1.3.6.1.4.1.11.2.3.9.4.2.1.1.3.3.0", HP_PML_HEADER),
        ),
    ),
    1602: Vendor(name="Canon", firmware_oid="1.3.6.1.4.1.1602.1.1.1.4.0"),  # canonprinter_tm
    674: Vendor(name="Dell", firmware_oid="1.3.6.1.4.1.674.10898.100.1.1.1.0"),  # dell-laser
    1248: Vendor(
        name="Epson",
        part_number_patterns=(
            re.compile(r"\b(SJIC[\w-]+|SJMB[\w/]+)"),  # printmaster_epson-cw-c6500au
            re.compile(r"\b(T\d{4}[A-Z]?(?:/T\d{4}[A-Z]?)*)\b"),  # epson
        ),
    ),
    297: Vendor(name="FUJIFILM"),
    18334: Vendor(name="Konica Minolta"),
    2001: Vendor(name="OKI"),
    1347: Vendor(
        name="Kyocera",
        # utax (serial only here), printmaster_kyocera-*
        serials=(SerialSpec("1.3.6.1.4.1.1347.43.5.1.1.28.1"),),
        counters=(
            # printmaster_kyocera-*: 1.3.6.1.4.1.1347.43.10.1.1.12.1.1 total printed pages
            CounterSpec(
                "impressions.total",
                ("1.3.6.1.4.1.1347.43.10.1.1.12.1.1",),
                only_if_missing=True,
            ),
            CounterSpec("impressions.mono", tuple(f"{_KYOCERA_COUNT}.{f}.1" for f in (1, 2, 3, 4))),
            CounterSpec(
                "impressions.color",
                tuple(f"{_KYOCERA_COUNT}.{f}.{m}" for f in (1, 2, 3, 4) for m in (2, 3)),
            ),
        ),
        oem_brands=(("TA_UTAX", "UTAX"), ("UTAX", "UTAX"), ("TA Triumph-Adler", "TA")),
        part_number_patterns=(re.compile(r"^((?:TK|PK|DK|MK|WT)-\d+[A-Z]*)$"),),
    ),
    367: Vendor(
        name="Ricoh",
        serials=(SerialSpec("1.3.6.1.4.1.367.3.2.1.2.1.4.0"),),  # ricoh_mpc3002
        firmware_oid="1.3.6.1.4.1.367.3.2.1.1.1.2.0",
    ),
    236: Vendor(name="Samsung"),
    2385: Vendor(
        name="Sharp",
        firmware_oid="1.3.6.1.4.1.2385.2.1.1.2.1.2.1",
        counters=(
            # sharp: black & white total (61), full colour (63), two colour (64) and single
            # colour (80) totals; their sum equals prtMarkerLifeCount (121104).
            CounterSpec("impressions.mono", (f"{_SHARP_COUNT}.61",)),
            CounterSpec(
                "impressions.color",
                (f"{_SHARP_COUNT}.63", f"{_SHARP_COUNT}.64", f"{_SHARP_COUNT}.80"),
            ),
        ),
    ),
    253: Vendor(
        name="Xerox",
        part_number_patterns=(re.compile(r"\bPN\s+([^;,\s]+)"),),  # xerox
    ),
    641: Vendor(name="Lexmark"),
    1129: Vendor(name="Toshiba"),
}


def enterprise_of(sys_object_id: str | None) -> int | None:
    """The IANA enterprise number under 1.3.6.1.4.1 in a sysObjectID."""
    prefix = "1.3.6.1.4.1."
    if not sys_object_id or not sys_object_id.startswith(prefix):
        return None
    head = sys_object_id[len(prefix) :].split(".", 1)[0]
    return int(head) if head.isdigit() else None


_SUPPLY_SERIAL = re.compile(r"\bSN\s*:?\s*([A-Za-z0-9-]{4,})")


def supply_serial(description: str) -> str | None:
    """A cartridge serial carried in a description (Xerox `...;SN48178080E0000481`)."""
    match = _SUPPLY_SERIAL.search(description)
    if not match or match.group(1).lower() == "unknown" or match.group(1).endswith("-"):
        return None
    return match.group(1)


def part_number(vendor: Vendor | None, description: str) -> str | None:
    if vendor is None:
        return None
    for pattern in vendor.part_number_patterns:
        match = pattern.search(description)
        if match and match.group(1).lower() != "unknown":
            return match.group(1)
    return None
