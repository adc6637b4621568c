"""What the collector's tests share: where the recordings are, and the fail-or-skip rule."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
COLLECTOR_SRC = REPO / "collector" / "src"
# The recordings and the protocol live in the repository, so a fresh clone tests everything.
PRINTERS = REPO / "tests" / "data" / "printers"
PROTOCOL = REPO / "devices" / "protocol"
SNMP_PORT = 1161
MAIN_ADDRESS = "127.0.0.1"
IPV6_ADDRESS = "::1"
SWEEP_ADDRESSES = ("127.0.1.1", "127.0.1.2", "127.0.1.3", "127.0.1.4")


def require_service(reason: str) -> None:
    """Fail where services are promised (CI), skip elsewhere."""
    if os.environ.get("INKMETER_REQUIRE_SERVICES") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


def has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as probe:
            probe.bind((IPV6_ADDRESS, 0))
    except OSError:
        return False
    return True


def expected_printers() -> dict[str, dict[str, object]]:
    path = PRINTERS / "expected.json"
    if not path.exists():
        return {}
    data: dict[str, dict[str, object]] = json.loads(path.read_text(encoding="utf-8"))
    return data
