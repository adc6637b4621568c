"""Outbox and uploads against a stub portal on 127.0.0.1 that checks every signature."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from inkmeter_collector import cli, config
from inkmeter_collector.outbox import Outbox
from inkmeter_collector.printer import parse_printer, to_snapshot
from inkmeter_collector.upload import Backoff, Portal, flush

from tests.collector import snmprec
from tests.collector.portal_stub import KEY_ID, SECRET, StubPortal
from tests.collector.support import COLLECTOR_SRC, PRINTERS

WITH_SERIALS = ("sharp.snmprec", "ricoh_mpc3002.snmprec", "printmaster_kyocera-cs-4053ci.snmprec")
NO_DELAY = Backoff(base_s=0, max_s=0, jitter=0)


def snapshots(
    count: int, *, start: datetime | None = None, step: timedelta = timedelta(hours=1)
) -> list[dict[str, Any]]:
    readings = [parse_printer(snmprec.load(PRINTERS / "snmprec" / name)) for name in WITH_SERIALS]
    moment = start or datetime(2026, 11, 1, tzinfo=UTC)
    made = []
    for number in range(count):
        reading = readings[number % len(readings)]
        made.append(
            to_snapshot(
                reading,
                snapshot_id=str(uuid.uuid4()),
                collected_at=moment + step * number,
                ip="127.0.0.1",
            )
        )
    return made


def make_portal(stub: StubPortal) -> Portal:
    return Portal(url=stub.url, key_id=KEY_ID, secret=SECRET)


def test_batch_is_signed_gzipped_valid_and_acknowledged_once(
    tmp_path: Path, portal: StubPortal
) -> None:
    outbox = Outbox(tmp_path / "o.sqlite3")
    queued = snapshots(5)
    outbox.put(queued)
    report = flush(outbox, make_portal(portal), max_snapshots=2)
    assert (report.sent, report.acked, report.retried, report.quarantined) == (3, 3, 0, 0)
    assert [post["problem"] for post in portal.posts] == [None, None, None]
    assert [post["schema_errors"] for post in portal.posts] == [[], [], []]
    assert set(portal.stored) == {s["snapshot_id"] for s in queued}
    assert outbox.stats()["bytes"] == 0
    assert outbox.stats()["acked_batches"] == 3
    # per printer and poll, compressed, in a batch of several printers
    assert report.upload_bytes / len(queued) < 1024


def test_each_batch_reports_the_backlog_left_and_the_last_discovery(
    tmp_path: Path, portal: StubPortal
) -> None:
    outbox = Outbox(tmp_path / "o.sqlite3")
    outbox.put(snapshots(5))
    report = flush(outbox, make_portal(portal), max_snapshots=2)
    assert report.acked == 3
    # Counted when each batch leaves, its own snapshots among them; no sweep has run yet.
    sources = [post["source"] for post in portal.posts]
    sizes = [len(post["snapshot_ids"]) for post in portal.posts]
    assert sum(sizes) == 5
    assert [s["outbox_backlog"] for s in sources] == [5, 5 - sizes[0], 5 - sizes[0] - sizes[1]]
    assert all("last_discovery_at" not in s for s in sources)
    assert all(
        s["kind"] == "collector" and s["agent"].startswith("inkmeter-collector/") for s in sources
    )

    outbox.discovery_done(now=datetime(2026, 11, 2, 6, 30, tzinfo=UTC))
    outbox.put(snapshots(1))
    flush(outbox, make_portal(portal))
    last = portal.posts[-1]
    assert last["schema_errors"] == []
    assert last["source"]["outbox_backlog"] == 1
    assert last["source"]["last_discovery_at"] == "2026-11-02T06:30:00+00:00"


def test_a_quarantined_batch_is_not_backlog(tmp_path: Path, portal: StubPortal) -> None:
    outbox = Outbox(tmp_path / "o.sqlite3")
    outbox.put(snapshots(2))
    portal.statuses = [400]
    flush(outbox, make_portal(portal), backoff=NO_DELAY)
    assert outbox.health() == {"outbox_backlog": 0}
    outbox.put(snapshots(1))
    assert outbox.health() == {"outbox_backlog": 1}


def test_503_backs_off_and_resends_the_same_batch_id(tmp_path: Path, portal: StubPortal) -> None:
    outbox = Outbox(tmp_path / "o.sqlite3")
    outbox.put(snapshots(2))
    portal.statuses = [503, 503]
    now = datetime.now(UTC)
    backoff = Backoff(base_s=10, max_s=300, jitter=0)

    first = flush(outbox, make_portal(portal), backoff=backoff, now=now)
    assert (first.sent, first.retried, first.acked) == (1, 1, 0)
    assert outbox.due_batches(now=now) == []  # waiting out its backoff
    assert len(outbox.due_batches(now=now + timedelta(seconds=10))) == 1

    second = flush(outbox, make_portal(portal), backoff=backoff, now=now + timedelta(seconds=10))
    assert second.retried == 1
    assert outbox.due_batches(now=now + timedelta(seconds=29)) == []  # 20 s the second time
    third = flush(outbox, make_portal(portal), backoff=backoff, now=now + timedelta(seconds=31))
    assert third.acked == 1
    assert len({post["batch_id"] for post in portal.posts}) == 1
    assert [post["status"] for post in portal.posts] == [503, 503, 202]
    assert portal.acks == Counter({portal.posts[0]["batch_id"]: 1})


def test_backoff_grows_to_its_cap() -> None:
    backoff = Backoff(base_s=5, max_s=300, jitter=0)
    assert [backoff.delay(n) for n in (1, 2, 3, 7, 20)] == [5, 10, 20, 300, 300]


def test_400_quarantines_the_batch_and_keeps_it(tmp_path: Path, portal: StubPortal) -> None:
    outbox = Outbox(tmp_path / "o.sqlite3")
    outbox.put(snapshots(2))
    portal.statuses = [400]
    report = flush(outbox, make_portal(portal), backoff=NO_DELAY)
    assert report.quarantined == 1
    stats = outbox.stats()
    assert (stats["quarantined_batches"], stats["pending_batches"]) == (1, 0)
    assert stats["bytes"] > 0  # kept on disk, not deleted
    assert any("quarantined" in message for _, message in outbox.warnings())
    flush(outbox, make_portal(portal), backoff=NO_DELAY)
    assert len(portal.posts) == 1  # out of the retry loop
    assert outbox.requeue_quarantined() == 1
    assert flush(outbox, make_portal(portal), backoff=NO_DELAY).acked == 1
    assert len(portal.stored) == 2


def test_wrong_secret_waits_instead_of_quarantining(tmp_path: Path, portal: StubPortal) -> None:
    outbox = Outbox(tmp_path / "o.sqlite3")
    outbox.put(snapshots(1))
    report = flush(outbox, Portal(url=portal.url, key_id=KEY_ID, secret="wrong"), backoff=NO_DELAY)
    assert (report.retried, report.quarantined) == (1, 0)
    assert portal.posts[0]["problem"] == "bad signature"
    assert outbox.stats()["pending_batches"] == 1


def test_portal_down_loses_nothing(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "o.sqlite3")
    outbox.put(snapshots(3))
    down = Portal(url="http://127.0.0.1:9", key_id=KEY_ID, secret=SECRET, timeout_s=2)
    report = flush(outbox, down, backoff=NO_DELAY)
    assert report.retried == 1
    assert report.stopped is not None
    assert outbox.stats()["queued_snapshots"] == 3


def test_disk_bound_summarises_then_drops_with_warnings(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "o.sqlite3", max_bytes=10**9)
    # 3 printers, polled hourly for 4 days: 96 snapshots
    outbox.put(snapshots(96))
    full = outbox.size_bytes()
    outbox.max_bytes = full // 4
    warnings = outbox.enforce_limit()
    assert any("summarised" in w for w in warnings)
    assert outbox.size_bytes() <= outbox.max_bytes
    # the last reading of each printer and day survives: 3 printers x 4 days at most
    assert outbox.stats()["loose_snapshots"] <= 12

    outbox.max_bytes = outbox.size_bytes() // 3
    warnings = outbox.enforce_limit()
    assert any("dropped" in w for w in warnings)
    assert 0 < outbox.size_bytes() <= outbox.max_bytes
    assert any("outbox full" in message for _, message in outbox.warnings())


def test_portal_configuration_is_fetched_signed_and_cached(
    tmp_path: Path, portal: StubPortal
) -> None:
    outbox = Outbox(tmp_path / "o.sqlite3")
    base = config.Config(ranges=("127.0.0.0/30",))
    updated = cli.refresh_portal_config(base, base, outbox, make_portal(portal))
    assert portal.gets == [{"path": "/api/v1/collector/config", "problem": None}]
    assert (updated.config_version, updated.ranges, updated.poll_interval_minutes) == (
        3,
        ("127.0.1.0/29",),
        30,
    )
    down = Portal(url="http://127.0.0.1:9", key_id=KEY_ID, secret=SECRET, timeout_s=2)
    assert cli.refresh_portal_config(updated, base, outbox, down) == updated
    # a restart while the portal is down starts from the cached answer
    assert cli._cached_portal_config(base, outbox).ranges == ("127.0.1.0/29",)


def _run_upload(config_path: Path) -> subprocess.Popen[bytes]:
    env = dict(os.environ, PYTHONPATH=str(COLLECTOR_SRC))
    return subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", "inkmeter_collector.cli", "--config", str(config_path), "upload"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def test_killed_mid_upload_loses_and_duplicates_nothing(tmp_path: Path, portal: StubPortal) -> None:
    outbox_path = tmp_path / "o.sqlite3"
    config_path = tmp_path / "c.toml"
    config_path.write_text(
        f'[portal]\nurl = "{portal.url}"\nkey_id = "{KEY_ID}"\nsecret = "{SECRET}"\n'
        f'[outbox]\npath = "{outbox_path}"\nbatch_max_snapshots = 4\n'
    )
    queued = snapshots(24)
    Outbox(outbox_path).put(queued)
    portal.delay_s = 0.5  # the portal has stored the batch but not answered yet
    for _ in range(3):
        portal.stored_event.clear()
        process = _run_upload(config_path)
        assert portal.stored_event.wait(timeout=60)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        assert process.returncode == -signal.SIGKILL
    portal.delay_s = 0
    process = _run_upload(config_path)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 0, err.decode()

    assert set(portal.stored) == {snapshot["snapshot_id"] for snapshot in queued}
    assert len(portal.accepted_batches) == 6
    assert set(portal.accepted_batches.values()) == {1}
    posts = Counter(post["batch_id"] for post in portal.posts)
    assert max(posts.values()) >= 2  # a killed upload was resent under its batch_id
    assert all(post["problem"] is None and post["schema_errors"] == [] for post in portal.posts)
    stats = Outbox(outbox_path).stats()
    assert (stats["acked_batches"], stats["pending_batches"], stats["loose_snapshots"]) == (6, 0, 0)
