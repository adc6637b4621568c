"""Discovery over loopback ranges and the command line, against the session's snmpsim.

Sweeps here only ever cover 127.0.0.0/8."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
from inkmeter_collector import discovery
from inkmeter_collector.outbox import Outbox
from inkmeter_collector.snmp import Credentials, SnmpClient

from tests.collector.portal_stub import KEY_ID, SECRET, StubPortal
from tests.collector.support import COLLECTOR_SRC


def test_sweep_finds_exactly_the_served_printers(snmpsim: dict[str, Any]) -> None:
    found_live: list[str] = []

    async def run() -> list[discovery.Found]:
        client = SnmpClient(timeout_s=0.5, retries=0)
        try:
            return await discovery.sweep(
                client,
                ["127.0.1.0/29"],  # .1-.4 are served, .5 and .6 are silent
                [
                    Credentials(community="no-such-community"),
                    Credentials(community="ricoh_mpc3002"),
                ],
                port=int(snmpsim["port"]),
                rate_per_s=200,
                time_limit_s=60,
                timeout_s=0.5,
                on_found=lambda item: found_live.append(item.target.host),
            )
        finally:
            client.close()

    found = asyncio.run(run())
    assert sorted(item.target.host for item in found) == list(snmpsim["sweep"])
    assert sorted(found_live) == list(snmpsim["sweep"])
    for item in found:
        assert item.target.credentials.community == "ricoh_mpc3002"
        assert item.result.reading.identity.serial == "W492KB03439"


def test_sweep_stops_at_its_time_limit(snmpsim: dict[str, Any]) -> None:
    async def run() -> tuple[list[discovery.Found], float]:
        client = SnmpClient(timeout_s=1, retries=0)
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            found = await discovery.sweep(
                client,
                ["127.0.2.0/24"],
                [Credentials(community="sharp")],
                port=int(snmpsim["port"]),
                rate_per_s=20,
                time_limit_s=1.0,
                timeout_s=1,
            )
        finally:
            client.close()
        return found, loop.time() - started

    found, elapsed = asyncio.run(run())
    assert found == []
    assert elapsed < 5


def test_addresses_of_ranges() -> None:
    assert list(discovery.addresses(["127.0.1.0/30", "127.0.1.2/32"])) == ["127.0.1.1", "127.0.1.2"]
    assert discovery.count_addresses(["127.0.0.0/29"]) == 6


def cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603
        [sys.executable, "-m", "inkmeter_collector.cli", *args],
        env=dict(os.environ, PYTHONPATH=str(COLLECTOR_SRC), **env),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_cli_discover_poll_run_status(
    tmp_path: Path, snmpsim: dict[str, Any], portal: StubPortal, telemetry_schema: dict[str, Any]
) -> None:
    outbox = str(tmp_path / "o.sqlite3")
    port = str(snmpsim["port"])

    swept = cli(
        "--outbox",
        outbox,
        "discover",
        "--range",
        "127.0.1.0/30",
        "--port",
        port,
        "--community",
        "sharp",
        "--time-limit",
        "30",
    )
    assert swept.returncode == 0, swept.stderr
    assert swept.stdout.count("SHARP MX-3570N  serial 6509415X00") == 2  # .1 and .2
    assert "2 printers found" in swept.stderr
    # one printer at two addresses: keyed by serial, so one device
    assert [d.serial for d in Outbox(Path(outbox)).devices()] == ["6509415X00"]

    polled = cli(
        "--outbox",
        outbox,
        "poll",
        "127.0.0.1",
        "--port",
        port,
        "--community",
        "printmaster_kyocera-cs-4053ci",
        "--json",
    )
    assert polled.returncode == 0, polled.stderr
    snapshot = json.loads(polled.stdout)
    assert snapshot["device"]["serial"] == "RH28Y00024"
    batch = {
        "schema": "inkmeter.telemetry/1",
        "batch_id": snapshot["snapshot_id"],
        "snapshots": [snapshot],
    }
    jsonschema.validate(batch, telemetry_schema)

    added = cli("--outbox", outbox, "add", "localhost", "--port", port, "--community", "utax")
    assert added.returncode == 0, added.stderr
    assert "UTAX P-4532DN  serial R9L0309954" in added.stdout

    config_path = tmp_path / "c.toml"
    config_path.write_text(
        f'[portal]\nurl = "{portal.url}"\nkey_id = "{KEY_ID}"\n'
        f'secret_file = "{tmp_path / "secret"}"\n'
        f"[discovery]\nranges = []\n"
    )
    (tmp_path / "secret").write_text(SECRET)
    portal.config_answer = {
        "config_version": 1,
        "ranges": [],
        "communities": ["sharp"],
        "poll_interval_minutes": 60,
        "upload_interval_minutes": 15,
    }
    ran = cli("--config", str(config_path), "--outbox", outbox, "run", "--once")
    assert ran.returncode == 0, ran.stderr
    assert portal.gets
    assert portal.gets[0]["problem"] is None
    serials = sorted(s["device"]["serial"] for s in portal.stored.values())
    assert serials == ["6509415X00", "R9L0309954"]
    assert all(post["schema_errors"] == [] for post in portal.posts)

    status = cli("--outbox", outbox, "status")
    assert "acked_batches: 1" in status.stdout
    assert f"device R9L0309954  localhost:{snmpsim['port']}" in status.stdout


def test_cli_reports_silent_printer(tmp_path: Path, snmpsim: dict[str, Any]) -> None:
    result = cli(
        "--outbox",
        str(tmp_path / "o.sqlite3"),
        "poll",
        "127.0.1.6",
        "--port",
        str(snmpsim["port"]),
        "--community",
        "sharp",
    )
    assert result.returncode == 1
    assert "no SNMP answer" in result.stderr
