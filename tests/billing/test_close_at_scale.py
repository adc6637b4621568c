"""The set-based paths of the month close and the usage export (issue 12, point 6): the close's
lines written by COPY and its totals by one UPDATE, the usage CSV formatted by PostgreSQL.
Each must give what the row-by-row path gave, stay inside one reseller's rows, and keep its
query count whatever the fleet's size."""

from __future__ import annotations

import csv
import io
from datetime import date
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from billing import exports, selectors, services, statement_services
from billing.models import Contract, Statement, StatementLine
from devices.models import Device
from portal import rls
from tests.billing.conftest import at, read, simple_terms
from tests.conftest import Tenant
from tests.factories import CustomerFactory, DeviceFactory, SiteFactory

pytestmark = pytest.mark.django_db
FEB = date(2026, 2, 1)
MAR = date(2026, 3, 1)


def fleet(tenant: Tenant, devices: int, *, reference: str = "C-1") -> Contract:
    """A contract of `devices` printers with readings around February, one reset among them."""
    ctx = tenant.ctx()
    plan = services.plan_create(
        ctx=ctx, name=f"Plan {reference}", currency="EUR", terms=simple_terms()
    )
    contract = services.contract_create(
        ctx=ctx,
        customer_id=tenant.customer.pk,
        plan_id=plan.pk,
        reference=reference,
        starts_on=date(2026, 1, 1),
    )
    for n in range(devices):
        device = DeviceFactory(site=tenant.site, serial=f"{reference}-{n:03d}")
        services.contract_device_add(
            ctx=ctx, contract_id=contract.pk, device_id=device.pk, joined_on=date(2026, 1, 1)
        )
        read(device, at("2026-01-30"), 1000 + n)
        read(device, at("2026-02-14"), 1500 + 10 * n)
        read(device, at("2026-02-27"), 40 if n == 1 else 2000 + 20 * n)  # n == 1: a reset
        read(device, at("2026-01-30"), 300, name="impressions.color")
        read(device, at("2026-02-27"), 900 + n, name="impressions.color")
    return contract


def line_rows(statement: Statement) -> list[tuple[object, ...]]:
    return list(
        StatementLine.unscoped.filter(statement=statement)
        .order_by("position")
        .values_list(
            "id", "reseller_id", "customer_id", "position", "kind", "device_id", "counter",
            "window_start", "window_end", "start_at", "start_value", "end_value", "measured",
            "usage", "allowance", "billable", "unit_price", "rate_label", "amount", "flags",
        )
    )  # fmt: skip


def test_the_close_of_every_reseller_keeps_each_ones_rows_apart(tenant, foreign_tenant):
    ours = fleet(tenant, 3)
    theirs = fleet(foreign_tenant, 2, reference="X-1")

    assert statement_services.statements_close(as_of=MAR) == 2

    for contract, owner in ((ours, tenant), (theirs, foreign_tenant)):
        statement = Statement.unscoped.get(contract=contract, period_start=FEB)
        lines = StatementLine.unscoped.filter(statement=statement)
        devices = set(Device.unscoped.filter(reseller=owner.reseller).values_list("pk", flat=True))
        assert statement.reseller_id == owner.reseller.pk
        assert {(line.reseller_id, line.customer_id) for line in lines} == {
            (owner.reseller.pk, owner.customer.pk)
        }
        assert {line.device_id for line in lines if line.device_id} == devices
        assert statement.subtotal == sum((line.amount for line in lines), Decimal(0))
        assert statement.total == statement.subtotal + statement.tax
        assert statement.computed_at is not None


def test_a_compute_for_one_reseller_leaves_the_others_lines_untouched(tenant, foreign_tenant):
    ours = fleet(tenant, 2)
    theirs = fleet(foreign_tenant, 2, reference="X-1")
    statement_services.statements_close(as_of=MAR)
    their_statement = Statement.unscoped.get(contract=theirs)
    their_lines = line_rows(their_statement)
    their_totals = (their_statement.total, their_statement.computed_at)

    with rls.tenant(tenant.reseller.pk):
        mine = statement_services.statement_compute(
            ctx=tenant.ctx(), contract_id=ours.pk, period_start=FEB
        )

    their_statement.refresh_from_db()
    assert line_rows(their_statement) == their_lines  # same rows, same ids: not rewritten
    assert (their_statement.total, their_statement.computed_at) == their_totals
    assert mine.contract_id == ours.pk


def test_the_close_writes_what_a_recompute_writes_to_the_cent(tenant):
    contract = fleet(tenant, 4)
    statement_services.statements_close(as_of=MAR)
    statement = Statement.unscoped.get(contract=contract)
    first = [row[1:] for row in line_rows(statement)]
    reset = StatementLine.unscoped.get(
        statement=statement, device__serial="C-1-001", counter="impressions.mono"
    )

    statement_services.statements_close(as_of=MAR)

    assert [row[1:] for row in line_rows(statement)] == first
    assert "reset" in reset.flags
    assert reset.usage >= 0
    fee = StatementLine.unscoped.filter(statement=statement, kind="fee").first()
    assert fee is not None
    assert fee.unit_price == Decimal("10.00")
    assert fee.start_at is None
    assert fee.counter == ""


@pytest.mark.postgres  # SQLite's usage runs per membership in Python (the demo's size)
def test_the_close_makes_as_many_queries_for_two_printers_as_for_six(tenant, foreign_tenant):
    fleet(tenant, 2)
    fleet(foreign_tenant, 6, reference="X-1")
    small_jobs, large_jobs = jobs_of(tenant), jobs_of(foreign_tenant)
    with CaptureQueriesContext(connection) as small, rls.system("one reseller's contract"):
        statement_services.statements_compute(jobs=small_jobs)
    with CaptureQueriesContext(connection) as large, rls.system("the other's contract"):
        statement_services.statements_compute(jobs=large_jobs)

    assert len(small) == len(large)


def jobs_of(tenant: Tenant) -> list[statement_services.PeriodJob]:
    contract = Contract.unscoped.select_related("plan").get(reseller=tenant.reseller)
    return [statement_services.PeriodJob(contract, FEB, MAR)]


HOSTILE = ["=HYPERLINK(1)", "+1", "-2", "@SUM", "\tTab", "a,b", 'say "hi"', "two\nlines", ""]


@pytest.mark.postgres
def test_the_usage_csv_from_postgres_is_byte_for_byte_the_csv_modules(tenant, foreign_tenant):
    contract = fleet(tenant, 3)
    fleet(foreign_tenant, 2, reference="X-1")
    contract.purchase_order = HOSTILE[0]
    contract.save(update_fields=["purchase_order"])
    customer = tenant.customer
    customer.name, customer.account_number = HOSTILE[5], HOSTILE[7]
    customer.save(update_fields=["name", "account_number"])
    Device.unscoped.filter(serial="C-1-000").update(serial=HOSTILE[2])
    # A second customer's contract, whose statement lines are sorted after the first's.
    other = CustomerFactory(reseller=tenant.reseller, name=HOSTILE[6], account_number=HOSTILE[4])
    site = SiteFactory(customer=other)
    ctx = tenant.ctx()
    plan = services.plan_create(ctx=ctx, name="Other", currency="EUR", terms=simple_terms())
    second = services.contract_create(
        ctx=ctx, customer_id=other.pk, plan_id=plan.pk, reference=HOSTILE[1], starts_on=FEB
    )
    device = DeviceFactory(site=site, serial=HOSTILE[3])
    services.contract_device_add(ctx=ctx, contract_id=second.pk, device_id=device.pk, joined_on=FEB)
    statement_services.statements_close(as_of=MAR)

    export = selectors.usage_export_rows(
        ctx=ctx, f=selectors.UsageExportFilter(month=FEB, status=Statement.Status.DRAFT)
    )
    with rls.tenant(tenant.reseller.pk):
        copied = "".join(exports.usage_csv(export))
        written = "".join(exports.usage_csv(iter(export)))  # the tuples through csv_lines

    assert isinstance(export, selectors.UsageExport)
    assert export.can_copy
    assert copied == written
    rows = list(csv.reader(io.StringIO(copied)))
    ours = StatementLine.unscoped.filter(reseller=tenant.reseller).count()
    assert len(rows) == 1 + ours
    assert ours < StatementLine.unscoped.count()  # the foreign reseller's lines stay out
    assert {row[3] for row in rows[1:]} == {HOSTILE[5], HOSTILE[6]}
    assert {row[4] for row in rows[1:]} == {HOSTILE[7], "'" + HOSTILE[4]}
    assert {row[5] for row in rows[1:]} == {"C-1", "'" + HOSTILE[1]}
    assert {row[6] for row in rows[1:]} == {"'" + HOSTILE[0], ""}
    assert "'" + HOSTILE[2] in {row[12] for row in rows[1:]}
    assert "'" + HOSTILE[3] in {row[12] for row in rows[1:]}


@pytest.mark.postgres
def test_the_usage_csv_sends_its_lines_in_chunks_of_statements(tenant, monkeypatch):
    monkeypatch.setattr(selectors, "STATEMENTS_PER_COPY", 1)
    for n in range(3):
        fleet(tenant, 1, reference=f"C-{n}")
    statement_services.statements_close(as_of=MAR)
    export = selectors.usage_export_rows(
        ctx=tenant.ctx(), f=selectors.UsageExportFilter(month=FEB, status=Statement.Status.DRAFT)
    )

    with rls.tenant(tenant.reseller.pk):
        copied = list(exports.usage_csv(export))
        written = list(exports.usage_csv(iter(export)))

    assert copied == written
    assert [row.split(",")[5] for row in copied[1:]] == sorted(
        row.split(",")[5] for row in copied[1:]
    )
