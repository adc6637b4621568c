"""Fixtures for the collector: the recordings, one SNMP simulator for the session, a stub portal.

snmpsim serves every recording in shared/printers/snmprec on loopback only (127.0.0.1 and
127.0.1.1-4, UDP 1161). Without it the live tests fail when INKMETER_REQUIRE_SERVICES=1 and
skip otherwise.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
COLLECTOR_SRC = REPO / "collector" / "src"
if str(COLLECTOR_SRC) not in sys.path:
    # Lets the tests run from a clone where the collector is not pip-installed.
    sys.path.insert(0, str(COLLECTOR_SRC))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import snmpsim_server  # noqa: E402
from portal_stub import StubPortal  # noqa: E402

SHARED = Path(os.environ.get("INKMETER_SHARED") or Path(__file__).resolve().parents[3] / "shared")
PRINTERS = SHARED / "printers"
SNMP_PORT = 1161
MAIN_ADDRESS = "127.0.0.1"
SWEEP_ADDRESSES = ("127.0.1.1", "127.0.1.2", "127.0.1.3", "127.0.1.4")


def require_service(reason: str) -> None:
    """Fail where services are promised (CI), skip elsewhere."""
    if os.environ.get("INKMETER_REQUIRE_SERVICES") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


def expected_printers() -> dict[str, dict[str, object]]:
    path = PRINTERS / "expected.json"
    if not path.exists():
        return {}
    data: dict[str, dict[str, object]] = json.loads(path.read_text(encoding="utf-8"))
    return data


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
