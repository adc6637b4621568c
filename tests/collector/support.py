"""What the collector's tests share: where the recordings are, and the fail-or-skip rule."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Sequence
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
COLLECTOR_SRC = REPO / "collector" / "src"
# The recordings and the protocol live in the repository, so a fresh clone tests everything.
PRINTERS = REPO / "tests" / "data" / "printers"
PROTOCOL = REPO / "devices" / "protocol"
MAIN_ADDRESS = "127.0.0.1"
IPV6_ADDRESS = "::1"
SWEEP_ADDRESSES = ("127.0.1.1", "127.0.1.2", "127.0.1.3", "127.0.1.4")


def require_service(reason: str) -> None:
    """Fail where services are promised (CI), skip elsewhere."""
    if os.environ.get("INKMETER_REQUIRE_SERVICES") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


def free_udp_port(addresses: Sequence[str]) -> int:
    """A UDP port free on every one of `addresses` (IPv4 or IPv6 loopback), so that the
    simulator of one test run never shares a port with another run's on the same machine (a
    developer's `make test` beside CI): two UDP sockets with SO_REUSEADDR may both bind one
    port, and the second then answers the first one's requests."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as first:
            first.bind((addresses[0], 0))
            port: int = first.getsockname()[1]
            if all(_udp_free(address, port) for address in addresses[1:]):
                return port
    raise RuntimeError(f"no UDP port is free on all of {', '.join(addresses)}")


def _udp_free(address: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as probe:
            probe.bind((address, port))
    except OSError:
        return False
    return True


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
