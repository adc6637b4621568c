"""Critical alerts and reorder-point crossings go to the portal at once: the rule on its own,
the portal's thresholds in the configuration, and the run loop against snmpsim and a stub
portal that checks every signature."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from inkmeter_collector import config, urgent

from tests.collector.portal_stub import KEY_ID, SECRET, StubPortal
from tests.collector.support import COLLECTOR_SRC


def snapshot(*, cyan: float = 50.0, alerts: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "snapshot_id": "s",
        "collected_at": "2026-12-01T00:00:00Z",
        "device": {"serial": "SER1"},
        "supplies": [
            {"id": "toner-cyan-1.3", "kind": "toner", "level_state": "ok", "level": cyan,
             "max_capacity": 100},
            {"id": "toner-black-1.1", "kind": "toner", "level_state": "some_remaining"},
            {"id": "waste-1.9", "kind": "waste", "level_state": "ok", "level": 20,
             "max_capacity": 0},
        ],
        "alerts": alerts or [],
    }  # fmt: skip


JAM = {"code": "input.jam", "severity": "critical", "description": "Paper jam in tray 2"}


def test_a_crossing_is_urgent_once_while_the_supply_stays_low() -> None:
    reasons, seen = urgent.examine(snapshot(cyan=16), 15, urgent.Seen())
    assert (reasons, seen) == ([], urgent.Seen())
    reasons, seen = urgent.examine(snapshot(cyan=15), 15, seen)
    assert reasons == ["toner-cyan-1.3 at 15% (reorder at 15%)"]
    assert seen.low == frozenset({"toner-cyan-1.3"})
    assert urgent.examine(snapshot(cyan=9), 15, seen) == ([], seen)
    # a new cartridge, then low again: a new crossing
    reasons, seen = urgent.examine(snapshot(cyan=100), 15, seen)
    assert (reasons, seen.low) == ([], frozenset())
    assert urgent.examine(snapshot(cyan=12.5), 15, seen)[0] == [
        "toner-cyan-1.3 at 12.5% (reorder at 15%)"
    ]


def test_a_new_critical_alert_is_urgent_once_even_without_a_threshold() -> None:
    reasons, seen = urgent.examine(snapshot(alerts=[JAM]), None, urgent.Seen())
    assert reasons == ["critical alert input.jam"]
    assert urgent.examine(snapshot(alerts=[JAM]), None, seen) == ([], seen)
    warning = {"code": "marker.low", "severity": "warning", "description": "Toner low"}
    assert urgent.examine(snapshot(alerts=[JAM, warning]), None, seen)[0] == []
    cleared = urgent.examine(snapshot(), None, seen)[1]
    assert urgent.examine(snapshot(alerts=[JAM]), None, cleared)[0] == ["critical alert input.jam"]


def test_seen_survives_its_json_form() -> None:
    seen = urgent.examine(snapshot(cyan=1, alerts=[JAM]), 15, urgent.Seen())[1]
    assert urgent.Seen.from_json(seen.to_json()) == seen
    assert urgent.Seen.from_json("garbage") == urgent.Seen()


def test_portal_thresholds_apply_per_device_and_bad_ones_are_skipped() -> None:
    warnings: list[str] = []
    applied = config.apply_portal(
        config.Config(),
        {
            "reorder_threshold_percent": 20,
            "reorder_thresholds": {"SER1": 5, "SER2": "high", "SER3": 101},
        },
        on_warning=warnings.append,
    )
    assert (applied.reorder_threshold("SER1"), applied.reorder_threshold("OTHER")) == (5.0, 20.0)
    assert applied.reorder_threshold("SER2") == 20.0
    assert warnings == [
        "portal configuration: reorder threshold of SER2 skipped: 'high' is not a percentage",
        "portal configuration: reorder threshold of SER3 skipped: 101 is not a percentage",
    ]
    # an older portal sends no threshold: only critical alerts upload at once
    assert config.apply_portal(config.Config(), {}).reorder_threshold("SER1") is None
    bad = config.apply_portal(
        config.Config(), {"reorder_threshold_percent": True}, on_warning=warnings.append
    )
    assert bad.reorder_threshold_percent is None


# --- the run loop -------------------------------------------------------------------------------

SHARP = "6509415X00"  # sharp.snmprec: magenta toner at 19 %
RICOH = "W492KB03439"  # ricoh_mpc3002.snmprec: cyan toner at 20 %


def wait_for(condition: Callable[[], bool], what: str, timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.1)


def test_run_uploads_a_crossing_at_once_once_signed_with_its_batch_id_kept(
    tmp_path: Path, snmpsim: dict[str, Any], portal: StubPortal
) -> None:
    port = snmpsim["port"]
    (tmp_path / "c.toml").write_text(
        f'[portal]\nurl = "{portal.url}"\nkey_id = "{KEY_ID}"\nsecret = "{SECRET}"\n'
        f'[outbox]\npath = "{tmp_path / "o.sqlite3"}"\n'
        # Polls and config checks every 1.8 s; the regular upload only every 10 hours, so any
        # upload after the first one is an immediate one.
        "[schedule]\npoll_interval_minutes = 0.03\nconfig_interval_minutes = 0.03\n"
        f'[[printers]]\naddress = "127.0.0.1"\nport = {port}\ncommunity = "sharp"\n'
        f'[[printers]]\naddress = "127.0.1.1"\nport = {port}\ncommunity = "ricoh_mpc3002"\n'
    )
    # The portal leaves the poll pace to the collector (an answer may omit any field).
    portal.config_answer = {
        "config_version": 1,
        "ranges": [],
        "communities": ["public"],
        "upload_interval_minutes": 600,
        "reorder_threshold_percent": 10,
        "reorder_thresholds": {},
    }
    log_path = tmp_path / "run.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(  # noqa: S603
            [sys.executable, "-m", "inkmeter_collector.cli", "--config", str(tmp_path / "c.toml"),
             "run"],
            env=dict(os.environ, PYTHONPATH=str(COLLECTOR_SRC)),
            stdout=log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:

        def polls() -> int:
            return log_path.read_text().count("polled 2 printers")

        def accepted() -> int:
            return len(portal.accepted_batches)

        def completed_flushes() -> int:
            return log_path.read_text().count("stopped=None)")

        def answered() -> int:
            return sum(1 for post in portal.posts if "status" in post)

        # The start uploads what the first poll found; nothing is at or below 10 %.
        wait_for(lambda: accepted() == 1, "the upload at start")
        seen = polls()
        wait_for(lambda: polls() >= seen + 2, "two more polls")
        assert accepted() == 1

        # The customer's policy now says 15 %, and the Sharp's own override 19 %: its magenta
        # toner (19 %) crosses. The first attempt meets a 503 and is retried with its batch_id.
        portal.statuses = [503]
        portal.config_answer = dict(
            portal.config_answer, reorder_threshold_percent=15, reorder_thresholds={SHARP: 19}
        )
        wait_for(lambda: answered() > 1, "the immediate upload of the crossing")
        refused = portal.posts[1]
        assert refused["status"] == 503
        wait_for(lambda: completed_flushes() == 2, "its retry")
        retried = [p for p in portal.posts if p.get("batch_id") == refused["batch_id"]]
        assert [p["status"] for p in retried] == [503, 202]
        assert retried[1]["snapshot_ids"] == refused["snapshot_ids"]
        batch = [portal.stored[i] for i in refused["snapshot_ids"]]
        assert SHARP in {s["device"]["serial"] for s in batch}
        assert "uploading at once: 6509415X00: toner-magenta" in log_path.read_text()

        # Still at 19 %: later polls queue snapshots, but nothing is uploaded again.
        settled = answered()
        seen = polls()
        wait_for(lambda: polls() >= seen + 3, "three more polls")
        assert len(portal.posts) == settled

        # The Ricoh's cyan (20 %) crosses when the customer's threshold rises to 20 %.
        portal.config_answer = dict(portal.config_answer, reorder_threshold_percent=20)
        wait_for(lambda: completed_flushes() >= 3, "the upload of the second crossing")
        latest = [portal.stored[i] for i in portal.posts[-1]["snapshot_ids"]]
        assert RICOH in {s["device"]["serial"] for s in latest}
        assert log_path.read_text().count("uploading at once") == 2
        assert all(post["problem"] is None for post in portal.posts)
        assert all(post["schema_errors"] == [] for post in portal.posts)
        assert max(portal.acks.values()) == 1
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
    assert process.returncode == 0, log_path.read_text()[-3000:]
