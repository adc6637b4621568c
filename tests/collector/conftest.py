"""Fixtures for the collector: the recordings, one SNMP simulator for the session, a stub portal.

snmpsim serves every recording in tests/data/printers/snmprec on loopback only (127.0.0.1,
127.0.1.1-4 and ::1 where the host has IPv6), on a UDP port free on all of them. Without it
the live tests fail when INKMETER_REQUIRE_SERVICES=1 and skip otherwise.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.collector import snmpsim_server
from tests.collector.portal_stub import StubPortal
from tests.collector.support import (
    IPV6_ADDRESS,
    MAIN_ADDRESS,
    PRINTERS,
    PROTOCOL,
    SWEEP_ADDRESSES,
    expected_printers,
    free_udp_port,
    has_ipv6_loopback,
    require_service,
)


@pytest.fixture(scope="session")
def expected() -> dict[str, dict[str, object]]:
    data = expected_printers()
    if not data:
        require_service(f"recordings not found under {PRINTERS}")
    return data


@pytest.fixture(scope="session")
def telemetry_schema() -> dict[str, object]:
    path = PROTOCOL / "telemetry-v1.schema.json"
    if not path.exists():
        require_service(f"protocol schema not found at {path}")
    schema: dict[str, object] = json.loads(path.read_text(encoding="utf-8"))
    return schema


@pytest.fixture(scope="session")
def snmpsim() -> Iterator[dict[str, object]]:
    """One snmpsim-command-responder for the whole session; stopped by its own PID."""
    if not (PRINTERS / "snmprec").is_dir():
        require_service(f"recordings not found under {PRINTERS}")
    ipv6 = has_ipv6_loopback()
    addresses = [MAIN_ADDRESS, *SWEEP_ADDRESSES, *([IPV6_ADDRESS] if ipv6 else [])]
    port = free_udp_port(addresses)
    endpoints = [f"[{a}]:{port}" if ":" in a else f"{a}:{port}" for a in addresses]
    try:
        simulator = snmpsim_server.start(PRINTERS / "snmprec", endpoints)
    except RuntimeError as error:
        require_service(str(error))
        return
    try:
        yield {
            "port": port,
            "address": MAIN_ADDRESS,
            "sweep": SWEEP_ADDRESSES,
            "ipv6": IPV6_ADDRESS if ipv6 else None,
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
