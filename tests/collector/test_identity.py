"""A printer with neither serial nor MAC address (the `xerox` recording) still gets an identity:
derived, stable across polls and restarts, distinct per site and address, accepted by the portal,
and announced with a warning."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from inkmeter_collector import mib
from inkmeter_collector.outbox import Outbox
from inkmeter_collector.printer import parse_printer, to_snapshot
from inkmeter_collector.upload import Portal, flush

from devices import services
from devices.models import Device, Supply
from tests.collector import snmprec
from tests.collector.portal_stub import KEY_ID, SECRET, StubPortal
from tests.collector.support import PRINTERS, expected_printers
from tests.collector.test_discovery_cli import cli
from tests.conftest import Tenant

DERIVED = re.compile(r"NOSERIAL-[0-9A-F]{16}")
XEROX = "xerox.snmprec"


def xerox() -> dict[str, Any]:
    return dict(snmprec.load(PRINTERS / "snmprec" / XEROX))


def test_derived_identity_is_stable_and_names_site_address_and_model() -> None:
    readings = xerox()
    where = "3f1c-installation 192.0.2.9:161"
    identity = parse_printer(readings, where=where).identity
    assert identity.serial is not None
    assert DERIVED.fullmatch(identity.serial)
    assert identity.serial_source == "derived"
    assert identity.model == "Xerox AltaLink C8045"

    # the next poll: uptime moved on, a toner was used, the printer was renamed
    later = readings | {
        mib.SYS_UPTIME: 9_999_999,
        f"{mib.column(mib.PRT_SUPPLIES, mib.SUP_LEVEL)}.1.1": 900,
        mib.SYS_NAME: b"xerox-2nd-floor",
    }
    assert parse_printer(later, where=where).identity.serial == identity.serial

    other_site = parse_printer(readings, where="another-installation 192.0.2.9:161")
    other_address = parse_printer(readings, where="3f1c-installation 192.0.2.10:161")
    other_model = parse_printer(
        readings | {mib.SYS_DESCR: b"Xerox AltaLink C8055; SS 100.002"}, where=where
    )
    serials = {identity.serial, *(r.identity.serial for r in (other_site, other_address))}
    serials.add(other_model.identity.serial)
    assert len(serials) == 4


def test_without_a_site_there_is_no_derived_identity() -> None:
    assert parse_printer(xerox()).identity.serial is None


@pytest.mark.parametrize("name", sorted(set(expected_printers()) - {XEROX}))
def test_printers_with_a_serial_or_mac_keep_it(name: str) -> None:
    readings = snmprec.load(PRINTERS / "snmprec" / name)
    plain = parse_printer(readings).identity
    assert plain.serial is not None
    assert parse_printer(readings, where="site 192.0.2.9:161").identity == plain


def test_cli_polls_uploads_and_warns_once(
    tmp_path: Path, snmpsim: dict[str, Any], portal: StubPortal
) -> None:
    outbox = str(tmp_path / "o.sqlite3")
    address = f"127.0.0.1:{snmpsim['port']}"
    shown = cli("--outbox", outbox, "poll", address, "--community", "xerox")
    assert shown.returncode == 0, shown.stderr
    serial = re.search(r"serial (NOSERIAL-[0-9A-F]{16})", shown.stdout)
    assert serial is not None, shown.stdout
    assert f"warning: {address}: printer exposes no serial number or MAC address" in shown.stderr

    for _ in range(2):  # two polls, each its own process: the identity survives restarts
        queued = cli("--outbox", outbox, "poll", address, "--community", "xerox", "--enqueue")
        assert queued.returncode == 0, queued.stderr
    config_path = tmp_path / "c.toml"
    config_path.write_text(
        f'[portal]\nurl = "{portal.url}"\nkey_id = "{KEY_ID}"\nsecret = "{SECRET}"\n'
    )
    uploaded = cli("--config", str(config_path), "--outbox", outbox, "upload")
    assert uploaded.returncode == 0, uploaded.stderr
    stored = list(portal.stored.values())
    assert [s["device"]["serial"] for s in stored] == [serial.group(1)] * 2
    assert all(post["schema_errors"] == [] for post in portal.posts)

    status = cli("--outbox", outbox, "status").stdout
    assert f"device {serial.group(1)}  127.0.0.1:{snmpsim['port']}  Xerox AltaLink C8045" in status
    assert status.count("reporting it as " + serial.group(1)) == 1  # once, when first seen


@pytest.mark.django_db(transaction=True)
def test_portal_accepts_the_derived_identity(
    tmp_path: Path, live_server: Any, tenant: Tenant
) -> None:
    credential, secret = services.credential_create(
        ctx=tenant.ctx(), kind="collector", site_id=tenant.site.pk
    )
    reading = parse_printer(xerox(), where=f"{uuid.uuid4()} 192.0.2.9:161")
    outbox = Outbox(tmp_path / "o.sqlite3")
    outbox.put(
        [
            to_snapshot(
                reading,
                snapshot_id=str(uuid.uuid4()),
                collected_at=datetime.now(UTC),
                ip="192.0.2.9",
            )
        ]
    )
    sender = Portal(url=live_server.url, key_id=credential.key_id, secret=secret)
    try:
        report = flush(outbox, sender)
    finally:
        sender.close()
    assert (report.acked, report.quarantined, report.retried) == (1, 0, 0), json.dumps(
        outbox.warnings()
    )
    device = Device.unscoped.get()
    assert (device.serial, device.model, device.site_id) == (
        reading.identity.serial,
        "Xerox AltaLink C8045",
        tenant.site.pk,
    )
    assert Supply.unscoped.filter(device=device).count() == 12
