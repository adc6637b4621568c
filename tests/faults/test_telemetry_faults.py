"""Telemetry ingestion under faults, on a throwaway stack (benchmarks/stack.py) while
collectors post: PostgreSQL restarts, Redis goes away for a minute. What the protocol promises
(protocol/telemetry-v1.md) must hold: what is acknowledged is durable whatever happens to the
broker, a batch sent again with its batch_id is stored once, and work left undone while the
broker was away is re-derived from the database (DESIGN.md, STYLE.md rule 12).

Each test prints what it did and what it counted (`pytest -s`, and the junit XML)."""

from __future__ import annotations

import contextlib
import os
import time
from collections import Counter
from collections.abc import Iterator

import pytest
from celery import Celery

from benchmarks.stack import Stack, StackError, log_tail, wait_until
from portal.celery import TASK_ROUTES
from tests.faults import held_task
from tests.faults.collectors import Collectors, Stored, Tally, stored

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.faults]

# CI runs the full minute; a developer may set it shorter.
REDIS_OUTAGE_S = float(os.environ.get("INKMETER_FAULT_REDIS_OUTAGE_S", "60"))
# The sweep takes over a batch whose follow-up task has not run for this long (the product's
# default is two minutes: far more than a queued task waits, far less than anyone notices).
FOLLOWUP_GRACE_S = 10
SWEEP_EVERY_S = 5


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """One stack for the module: starting one (initdb, migrate) costs more than a test."""
    with Stack(
        tmp_path_factory.mktemp("faults") / "stack",
        web_workers=2,
        celery_concurrency=2,
        worker_include=["tests.faults.held_task"],
        extra_env={"TELEMETRY_FOLLOWUP_GRACE_SECONDS": str(FOLLOWUP_GRACE_S)},
    ) as stack:
        print("\nstack up: " + ", ".join(f"{k} {v:.1f} s" for k, v in stack.timings.items()))
        yield stack


def assert_stored_once(tally: Tally, db: Stored) -> None:
    """Every batch sent was acknowledged and is stored once, with all of its rows."""
    sent = tally.sent
    assert tally.refused == []
    assert tally.unacked == []
    assert db.batch_rows == Counter(dict.fromkeys(sent, 1))
    assert db.snapshots == Counter({batch_id: b.snapshots for batch_id, b in sent.items()})
    assert db.counter_readings == sum(b.counters for b in sent.values())
    assert db.supply_readings == sum(b.supplies for b in sent.values())
    # A batch stored before its answer was lost is answered again with the same answer.
    assert sum(a["accepted"] + a["duplicates"] for a in tally.acked.values()) == sum(
        b.snapshots for b in sent.values()
    )


def expected(tally: Tally) -> str:
    sent = tally.sent.values()
    return (
        f"expected: {len(tally.sent)} batches, {sum(b.snapshots for b in sent)} snapshots, "
        f"{sum(b.counters for b in sent)} counter and {sum(b.supplies for b in sent)} "
        "supply readings"
    )


def wait_for_acks(stack: Stack, collectors: Collectors, count: int, timeout: float = 120) -> None:
    """Until `count` batches are acknowledged; failing, say what the senders saw."""
    with contextlib.suppress(StackError):
        wait_until(
            lambda: collectors.acked() >= count or not collectors.running(),
            timeout=timeout,
            what=f"{count} batches acknowledged",
        )
    if collectors.acked() < count:
        tally = collectors.tally
        pytest.fail(
            f"{tally.summary()}; refused: {tally.refused[:3]}\n"
            f"gunicorn log:\n{log_tail(stack.logs / 'gunicorn.log')}"
        )


SENDERS = 4
BATCHES_PER_SENDER = 30
# Down long enough that every sender meets the outage, not only the requests in flight.
POSTGRES_DOWN_S = 3


@pytest.mark.timeout(300)
def test_postgres_restart_loses_nothing_acknowledged_and_stores_nothing_twice(stack):
    collectors = Collectors(stack, senders=SENDERS, max_batches=BATCHES_PER_SENDER).start()
    wait_for_acks(stack, collectors, SENDERS * BATCHES_PER_SENDER // 3)
    acked_before = collectors.acked()
    started = time.monotonic()
    stack.postgres.restart(down_s=POSTGRES_DOWN_S)
    restart_s = time.monotonic() - started
    tally = collectors.join()
    db = stored(stack, collectors.reseller_id)

    print(
        f"\nPostgreSQL restarted (fast shutdown, down {POSTGRES_DOWN_S} s, {restart_s:.1f} s "
        f"in all) after {acked_before} of {len(tally.sent)} batches were acknowledged"
    )
    print(tally.summary())
    print(db.summary())
    print(expected(tally))

    assert len(tally.sent) == SENDERS * BATCHES_PER_SENDER
    assert tally.retries > 0, "the restart met no request: the test proved nothing"
    assert_stored_once(tally, db)


def followups_catch_up(stack: Stack, reseller_id: int, timeout: float = 120) -> int:
    """Send the beat's follow-up sweep (through the broker, to the worker) every few seconds,
    instead of waiting up to two minutes for its schedule, until no batch of the reseller waits
    for its follow-up or the timeout; returns the sweeps sent."""
    client = Celery("faults", broker=stack.redis.url, set_as_current=False)
    client.conf.task_routes = (TASK_ROUTES,)  # to the product's queue for the sweep
    sweeps = 0
    deadline = time.monotonic() + timeout
    next_sweep = 0.0
    try:
        while stored(stack, reseller_id).followup_pending and time.monotonic() < deadline:
            if time.monotonic() >= next_sweep:
                client.send_task("devices.tasks.telemetry_followup_sweep_task", ignore_result=True)
                sweeps += 1
                next_sweep = time.monotonic() + SWEEP_EVERY_S
            time.sleep(0.5)
    finally:
        client.close()
    return sweeps


def gunicorn_log_count(stack: Stack, text: str) -> int:
    log = stack.logs / "gunicorn.log"
    return log.read_text(errors="replace").count(text) if log.exists() else 0


@pytest.mark.timeout(300)
def test_redis_outage_ingestion_goes_on_and_followups_catch_up(stack):
    not_enqueued = "not enqueued; left to the sweep"
    failed_before = gunicorn_log_count(stack, not_enqueued)
    collectors = Collectors(stack, senders=3, interval=0.5).start()
    wait_for_acks(stack, collectors, 6)

    stack.redis.stop()
    down_at = time.monotonic()
    acked_at_stop = collectors.acked()
    time.sleep(REDIS_OUTAGE_S)
    acked_while_down = collectors.acked() - acked_at_stop
    errors_while_down = sum(collectors.tally.errors.values())
    stack.redis.start()
    back_at = time.monotonic()
    # A few batches more with the broker back, then every sender's last batch acknowledged.
    wait_for_acks(stack, collectors, acked_at_stop + acked_while_down + 3)
    collectors.stop()
    tally = collectors.join()
    failed = gunicorn_log_count(stack, not_enqueued) - failed_before
    pending_at_return = stored(stack, collectors.reseller_id).followup_pending

    sweeps = followups_catch_up(stack, collectors.reseller_id)
    caught_up_s = time.monotonic() - back_at
    db = stored(stack, collectors.reseller_id)

    print(
        f"\nRedis stopped for {back_at - down_at:.0f} s while 3 collectors posted: "
        f"{acked_while_down} batches acknowledged meanwhile, "
        f"{errors_while_down} errors"
    )
    print(tally.summary())
    print(
        f"follow-ups: {len(tally.sent) - failed} queued, {failed} not queued (broker down), "
        f"{pending_at_return} pending when the senders stopped; all done {caught_up_s:.1f} s "
        f"after Redis came back, {sweeps} sweep(s) sent"
    )
    print(db.summary())
    print(expected(tally))

    assert acked_while_down > 0
    assert tally.errors == Counter(), "ingestion failed while Redis was down"
    assert failed > 0, "no follow-up met the outage: the test proved nothing"
    assert db.followup_pending == 0
    assert_stored_once(tally, db)


@pytest.mark.timeout(180)
def test_redis_lost_while_a_task_runs_the_worker_lives_on_and_consumes_again(stack, tmp_path):
    """The broker goes away while a task is in flight (delivered, not yet acknowledged): the
    worker reconnects when Redis is back and runs what is sent next; it does not exit."""
    client = Celery("faults", broker=stack.redis.url, set_as_current=False)
    log = stack.logs / "celery-worker.log"
    lost = "Connection to broker lost"
    lost_before = log.read_text(errors="replace").count(lost)
    held, after = tmp_path / "held", tmp_path / "after"
    try:
        client.send_task(held_task.NAME, args=[str(held), 10], queue="default")
        wait_until(held.exists, timeout=60, what="the held task to start")

        stack.redis.stop()
        wait_until(
            lambda: log.read_text(errors="replace").count(lost) > lost_before,
            timeout=30,
            what="the worker to notice the broker is gone",
        )
        stack.redis.start()

        client.send_task(held_task.NAME, args=[str(after), 0], queue="default")
        with contextlib.suppress(StackError):
            wait_until(after.exists, timeout=60, what="a task sent after Redis came back")
    finally:
        client.close()
    worker_log = log.read_text(errors="replace")
    assert "Unrecoverable error" not in worker_log, log_tail(log)
    assert stack.worker.process.running(), "the worker exited when the broker went away"
    assert after.exists(), "the worker never consumed again after Redis came back"
