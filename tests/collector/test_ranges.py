"""The collector's side of the one address-range definition: every vector of
tests/data/ip_ranges.json (the portal's tests read the same file), and what the collector does
with a portal configuration it can only partly apply."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
from inkmeter_collector import cli, config, discovery, ranges
from inkmeter_collector.outbox import Outbox
from inkmeter_collector.upload import Portal

from tests.collector.portal_stub import KEY_ID, SECRET, StubPortal
from tests.collector.support import REPO

VECTORS = json.loads((REPO / "tests" / "data" / "ip_ranges.json").read_text(encoding="utf-8"))


def test_limit_is_the_documented_one() -> None:
    assert VECTORS["max_addresses"] == ranges.MAX_ADDRESSES


@pytest.mark.parametrize("vector", VECTORS["valid"], ids=lambda v: v["input"])
def test_valid_range(vector: dict[str, Any]) -> None:
    parsed = ranges.parse_range(vector["input"])
    assert (parsed.text, str(parsed.first), str(parsed.last), parsed.count) == (
        vector["normalised"],
        vector["first"],
        vector["last"],
        vector["count"],
    )
    swept = list(discovery.addresses([vector["input"]]))
    assert len(swept) == vector["swept"]
    assert len(set(swept)) == len(swept)


@pytest.mark.parametrize("vector", VECTORS["invalid"], ids=lambda v: v["input"] or "empty")
def test_invalid_range(vector: dict[str, Any]) -> None:
    with pytest.raises(ranges.RangeError) as raised:
        ranges.parse_range(vector["input"])
    assert (raised.value.code, raised.value.message) == (vector["code"], vector["message"])


def test_sweep_of_a_dashed_range_asks_each_address_once() -> None:
    assert list(discovery.addresses(["127.0.1.1-127.0.1.4", "127.0.1.3"])) == [
        "127.0.1.1",
        "127.0.1.2",
        "127.0.1.3",
        "127.0.1.4",
    ]
    assert discovery.count_addresses(["127.0.1.1-127.0.1.4", "127.0.1.0/29"]) == 6


PORTAL_ANSWER = {
    "config_version": 4,
    "ranges": ["192.0.2.10-192.0.2.50", "192.0.2.0/28", "192.0.2.99"],
    "communities": ["office"],
    "poll_interval_minutes": 30,
    "upload_interval_minutes": 10,
}


def test_portal_dashed_range_and_interval_apply() -> None:
    applied = config.apply_portal(config.Config(), PORTAL_ANSWER)
    assert applied.ranges == ("192.0.2.10-192.0.2.50", "192.0.2.0/28", "192.0.2.99")
    assert (applied.config_version, applied.poll_interval_minutes) == (4, 30)
    assert applied.communities == ("office",)
    assert applied.upload_interval_minutes == 10


def test_portal_bad_range_is_skipped_with_a_warning_and_the_rest_applies(
    caplog: pytest.LogCaptureFixture,
) -> None:
    answer = dict(PORTAL_ANSWER, ranges=["0.0.0.0/0", "192.0.2.10-192.0.2.50", "nonsense", 7])
    warnings: list[str] = []
    with caplog.at_level(logging.WARNING, logger="inkmeter_collector"):
        applied = config.apply_portal(config.Config(), answer, on_warning=warnings.append)
    assert applied.ranges == ("192.0.2.10-192.0.2.50",)
    assert (applied.poll_interval_minutes, applied.communities) == (30, ("office",))
    assert warnings == [
        "portal configuration: range skipped: '0.0.0.0/0' covers 4,294,967,296 addresses; at"
        " most 65,536 (an IPv4 /16) can be swept: give smaller ranges.",
        "portal configuration: range skipped: 'nonsense' is not a network (192.0.2.0/24), an"
        " address (192.0.2.10) or a range (192.0.2.10-192.0.2.50).",
        "portal configuration: range skipped: '7' is not a network (192.0.2.0/24), an address"
        " (192.0.2.10) or a range (192.0.2.10-192.0.2.50).",
    ]


def test_portal_ranges_all_bad_keep_the_local_ones_not_the_own_subnet() -> None:
    local = config.Config(ranges=("127.0.1.0/29",))
    warnings: list[str] = []
    applied = config.apply_portal(
        local, dict(PORTAL_ANSWER, ranges=["::/0"]), on_warning=warnings.append
    )
    assert (applied.ranges, applied.poll_interval_minutes) == (("127.0.1.0/29",), 30)
    assert warnings[-1] == "portal configuration: no range applies; keeping the local ranges"
    assert config.apply_portal(local, dict(PORTAL_ANSWER, ranges=[])).ranges == ()


def test_refresh_applies_the_portal_range_and_records_the_warning(
    tmp_path: Path, portal: StubPortal
) -> None:
    portal.config_answer = dict(PORTAL_ANSWER, ranges=["127.0.1.1-127.0.1.4", "::/0"])
    outbox = Outbox(tmp_path / "o.sqlite3")
    base = config.Config(ranges=("127.0.0.0/30",))
    updated = cli.refresh_portal_config(
        base, base, outbox, Portal(url=portal.url, key_id=KEY_ID, secret=SECRET)
    )
    assert (updated.config_version, updated.ranges, updated.poll_interval_minutes) == (
        4,
        ("127.0.1.1-127.0.1.4",),
        30,
    )
    assert [message for _, message in outbox.warnings()] == [
        "portal configuration: range skipped: '::/0' covers"
        " 340,282,366,920,938,463,463,374,607,431,768,211,456 addresses; at most 65,536"
        " (an IPv4 /16) can be swept: give smaller ranges."
    ]
    # a restart while the portal is down applies the cached answer the same way
    assert cli._cached_portal_config(base, outbox).ranges == ("127.0.1.1-127.0.1.4",)


def test_local_ranges_take_every_form_and_refuse_absurd_ones(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[discovery]\nranges = ["127.0.1.1 - 127.0.1.4", "127.0.2.0/24"]\n')
    assert config.load(path, env={}).ranges == ("127.0.1.1-127.0.1.4", "127.0.2.0/24")
    assert config.load(path, env={"INKMETER_RANGES": "127.0.0.5,127.0.0.8-127.0.0.9"}).ranges == (
        "127.0.0.5",
        "127.0.0.8-127.0.0.9",
    )
    path.write_text('[discovery]\nranges = ["0.0.0.0/0"]\n')
    with pytest.raises(config.ConfigError, match=r"'0\.0\.0\.0/0' covers 4,294,967,296 addresses"):
        config.load(path, env={})


def test_cli_discover_sweeps_a_dashed_range_and_refuses_an_absurd_one(
    tmp_path: Path, snmpsim: dict[str, Any]
) -> None:
    from tests.collector.test_discovery_cli import cli as run_cli

    outbox = str(tmp_path / "o.sqlite3")
    swept = run_cli(
        "--outbox",
        outbox,
        "discover",
        "--range",
        "127.0.1.1-127.0.1.2",
        "--port",
        str(snmpsim["port"]),
        "--community",
        "sharp",
        "--time-limit",
        "30",
    )
    assert swept.returncode == 0, swept.stderr
    assert "sweeping 127.0.1.1-127.0.1.2 (2 addresses)" in swept.stderr
    assert "2 printers found" in swept.stderr

    refused = run_cli("--outbox", outbox, "discover", "--range", "0.0.0.0/0")
    assert refused.returncode == 2
    assert "--range: '0.0.0.0/0' covers 4,294,967,296 addresses" in refused.stderr
