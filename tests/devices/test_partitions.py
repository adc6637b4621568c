"""Monthly partitions of batches, snapshots and readings (devices/partitions.py), on PostgreSQL.

Through the public interfaces: the telemetry API, `manage.py partitions`, the beat task, and the
billing and fleet selectors that read the partitioned tables.
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from io import StringIO
from pathlib import Path

import psycopg
import pytest
import time_machine
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.utils.timezone import now
from psycopg.conninfo import make_conninfo

from billing import statement_services
from billing.usage_selectors import Member, usage_growth
from devices.fleet_selectors import device_pages_by_day, device_supply_history
from devices.models import CounterReading, Snapshot, SupplyReading, TelemetryBatch
from devices.partitions import MONTHS_AHEAD, PARTITIONED, month_add, month_start, partition_name
from devices.rollup_services import page_days_rebuild
from devices.tasks import partitions_ensure_task
from orders.supply_services import supplies_evaluate
from portal import rls
from portal.celery import BEAT_SCHEDULE
from portal.tenancy import TenantContext
from tests.conftest import Tenant
from tests.devices.conftest import Post, Signed, snapshot
from tests.factories import (
    CounterReadingFactory,
    DeviceFactory,
    SupplyFactory,
    SupplyReadingFactory,
    billing_for_isolation,
)

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

TABLES = ["devices_counterreading", "devices_supplyreading", "devices_snapshot"]
THIS_MONTH = month_start(now())


def _midmonth(month: date) -> datetime:
    return datetime(month.year, month.month, 15, 12, tzinfo=UTC)


def _partitions(*args: str) -> str:
    """`manage.py partitions ...` as an operator runs it; its output."""
    out = StringIO()
    try:
        call_command("partitions", *args, stdout=out)
    finally:
        _test_scope_again()
    return out.getvalue()


def _test_scope_again() -> None:
    # The command works on a connection of the owner and closes it; the test's next connection
    # starts without the system scope that tests/conftest.py gave the test's code.
    if rls.enabled():
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config(%s, %s, false)", [rls.SCOPE, rls.SYSTEM])


def _where(table: str, pk: int) -> str:
    """The partition that holds row `pk` of `table`."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT tableoid::regclass::text FROM {table} WHERE id = %s", [pk])  # noqa: S608
        row = cursor.fetchone()
    assert row is not None, f"{table} has no row {pk}"
    return str(row[0])


def _relation(name: str) -> str | None:
    """'attached', 'detached' or None (no such table)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT relispartition FROM pg_class WHERE oid = to_regclass(%s)", [name])
        row = cursor.fetchone()
    return None if row is None else ("attached" if row[0] else "detached")


@pytest.fixture(autouse=True)
def _partitions_as_migrated() -> Iterator[None]:
    """Partitions outlive the flush between tests: drop the month tables a test added or
    detached, so that the next test starts with those of a fresh migrate."""
    yield
    fresh = {
        partition_name(table, month_add(THIS_MONTH, n))
        for table in PARTITIONED
        for n in range(MONTHS_AHEAD + 1)
    }
    with rls.owner(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname FROM pg_class WHERE relkind = 'r' "
            "AND relname ~ '^devices_[a-z]+_p[0-9]{6}$' AND NOT (relname = ANY(%s))",
            [sorted(fresh)],
        )
        for (name,) in cursor.fetchall():
            cursor.execute(f'DROP TABLE "{name}"')


# --- Routing ------------------------------------------------------------------------------------


def test_rows_go_to_the_partition_of_their_month(post: Post, collector: Signed) -> None:
    moment = _midmonth(THIS_MONTH)
    with time_machine.travel(moment):
        response = post(collector, [snapshot("CN-ROUTE", at=moment - timedelta(minutes=5))])
    assert response.status_code == 202, response.content
    assert response.json()["accepted"] == 1
    suffix = f"_p{THIS_MONTH:%Y%m}"
    batch = TelemetryBatch.unscoped.get()
    assert _where("devices_telemetrybatch", batch.pk) == "devices_telemetrybatch" + suffix
    assert _where("devices_snapshot", Snapshot.unscoped.get().pk) == "devices_snapshot" + suffix
    readings = CounterReading.unscoped.values_list("pk", flat=True)
    assert len(readings) == 3
    assert {_where("devices_counterreading", pk) for pk in readings} == {
        "devices_counterreading" + suffix
    }
    supply = SupplyReading.unscoped.get()
    assert _where("devices_supplyreading", supply.pk) == "devices_supplyreading" + suffix


def test_a_month_without_partition_lands_in_default_and_ensure_moves_it(
    post: Post, collector: Signed, tenant: Tenant
) -> None:
    # A printer whose clock is three years behind reports through the API; a reading dated far
    # ahead is written directly. Neither month has a partition, and neither row is refused.
    old_month = month_add(THIS_MONTH, -36)
    response = post(collector, [snapshot("CN-OLDCLOCK", at=_midmonth(old_month))])
    assert response.status_code == 202, response.content
    assert response.json()["accepted"] == 1
    old_snapshot = Snapshot.unscoped.get()
    old_readings = list(CounterReading.unscoped.values_list("pk", "value"))
    future = CounterReadingFactory(
        device=DeviceFactory(site=tenant.site), collected_at=datetime(2040, 5, 3, tzinfo=UTC)
    )
    for pk, _ in old_readings:
        assert _where("devices_counterreading", pk) == "devices_counterreading_default"
    assert _where("devices_snapshot", old_snapshot.pk) == "devices_snapshot_default"
    assert _where("devices_counterreading", future.pk) == "devices_counterreading_default"

    out = _partitions("ensure")

    old = f"_p{old_month:%Y%m}"
    assert out.splitlines() == [
        f"added devices_counterreading{old}",
        "added devices_counterreading_p204005",
        f"added devices_supplyreading{old}",
        f"added devices_snapshot{old}",
        "4 partition(s) added.",
    ]
    for pk, _ in old_readings:
        assert _where("devices_counterreading", pk) == f"devices_counterreading{old}"
    assert _where("devices_snapshot", old_snapshot.pk) == f"devices_snapshot{old}"
    assert _where("devices_counterreading", future.pk) == "devices_counterreading_p204005"
    # Same rows, same ids, read through the table as before.
    assert sorted(CounterReading.unscoped.exclude(pk=future.pk).values_list("pk", "value")) == (
        sorted(old_readings)
    )
    with connection.cursor() as cursor:
        for table in ["devices_counterreading", "devices_supplyreading", "devices_snapshot"]:
            cursor.execute(f"SELECT count(*) FROM {table}_default")  # noqa: S608
            assert cursor.fetchone() == (0,)


def test_ensure_twice_adds_nothing_the_second_time(tenant: Tenant) -> None:
    CounterReadingFactory(
        device=DeviceFactory(site=tenant.site), collected_at=_midmonth(month_add(THIS_MONTH, -5))
    )
    assert _partitions("ensure").splitlines()[-1] == "1 partition(s) added."
    listed = _partitions("list", "--exact")

    assert _partitions("ensure").splitlines() == ["0 partition(s) added."]
    assert partitions_ensure_task.delay().get() == 0
    _test_scope_again()
    assert _partitions("list", "--exact") == listed


def test_list_shows_each_partition_with_its_rows(tenant: Tenant) -> None:
    device = DeviceFactory(site=tenant.site)
    CounterReadingFactory.create_batch(
        3, device=device, collected_at=_midmonth(THIS_MONTH) - timedelta(days=1)
    )

    lines = _partitions("list", "--exact").splitlines()

    by_name = {line.split()[0]: line.split() for line in lines[1:]}
    month = f"{THIS_MONTH:%Y-%m}"
    assert by_name[f"devices_counterreading_p{THIS_MONTH:%Y%m}"][1:3] == [month, "3"]
    assert by_name["devices_counterreading_default"][1:3] == ["DEFAULT", "0"]
    last = month_add(THIS_MONTH, 3)
    assert by_name[f"devices_telemetrybatch_p{last:%Y%m}"][1:3] == [f"{last:%Y-%m}", "0"]


def test_the_beat_runs_ensure_daily() -> None:
    entry = next(e for e in BEAT_SCHEDULE.values() if "partitions" in str(e["task"]))
    assert entry["task"] == "devices.tasks.partitions_ensure_task"


# --- Ingestion ----------------------------------------------------------------------------------


def test_a_batch_sent_again_next_month_is_still_a_duplicate(post: Post, collector: Signed) -> None:
    # The first delivery is stored in the last minute of a month, its retry arrives in the
    # first minute of the next: two partitions of the batch table, one batch.
    end = datetime(*month_add(THIS_MONTH, 1).timetuple()[:3], tzinfo=UTC)
    snapshots = [
        snapshot("CN-RETRY", at=end - timedelta(minutes=30), total=1000),
        snapshot("CN-RETRY", at=end - timedelta(minutes=20), total=1010),
    ]
    batch_id = str(uuid.uuid4())
    with time_machine.travel(end - timedelta(minutes=1)):
        first = post(collector, snapshots, batch_id=batch_id)
    with time_machine.travel(end + timedelta(minutes=1)):
        again = post(collector, snapshots, batch_id=batch_id)
        # The same snapshots in a new batch: duplicates, found in their own month's partition.
        mixed = post(collector, [*snapshots, snapshot("CN-RETRY", at=end, total=1020)])

    assert first.status_code == again.status_code == mixed.status_code == 202
    assert first.json() == again.json()
    assert first.json()["accepted"] == 2
    assert (mixed.json()["accepted"], mixed.json()["duplicates"]) == (1, 2)
    stored = TelemetryBatch.unscoped.get(batch_id=batch_id)
    assert _where("devices_telemetrybatch", stored.pk).endswith(f"_p{THIS_MONTH:%Y%m}")
    assert TelemetryBatch.unscoped.count() == 2
    assert Snapshot.unscoped.count() == 3
    assert CounterReading.unscoped.filter(name="impressions.total").count() == 3


# --- Readers across partitions ------------------------------------------------------------------


def test_billing_usage_reads_across_month_partitions(tenant: Tenant) -> None:
    device = DeviceFactory(site=tenant.site)
    two_ago, last = month_add(THIS_MONTH, -2), month_add(THIS_MONTH, -1)
    ws = datetime(last.year, last.month, 1, tzinfo=UTC)
    we = datetime(THIS_MONTH.year, THIS_MONTH.month, 1, tzinfo=UTC)
    for at, value in [
        (ws - timedelta(days=2), 1000),  # the base, in the month before
        (_midmonth(last), 1400),
        (we - timedelta(hours=1), 1900),  # the last reading of the period
        (we + timedelta(hours=1), 2500),  # after it: not counted
    ]:
        CounterReadingFactory(device=device, collected_at=at, value=value)
    _partitions("ensure")  # the months before this one get their partitions
    partitions = {
        _where("devices_counterreading", pk)
        for pk in CounterReading.unscoped.values_list("pk", flat=True)
    }
    assert partitions == {f"devices_counterreading_p{m:%Y%m}" for m in (two_ago, last, THIS_MONTH)}

    growth = usage_growth([Member(key=1, device_id=device.pk, ws=ws, we=we)])

    usage = growth[(1, ("impressions.total", "", ""))]
    assert (usage.start_value, usage.end_value, usage.measured) == (
        Decimal(1000),
        Decimal(1900),
        Decimal(900),
    )
    assert usage.has_base


def test_fleet_charts_are_folded_from_readings_across_month_partitions(tenant: Tenant) -> None:
    device = DeviceFactory(site=tenant.site)
    supply = SupplyFactory(device=device, supply_key="toner-black", percent=84.0)
    moment = datetime(THIS_MONTH.year, THIS_MONTH.month, 3, 12, tzinfo=UTC)
    start = moment - timedelta(days=6)  # in the month before
    for day in range(7):
        at = start + timedelta(days=day)
        CounterReadingFactory(device=device, collected_at=at, value=1000 + 100 * day)
        SupplyReadingFactory(device=device, collected_at=at, percent=90.0 - day)
    _partitions("ensure")
    ctx = tenant.ctx()

    with time_machine.travel(moment + timedelta(hours=1), tick=False):
        page_days_rebuild()
        supplies_evaluate(device_ids=[device.pk])
        pages = device_pages_by_day(ctx=ctx, device_id=device.pk, days=5)
        history = device_supply_history(ctx=ctx, device_id=device.pk, since=start.date())

    # Each day from its midnight to the next: the noon reading of that day minus the one before.
    assert [pages[moment.date() - timedelta(days=n)] for n in (3, 2, 1)] == [100, 100, 100]
    assert [p for _, p in history[supply.pk]] == [90.0 - day for day in range(7)]
    assert month_start(start) != THIS_MONTH


# --- Detaching and archiving ---------------------------------------------------------------------


def _old_month_reported(post: Post, collector: Signed, month: date) -> list[int]:
    response = post(
        collector,
        [snapshot("CN-ARCHIVE", at=_midmonth(month) + timedelta(hours=h)) for h in range(2)],
    )
    assert response.json()["accepted"] == 2
    _partitions("ensure")
    return sorted(CounterReading.unscoped.values_list("pk", flat=True))


def _restored_ids(archive: Path, table: str) -> list[int]:
    """pg_restore the archive into a scratch database, as docs/operations.md says; its ids."""
    settings = connection.settings_dict
    scratch = f"{settings['NAME']}_archive"
    owner = {
        "host": settings["HOST"] or None,
        "port": settings["PORT"] or None,
        "user": settings["USER"] or None,
        "password": settings["PASSWORD"] or None,
    }
    with psycopg.connect(dbname="postgres", autocommit=True, **owner) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{scratch}"')
        admin.execute(f'CREATE DATABASE "{scratch}"')
        try:
            subprocess.run(  # noqa: S603
                [  # noqa: S607
                    "pg_restore",
                    "--no-owner",
                    "--exit-on-error",
                    f"--dbname={make_conninfo(dbname=scratch, **owner)}",
                    str(archive),
                ],
                check=True,
                capture_output=True,
            )
            with psycopg.connect(dbname=scratch, **owner) as restored:
                rows = restored.execute(f"SELECT id FROM {table} ORDER BY id").fetchall()  # noqa: S608
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)')
    return [row[0] for row in rows]


def test_detach_takes_a_month_out_and_its_archive_restores(
    post: Post, collector: Signed, tmp_path: Path
) -> None:
    old = month_add(THIS_MONTH, -14)
    old_ids = _old_month_reported(post, collector, old)
    assert len(old_ids) == 6
    recent = post(collector, [snapshot("CN-ARCHIVE")])
    assert recent.json()["accepted"] == 1

    out = _partitions(
        "detach", "--before", f"{month_add(old, 1):%Y-%m}", "--archive-dir", str(tmp_path)
    )

    archive = tmp_path / f"inkmeter-{old:%Y-%m}.dump"
    assert out.splitlines() == [
        f"detached devices_counterreading_p{old:%Y%m}",
        f"detached devices_supplyreading_p{old:%Y%m}",
        f"detached devices_snapshot_p{old:%Y%m}",
        f"archived {archive}",
    ]
    # Gone from every query, and from the database; the recent month is untouched.
    assert CounterReading.unscoped.filter(pk__in=old_ids).count() == 0
    assert CounterReading.unscoped.count() == 3
    assert Snapshot.unscoped.count() == 1
    for table in TABLES:
        assert _relation(f"{table}_p{old:%Y%m}") is None
    assert _restored_ids(archive, f"devices_counterreading_p{old:%Y%m}") == old_ids


def test_detach_without_archive_leaves_the_month_for_the_operator(
    post: Post, collector: Signed, tmp_path: Path
) -> None:
    old = month_add(THIS_MONTH, -14)
    old_ids = _old_month_reported(post, collector, old)
    before = f"{month_add(old, 1):%Y-%m}"

    out = _partitions("detach", "--before", before)

    assert out.splitlines()[-1].startswith("3 detached table(s) left in the database: ")
    assert CounterReading.unscoped.filter(pk__in=old_ids).count() == 0
    name = f"devices_counterreading_p{old:%Y%m}"
    assert _relation(name) == "detached"
    assert f"{name:<40}" in _partitions("list").split("(detached)")[0]
    # A reading of the detached month arriving late waits in DEFAULT, refused by nobody.
    late = post(collector, [snapshot("CN-ARCHIVE", at=_midmonth(old) + timedelta(hours=5))])
    assert late.json()["accepted"] == 1
    assert _partitions("ensure").splitlines() == ["0 partition(s) added."]

    out = _partitions("detach", "--before", before, "--archive-dir", str(tmp_path))

    assert out.splitlines() == [f"archived {tmp_path / f'inkmeter-{old:%Y-%m}.dump'}"]
    assert _relation(name) is None
    assert _restored_ids(tmp_path / f"inkmeter-{old:%Y-%m}.dump", name) == old_ids


def test_detach_is_refused_for_a_month_a_draft_statement_still_reads(tenant: Tenant) -> None:
    billed = billing_for_isolation(
        reseller=tenant.reseller, customer=tenant.customer, site=tenant.site
    )
    statement = billed["statement"]
    assert (statement.status, statement.period_start) == ("draft", date(2025, 3, 1))
    device = billed["contract_device"].device
    reading = CounterReadingFactory(device=device, collected_at=datetime(2025, 2, 10, tzinfo=UTC))
    _partitions("ensure")
    listed = _partitions("list", "--exact")

    with pytest.raises(CommandError) as refused:
        _partitions("detach", "--before", "2025-03")

    assert str(refused.value) == (
        "Refusing to detach the months before 2025-03: billing still reads readings from "
        "2025-01-30 on (the draft statement of contract ZZALPHA-CONTRACT for 2025-03-01 to "
        "2025-03-31, with its 30-day lookback). Finalise the statement first, or detach only "
        "the months before 2025-01."
    )
    assert _partitions("list", "--exact") == listed
    assert CounterReading.unscoped.filter(pk=reading.pk).exists()

    # Once final, the statement no longer holds the month back.
    ctx = TenantContext.system(reseller=tenant.reseller)
    statement_services.statement_finalise(ctx=ctx, statement_id=statement.pk, by=None)
    out = _partitions("detach", "--before", "2025-03")
    assert out.splitlines()[0] == "detached devices_counterreading_p202502"
    assert not CounterReading.unscoped.filter(pk=reading.pk).exists()


def test_detach_is_refused_for_the_current_month(tenant: Tenant) -> None:
    with pytest.raises(CommandError, match=f"Refusing to detach {THIS_MONTH:%Y-%m} or later"):
        _partitions("detach", "--before", f"{month_add(THIS_MONTH, 1):%Y-%m}")
    assert _relation(f"devices_counterreading_p{THIS_MONTH:%Y%m}") == "attached"


def test_detach_takes_a_month_as_yyyy_mm() -> None:
    with pytest.raises(CommandError, match="--before takes a month as YYYY-MM, not '2025-3-1'"):
        _partitions("detach", "--before", "2025-3-1")
