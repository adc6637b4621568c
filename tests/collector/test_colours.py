"""Supply colours: the printer's own name made canonical plus its family, the same on the
collector (inkmeter_collector.colours) and the portal (devices.normalise), and the colorant table
overruled where the supply's own description names another colour."""

from __future__ import annotations

import typing
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from inkmeter_collector import colours, mib
from inkmeter_collector.outbox import Outbox
from inkmeter_collector.printer import parse_printer, to_snapshot
from inkmeter_collector.upload import Portal, flush

from devices import normalise, services, wire
from devices.models import Supply
from tests.collector import snmprec
from tests.collector.support import PRINTERS, PROTOCOL
from tests.conftest import Tenant

# (what a printer or sender says, colour name, family): both sides must agree on every row.
CASES = [
    ("Black Ink Cartridge", "black", "black"),
    ("Black Toner Cartridge S/N:CRUM-", "black", "black"),
    ("CANON Matte Black Ink Tank", "matte black", "black"),
    ("Matte Black", "matte black", "black"),
    ("MK", "matte black", "black"),
    ("PK", "photo black", "black"),
    ("Photo Black Ink Cartridge", "photo black", "black"),
    ("Light Light Black", "light light black", "black"),
    ("LC", "light cyan", "cyan"),
    ("Vivid Light Magenta", "vivid light magenta", "magenta"),
    ("Toner (Magenta)", "magenta", "magenta"),
    ("Yellow Cartridge\n20 38 32 37", "yellow", "yellow"),
    ("Light Grey", "light gray", "gray"),
    ("GREY", "gray", "gray"),
    ("Purple", "violet", "violet"),
    ("Chroma Optimizer", "chroma optimizer", "clear"),
    ("HP 62 Tri-color Ink", "tri-colour", "tri-colour"),
    ("  cyan  ", "cyan", "cyan"),
    ("C", "cyan", "cyan"),
]
# Texts that name no colour: the collector reports none, the portal keeps the cleaned text.
NO_COLOUR = ["TK-8527C", "Waste Toner Box", "Drum Cartridge (R1)", "Clean Rollers HP", ""]


@pytest.mark.parametrize(("said", "name", "family"), CASES)
def test_collector_and_portal_name_colours_alike(said: str, name: str, family: str) -> None:
    assert (colours.name(said), colours.family(colours.name(said))) == (name, family)
    assert (normalise.color(said), normalise.color_family(normalise.color(said))) == (name, family)
    # what the collector sends comes back unchanged from the portal's normalisation
    assert normalise.color(name) == name
    assert normalise.color_family(name, reported="cyan") == family  # a known name wins


@pytest.mark.parametrize("said", NO_COLOUR)
def test_text_without_a_colour(said: str) -> None:
    assert colours.name(said) is None
    assert normalise.color(said) == " ".join(said.lower().split())
    assert normalise.color_family(normalise.color(said)) == ""


def test_portal_takes_the_senders_family_only_for_a_name_it_does_not_know() -> None:
    assert normalise.color_family("gold", reported="yellow") == "yellow"
    assert normalise.color_family("gold", reported="sparkly") == ""
    assert normalise.color_family("matte black", reported="cyan") == "black"


def test_one_list_of_families_everywhere() -> None:
    schema = (PROTOCOL / "telemetry-v1.schema.json").read_text(encoding="utf-8")
    enum = wire.json_schema()["$defs"]["supply"]["properties"]["color_family"]["enum"]
    assert '"color_family"' in schema
    assert (
        tuple(enum)
        == typing.get_args(wire.ColorFamily)
        == normalise.COLOR_FAMILIES
        == colours.FAMILIES
    )


def test_colorant_table_and_description_of_one_family_keep_the_more_specific_name() -> None:
    assert colours.of_supply("Black Ink", "photo black") == ("photo black", "black", False)
    assert colours.of_supply("Matte Black Ink", "black") == ("matte black", "black", False)
    assert colours.of_supply("TK-8527M", "magenta") == ("magenta", "magenta", False)
    assert colours.of_supply("Maintenance Box", None) == (None, None, False)


def _swap_colorants(readings: dict[str, Any], first: str, second: str) -> dict[str, Any]:
    """The recording as firmware that links two supplies to each other's colorant row."""
    swapped = dict(readings)
    prefix = mib.PRT_COLORANT_VALUE + "."
    rows = {oid: value for oid, value in readings.items() if oid.startswith(prefix)}
    for oid, value in rows.items():
        if value == first.encode():
            swapped[oid] = second.encode()
        elif value == second.encode():
            swapped[oid] = first.encode()
    assert swapped != readings
    return swapped


def test_description_wins_over_a_swapped_colorant_table() -> None:
    # None of the 20 recordings disagrees; this one is made to, as some firmware does.
    readings = snmprec.load(PRINTERS / "snmprec" / "printmaster_epson-sc-t3405.snmprec")
    honest = parse_printer(readings)
    swapped = parse_printer(_swap_colorants(dict(readings), "magenta", "yellow"))
    assert [(s.description, s.color) for s in swapped.supplies] == [
        ("Yellow Ink Cartridge", "yellow"),
        ("Magenta Ink Cartridge", "magenta"),
        ("Cyan Ink Cartridge", "cyan"),
        ("Black Ink Cartridge", "black"),
        ("Maintenance Box", None),
    ]
    assert swapped.supplies == honest.supplies
    assert honest.notes == ()
    assert swapped.notes == (
        "supply 1.1: the colorant table says magenta, its description 'Yellow Ink Cartridge';"
        " the description is trusted",
        "supply 1.2: the colorant table says yellow, its description 'Magenta Ink Cartridge';"
        " the description is trusted",
    )


def test_without_a_colour_word_the_colorant_table_decides() -> None:
    readings = snmprec.load(PRINTERS / "snmprec" / "printmaster_kyocera-cs-4053ci.snmprec")
    swapped = parse_printer(_swap_colorants(dict(readings), "magenta", "yellow"))
    assert [(s.description, s.color_family) for s in swapped.supplies[:4]] == [
        ("TK-8527C", "cyan"),
        ("TK-8527M", "yellow"),  # nothing in "TK-8527M" to contradict the table
        ("TK-8527Y", "magenta"),
        ("TK-8527K", "black"),
    ]


@pytest.mark.django_db(transaction=True)
def test_portal_stores_name_and_family_from_new_and_old_senders(
    tmp_path: Path, live_server: Any, tenant: Tenant
) -> None:
    credential, secret = services.credential_create(
        ctx=tenant.ctx(), kind="collector", site_id=tenant.site.pk
    )
    canon = parse_printer(snmprec.load(PRINTERS / "snmprec" / "canonprinter_tm.snmprec"))
    now = datetime.now(UTC)
    new = to_snapshot(canon, snapshot_id=str(uuid.uuid4()), collected_at=now, ip="192.0.2.9")
    assert new["supplies"][0]["color"] == "matte black"
    assert new["supplies"][0]["color_family"] == "black"
    old = {  # a sender from before color_family, with free-text colours
        "snapshot_id": str(uuid.uuid4()),
        "collected_at": new["collected_at"],
        "device": {"serial": "OLD-SENDER-1"},
        "supplies": [
            {"id": "a", "kind": "ink", "color": "Black Ink Cartridge"},
            {"id": "b", "kind": "ink", "color": "PK"},
            {"id": "c", "kind": "ink", "color": "Gold", "color_family": "yellow"},
            {"id": "d", "kind": "other", "color": "Chroma Optimizer"},
        ],
    }
    outbox = Outbox(tmp_path / "o.sqlite3")
    outbox.put([new, old])
    sender = Portal(url=live_server.url, key_id=credential.key_id, secret=secret)
    try:
        report = flush(outbox, sender)
    finally:
        sender.close()
    assert (report.acked, report.quarantined) == (1, 0)

    stored = {
        (s.device.serial, s.supply_key): (s.color, s.color_family)
        for s in Supply.unscoped.select_related("device")
    }
    serial = canon.identity.serial
    assert stored == {
        (serial, "ink-matte_black-1.1"): ("matte black", "black"),
        (serial, "ink-black-1.2"): ("black", "black"),
        (serial, "ink-yellow-1.3"): ("yellow", "yellow"),
        (serial, "ink-magenta-1.4"): ("magenta", "magenta"),
        (serial, "ink-cyan-1.5"): ("cyan", "cyan"),
        (serial, "waste-1.6"): ("", ""),
        ("OLD-SENDER-1", "a"): ("black", "black"),
        ("OLD-SENDER-1", "b"): ("photo black", "black"),
        ("OLD-SENDER-1", "c"): ("gold", "yellow"),
        ("OLD-SENDER-1", "d"): ("chroma optimizer", "clear"),
    }
