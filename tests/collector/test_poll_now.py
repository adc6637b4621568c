"""`inkmeter-collector poll-now` (or SIGUSR1) makes the running service poll at once; that poll
uploads at once only when the urgent rule fires (a supply crossing the portal's reorder
threshold, a new critical alert), else its snapshots wait for the upload interval.

The service keeps its process id in `<outbox>.pid`, locked while it runs: `poll-now` signals
only a service that holds the lock, so a stale file never sends a signal to a stranger."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.collector.portal_stub import KEY_ID, SECRET, StubPortal
from tests.collector.support import COLLECTOR_SRC

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGUSR1 is POSIX only")

SHARP = "6509415X00"  # sharp.snmprec: magenta toner at 19 %
ENV = dict(os.environ, PYTHONPATH=str(COLLECTOR_SRC))


def cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603
        [sys.executable, "-m", "inkmeter_collector.cli", "--config", str(config), *args],
        env=ENV,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def wait_for(condition: Callable[[], bool], what: str, timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.1)


def write_config(tmp_path: Path, portal: StubPortal, snmp_port: int) -> Path:
    path = tmp_path / "c.toml"
    path.write_text(
        f'[portal]\nurl = "{portal.url}"\nkey_id = "{KEY_ID}"\nsecret = "{SECRET}"\n'
        f'[outbox]\npath = "{tmp_path / "o.sqlite3"}"\n'
        # No poll on schedule within the test (10 hours), none but at start and when asked;
        # the configuration is fetched every 1.8 s so that a new threshold applies quickly.
        "[schedule]\npoll_interval_minutes = 600\nconfig_interval_minutes = 0.03\n"
        f'[[printers]]\naddress = "127.0.0.1"\nport = {snmp_port}\ncommunity = "sharp"\n'
        f'[[printers]]\naddress = "127.0.1.1"\nport = {snmp_port}\ncommunity = "ricoh_mpc3002"\n'
    )
    return path


class Service:
    """`inkmeter-collector run` in a subprocess, its log in a file."""

    def __init__(self, config: Path, log: Path) -> None:
        self.log = log
        with log.open("w") as sink:
            self.process = subprocess.Popen(  # noqa: S603
                [sys.executable, "-m", "inkmeter_collector.cli", "--config", str(config), "run"],
                env=ENV,
                stdout=sink,
                stderr=subprocess.STDOUT,
            )

    def text(self) -> str:
        return self.log.read_text()

    def polls(self) -> int:
        return self.text().count("polled 2 printers")

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=60)


@pytest.fixture
def config(tmp_path: Path, portal: StubPortal, snmpsim: dict[str, Any]) -> Path:
    # The portal sets a long upload interval and the customer's threshold (10 %: nothing is
    # low); it leaves the poll pace to the collector.
    portal.config_answer = {
        "config_version": 1,
        "ranges": [],
        "communities": ["public"],
        "upload_interval_minutes": 600,
        "reorder_threshold_percent": 10,
        "reorder_thresholds": {},
    }
    return write_config(tmp_path, portal, int(snmpsim["port"]))


@pytest.fixture
def service(config: Path, tmp_path: Path) -> Iterator[Service]:
    running = Service(config, tmp_path / "run.log")
    try:
        yield running
    finally:
        assert running.stop() == 0, running.text()[-3000:]


def test_poll_now_polls_at_once_and_uploads_at_once_only_on_a_crossing(
    config: Path, service: Service, portal: StubPortal
) -> None:
    def accepted() -> int:
        return len(portal.accepted_batches)

    wait_for(lambda: accepted() == 1, "the upload at start")
    assert service.polls() == 1
    pid_file = config.parent / "o.pid"
    assert pid_file.read_text().strip() == str(service.process.pid)

    # 1. SIGUSR1 itself: a poll at once, nothing low, so its snapshots wait for the interval.
    service.process.send_signal(signal.SIGUSR1)
    wait_for(lambda: service.polls() == 2, "the poll SIGUSR1 asked for")
    assert "poll requested" in service.text()

    # 2. The Sharp's own threshold becomes 19 %: its magenta toner (19 %) is at it. The
    # collector learns it from the portal, but only the next poll finds the crossing.
    portal.config_answer = dict(portal.config_answer, reorder_thresholds={SHARP: 19})
    fetched = len(portal.gets)
    wait_for(lambda: len(portal.gets) >= fetched + 2, "the new threshold to be applied")
    assert accepted() == 1  # no poll, no upload
    asked = cli(config, "poll-now")
    assert asked.returncode == 0, asked.stderr
    assert str(service.process.pid) in asked.stdout
    wait_for(lambda: accepted() == 2, "the immediate upload of the crossing")
    assert service.polls() == 3
    assert "uploading at once: 6509415X00: toner-magenta" in service.text()
    urgent = [portal.stored[i] for i in portal.posts[-1]["snapshot_ids"]]
    # The snapshots of poll 2 waited (no upload of their own) and go up with those of poll 3.
    assert len(urgent) == 4
    assert {s["device"]["serial"] for s in urgent} == {SHARP, "W492KB03439"}

    # 3. Asked again, still at 19 %: no new crossing, so no upload at once. The poll after it
    # proves the loop went past that poll's upload decision.
    posts = len(portal.posts)
    assert cli(config, "poll-now").returncode == 0
    wait_for(lambda: service.polls() == 4, "the third requested poll")
    assert cli(config, "poll-now").returncode == 0
    wait_for(lambda: service.polls() == 5, "the fourth requested poll")
    assert len(portal.posts) == posts
    assert service.text().count("uploading at once") == 1
    assert all(post["problem"] is None and post["schema_errors"] == [] for post in portal.posts)


def test_poll_now_without_a_running_service_says_so_and_signals_nobody(
    config: Path, tmp_path: Path
) -> None:
    answer = cli(config, "poll-now")
    assert answer.returncode == 1
    assert "no collector is running" in answer.stderr

    # A pid file left by a service that was killed: its pid may be anybody's now.
    stranger = subprocess.Popen(["sleep", "60"])  # noqa: S603, S607
    try:
        (tmp_path / "o.pid").write_text(f"{stranger.pid}\n")
        answer = cli(config, "poll-now")
        assert answer.returncode == 1
        assert "no collector is running" in answer.stderr
        time.sleep(0.2)
        assert stranger.poll() is None  # not signalled: SIGUSR1 would have ended it
    finally:
        stranger.kill()
        stranger.wait(timeout=10)


def test_a_second_service_on_the_same_outbox_refuses_to_start(
    config: Path, service: Service, portal: StubPortal
) -> None:
    wait_for(lambda: len(portal.accepted_batches) == 1, "the first service's start")
    second = cli(config, "run", "--once")
    assert second.returncode == 1
    assert f"already runs with this outbox (pid {service.process.pid};" in second.stderr
    assert service.process.poll() is None
