"""Every recording, parsed from the file and polled live through snmpsim, against expected.json."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

import jsonschema
import pytest
from inkmeter_collector.poll import poll
from inkmeter_collector.printer import PrinterReading, parse_printer, to_snapshot
from inkmeter_collector.snmp import Credentials, SnmpClient, Target

from tests.collector import snmprec
from tests.collector.support import PRINTERS, expected_printers

FILES = sorted(expected_printers())

# Files whose identity the collector cannot fully match, and why (see collector/README.md).
NO_SERIAL = {
    # serial nowhere in the recording (no prtGeneralSerialNumber, no vendor OID, no MAC)
    "xerox.snmprec": None,
}
# Recordings without prtGeneralSerialNumber where the collector falls back to another source.
FALLBACK_SERIALS = {
    "brother.snmprec": "000A5J431816",  # Brother MIB
    "jetdirect.snmprec": "AAA0A00000",  # SN: in sysDescr
    "utax.snmprec": "R9L0309954",  # Kyocera MIB
    "canonprinter_tm.snmprec": "MAC-74BFC0DA4A3D",  # ifPhysAddress
    "jetdirect_m880.snmprec": "MAC-10E7C662708E",
    "konica.snmprec": "MAC-00206B67EF7C",
    "okilan_9450g.snmprec": "MAC-002536D1A65E",
    "samsungprinter_m4080fx.snmprec": "MAC-8425191DEB52",
}
LEVEL_STATES = {"no_restriction": "unlimited", "max_unknown": "ok", "over_max": "ok"}
# Each supply's colour family in table order, read by hand from its description (or, for the
# Kyocera part numbers, the colorant table); `name:family` where the printer's own name is more
# than its family, `-` for no colour. expected.json stays as the recordings' source made it.
SUPPLY_COLOURS = {
    "brother.snmprec": "black -",
    "canonprinter_tm.snmprec": "matte_black:black black yellow magenta cyan -",
    "dell-laser_s5830dn.snmprec": "black - - -",
    "epson.snmprec": "black cyan magenta yellow",
    "fujifilmprinter_c7580.snmprec": "yellow magenta cyan - black yellow magenta cyan black black",
    "jetdirect.snmprec": "black cyan magenta yellow",
    "jetdirect_m130nw.snmprec": "black -",
    "jetdirect_m880.snmprec": "black cyan magenta yellow black cyan magenta yellow - - - - - - -",
    "konica.snmprec": "cyan magenta yellow black cyan cyan magenta magenta yellow yellow black"
    " black - - - - -",
    "okilan_9450g.snmprec": "black cyan magenta yellow black cyan magenta yellow - -",
    "printmaster_brother-hl-l8260cdw.snmprec": "black cyan magenta yellow - - -",
    "printmaster_epson-cw-c6500au.snmprec": "black cyan magenta yellow -",
    "printmaster_epson-sc-t3405.snmprec": "yellow magenta cyan black -",
    "printmaster_kyocera-cs-4053ci.snmprec": "cyan magenta yellow black -",
    "printmaster_kyocera-ecosys-p2040dw.snmprec": "black -",
    "ricoh_mpc3002.snmprec": "black - cyan magenta yellow",
    "samsungprinter_m4080fx.snmprec": "black - - - - - -",
    "sharp.snmprec": "cyan magenta yellow black - cyan magenta yellow black cyan magenta yellow"
    " black -",
    "utax.snmprec": "- -",  # PK-3010S: a part number, no colorant table
    "xerox.snmprec": "black cyan magenta yellow - - - - - - - -",
}


def supply_colours(name: str) -> list[tuple[str | None, str | None]]:
    """(colour name, family) per supply, from SUPPLY_COLOURS."""
    pairs: list[tuple[str | None, str | None]] = []
    for token in SUPPLY_COLOURS[name].split():
        colour, _, family = token.partition(":")
        if colour == "-":
            pairs.append((None, None))
        else:
            pairs.append((colour.replace("_", " "), family or colour))
    return pairs


def assert_matches(reading: PrinterReading, expected: dict[str, Any], name: str) -> None:
    identity = reading.identity
    assert identity.model == expected["model"]
    assert identity.manufacturer is not None
    assert identity.manufacturer.lower() in str(expected["vendor"]).lower()
    if expected["serial"]:
        assert identity.serial == expected["serial"]
    elif name in NO_SERIAL:
        assert identity.serial is None
    else:
        assert identity.serial == FALLBACK_SERIALS[name]
    assert reading.page_count == expected["page_count"]
    if expected["page_count"] is not None:
        name_for_unit = {"impressions": "impressions.total", "sheets": "sheets.total"}
        counter = name_for_unit[str(expected["page_count_unit"])]
        assert {c.name: c.value for c in reading.counters}[counter] == expected["page_count"]
    got = {supply.index: supply for supply in reading.supplies}
    assert list(got) == [row["index"] for row in expected["supplies"]]
    for row in expected["supplies"]:
        supply = got[row["index"]]
        assert (supply.raw_level, supply.raw_max) == (row["level"], row["max_capacity"])
        assert supply.level_state == LEVEL_STATES.get(row["level_state"], row["level_state"])
        assert supply.percent == row["percent_remaining"]
        assert supply.is_receptacle == row["is_receptacle"]
        assert supply.description == row["description"].strip()
        if supply.is_receptacle:
            assert supply.kind == "waste"
        if supply.percent is not None:
            assert 0 <= supply.percent <= 100
        if supply.level_state != "ok":
            assert supply.level is None  # -1/-2/-3 are states, never numbers
    assert reading.is_color == expected["colour"]
    assert [(s.color, s.color_family) for s in reading.supplies] == supply_colours(name)


@pytest.mark.parametrize("name", FILES)
def test_recording_parses_as_expected(name: str, expected: dict[str, Any]) -> None:
    reading = parse_printer(snmprec.load(PRINTERS / "snmprec" / name))
    assert_matches(reading, expected[name], name)


@pytest.mark.parametrize("name", FILES)
def test_snapshot_follows_the_wire_schema(
    name: str, expected: dict[str, Any], telemetry_schema: dict[str, Any]
) -> None:
    reading = parse_printer(snmprec.load(PRINTERS / "snmprec" / name))
    if reading.identity.serial is None:
        with pytest.raises(ValueError, match="serial"):
            to_snapshot(
                reading, snapshot_id=str(uuid.uuid4()), collected_at=datetime.now(UTC), ip=None
            )
        return
    snapshot = to_snapshot(
        reading, snapshot_id=str(uuid.uuid4()), collected_at=datetime.now(UTC), ip="127.0.0.1"
    )
    batch = {
        "schema": "inkmeter.telemetry/1",
        "batch_id": str(uuid.uuid4()),
        "snapshots": [snapshot],
    }
    validator = jsonschema.Draft202012Validator(
        telemetry_schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    assert [error.message for error in validator.iter_errors(batch)] == []
    assert len({supply["id"] for supply in snapshot["supplies"]}) == len(snapshot["supplies"])
    for supply in snapshot["supplies"]:
        if supply.get("unit") == "percent" and "level" in supply:
            assert supply["level"] <= 100


def test_vendor_counters_split_mono_and_colour() -> None:
    def counters(name: str) -> dict[str, float]:
        reading = parse_printer(snmprec.load(PRINTERS / "snmprec" / name))
        return {counter.name: counter.value for counter in reading.counters}

    assert counters("sharp.snmprec") == {
        "impressions.total": 121104,
        "impressions.mono": 91164,
        "impressions.color": 29940,
    }
    assert counters("printmaster_kyocera-cs-4053ci.snmprec") == {
        "impressions.total": 76498,
        "impressions.mono": 36347,
        "impressions.color": 39717,
    }
    assert counters("jetdirect_m130nw.snmprec") == {
        "impressions.total": 15232,
        "impressions.mono": 15232,
    }
    assert counters("canonprinter_tm.snmprec") == {"sheets.total": 21588}


def test_colour_comes_from_the_colorant_table() -> None:
    reading = parse_printer(
        snmprec.load(PRINTERS / "snmprec" / "printmaster_kyocera-cs-4053ci.snmprec")
    )
    assert [(s.description, s.kind, s.color) for s in reading.supplies] == [
        ("TK-8527C", "toner", "cyan"),
        ("TK-8527M", "toner", "magenta"),
        ("TK-8527Y", "toner", "yellow"),
        ("TK-8527K", "toner", "black"),
        ("Waste Toner Box", "waste", None),
    ]


@pytest.mark.parametrize("name", FILES)
def test_live_poll_matches_expected(
    name: str, expected: dict[str, Any], snmpsim: dict[str, Any]
) -> None:
    async def run() -> Any:
        client = SnmpClient(timeout_s=3, retries=1)
        try:
            target = Target(
                str(snmpsim["address"]),
                int(snmpsim["port"]),
                Credentials(community=str(expected[name]["community"])),
            )
            return await poll(client, target)
        finally:
            client.close()

    result = asyncio.run(run())
    assert_matches(result.reading, expected[name], name)
    assert result.ip == "127.0.0.1"
    assert 0 < result.snmp_bytes < 8 * 1024  # the DESIGN.md budget, counted on the wire


def test_live_poll_over_snmp_v1_walks_by_getnext(
    snmpsim: dict[str, Any], expected: dict[str, Any]
) -> None:
    async def run() -> Any:
        client = SnmpClient(timeout_s=3, retries=1)
        try:
            target = Target(
                str(snmpsim["address"]),
                int(snmpsim["port"]),
                Credentials(version="1", community="sharp"),
            )
            return await poll(client, target)
        finally:
            client.close()

    result = asyncio.run(run())
    assert_matches(result.reading, expected["sharp.snmprec"], "sharp.snmprec")
