"""Adjustments of final statements, line by line against the finalised statement: a device that
left and rejoined its contract inside one period, late data, reversed lines, and the tax of the
true difference. Through the services and through the portal's adjust button."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
import time_machine
from django.urls import reverse

from billing import services, statement_services
from billing.models import Contract, Statement, StatementLine
from devices.models import Device
from tests.billing.conftest import at, read
from tests.conftest import Tenant
from tests.factories import DeviceFactory

pytestmark = pytest.mark.django_db
SEP = date(2026, 9, 1)
AFTER_SEP = at("2026-10-05")


@pytest.fixture
def rejoined(tenant: Tenant, contract: Contract) -> Device:
    """In the contract 1-9 Sep (it left on the 10th) and again from 20 Sep; readings
    1000/1500/1600/2000 on 1, 9, 20 and 29 Sep."""
    ctx = tenant.ctx()
    device = DeviceFactory(site=tenant.site, serial="SN-R")
    first = services.contract_device_add(
        ctx=ctx, contract_id=contract.pk, device_id=device.pk, joined_on=SEP
    )
    services.contract_device_remove(ctx=ctx, contract_device_id=first.pk, left_on=date(2026, 9, 10))
    services.contract_device_add(
        ctx=ctx, contract_id=contract.pk, device_id=device.pk, joined_on=date(2026, 9, 20)
    )
    for day, value in (("01", 1000), ("09", 1500), ("20", 1600), ("29", 2000)):
        read(device, at(f"2026-09-{day}"), value)
    return device


def finalised(tenant: Tenant, contract: Contract) -> Statement:
    draft = statement_services.statement_compute(
        ctx=tenant.ctx(), contract_id=contract.pk, period_start=SEP
    )
    return statement_services.statement_finalise(ctx=tenant.ctx(), statement_id=draft.pk, by=None)


def lines_of(statement: Statement, device: Device) -> list[tuple]:
    return list(
        StatementLine.unscoped.filter(statement=statement, device=device)
        .order_by("position")
        .values_list("kind", "window_start", "usage", "allowance", "billable", "amount")
    )


@time_machine.travel(AFTER_SEP)
def test_a_rejoined_device_is_billed_once_per_window_sharing_one_allowance(
    tenant, contract, rejoined
):
    statement = finalised(tenant, contract)

    # 9 + 11 of 30 days: fees 3.00 and 3.67; the allowance of 100 pages is prorated to
    # 100 * 20/30 = 66.6667 and shared by both windows, which fill it in date order.
    # Window 1: 1000 -> 1500; window 2: from the last reading before 20 Sep (1500) to 2000.
    assert lines_of(statement, rejoined) == [
        ("fee", SEP, 0, 0, 0, Decimal("3.00")),
        ("usage", SEP, 500, Decimal("66.6667"), Decimal("433.3333"), Decimal("4.33")),
        ("fee", date(2026, 9, 20), 0, 0, 0, Decimal("3.67")),
        ("usage", date(2026, 9, 20), 500, 0, 500, Decimal("5.00")),
    ]
    # Both other printers: a full month's fee each, no readings.
    assert statement.subtotal == Decimal("20.00") + Decimal("16.00")


@time_machine.travel(AFTER_SEP)
def test_adjusting_a_rejoined_device_without_new_data_is_exactly_zero(tenant, contract, rejoined):
    original = finalised(tenant, contract)

    adjustment = statement_services.statement_adjust(ctx=tenant.ctx(), statement_id=original.pk)

    assert list(adjustment.lines.all()) == []
    assert (adjustment.subtotal, adjustment.tax, adjustment.total) == (0, 0, 0)


@time_machine.travel(AFTER_SEP)
def test_the_portal_adjust_button_on_a_rejoined_device_drafts_a_zero_adjustment(
    login, alice, tenant, contract, rejoined
):
    original = finalised(tenant, contract)

    response = login(alice).post(reverse("statement-adjust", kwargs={"statement_id": original.pk}))

    adjustment = Statement.unscoped.get(adjusts=original)
    assert response.status_code == 302
    assert response.url == reverse("statement-detail", kwargs={"statement_id": adjustment.pk})
    assert adjustment.lines.count() == 0
    assert (adjustment.subtotal, adjustment.tax, adjustment.total) == (0, 0, 0)


@time_machine.travel(AFTER_SEP)
def test_late_data_in_the_second_window_adjusts_that_window_only(tenant, contract, rejoined):
    original = finalised(tenant, contract)
    read(rejoined, at("2026-09-30", 20), 2050)  # 50 more pages in window 2, received late

    adjustment = statement_services.statement_adjust(ctx=tenant.ctx(), statement_id=original.pk)

    assert lines_of(adjustment, rejoined) == [
        ("usage", date(2026, 9, 20), 50, 0, 50, Decimal("0.50")),
    ]
    assert adjustment.lines.get().flags == ["adjustment"]
    # Tax is the recomputed statement's tax minus the tax billed: 20% of 36.50 minus 20% of 36.00.
    assert (adjustment.subtotal, adjustment.tax, adjustment.total) == (
        Decimal("0.50"),
        Decimal("0.10"),
        Decimal("0.60"),
    )
    statement_services.statement_finalise(ctx=tenant.ctx(), statement_id=adjustment.pk, by=None)
    again = statement_services.statement_adjust(ctx=tenant.ctx(), statement_id=original.pk)
    assert (again.lines.count(), again.total) == (0, 0)


@time_machine.travel(AFTER_SEP)
def test_a_window_that_is_gone_is_reversed_and_the_tax_follows_the_true_difference(
    tenant, contract, rejoined
):
    original = finalised(tenant, contract)
    second = contract.memberships.get(device=rejoined, joined_on=date(2026, 9, 20))
    # The rejoin was a mistake: the printer left for good on the 20th after all.
    second.delete()

    adjustment = statement_services.statement_adjust(ctx=tenant.ctx(), statement_id=original.pk)

    # Window 1 alone now: 9/30 of the allowance (30 pages), so 470 billable pages at 0.01.
    assert lines_of(adjustment, rejoined) == [
        ("usage", SEP, 0, Decimal("-36.6667"), Decimal("36.6667"), Decimal("0.37")),
        ("fee", date(2026, 9, 20), 0, 0, 0, Decimal("-3.67")),
        ("usage", date(2026, 9, 20), -500, 0, -500, Decimal("-5.00")),
    ]
    recomputed = Decimal("20.00") + Decimal("3.00") + Decimal("4.70")
    assert adjustment.subtotal == recomputed - original.subtotal == Decimal("-8.30")
    # 20% of 27.70 (5.54) minus the 7.20 billed.
    assert (adjustment.tax, adjustment.total) == (Decimal("-1.66"), Decimal("-9.96"))
