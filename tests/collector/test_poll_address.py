"""`inkmeter-collector poll HOST:PORT`: the forms an address takes, and the faults named apart."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import Any

import pytest
from inkmeter_collector import cli as collector_cli
from inkmeter_collector import config
from inkmeter_collector.snmp import SnmpClient, UnresolvableHost, parse_address

from tests.collector.test_discovery_cli import cli


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("printer-3", ("printer-3", None)),
        ("printer-3.office.lan:1161", ("printer-3.office.lan", 1161)),
        ("192.0.2.7", ("192.0.2.7", None)),
        ("192.0.2.7:161", ("192.0.2.7", 161)),
        ("[::1]:1161", ("::1", 1161)),
        ("[2001:db8::7]", ("2001:db8::7", None)),
        ("2001:db8::7", ("2001:db8::7", None)),  # bare IPv6: every colon is the address's
    ],
)
def test_address_forms(text: str, expected: tuple[str, int | None]) -> None:
    assert parse_address(text) == expected


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("printer:", "port must be a number"),
        ("printer:snmp", "port must be a number"),
        ("printer:0", "port must be a number"),
        ("printer:65536", "port must be a number"),
        (":161", "no host"),
        ("[::1", "[address]:port"),
        ("[::1]1161", "[address]:port"),
        ("[printer]:161", "is not an IPv6 address"),
    ],
)
def test_bad_addresses_say_why(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason.replace("[", r"\[").replace("]", r"\]")):
        parse_address(text)


def poll(tmp_path: Path, address: str, *extra: str) -> Any:
    return cli("--outbox", str(tmp_path / "o.sqlite3"), "poll", address, *extra)


def test_poll_host_and_port(tmp_path: Path, snmpsim: dict[str, Any]) -> None:
    polled = poll(tmp_path, f"127.0.0.1:{snmpsim['port']}", "--community", "sharp")
    assert polled.returncode == 0, polled.stderr
    assert polled.stdout.startswith(f"127.0.0.1:{snmpsim['port']}  Sharp  SHARP MX-3570N")
    named = poll(tmp_path, f"localhost:{snmpsim['port']}", "--community", "utax")
    assert named.returncode == 0, named.stderr
    assert "UTAX P-4532DN  serial R9L0309954" in named.stdout


def test_poll_ipv6_address_and_port(tmp_path: Path, snmpsim: dict[str, Any]) -> None:
    if snmpsim["ipv6"] is None:
        pytest.skip("this host has no IPv6 loopback")
    polled = poll(tmp_path, f"[::1]:{snmpsim['port']}", "--community", "sharp")
    assert polled.returncode == 0, polled.stderr
    assert "SHARP MX-3570N  serial 6509415X00" in polled.stdout


def test_port_in_the_address_and_a_different_port_option(tmp_path: Path) -> None:
    polled = poll(tmp_path, "127.0.0.1:1161", "--port", "161", "--community", "sharp")
    assert polled.returncode == 1
    assert polled.stderr.strip() == "127.0.0.1:1161: port 1161 here, but --port 161"


def test_bad_port_is_named(tmp_path: Path) -> None:
    polled = poll(tmp_path, "127.0.0.1:http", "--community", "sharp")
    assert polled.returncode == 1
    assert "the port must be a number from 1 to 65535" in polled.stderr


def test_name_that_cannot_be_resolved(tmp_path: Path) -> None:
    # A malformed name fails in the resolver itself: no DNS query leaves the machine.
    polled = poll(tmp_path, "printer..office:1161", "--community", "sharp")
    assert polled.returncode == 1
    assert polled.stderr.startswith("cannot resolve printer..office (")
    assert "no SNMP answer" not in polled.stderr


def test_unresolvable_name_is_not_retried_with_every_community(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    asked: list[tuple[str, int]] = []

    async def no_such_name(self: Any, host: str, port: int, **kwargs: Any) -> Any:
        asked.append((host, port, kwargs["family"]))
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    # The network edge: the event loop's resolver (well-formed names would query DNS).
    monkeypatch.setattr(asyncio.BaseEventLoop, "getaddrinfo", no_such_name)
    cfg = config.Config(communities=("public", "private", "sharp"))

    async def run() -> object:
        client = SnmpClient(timeout_s=0.2, retries=0)
        try:
            return await collector_cli._poll_target(client, cfg, "printer-9.lan", 161, None)
        finally:
            client.close()

    with pytest.raises(UnresolvableHost, match=r"^cannot resolve printer-9.lan \(Name or serv"):
        asyncio.run(run())
    # one lookup per address family, and no SNMP request for the other communities
    assert asked == [
        ("printer-9.lan", 161, socket.AF_INET),
        ("printer-9.lan", 161, socket.AF_INET6),
    ]
