"""The rows kept for the fleet pages (devices/rollup_services.py), through real signed batches:
pages per device and customer per day, and each device's lowest supply and open alerts. What
ingestion keeps must be what a rebuild from the readings computes, whatever the order batches
arrive in."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import time_machine

from devices import services
from devices.models import Alert, CustomerPageDay, DevicePageDay, DeviceState
from devices.rollup_services import page_days_rebuild
from devices.simulator import rfc3339
from tests.conftest import Tenant
from tests.devices.conftest import Post, Signed, snapshot
from tests.factories import SiteFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def _device_days() -> dict[tuple[str, date], tuple[Decimal, Decimal]]:
    return {
        (row.device.serial, row.day): (row.counter, row.pages)
        for row in DevicePageDay.unscoped.select_related("device")
    }


def _customer_days() -> dict[tuple[int, date], Decimal]:
    """Days with pages (a day whose pages add up to nothing may have no row at all)."""
    return {
        (row.customer_id, row.day): row.pages for row in CustomerPageDay.unscoped.all() if row.pages
    }


def _at(day: int, hour: int) -> datetime:
    return datetime(2026, 3, day, hour, tzinfo=UTC)


@time_machine.travel(NOW, tick=False)
def test_pages_per_day_count_growth_from_the_day_before_and_nothing_for_a_reset(
    post: Post, collector: Signed
) -> None:
    for at, total in [
        (_at(1, 8), 1000),  # the first day: no count before it, nothing counted
        (_at(1, 18), 1100),
        (_at(2, 9), 1250),  # +150 over the day before's last
        (_at(4, 9), 1300),  # +50: nothing on the 3rd, the 2nd's last is the base
        (_at(5, 9), 40),  # a counter reset: nothing, not -1260
        (_at(6, 9), 90),  # +50 from the new base
    ]:
        assert post(collector, [snapshot(at=at, total=total)]).json()["accepted"] == 1

    days = {day.day: pages for (_, day), (_, pages) in _device_days().items()}
    assert days == {1: 0, 2: 150, 4: 50, 5: 0, 6: 50}
    customer = collector.credential.customer_id
    assert _customer_days() == {(customer, date(2026, 3, d)): 50 for d in (4, 6)} | {
        (customer, date(2026, 3, 2)): 150
    }


@time_machine.travel(NOW, tick=False)
def test_a_late_reading_recomputes_the_day_after_it(post: Post, collector: Signed) -> None:
    post(collector, [snapshot(at=_at(2, 9), total=1000), snapshot(at=_at(4, 9), total=1600)])
    assert {d.day: p for (_, d), (_, p) in _device_days().items()} == {2: 0, 4: 600}

    # A reading of the 3rd arrives after the 4th's: the 4th now counts from it.
    post(collector, [snapshot(at=_at(3, 9), total=1400)])

    assert {d.day: p for (_, d), (_, p) in _device_days().items()} == {2: 0, 3: 400, 4: 200}
    assert sorted(_customer_days().values()) == [200, 400]


def _fleet_batches(tenant: Tenant) -> list[list[dict[str, Any]]]:
    """Three printers over six days, some reset, as batches of a few snapshots each."""
    rng = random.Random(7)
    snaps = []
    for serial in ("P-1", "P-2", "P-3"):
        total = rng.randint(1000, 5000)
        for n in range(12):
            total = 30 if (serial == "P-2" and n == 7) else total + rng.randint(0, 300)
            at = _at(1, 6) + timedelta(hours=11 * n + rng.randint(0, 3))
            snaps.append(snapshot(serial, at=at, total=total))
    rng.shuffle(snaps)
    return [snaps[i : i + 5] for i in range(0, len(snaps), 5)]


@time_machine.travel(NOW, tick=False)
@pytest.mark.parametrize("order", ["in order", "shuffled", "reversed"])
def test_what_ingestion_keeps_is_what_a_rebuild_computes_in_any_order(
    post: Post, collector: Signed, tenant: Tenant, order: str
) -> None:
    batches = _fleet_batches(tenant)
    if order == "in order":
        flat = sorted((s for b in batches for s in b), key=lambda s: s["collected_at"])
        batches = [flat[i : i + 5] for i in range(0, len(flat), 5)]
    elif order == "reversed":
        batches = [list(reversed(b)) for b in reversed(batches)]
    for batch in batches:
        assert post(collector, batch).json()["accepted"] == len(batch)
    kept_devices, kept_customers = _device_days(), _customer_days()

    page_days_rebuild()

    assert kept_devices == _device_days()
    assert kept_customers == _customer_days()
    assert len(kept_devices) >= 15
    assert any(pages == 0 for _, pages in kept_devices.values())  # P-2's reset


@time_machine.travel(NOW, tick=False)
def test_pages_stay_with_each_customer(
    post: Post, collector: Signed, tenant: Tenant, foreign_collector: Signed
) -> None:
    other_site = SiteFactory(customer__reseller=tenant.reseller)
    other, other_secret = services.credential_create(
        ctx=tenant.ctx(), kind="collector", site_id=other_site.pk
    )
    post(collector, [snapshot("A-1", at=_at(1, 9), total=100)])
    post(collector, [snapshot("A-1", at=_at(2, 9), total=160)])
    post(
        Signed(other, other_secret),
        [snapshot("B-1", at=_at(1, 9), total=10), snapshot("B-1", at=_at(2, 9), total=35)],
    )
    post(
        foreign_collector,
        [snapshot("F-1", at=_at(1, 9), total=10), snapshot("F-1", at=_at(2, 9), total=99)],
    )

    second = date(2026, 3, 2)
    assert _customer_days()[(collector.credential.customer_id, second)] == 60
    assert _customer_days()[(other.customer_id, second)] == 25
    assert _customer_days()[(foreign_collector.credential.customer_id, second)] == 89


# --- The device list's figures --------------------------------------------------------------


def _figures(serial: str = "CN0001") -> tuple[float | None, int]:
    state = DeviceState.unscoped.get(device__serial=serial)
    return state.lowest_supply_percent, state.open_alert_count


def _alert(code: str, severity: str = "warning") -> dict[str, Any]:
    return {"code": code, "severity": severity, "description": code}


def test_ingestion_keeps_each_devices_lowest_supply_and_open_alerts(
    post: Post, collector: Signed
) -> None:
    base = datetime.now(tz=UTC) - timedelta(hours=3)
    post(collector, [snapshot(at=base, cyan=26, alerts=[_alert("jam"), _alert("door")])])
    assert _figures() == (20.0, 2)

    post(collector, [snapshot(at=base + timedelta(hours=1), cyan=13, alerts=[_alert("jam")])])
    assert _figures() == (10.0, 1)  # the door alert is no longer listed: cleared

    cleared = _alert("jam") | {"cleared_at": rfc3339(base + timedelta(hours=2))}
    post(collector, [snapshot(at=base + timedelta(hours=2), cyan=13, alerts=[cleared])])
    assert _figures() == (10.0, 0)
    assert Alert.unscoped.filter(cleared_at=None).count() == 0

    # An older snapshot arriving late changes neither the level nor the alerts now open.
    post(collector, [snapshot(at=base - timedelta(hours=1), cyan=130, alerts=[_alert("x")])])
    assert _figures() == (10.0, 0)


def test_the_offline_sweep_counts_its_alert_and_the_next_report_clears_it(
    post: Post, collector: Signed
) -> None:
    long_ago = datetime.now(tz=UTC) - timedelta(days=1)
    post(collector, [snapshot(at=long_ago, alerts=[])])

    assert services.devices_offline_sweep() == 1
    assert _figures() == (40.0, 1)
    assert Alert.unscoped.get().code == Alert.OFFLINE_CODE

    post(collector, [snapshot(alerts=[])])
    assert _figures() == (40.0, 0)
