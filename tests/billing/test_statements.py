"""Statement computation through the services: carry-in, resets, corrections, missing data,
late readings, prorated fees, minimums, versions, finalise, immutability and adjustments."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import pytest
import time_machine
from django.db import IntegrityError, connection, transaction

from billing import services, statement_services
from billing.models import (
    Contract,
    CounterCorrection,
    PricePlan,
    Statement,
    StatementFinalError,
    StatementLine,
)
from devices.models import Device
from portal import rls
from portal.errors import ConflictError, PermissionDeniedError
from portal.tenancy import Role
from tests.billing.conftest import at, read, simple_terms
from tests.conftest import Tenant
from tests.factories import DeviceFactory

pytestmark = pytest.mark.django_db
FEB = date(2026, 2, 1)


def compute(tenant: Tenant, contract: Contract, day: date = FEB) -> Statement:
    return statement_services.statement_compute(
        ctx=tenant.ctx(), contract_id=contract.pk, period_start=day
    )


def usage_line(statement: Statement, device: Device, counter: str = "impressions.mono"):
    return StatementLine.unscoped.get(statement=statement, device=device, counter=counter)


def fee_line(statement: Statement, device: Device) -> StatementLine:
    return StatementLine.unscoped.get(statement=statement, device=device, kind="fee")


def received_batch(tenant: Tenant, device: Device, collected_at: datetime) -> None:
    """A telemetry batch received now with one snapshot of `device` collected then."""
    import uuid

    from devices import services as device_services
    from devices.models import Snapshot, TelemetryBatch

    credential, _ = device_services.credential_create(
        ctx=tenant.ctx(), kind="collector", name=f"Collector {uuid.uuid4()}", site_id=tenant.site.pk
    )
    batch = TelemetryBatch.unscoped.create(
        reseller=tenant.reseller,
        customer=tenant.customer,
        credential=credential,
        batch_id=uuid.uuid4(),
        body=b"{}",
        snapshot_count=1,
        answer={},
    )
    Snapshot.unscoped.create(
        reseller=tenant.reseller,
        device=device,
        batch=batch,
        snapshot_id=uuid.uuid4(),
        collected_at=collected_at,
    )


def test_usage_is_growth_from_the_last_reading_before_the_period(tenant, contract, printers):
    a, b = printers
    read(a, at("2026-01-20"), 900)
    read(a, at("2026-01-31", 23), 1000)  # carry-in: the last reading at or before 1 Feb
    read(a, at("2026-02-14"), 1400)
    read(a, at("2026-03-01", 0), 1800)  # exactly at the boundary: ends February
    read(a, at("2026-03-02"), 5000)  # after the period: ignored
    read(b, at("2026-02-03"), 50)
    read(b, at("2026-02-25"), 650)

    statement = compute(tenant, contract)

    line = usage_line(statement, a)
    assert (line.start_value, line.end_value) == (Decimal(1000), Decimal(1800))
    assert (line.start_at, line.end_at) == (at("2026-01-31", 23), at("2026-03-01", 0))
    assert (line.usage, line.allowance, line.billable) == (Decimal(800), Decimal(100), Decimal(700))
    assert line.amount == Decimal("7.00")
    assert line.flags == []
    first = usage_line(statement, b)  # no reading before the period: the first one is the base
    assert (first.usage, first.billable, first.amount) == (
        Decimal(600),
        Decimal(500),
        Decimal("5.00"),
    )
    assert first.flags == ["first_reading_in_window"]
    # 2 fees of 10.00 + 7.00 + 5.00, tax 20 %
    assert (statement.subtotal, statement.tax, statement.total) == (
        Decimal("32.00"),
        Decimal("6.40"),
        Decimal("38.40"),
    )
    assert statement.plan_version.number == 1


def test_a_reset_never_makes_usage_negative_and_is_flagged(tenant, contract, printers):
    a, _ = printers
    read(a, at("2026-01-31"), 10_000)
    read(a, at("2026-02-10"), 10_400)
    read(a, at("2026-02-11"), 30)  # board swapped without a correction: a reset
    read(a, at("2026-02-27"), 330)

    line = usage_line(compute(tenant, contract), a)

    assert line.usage == Decimal(400 + 300)
    assert "reset" in line.flags
    assert compute(tenant, contract).flag_count >= 1


def test_a_recorded_board_swap_continues_from_the_new_base_without_a_reset_flag(
    tenant, contract, printers
):
    a, _ = printers
    read(a, at("2026-01-31"), 10_000)
    read(a, at("2026-02-10"), 10_400)
    read(a, at("2026-02-20"), 120_050)  # the replacement board came with 120,000 on it
    read(a, at("2026-02-27"), 120_300)
    services.correction_create(
        ctx=tenant.ctx(),
        device_id=a.pk,
        counter="impressions.mono",
        kind=CounterCorrection.Kind.BOARD_SWAP,
        effective_at=at("2026-02-15"),
        old_value=Decimal(10_600),
        value=Decimal(120_000),
        note="Formatter board replaced by the technician",
    )

    line = usage_line(compute(tenant, contract), a)

    # 10,000 -> 10,600 on the old board, then 120,000 -> 120,300 on the new one.
    assert line.usage == Decimal(900)
    assert line.flags == ["board_swap"]
    correction = CounterCorrection.unscoped.get(device=a)
    assert correction.entered_by_email == tenant.admin.user.email


def test_a_manual_meter_read_fills_a_gap(tenant, contract, printers):
    a, _ = printers
    read(a, at("2026-01-31"), 2000)
    services.correction_create(
        ctx=tenant.ctx(),
        device_id=a.pk,
        counter="impressions.mono",
        kind=CounterCorrection.Kind.METER_READ,
        effective_at=at("2026-02-28", 16),
        value=Decimal(2750),
        note="Read on site from the front panel",
    )

    line = usage_line(compute(tenant, contract), a)

    assert (line.usage, line.end_value, line.flags) == (Decimal(750), Decimal(2750), [])


def test_missing_readings_are_estimated_then_offset_when_readings_resume(
    tenant, contract, printers
):
    a, _ = printers
    # The 30 days before February: 600 pages in 21 days between two readings.
    read(a, at("2026-01-11", 0), 1000)
    read(a, at("2026-02-01", 0), 1600)
    # Nothing in February: 600 / 21 days * 28 days.
    feb = compute(tenant, contract)
    line = usage_line(feb, a)
    assert line.flags == ["no_readings", "estimated"]
    assert line.usage == Decimal(800)
    assert line.estimate_outstanding == Decimal(800)
    assert line.measured == 0

    # Readings resume in March: the estimate is paid off before anything is billed again.
    read(a, at("2026-03-20"), 2600)
    march = compute(tenant, contract, date(2026, 3, 1))
    resumed = usage_line(march, a)
    assert resumed.measured == Decimal(1000)
    assert resumed.usage == Decimal(200)
    assert resumed.estimate_outstanding == 0
    assert resumed.flags == ["estimate_offset"]


def test_the_carry_rule_bills_missing_usage_in_the_period_readings_resume(
    tenant, contract, printers
):
    services.contract_update(
        ctx=tenant.ctx(), contract_id=contract.pk, missing_data=Contract.MissingData.CARRY
    )
    a, _ = printers
    read(a, at("2026-01-20"), 1000)
    line = usage_line(compute(tenant, contract), a)
    assert (line.usage, line.amount) == (Decimal(0), Decimal("0.00"))
    assert line.flags == ["no_readings", "carried_forward"]

    read(a, at("2026-03-10"), 1900)
    march = usage_line(compute(tenant, contract, date(2026, 3, 1)), a)
    assert (march.usage, march.start_value, march.flags) == (Decimal(900), Decimal(1000), [])


def test_a_device_without_any_reading_is_flagged_on_its_fee_line(tenant, contract, printers):
    statement = compute(tenant, contract)

    assert fee_line(statement, printers[0]).flags == ["no_readings"]
    assert statement.flag_count == 2


def test_late_readings_make_the_sweep_recompute_the_draft(tenant, contract, printers):
    a, _ = printers
    read(a, at("2026-01-31"), 1000)
    read(a, at("2026-02-10"), 1200)
    with time_machine.travel(at("2026-03-01", 2)):
        draft = compute(tenant, contract)
    assert usage_line(draft, a).usage == 200

    with time_machine.travel(at("2026-03-02", 9), tick=False):
        # Current readings of March change nothing in February's draft.
        received_batch(tenant, a, at("2026-03-02", 8))
        assert statement_services.statements_stale_sweep() == 0
        # A collector that was offline uploads February's last readings on 2 March.
        read(a, at("2026-02-27"), 1700)
        received_batch(tenant, a, at("2026-02-27"))
        assert statement_services.statements_stale_sweep() == 1

    again = Statement.unscoped.get(pk=draft.pk)
    assert usage_line(again, a).usage == 700
    assert again.computed_at == at("2026-03-02", 9)
    assert statement_services.statements_stale_sweep() == 0  # nothing new since

    with time_machine.travel(at("2026-03-03", 9), tick=False):
        services.correction_create(
            ctx=tenant.ctx(),
            device_id=a.pk,
            counter="impressions.mono",
            kind=CounterCorrection.Kind.METER_READ,
            effective_at=at("2026-02-28", 20),
            value=Decimal(1750),
            note="Read on site",
        )
        assert statement_services.statements_stale_sweep() == 1
    assert usage_line(Statement.unscoped.get(pk=draft.pk), a).usage == 750


def test_recomputing_gives_the_same_statement_to_the_cent(tenant, contract, printers):
    a, b = printers
    for day, value in (("2026-01-31", 333), ("2026-02-09", 1777), ("2026-02-28", 4321)):
        read(a, at(day), value)
        read(b, at(day), value * 3)
        read(a, at(day), value // 3, name="impressions.color")
    first = compute(tenant, contract)
    lines = list(first.lines.values_list("kind", "device", "counter", "usage", "amount", "flags"))

    second = compute(tenant, contract)

    assert second.pk == first.pk
    assert (second.subtotal, second.tax, second.total) == (first.subtotal, first.tax, first.total)
    assert (
        list(second.lines.values_list("kind", "device", "counter", "usage", "amount", "flags"))
        == lines
    )
    assert Statement.unscoped.filter(contract=contract).count() == 1


def test_joins_and_leaves_prorate_the_monthly_fee(tenant, contract, printers):
    ctx = tenant.ctx()
    a, b = printers
    membership = contract.memberships.get(device=a)
    services.contract_device_remove(
        ctx=ctx, contract_device_id=membership.pk, left_on=date(2026, 2, 8)
    )
    late = DeviceFactory(site=tenant.site, serial="SN-3")
    services.contract_device_add(
        ctx=ctx, contract_id=contract.pk, device_id=late.pk, joined_on=date(2026, 2, 22)
    )
    read(a, at("2026-01-31"), 100)
    read(a, at("2026-02-07", 23), 400)
    read(a, at("2026-02-20"), 900)  # after it left: not billed under this contract

    statement = compute(tenant, contract)

    assert fee_line(statement, a).amount == Decimal("2.50")  # 10.00 * 7/28
    assert fee_line(statement, a).flags == ["prorated"]
    assert fee_line(statement, b).amount == Decimal("10.00")
    assert fee_line(statement, late).amount == Decimal("2.50")  # 22-28 Feb: 7 days
    assert usage_line(statement, a).usage == 300


def test_the_minimum_commitment_tops_up_a_small_month(tenant, printers):
    ctx = tenant.ctx()
    plan = services.plan_create(
        ctx=ctx, name="Minimum", currency="EUR", terms=simple_terms(minimum_monthly=Decimal(50))
    )
    contract = services.contract_create(
        ctx=ctx, customer_id=tenant.customer.pk, plan_id=plan.pk, reference="M-1", starts_on=FEB
    )
    services.contract_device_add(
        ctx=ctx, contract_id=contract.pk, device_id=printers[0].pk, joined_on=FEB
    )

    statement = compute(tenant, contract)

    minimum = StatementLine.unscoped.get(statement=statement, kind="minimum")
    assert minimum.amount == Decimal("40.00")
    assert (statement.subtotal, statement.total) == (Decimal("50.00"), Decimal("60.00"))


def test_a_new_plan_version_prices_periods_from_its_date_and_statements_cite_it(
    tenant, contract, printers, plan
):
    a, _ = printers
    read(a, at("2026-01-31"), 0)
    read(a, at("2026-02-27"), 1100)
    read(a, at("2026-03-27"), 2200)
    version = services.plan_revise(
        ctx=tenant.ctx(),
        plan_id=plan.pk,
        terms=simple_terms(effective_from=date(2026, 3, 1), monthly_fee_per_device=Decimal(20)),
    )

    feb, march = compute(tenant, contract), compute(tenant, contract, date(2026, 3, 1))

    assert feb.plan_version.number == 1
    assert fee_line(feb, a).amount == Decimal("10.00")
    assert march.plan_version_id == version.pk
    assert fee_line(march, a).amount == Decimal("20.00")


def test_a_plan_cannot_be_revised_under_a_final_statement(tenant, contract, plan):
    with time_machine.travel(at("2026-03-05")):
        statement_services.statement_finalise(
            ctx=tenant.ctx(), statement_id=compute(tenant, contract).pk, by=None
        )
    versions = list(plan.versions.values_list("pk", "number", "effective_from"))

    with pytest.raises(ConflictError) as caught:
        services.plan_revise(
            ctx=tenant.ctx(), plan_id=plan.pk, terms=simple_terms(effective_from=date(2026, 2, 15))
        )

    assert caught.value.code == "plan_version_used"
    assert list(plan.versions.values_list("pk", "number", "effective_from")) == versions


@time_machine.travel(at("2026-04-02"))
def test_finalise_numbers_statements_per_reseller_without_gaps(tenant, contract, foreign_tenant):
    ctx = tenant.ctx()
    drafts = [compute(tenant, contract, date(2026, m, 1)) for m in (1, 2, 3)]

    numbers = [
        statement_services.statement_finalise(
            ctx=ctx, statement_id=s.pk, by=tenant.admin.user
        ).number
        for s in drafts
    ]
    with pytest.raises(StatementFinalError):
        statement_services.statement_finalise(ctx=ctx, statement_id=drafts[0].pk, by=None)

    assert numbers == [1, 2, 3]
    # Another reseller counts from 1 too.
    other = foreign_tenant.ctx()
    plan = services.plan_create(ctx=other, name="P", currency="EUR", terms=simple_terms())
    c = services.contract_create(
        ctx=other,
        customer_id=foreign_tenant.customer.pk,
        plan_id=plan.pk,
        reference="X",
        starts_on=FEB,
    )
    s = statement_services.statement_compute(ctx=other, contract_id=c.pk, period_start=FEB)
    assert statement_services.statement_finalise(ctx=other, statement_id=s.pk, by=None).number == 1


def test_a_period_that_is_not_over_cannot_be_finalised(tenant, contract):
    with time_machine.travel(at("2026-02-20")):
        draft = compute(tenant, contract)
        with pytest.raises(ConflictError) as caught:
            statement_services.statement_finalise(ctx=tenant.ctx(), statement_id=draft.pk, by=None)
    assert caught.value.code == "period_open"
    assert Statement.unscoped.get(pk=draft.pk).status == "draft"


def test_support_and_customers_cannot_finalise(tenant, contract, bob):
    draft = compute(tenant, contract)
    for role in (Role.RESELLER_SUPPORT, Role.CUSTOMER_ADMIN):
        with pytest.raises(PermissionDeniedError):
            statement_services.statement_finalise(
                ctx=tenant.ctx(role), statement_id=draft.pk, by=None
            )
    assert Statement.unscoped.get(pk=draft.pk).status == "draft"


@time_machine.travel(at("2026-03-05"))
def test_a_final_statement_is_immutable_in_the_model_and_the_database(tenant, contract, printers):
    read(printers[0], at("2026-02-10"), 10)
    statement = statement_services.statement_finalise(
        ctx=tenant.ctx(), statement_id=compute(tenant, contract).pk, by=None
    )
    line = statement.lines.first()
    before = (statement.total, list(statement.lines.values_list("pk", "amount")))

    statement.total = Decimal(1)
    with pytest.raises(StatementFinalError):
        statement.save()
    with pytest.raises(StatementFinalError):
        statement.delete()
    # Writes that bypass the model meet the trigger.
    for write in (
        lambda: Statement.unscoped.filter(pk=statement.pk).update(total=Decimal(1)),
        lambda: Statement.unscoped.filter(pk=statement.pk).delete(),
        lambda: StatementLine.unscoped.filter(pk=line.pk).update(amount=Decimal(1)),
        lambda: StatementLine.unscoped.filter(pk=line.pk).delete(),
        lambda: StatementLine.unscoped.create(
            statement=statement,
            reseller_id=statement.reseller_id,
            customer_id=statement.customer_id,
            position=99,
            kind="fee",
            amount=Decimal(1),
        ),
    ):
        with pytest.raises(IntegrityError), transaction.atomic():
            write()
    # Recomputing leaves it alone, and the service says so.
    with pytest.raises(StatementFinalError):
        compute(tenant, contract)
    fresh = Statement.unscoped.get(pk=statement.pk)
    assert (fresh.total, list(fresh.lines.values_list("pk", "amount"))) == before


@time_machine.travel(at("2026-03-05"))
def test_a_correction_after_finalising_is_an_adjustment_that_refers_to_it(
    tenant, contract, printers
):
    ctx = tenant.ctx()
    a, _ = printers
    read(a, at("2026-01-31"), 1000)
    read(a, at("2026-02-27"), 1600)
    original = statement_services.statement_finalise(
        ctx=ctx, statement_id=compute(tenant, contract).pk, by=None
    )
    # The technician's meter read shows 400 more pages before the period ended.
    services.correction_create(
        ctx=ctx,
        device_id=a.pk,
        counter="impressions.mono",
        kind="meter_read",
        effective_at=at("2026-02-28", 20),
        value=Decimal(2000),
        note="Meter read on site",
    )

    adjustment = statement_services.statement_adjust(ctx=ctx, statement_id=original.pk)

    assert (adjustment.kind, adjustment.status, adjustment.adjusts_id) == (
        "adjustment",
        "draft",
        original.pk,
    )
    (line,) = adjustment.lines.all()
    assert (line.device_id, line.counter, line.usage, line.amount) == (
        a.pk,
        "impressions.mono",
        Decimal(400),
        Decimal("4.00"),
    )
    assert (adjustment.subtotal, adjustment.tax, adjustment.total) == (
        Decimal("4.00"),
        Decimal("0.80"),
        Decimal("4.80"),
    )
    final = statement_services.statement_finalise(ctx=ctx, statement_id=adjustment.pk, by=None)
    assert (original.number, final.number) == (1, 2)
    # Nothing left to adjust: a second adjustment is empty.
    assert statement_services.statement_adjust(ctx=ctx, statement_id=original.pk).total == 0


def test_one_device_is_in_one_contract_at_a_time(tenant, contract, printers, plan):
    ctx = tenant.ctx()
    other = services.contract_create(
        ctx=ctx,
        customer_id=tenant.customer.pk,
        plan_id=plan.pk,
        reference="C-2",
        starts_on=date(2026, 1, 1),
    )
    with pytest.raises(ConflictError) as caught:
        services.contract_device_add(
            ctx=ctx, contract_id=other.pk, device_id=printers[0].pk, joined_on=date(2026, 3, 1)
        )
    assert caught.value.code == "device_in_contract"
    assert other.memberships.count() == 0

    # After it leaves the first contract it may join the second from that day.
    membership = contract.memberships.get(device=printers[0])
    services.contract_device_remove(
        ctx=ctx, contract_device_id=membership.pk, left_on=date(2026, 3, 1)
    )
    moved = services.contract_device_add(
        ctx=ctx, contract_id=other.pk, device_id=printers[0].pk, joined_on=date(2026, 3, 1)
    )
    assert moved.contract_id == other.pk


def test_the_database_refuses_two_open_memberships_of_one_device(tenant, contract, printers, plan):
    from billing.models import ContractDevice

    with pytest.raises(IntegrityError), transaction.atomic():
        ContractDevice.unscoped.create(
            reseller=tenant.reseller,
            contract=contract,
            device=printers[0],
            joined_on=date(2027, 1, 1),
        )


@pytest.mark.postgres
def test_postgres_refuses_overlapping_dated_memberships(tenant, contract, printers):
    from billing.models import ContractDevice

    membership = contract.memberships.get(device=printers[0])
    membership.left_on = date(2026, 6, 1)
    membership.save(update_fields=["left_on"])
    with pytest.raises(IntegrityError), transaction.atomic():
        ContractDevice.unscoped.create(
            reseller=tenant.reseller,
            contract=contract,
            device=printers[0],
            joined_on=date(2026, 5, 1),
            left_on=date(2026, 7, 1),
        )
    assert connection.vendor == "postgresql"


def test_statements_close_computes_every_contract_of_every_reseller(
    tenant, contract, foreign_tenant, printers
):
    other = foreign_tenant.ctx()
    plan = services.plan_create(ctx=other, name="P", currency="EUR", terms=simple_terms())
    services.contract_create(
        ctx=other,
        customer_id=foreign_tenant.customer.pk,
        plan_id=plan.pk,
        reference="X",
        starts_on=FEB,
    )

    assert statement_services.statements_close(as_of=date(2026, 3, 1)) == 2

    assert sorted(Statement.unscoped.values_list("reseller_id", "period_start")) == sorted(
        [(tenant.reseller.pk, FEB), (foreign_tenant.reseller.pk, FEB)]
    )
    assert statement_services.statements_close(as_of=date(2026, 3, 2)) == 2  # recomputed
    assert Statement.unscoped.count() == 2


def test_the_close_task_and_beat_entry(tenant, contract):
    from billing.tasks import statements_close_task
    from portal.celery import BEAT_SCHEDULE

    assert statements_close_task.delay(as_of="2026-03-01").get() == 1
    assert (
        BEAT_SCHEDULE["billing-statements-close"]["task"] == "billing.tasks.statements_close_task"
    )
    assert Statement.unscoped.get().period_start == FEB


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_workers_computing_the_same_statement_produce_one(tenant, contract, printers):
    import threading

    read(printers[0], at("2026-01-31"), 100)
    read(printers[0], at("2026-02-20"), 900)
    barrier = threading.Barrier(2)
    results: list[int] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            barrier.wait()
            with rls.tenant(tenant.reseller.pk):  # as statement_compute_task scopes it
                results.append(compute(tenant, contract).pk)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert len(set(results)) == 1
    statement = Statement.unscoped.get(contract=contract)
    assert statement.lines.filter(kind="usage").get().usage == 800
    assert statement.lines.count() == 3


def test_seed_demo_billing_builds_a_plan_contract_and_draft(tenant):
    from billing.services import seed_demo_billing

    DeviceFactory(site=tenant.site, serial="DEMO-1")
    with time_machine.travel(at("2026-03-10")):
        contract = seed_demo_billing(tenant.reseller)
        assert seed_demo_billing(tenant.reseller) is None  # idempotent

    assert contract is not None
    assert contract.memberships.count() == 1
    assert PricePlan.unscoped.filter(reseller=tenant.reseller).count() == 1
    assert Statement.unscoped.get(contract=contract).period_start == FEB


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_close_runs_batches_side_by_side_and_gets_the_same_result(tenant, contract, printers):
    ctx = tenant.ctx()
    other = services.contract_create(
        ctx=ctx,
        customer_id=tenant.customer.pk,
        plan_id=contract.plan_id,
        reference="C-2",
        starts_on=date(2026, 1, 1),
    )
    extra = DeviceFactory(site=tenant.site, serial="SN-9")
    services.contract_device_add(
        ctx=ctx, contract_id=other.pk, device_id=extra.pk, joined_on=date(2026, 1, 1)
    )
    for device, value in ((printers[0], 500), (printers[1], 900), (extra, 1300)):
        read(device, at("2026-01-31"), 0)
        read(device, at("2026-02-25"), value)

    assert statement_services.statements_close(as_of=date(2026, 3, 1), batch_size=1) == 2

    totals = dict(Statement.unscoped.values_list("contract__reference", "subtotal"))
    # C-1: 2 fees + (400 + 800 billable at 0.01); C-2: 1 fee + 1200 = 1000 at 0.01 + 200 at 0.005
    assert totals == {"C-1": Decimal("32.00"), "C-2": Decimal("21.00")}
