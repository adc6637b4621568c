"""The evaluation is incremental and coalesced (issue 12): a supply's line is fitted again only
when its daily series moved, a run costs the same queries for 2 supplies or 20, and the asks
of many batches for one customer send one task."""

from __future__ import annotations

from datetime import timedelta
from unittest import mock

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils.timezone import now

from orders import supply_services
from orders.models import SupplyEvaluationClaim, SupplyForecast, SupplyLevelDay
from orders.tasks import supplies_evaluate_pending_task
from tests.factories import DeviceFactory, SupplyFactory, SupplyReadingFactory
from tests.orders.conftest import daily

pytestmark = pytest.mark.django_db


def forecast_of(supply) -> SupplyForecast:
    return SupplyForecast.unscoped.get(supply=supply)


def test_a_reading_at_the_same_level_on_the_same_day_does_not_fit_the_line_again(
    supply, product, report
):
    end = now().replace(hour=8, minute=0, second=0, microsecond=0)
    report(*daily(80, 2, 10, end=end))  # 62 % at 08:00, 2 % a day
    supply_services.supplies_evaluate(device_ids=[supply.device_id])
    first = forecast_of(supply)
    assert (first.method, first.fitted_at, first.fitted_percent) == ("theil_sen", end, 62.0)
    assert first.days_to_empty == pytest.approx(31.0, abs=0.01)

    report((end + timedelta(hours=12), 62.0))  # same level, same day, 12 hours on
    supply_services.supplies_evaluate(device_ids=[supply.device_id])

    again = forecast_of(supply)
    assert (again.fitted_at, again.empties_at, again.slope_per_day) == (
        first.fitted_at,
        first.empties_at,
        first.slope_per_day,
    )
    # Counted down from the same line, from the newest reading.
    assert again.days_to_empty == pytest.approx(30.5, abs=0.01)
    assert again.evaluated_observed_at == end + timedelta(hours=12)
    assert again.folded_until == end + timedelta(hours=12)
    assert SupplyLevelDay.unscoped.filter(supply=supply).count() == 10


def test_a_level_that_moved_a_point_or_a_new_day_fits_the_line_again(supply, product, report):
    end = now().replace(hour=8, minute=0, second=0, microsecond=0) - timedelta(days=2)
    report(*daily(80, 2, 10, end=end))
    supply_services.supplies_evaluate(device_ids=[supply.device_id])

    report((end + timedelta(hours=2), 61.5))  # half a point: not yet
    supply_services.supplies_evaluate(device_ids=[supply.device_id])
    assert forecast_of(supply).fitted_at == end

    report((end + timedelta(hours=4), 61.0))  # a point since the fit
    supply_services.supplies_evaluate(device_ids=[supply.device_id])
    moved = forecast_of(supply)
    assert (moved.fitted_at, moved.fitted_percent) == (end + timedelta(hours=4), 61.0)
    day = SupplyLevelDay.unscoped.get(supply=supply, day=end.date())
    assert (day.percent, day.at) == (61.0, end + timedelta(hours=4))

    next_day = end + timedelta(days=1)
    report((next_day, 61.0))  # no move, but a new day of the series
    supply_services.supplies_evaluate(device_ids=[supply.device_id])
    assert forecast_of(supply).fitted_at == next_day


def test_the_incremental_forecast_equals_one_evaluation_of_the_whole_history(
    tenant, product, report, supply
):
    start = now() - timedelta(days=20)
    hourly = [(start + timedelta(hours=i), 90 - 0.05 * i) for i in range(400)]
    twin = SupplyFactory(
        device=DeviceFactory(site=tenant.site, model=supply.device.model),
        supply_key=supply.supply_key,
        part_number=supply.part_number,
        color="black",
    )
    for at, percent in hourly:
        SupplyReadingFactory(
            device=twin.device, supply_key=twin.supply_key, collected_at=at, percent=percent
        )
    twin.percent, twin.observed_at = hourly[-1][1], hourly[-1][0]
    twin.save()
    for part in range(0, 400, 50):  # the same readings, a run after each fifty of them
        report(*hourly[part : part + 50])
        supply_services.supplies_evaluate(device_ids=[supply.device_id])
    supply_services.supplies_evaluate(device_ids=[twin.device_id])

    fields = ("method", "days_to_empty", "slope_per_day", "empties_at", "readings_used")
    stepwise = SupplyForecast.unscoped.values(*fields).get(supply=supply)
    at_once = SupplyForecast.unscoped.values(*fields).get(supply=twin)
    assert stepwise == at_once
    assert stepwise["slope_per_day"] == pytest.approx(-1.2)


def _fleet(tenant, devices: int, supplies: int):
    moment = now()
    made = []
    for _ in range(devices):
        device = DeviceFactory(site=tenant.site)
        for n in range(supplies):
            supply = SupplyFactory(device=device, supply_key=f"toner-{n}", observed_at=moment)
            for day in range(3):
                SupplyReadingFactory(
                    device=device,
                    supply_key=supply.supply_key,
                    collected_at=moment - timedelta(days=2 - day),
                    percent=70.0 - day,
                )
            made.append(supply)
    return made


def _queries_of_a_run(device_ids) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert supply_services.supplies_evaluate(device_ids=device_ids) > 0
    return len(queries)


def _next_reading(supplies) -> None:
    moment = now() + timedelta(hours=1)
    for supply in supplies:
        SupplyReadingFactory(
            device=supply.device, supply_key=supply.supply_key, collected_at=moment, percent=60.0
        )
    SupplyForecast.unscoped.update(evaluated_observed_at=moment - timedelta(days=9))
    for supply in supplies:
        supply.observed_at = moment
        supply.save(update_fields=["observed_at"])


def test_a_run_costs_the_same_queries_for_eight_supplies_or_thirty(tenant, product):
    # From eight rows on, PostgreSQL writes go through COPY (devices/writer.py): both sizes do.
    small = _fleet(tenant, 2, 4)
    first_small = _queries_of_a_run([s.device_id for s in small])
    _next_reading(small)
    next_small = _queries_of_a_run([s.device_id for s in small])

    big = _fleet(tenant, 6, 5)
    first_big = _queries_of_a_run([s.device_id for s in big])
    _next_reading(big)
    next_big = _queries_of_a_run([s.device_id for s in big])

    assert SupplyForecast.unscoped.filter(method="theil_sen").count() == 38
    assert (first_big, next_big) == (first_small, next_small)


def test_the_asks_of_many_batches_send_one_task_and_one_run_takes_them_all(
    tenant, supply, report, django_capture_on_commit_callbacks
):
    report(*daily(80, 2, 3))
    sent = []
    with mock.patch.object(
        supplies_evaluate_pending_task, "apply_async", side_effect=lambda **kw: sent.append(kw)
    ):
        for _ in range(5):  # five batches of the customer, each in its follow-up's transaction
            with django_capture_on_commit_callbacks(execute=True):
                supply_services.supplies_evaluate_request(
                    reseller_id=tenant.reseller.pk, customer_id=tenant.customer.pk
                )

    assert [kw["kwargs"] for kw in sent] == [{"customer_id": tenant.customer.pk}]
    assert supplies_evaluate_pending_task.run(customer_id=tenant.customer.pk) == 1
    assert supplies_evaluate_pending_task.run(customer_id=tenant.customer.pk) == 0
    claim = SupplyEvaluationClaim.unscoped.get(customer=tenant.customer)
    assert (claim.requested_at, claim.enqueued_at, claim.claimed_until) == (None, None, None)


def test_an_ask_during_a_run_is_sent_by_the_run_when_it_lets_go(
    tenant, supply, report, django_capture_on_commit_callbacks
):
    report(*daily(80, 2, 3))
    sent = []
    real_evaluate = supply_services._evaluate

    def evaluate_while_a_batch_asks(*args, **kwargs):
        supply_services.supplies_evaluate_request(
            reseller_id=tenant.reseller.pk, customer_id=tenant.customer.pk
        )
        return real_evaluate(*args, **kwargs)

    with mock.patch.object(
        supplies_evaluate_pending_task, "apply_async", side_effect=lambda **kw: sent.append(kw)
    ):
        with django_capture_on_commit_callbacks(execute=True):
            supply_services.supplies_evaluate_request(
                reseller_id=tenant.reseller.pk, customer_id=tenant.customer.pk
            )
        assert len(sent) == 1
        with (
            mock.patch.object(supply_services, "_evaluate", evaluate_while_a_batch_asks),
            django_capture_on_commit_callbacks(execute=True),
        ):
            assert supplies_evaluate_pending_task.run(customer_id=tenant.customer.pk) == 1

    assert len(sent) == 2  # the ask made during the run, sent as it ended
    claim = SupplyEvaluationClaim.unscoped.get(customer=tenant.customer)
    assert claim.requested_at is not None
    assert claim.claimed_until is None


def test_the_sweep_takes_a_lost_ask_after_the_grace_and_leaves_a_fresh_one_to_its_task(
    tenant, supply, report, settings
):
    settings.TELEMETRY_FOLLOWUP_GRACE_SECONDS = 120
    report(*daily(80, 2, 3))
    with mock.patch.object(supplies_evaluate_pending_task, "apply_async"):  # the task is lost
        supply_services.supplies_evaluate_request(
            reseller_id=tenant.reseller.pk, customer_id=tenant.customer.pk
        )

    assert supply_services.supplies_evaluate_sweep() == 0  # its task may still come
    with time_machine.travel(now() + timedelta(seconds=121)):
        assert supply_services.supplies_evaluate_sweep() == 1
        assert supply_services.supplies_evaluate_sweep() == 0

    assert forecast_of(supply).evaluated_observed_at == supply.observed_at
    assert SupplyEvaluationClaim.unscoped.get(customer=tenant.customer).requested_at is None


def test_a_run_that_finds_the_customer_claimed_does_nothing(tenant, supply, report):
    report(*daily(80, 2, 3))
    SupplyEvaluationClaim.unscoped.create(
        reseller=tenant.reseller,
        customer=tenant.customer,
        requested_at=now(),
        claimed_until=now() + timedelta(minutes=5),
    )

    assert supplies_evaluate_pending_task.run(customer_id=tenant.customer.pk) == 0
    assert supply_services.supplies_evaluate_sweep() == 0
    assert not SupplyForecast.unscoped.exists()
    with time_machine.travel(now() + timedelta(minutes=6)):  # the holder died: its lease ran out
        assert supplies_evaluate_pending_task.run(customer_id=tenant.customer.pk) == 1
