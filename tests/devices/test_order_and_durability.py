"""Idempotency, order independence and durability of ingestion."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.core import mail

from devices import services
from devices.models import (
    Alert,
    CounterReading,
    Device,
    DeviceState,
    Job,
    MediaSource,
    Snapshot,
    Supply,
    SupplyReading,
    TelemetryBatch,
)
from devices.simulator import fleet_build, history
from devices.tasks import telemetry_followup_sweep_task
from tests.devices.conftest import Post, Signed, snapshot

pytestmark = pytest.mark.django_db

END = datetime.now(tz=UTC).replace(second=0, microsecond=0) - timedelta(minutes=10)


def _state() -> dict[str, Any]:
    """Everything ingestion derives, without surrogate keys or arrival times."""

    def rows(model: Any, *fields: str) -> list[tuple[Any, ...]]:
        return sorted(model.unscoped.values_list(*fields), key=repr)

    return {
        "devices": rows(Device, "serial", "manufacturer", "model", "product_number"),
        "state": rows(
            DeviceState,
            "device__serial",
            "last_seen_at",
            "last_snapshot_id",
            "state",
            "detail",
            "firmware",
            "ip",
            "hostname",
            "impressions_total",
            "is_online",
        ),
        "snapshots": rows(Snapshot, "snapshot_id", "collected_at", "firmware", "ip"),
        "counters": rows(
            CounterReading, "device__serial", "collected_at", "name", "media_type", "color", "value"
        ),
        "supply_readings": rows(
            SupplyReading, "device__serial", "supply_key", "collected_at", "level", "percent"
        ),
        "supplies": rows(
            Supply, "device__serial", "supply_key", "level", "percent", "serial", "observed_at"
        ),
        "media": rows(MediaSource, "device__serial", "source_key", "status", "observed_at"),
        "alerts": rows(
            Alert,
            "device__serial",
            "code",
            "alert_key",
            "episode",
            "severity",
            "first_seen_at",
            "last_seen_at",
            "cleared_at",
        ),
        "jobs": rows(Job, "device__serial", "uuid", "name", "user", "pages", "observed_at"),
    }


def _fleet_batches(size: int = 7) -> list[tuple[str, list[dict[str, Any]]]]:
    fleet = fleet_build(devices=4, seed=3)
    snaps = list(history(fleet, days=3, interval_minutes=120, end=END))
    # Some alerts that come and go, so that clearing depends on order too.
    for i, snap in enumerate(snaps):
        if i % 9 in (1, 2):
            snap.setdefault("alerts", []).append(
                {"code": "door.open", "severity": "warning", "description": f"open {i % 9}"}
            )
        if i % 7 in (3, 4, 5):
            # A collector's alert: its id names the raise, its raised_at moves with each poll.
            snap.setdefault("alerts", []).append(
                {
                    "id": f"1.{i // 7}:8.2:0:8",
                    "code": "input.jam",
                    "severity": "critical",
                    "raised_at": snap["collected_at"],
                }
            )
    chunks = [snaps[i : i + size] for i in range(0, len(snaps), size)]
    return [(str(uuid.uuid4()), chunk) for chunk in chunks]


def test_repeated_and_shuffled_batches_store_the_same_state_as_one_ordered_pass(
    post: Post, collector: Signed, tenant: Any
) -> None:
    batches = _fleet_batches()
    for batch_id, chunk in batches:
        assert post(collector, chunk, batch_id=batch_id).status_code == 202
    ordered = _state()
    assert len(ordered["snapshots"]) == sum(len(c) for _, c in batches)
    assert ordered["alerts"]  # the comparison covers alert episodes
    assert {row[2] for row in ordered["alerts"]} > {""}  # keyed by id, and by raised_at

    # Start over and deliver everything twice, shuffled, with snapshots also re-sent in new
    # batches (a collector that lost its acknowledgement re-batches).
    for model in (TelemetryBatch, Device):
        model.unscoped.all().delete()
    rng = random.Random(7)
    deliveries = batches + batches
    resent = [s for _, chunk in batches for s in chunk]
    rng.shuffle(resent)
    deliveries += [(str(uuid.uuid4()), resent[i : i + 11]) for i in range(0, len(resent), 11)]
    rng.shuffle(deliveries)
    answers: dict[str, list[dict[str, Any]]] = {}
    for batch_id, chunk in deliveries:
        answers.setdefault(batch_id, []).append(post(collector, chunk, batch_id=batch_id).json())

    assert _state() == ordered
    assert all(a == repeats[0] for repeats in answers.values() for a in repeats)
    assert sum(repeats[0]["accepted"] for repeats in answers.values()) == len(ordered["snapshots"])


def test_repeated_batch_gets_the_first_answer_and_changes_nothing(
    post: Post, collector: Signed
) -> None:
    batch_id = str(uuid.uuid4())
    first = post(collector, [snapshot(total=10)], batch_id=batch_id).json()
    before = _state()

    again = post(collector, [snapshot(total=99), snapshot("NEW")], batch_id=batch_id).json()

    assert again == first
    assert _state() == before


def test_snapshot_already_stored_counts_as_duplicate(post: Post, collector: Signed) -> None:
    snap = snapshot()
    post(collector, [snap])
    answer = post(collector, [snap, snap, snapshot("CN0002")]).json()
    assert (answer["accepted"], answer["duplicates"]) == (1, 2)
    assert Snapshot.unscoped.count() == 2


def test_late_snapshot_does_not_overwrite_newer_state(post: Post, collector: Signed) -> None:
    post(collector, [snapshot(at=END, cyan=40, firmware="B", total=2000)])
    post(collector, [snapshot(at=END - timedelta(hours=5), cyan=90, firmware="A", total=1500)])

    state = DeviceState.unscoped.get()
    assert (state.firmware, state.last_seen_at) == ("B", END)
    assert Supply.unscoped.get().level == 40
    assert CounterReading.unscoped.filter(name="impressions.total").count() == 2


def test_alert_is_cleared_by_the_first_later_snapshot_without_it(
    post: Post, collector: Signed
) -> None:
    jam = [{"code": "media.jam", "severity": "critical", "description": "Jam"}]
    post(collector, [snapshot(at=END - timedelta(hours=2), alerts=jam)])
    assert Alert.unscoped.get().cleared_at is None

    post(collector, [snapshot(at=END)])
    post(collector, [snapshot(at=END - timedelta(hours=1))])  # late, but earlier: it clears

    assert Alert.unscoped.get().cleared_at == END - timedelta(hours=1)


def test_job_names_follow_the_customer_privacy_policy(
    post: Post, collector: Signed, tenant: Any
) -> None:
    job = {"uuid": "j1", "type": "print", "name": "Payroll.pdf", "user": "alice"}
    services.telemetry_policy_update(
        ctx=tenant.ctx(), customer_id=tenant.customer.pk, job_names="drop", user_names="hash"
    )
    post(collector, [snapshot(at=END, jobs=[job])])
    stored = Job.unscoped.get()
    assert stored.name == ""
    assert stored.user.startswith("sha256:")
    assert "alice" not in stored.user

    services.telemetry_policy_update(
        ctx=tenant.ctx(), customer_id=tenant.customer.pk, job_names="store", user_names="store"
    )
    post(collector, [snapshot(at=END + timedelta(minutes=1), jobs=[job | {"status": "printed"}])])
    stored = Job.unscoped.get()  # still one row per (device, uuid)
    assert (stored.name, stored.user, stored.status) == ("Payroll.pdf", "alice", "printed")


def test_ingestion_without_broker_loses_nothing_and_followups_run_once_it_is_back(
    post: Post, collector: Signed, tenant: Any, django_capture_on_commit_callbacks: Any
) -> None:
    from portal.celery import app

    tenant.reseller.support_email = "support@alpha.test"
    tenant.reseller.save(update_fields=["support_email"])
    jam = [{"code": "media.jam", "severity": "critical", "description": "Jam"}]
    # A broker nobody listens on, and no eager execution: the task cannot be sent.
    conf: Any = app.conf
    conf.task_always_eager = False
    conf.broker_url = "redis://127.0.0.1:9/0"
    try:
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            response = post(collector, [snapshot(alerts=jam)])
    finally:
        conf.task_always_eager = True
        conf.broker_url = "memory://"

    assert response.status_code == 202
    assert response.json()["accepted"] == 1
    assert len(callbacks) == 1  # the enqueue was attempted, and failed quietly
    batch = TelemetryBatch.unscoped.get()
    assert batch.followup_done_at is None
    assert Alert.unscoped.get().notified_at is None
    assert mail.outbox == []

    # The broker and worker are back: the beat sweep re-derives the lost follow-up.
    with (
        time_machine.travel(datetime.now(tz=UTC) + timedelta(minutes=5)),
        django_capture_on_commit_callbacks(execute=True),
    ):
        assert telemetry_followup_sweep_task.delay().get() == 1
        assert telemetry_followup_sweep_task.delay().get() == 0  # nothing left to do

    batch.refresh_from_db()
    assert batch.followup_done_at is not None
    assert Alert.unscoped.get().notified_at is not None
    assert len(mail.outbox) == 1
    assert "Critical: Jam" in mail.outbox[0].body


def test_offline_sweep_marks_silent_devices_and_a_report_brings_them_back(
    post: Post, collector: Signed
) -> None:
    post(collector, [snapshot(at=END - timedelta(hours=3))])  # poll interval 60: overdue
    post(collector, [snapshot("FRESH", at=END)])

    assert services.devices_offline_sweep() == 1
    assert services.devices_offline_sweep() == 0  # already marked: no second alert

    silent = DeviceState.unscoped.get(device__serial="CN0001")
    assert (silent.is_online, DeviceState.unscoped.get(device__serial="FRESH").is_online) == (
        False,
        True,
    )
    alert = Alert.unscoped.get(code=Alert.OFFLINE_CODE)
    assert alert.cleared_at is None

    post(collector, [snapshot(at=END + timedelta(minutes=5))])
    silent.refresh_from_db()
    alert.refresh_from_db()
    assert silent.is_online
    assert alert.cleared_at is not None


def test_the_sweep_leaves_a_batch_its_grace_then_runs_its_followup(
    post: Post, collector: Signed, settings: Any
) -> None:
    assert post(collector, [snapshot()]).status_code == 202
    # As if the follow-up task had been lost with the broker.
    TelemetryBatch.unscoped.update(followup_done_at=None)
    settings.TELEMETRY_FOLLOWUP_GRACE_SECONDS = 600

    with time_machine.travel(datetime.now(tz=UTC) + timedelta(minutes=5)):
        assert telemetry_followup_sweep_task.delay().get() == 0  # its task may still come
        settings.TELEMETRY_FOLLOWUP_GRACE_SECONDS = 240
        assert telemetry_followup_sweep_task.delay().get() == 1

    assert TelemetryBatch.unscoped.get().followup_done_at is not None
