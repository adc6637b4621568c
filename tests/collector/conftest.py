"""Fixtures for the collector: the recordings, one SNMP simulator for the session, a stub portal.

snmpsim serves every recording in shared/printers/snmprec on loopback only (127.0.0.1 and
127.0.1.1-4, UDP 1161). Without it the live tests fail when INKMETER_REQUIRE_SERVICES=1 and
skip otherwise.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.collector import snmpsim_server
from tests.collector.portal_stub import StubPortal
from tests.collector.support import (
    MAIN_ADDRESS,
    PRINTERS,
    SHARED,
    SNMP_PORT,
    SWEEP_ADDRESSES,
    expected_printers,
    require_service,
)


@pytest.fixture(scope="session")
def expected() -> dict[str, dict[str, object]]:
    data = expected_printers()
    if not data:
        require_service(f"recordings not found under {PRINTERS} (set INKMETER_SHARED)")
    return data


@pytest.fixture(scope="session")
def telemetry_schema() -> dict[str, object]:
    path = SHARED / "protocol" / "telemetry-v1.schema.json"
    if not path.exists():
        require_service(f"protocol schema not found at {path}")
    schema: dict[str, object] = json.loads(path.read_text(encoding="utf-8"))
    return schema


@pytest.fixture(scope="session")
def snmpsim() -> Iterator[dict[str, object]]:
    """One snmpsim-command-responder for the whole session; stopped by its own PID."""
    if not (PRINTERS / "snmprec").is_dir():
        require_service(f"recordings not found under {PRINTERS}")
    endpoints = [f"{address}:{SNMP_PORT}" for address in (MAIN_ADDRESS, *SWEEP_ADDRESSES)]
    try:
        simulator = snmpsim_server.start(PRINTERS / "snmprec", endpoints)
    except RuntimeError as error:
        require_service(str(error))
        return
    try:
        yield {
            "port": SNMP_PORT,
            "address": MAIN_ADDRESS,
            "sweep": SWEEP_ADDRESSES,
            "pid": simulator.process.pid,
        }
    finally:
        simulator.stop()


@pytest.fixture
def portal(telemetry_schema: dict[str, object]) -> Iterator[StubPortal]:
    stub = StubPortal(schema=telemetry_schema)
    stub.start()
    try:
        yield stub
    finally:
        stub.stop()
