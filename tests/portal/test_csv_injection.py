"""CSV formula injection: every CSV the portal serves (found by walking the routes, not listed
by hand) must neutralise text that a spreadsheet would run as a formula. The hostile text gets
in the way it would in life: names typed into forms (services) and names a printer reports."""

from __future__ import annotations

import csv
import io
from datetime import date
from decimal import Decimal

import pytest
from django.test import Client

from accounts import services as accounts_services
from billing import services as billing_services
from billing import statement_services
from orders import catalog_services
from orders import services as order_services
from tests.billing.conftest import read, simple_terms
from tests.conftest import Tenant
from tests.factories import DeviceFactory
from tests.portal.test_isolation import all_routes

pytestmark = pytest.mark.django_db

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
HOSTILE = {
    "customer": '=HYPERLINK("http://evil.test","x")',
    "site": "+cmd|' /C calc'!A0",
    "sku": "-2+3",
    "product": "@SUM(1+1)*cmd|' /C calc'!A0",
    "carrier": "=1+1",
    "tracking": "@tracking",
    "reference": "-REF",
    "purchase_order": "=PO",
    "device_name": "\t=printer",  # printers report their own names
    "device_serial": "\r=SERIAL",
}


@pytest.fixture
def hostile(tenant: Tenant) -> dict[str, object]:
    ctx = tenant.ctx()
    customer = accounts_services.customer_create(ctx=ctx, name=HOSTILE["customer"])
    site = accounts_services.site_create(ctx=ctx, customer_id=customer.pk, name=HOSTILE["site"])
    device = DeviceFactory(site=site, name=HOSTILE["device_name"], serial=HOSTILE["device_serial"])
    product = catalog_services.product_create(
        ctx=ctx, sku=HOSTILE["sku"], name=HOSTILE["product"], price=Decimal("9.90")
    )
    order = order_services.order_create(
        ctx=ctx,
        site_id=site.pk,
        lines=[order_services.LineIn(product_id=product.pk, quantity=1)],
        submit=True,
    )
    order_services.order_transition(ctx=ctx, order_id=order.pk, to="accepted")
    order_services.order_transition(
        ctx=ctx,
        order_id=order.pk,
        to="shipped",
        carrier=HOSTILE["carrier"],
        tracking_number=HOSTILE["tracking"],
    )
    plan = billing_services.plan_create(ctx=ctx, name="Plan", currency="EUR", terms=simple_terms())
    contract = billing_services.contract_create(
        ctx=ctx,
        customer_id=customer.pk,
        plan_id=plan.pk,
        reference=HOSTILE["reference"],
        purchase_order=HOSTILE["purchase_order"],
        starts_on=date(2026, 1, 1),
    )
    billing_services.contract_device_add(
        ctx=ctx, contract_id=contract.pk, device_id=device.pk, joined_on=date(2026, 1, 1)
    )
    for day, value in (("2026-02-28", 1000), ("2026-03-31", 1600)):
        read(device, read_at(day), value)
    statement = statement_services.statement_compute(
        ctx=ctx, contract_id=contract.pk, period_start=date(2026, 3, 1)
    )
    return {"statement_id": statement.pk}


def read_at(day: str):
    from tests.billing.conftest import at

    return at(day, hour=23)


# The usage exports need a month; the statement above is still a draft.
USAGE_QUERY = {"month": "2026-03", "status": "draft"}


def _csv_answers(client: Client, objects: dict[str, object]) -> dict[str, list[list[str]]]:
    answers = {}
    for route in all_routes():
        if any(k not in objects for k in route.kwargs):
            continue
        query = USAGE_QUERY if "usage" in route.name else {}
        response = client.get(route.template.format(**objects), query)
        if response.status_code != 200 or "csv" not in response.get("Content-Type", ""):
            continue
        raw = b"".join(response.streaming_content) if response.streaming else response.content
        answers[route.name] = list(csv.reader(io.StringIO(raw.decode(), newline="")))
    return answers


def test_every_csv_export_neutralises_formulas(login, alice, tenant, hostile):
    answers = _csv_answers(login(alice), hostile)

    assert set(answers) == {
        "order-export",
        "statement-csv",
        "usage-export",
        "api-statement-csv",
        "api-usage-export",
    }
    for name, rows in answers.items():
        cells = [cell for row in rows[1:] for cell in row]
        dangerous = [cell for cell in cells if cell.startswith(FORMULA_STARTS)]
        neutralised = {cell[1:] for cell in cells if cell.startswith("'")}
        assert dangerous == [], f"{name} lets formulas through: {dangerous}"
        assert neutralised & set(HOSTILE.values()), f"{name}: no hostile text reached the file"

    exported = {
        cell[1:] for rows in answers.values() for row in rows for cell in row if cell[:1] == "'"
    }
    assert set(HOSTILE.values()) - exported == set()  # each hostile value went through a file


def test_the_walk_would_notice_a_raw_export(login, alice, tenant, hostile, monkeypatch):
    """Proof that the check can fail: an export that writes cells as they are is caught."""
    from portal import csv_export

    monkeypatch.setattr(csv_export, "FORMULA_STARTS", frozenset())

    rows = _csv_answers(login(alice), hostile)["order-export"]

    assert any(cell.startswith(FORMULA_STARTS) for row in rows[1:] for cell in row)
