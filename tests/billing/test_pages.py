"""Billing pages, downloads and the API, through HTTP: alice (reseller admin), bob (customer
admin) and charlie (a foreign reseller's admin)."""

from __future__ import annotations

import csv
import io
from datetime import date
from decimal import Decimal

import pytest
import time_machine
from django.urls import reverse

from billing import services, statement_services
from billing.models import Contract, PricePlan, Statement
from portal.tenancy import Role
from tests.billing.conftest import at, read
from tests.factories import DeviceFactory, MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db
FEB = date(2026, 2, 1)


@pytest.fixture
def draft(tenant, contract, printers) -> Statement:
    a, b = printers
    read(a, at("2026-01-31"), 1000)
    read(a, at("2026-02-27"), 2600)
    read(a, at("2026-02-27"), 900, name="impressions.color")
    read(a, at("2026-01-30"), 100, name="impressions.color")
    read(b, at("2026-02-10"), 70)
    return statement_services.statement_compute(
        ctx=tenant.ctx(), contract_id=contract.pk, period_start=FEB
    )


@pytest.fixture
def final(tenant, draft) -> Statement:
    with time_machine.travel(at("2026-03-03")):
        return statement_services.statement_finalise(
            ctx=tenant.ctx(), statement_id=draft.pk, by=tenant.admin.user
        )


def test_sidebar_links_appear_for_finance(login, alice):
    body = login(alice).get(reverse("dashboard")).content.decode()
    for name in ("statement-list", "plan-list", "contract-list"):
        assert f'href="{reverse(name)}"' in body


def test_plan_pages_create_a_plan_with_tiers_and_revise_it(login, alice, tenant):
    client = login(alice)
    form = {
        "name": "Colour Office",
        "currency": "EUR",
        "description": "",
        "effective_from": "2026-01-01",
        "monthly_fee_per_device": "15.00",
        "minimum_monthly": "0",
        "tax_rate": "19",
        "rates-TOTAL_FORMS": "3",
        "rates-INITIAL_FORMS": "0",
        "rates-0-counter": "impressions.mono",
        "rates-0-mode": "graduated",
        "rates-0-scope": "device",
        "rates-0-included_units": "500",
        "rates-0-tiers": "0: 0.012; 5000: 0.009",
        "rates-1-counter": "media.area",
        "rates-1-media_type": "photo-glossy",
        "rates-1-mode": "volume",
        "rates-1-scope": "pooled",
        "rates-1-included_units": "0",
        "rates-1-tiers": "0: 2.5",
        "rates-2-counter": "",
        "rates-2-mode": "graduated",
        "rates-2-scope": "device",
    }

    response = client.post(reverse("plan-create"), form)

    plan = PricePlan.objects.for_tenant(tenant.ctx()).get(name="Colour Office")
    assert response.status_code == 302
    assert response["Location"] == reverse("plan-detail", kwargs={"plan_id": plan.pk})
    version = plan.versions.get()
    mono = version.rates.get(counter="impressions.mono")
    assert [(t.from_units, t.to_units, t.unit_price) for t in mono.tiers.all()] == [
        (Decimal(0), Decimal(5000), Decimal("0.012")),
        (Decimal(5000), None, Decimal("0.009")),
    ]
    assert version.rates.get(counter="media.area").media_type == "photo-glossy"
    page = client.get(response["Location"]).content.decode()
    assert "Version 1" in page
    assert "photo-glossy" in page

    revise = client.get(reverse("plan-revise", kwargs={"plan_id": plan.pk})).content.decode()
    assert "0: 0.012; 5000: 0.009" in revise  # the current terms are the starting point
    form |= {"effective_from": "2026-04-01", "monthly_fee_per_device": "17.00"}
    assert client.post(reverse("plan-revise", kwargs={"plan_id": plan.pk}), form).status_code == 302
    assert list(
        plan.versions.order_by("number").values_list("number", "monthly_fee_per_device")
    ) == [
        (1, Decimal("15.00")),
        (2, Decimal("17.00")),
    ]


def test_bad_tiers_are_shown_next_to_the_form_and_nothing_is_saved(login, alice, tenant):
    form = {
        "name": "Broken",
        "currency": "EUR",
        "effective_from": "2026-01-01",
        "monthly_fee_per_device": "1",
        "minimum_monthly": "0",
        "tax_rate": "0",
        "rates-TOTAL_FORMS": "1",
        "rates-INITIAL_FORMS": "0",
        "rates-0-counter": "impressions.mono",
        "rates-0-mode": "graduated",
        "rates-0-scope": "device",
        "rates-0-tiers": "100: 0.01",
    }

    response = login(alice).post(reverse("plan-create"), form)

    assert response.status_code == 200
    assert "The first tier starts at 0." in response.content.decode()
    assert not PricePlan.objects.for_tenant(tenant.ctx()).exists()


def test_contract_pages_assign_and_remove_printers_with_dates(login, alice, tenant, plan):
    client = login(alice)
    device = DeviceFactory(site=tenant.site, serial="SN-NEW")
    response = client.post(
        reverse("contract-create"),
        {
            "customer": tenant.customer.pk,
            "plan": plan.pk,
            "reference": "2026-PPU-1",
            "purchase_order": "PO 4711",
            "anchor_day": "1",
            "starts_on": "2026-01-01",
            "ends_on": "",
            "missing_data": "estimate",
        },
    )
    contract = Contract.objects.for_tenant(tenant.ctx()).get(reference="2026-PPU-1")
    assert response["Location"] == reverse("contract-detail", kwargs={"contract_id": contract.pk})

    client.post(
        reverse("contract-device-add", kwargs={"contract_id": contract.pk}),
        {"device": device.pk, "joined_on": "2026-01-10"},
    )
    membership = contract.memberships.get()
    assert (membership.device_id, membership.joined_on) == (device.pk, date(2026, 1, 10))
    page = client.get(response["Location"]).content.decode()
    assert "SN-NEW" in page
    assert "PO 4711" in page

    leave = reverse("contract-device-leave", kwargs={"contract_device_id": membership.pk})
    assert client.post(leave, {"left_on": "2026-03-15"}).status_code == 302
    membership.refresh_from_db()
    assert membership.left_on == date(2026, 3, 15)


def test_statement_list_filters_by_period_and_status_with_totals(
    login, alice, draft, assert_data_queries
):
    client = login(alice)
    with assert_data_queries(12, exact=False):
        page = client.get(reverse("statement-list"), {"month": "2026-02", "status": "draft"})
    body = page.content.decode()
    assert page.status_code == 200
    assert str(draft.total) in body
    assert "1 statement in EUR" in body
    empty = client.get(reverse("statement-list"), {"month": "2026-01"}).content.decode()
    assert "No statements" in empty


def test_statement_detail_shows_lines_flags_and_a_chart_per_device(login, alice, draft):
    body = login(alice).get(reverse("statement-detail", kwargs={"statement_id": draft.pk}))
    text = body.content.decode()
    assert body.status_code == 200
    assert "SN-1" in text
    assert "SN-2" in text
    assert text.count('<svg class="chart"') == 3  # SN-1 mono and colour, SN-2 mono
    assert "first reading inside the period" in text  # SN-2
    assert "style=" not in text  # the CSP forbids inline styles
    # Quantities print plainly: 1600.0000 is "1,600", never Decimal's "1.6E+3".
    assert ">1,600<" in text
    assert "E+" not in text
    assert "Finalise…" in text


def test_finalise_asks_for_confirmation_then_numbers_the_statement(login, alice, draft):
    client = login(alice)
    url = reverse("statement-finalise", kwargs={"statement_id": draft.pk})
    with time_machine.travel(at("2026-03-02")):
        confirm = client.get(url)
        assert "Finalise and number it" in confirm.content.decode()
        assert Statement.unscoped.get(pk=draft.pk).status == "draft"
        response = client.post(url)
    statement = Statement.unscoped.get(pk=draft.pk)
    assert response.status_code == 302
    assert (statement.status, statement.number, statement.finalised_by) == ("final", 1, alice)


def test_customers_see_their_final_statements_and_nothing_else(login, bob, draft, tenant):
    client = login(bob)
    detail = reverse("statement-detail", kwargs={"statement_id": draft.pk})
    assert client.get(detail).status_code == 404  # a draft is not theirs to see yet
    assert (
        client.get(reverse("statement-csv", kwargs={"statement_id": draft.pk})).status_code == 404
    )
    assert "No statements" in client.get(reverse("statement-list")).content.decode()
    for name in ("plan-list", "contract-list", "usage-export"):
        assert client.get(reverse(name)).status_code == 403

    with time_machine.travel(at("2026-03-03")):
        statement_services.statement_finalise(ctx=tenant.ctx(), statement_id=draft.pk, by=None)
    body = client.get(detail).content.decode()
    assert "No. 1" in body
    assert "Finalise" not in body
    assert (
        client.post(reverse("statement-adjust", kwargs={"statement_id": draft.pk})).status_code
        == 403
    )


def test_another_customers_statement_is_not_found(login, tenant, final):
    from tests.factories import CustomerFactory

    other = CustomerFactory(reseller=tenant.reseller)
    user = MembershipFactory(
        reseller=tenant.reseller, customer=other, role=Role.CUSTOMER_ADMIN, user=UserFactory()
    ).user
    client = login(user)
    assert (
        client.get(reverse("statement-detail", kwargs={"statement_id": final.pk})).status_code
        == 404
    )
    assert (
        client.get(reverse("statement-pdf", kwargs={"statement_id": final.pk})).status_code == 404
    )


def test_charlie_gets_404_for_alices_statement(login, charlie, final):
    client = login(charlie)
    for name in ("statement-detail", "statement-csv", "statement-pdf", "statement-finalise"):
        assert client.get(reverse(name, kwargs={"statement_id": final.pk})).status_code == 404


def test_statement_csv_has_one_line_per_device_and_counter_and_defuses_formulas(
    login, alice, tenant, draft, printers
):
    printers[0].name = '=HYPERLINK("http://evil")'
    printers[0].save(update_fields=["name"])

    response = login(alice).get(reverse("statement-csv", kwargs={"statement_id": draft.pk}))

    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert response["Content-Type"] == "text/csv"
    assert [(r["line_kind"], r["device_serial"], r["counter"]) for r in rows] == [
        ("fee", "SN-1", ""),
        ("usage", "SN-1", "impressions.color"),
        ("usage", "SN-1", "impressions.mono"),
        ("fee", "SN-2", ""),
        ("usage", "SN-2", "impressions.mono"),
    ]
    assert rows[0]["device_name"] == '\'=HYPERLINK("http://evil")'
    assert rows[2]["usage"] == "1600.0000"
    assert rows[2]["amount"] == "12.50"
    assert sum(Decimal(r["amount"]) for r in rows) == draft.subtotal


def test_statement_csv_names_every_device_even_without_a_name_of_its_own(
    login, alice, draft, printers
):
    printers[0].name = ""
    printers[0].save(update_fields=["name"])
    printers[1].name = "Reception"
    printers[1].save(update_fields=["name"])

    response = login(alice).get(reverse("statement-csv", kwargs={"statement_id": draft.pk}))

    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    # What the statement page calls it: its name, else its model.
    names = {r["device_serial"]: r["device_name"] for r in rows}
    assert names == {"SN-1": printers[0].model, "SN-2": "Reception"}
    assert printers[0].model


def test_statement_page_writes_money_with_symbol_and_cents_in_the_users_format(login, alice, draft):
    client = login(alice)
    page = reverse("statement-detail", kwargs={"statement_id": draft.pk})

    english = client.get(page).content.decode()
    alice.locale = "de-de"
    alice.save(update_fields=["locale"])
    german = client.get(page).content.decode()

    total = f"{draft.total:,.2f}"  # 1,234.50
    assert f"€{total}" in english
    assert total.replace(",", " ").replace(".", ",").replace(" ", ".") + "\u00a0€" in german
    # A rate finer than a cent keeps its digits; no amount shows Decimal's raw 8 places.
    assert "0.00000000" not in english


def test_statement_pdf_is_a_pdf_with_the_totals(login, alice, final):
    response = login(alice).get(reverse("statement-pdf", kwargs={"statement_id": final.pk}))

    assert response["Content-Type"] == "application/pdf"
    assert response.content.startswith(b"%PDF")
    assert len(response.content) > 5000


def test_statement_pdf_carries_the_resellers_logo(login, alice, final, settings, tmp_path):
    import struct
    import zlib

    from django.core.files.base import ContentFile

    def png(width: int, height: int) -> bytes:
        def chunk(kind: bytes, data: bytes) -> bytes:
            body = kind + data
            return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

        rows = b"".join(b"\x00" + b"\x20\x50\xd0" * width for _ in range(height))
        header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
        return (
            b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(rows))
            + chunk(b"IEND", b"")
        )

    settings.MEDIA_ROOT = tmp_path
    url = reverse("statement-pdf", kwargs={"statement_id": final.pk})
    client = login(alice)
    assert b"/Subtype /Image" not in client.get(url).content  # initials, no picture

    final.reseller.logo.save("logo.png", ContentFile(png(40, 20)), save=True)

    assert b"/Subtype /Image" in client.get(url).content


def test_statement_pdf_addresses_the_customer(login, alice, final, pdf_html):
    customer = final.customer
    customer.billing_address = "Accounts payable\nAm Sandtorkai 5\n20457 Hamburg"
    customer.save(update_fields=["billing_address"])

    response = login(alice).get(reverse("statement-pdf", kwargs={"statement_id": final.pk}))

    assert response.content.startswith(b"%PDF")
    (html,) = pdf_html
    for line in ("Accounts payable", "Am Sandtorkai 5", "20457 Hamburg"):
        assert f"<div>{line}</div>" in html


@pytest.mark.parametrize(
    ("installation", "heading", "net"),
    [("en", "Usage statement", "Net amount"), ("de", "Nutzungsabrechnung", "Nettobetrag")],
)
def test_statement_pdf_is_in_the_installations_language_whoever_asks(
    login, alice, final, pdf_html, settings, installation, heading, net
):
    """The PDF is kept and served to everyone (finance, the customer): one language, the
    installation's, not the language of whoever asked first."""
    settings.LANGUAGE_CODE = installation
    alice.language = "de" if installation == "en" else "en"
    alice.save(update_fields=["language"])

    response = login(alice).get(reverse("statement-pdf", kwargs={"statement_id": final.pk}))

    assert response.content.startswith(b"%PDF")
    (html,) = pdf_html
    assert f"<h1>{heading}</h1>" in html
    assert net in html


def test_usage_export_streams_every_line_of_the_month(login, alice, final):
    response = login(alice).get(reverse("usage-export"), {"month": "2026-02"})

    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert response.streaming
    assert rows[0][:3] == ["statement_number", "statement_status", "statement_kind"]
    assert len(rows) == 1 + final.lines.count()
    assert {r[0] for r in rows[1:]} == {"1"}
    assert rows[1][8] == "2026-02-28"  # the last day of the period, not the exclusive end


def test_the_api_lists_and_exports_statements_with_a_token(client, tenant, final):
    from accounts import services as account_services

    _, raw = account_services.api_token_create(
        ctx=tenant.ctx(), name="ERP", role=Role.RESELLER_FINANCE
    )
    auth = {"HTTP_AUTHORIZATION": f"Bearer {raw}"}

    listing = client.get("/api/v1/statements", {"month": "2026-02"}, **auth).json()
    detail = client.get(f"/api/v1/statements/{final.pk}", **auth).json()
    usage = client.get("/api/v1/billing/usage", {"month": "2026-02"}, **auth)
    pdf = client.get(f"/api/v1/statements/{final.pk}/pdf", **auth)

    assert [s["number"] for s in listing["results"]] == [1]
    assert detail["total"] == str(final.total)
    assert len(detail["lines"]) == final.lines.count()
    assert len(b"".join(usage.streaming_content).decode().splitlines()) == 1 + final.lines.count()
    assert pdf.content.startswith(b"%PDF")
    bad = client.get("/api/v1/billing/usage", {"month": "Feb"}, **auth)
    assert bad.status_code == 400
    assert bad.json()["error"]["code"] == "invalid_month"


def test_the_api_computes_and_finalises_and_refuses_twice(client, tenant, contract):
    from accounts import services as account_services

    _, raw = account_services.api_token_create(
        ctx=tenant.ctx(), name="ERP", role=Role.RESELLER_FINANCE
    )
    auth = {"HTTP_AUTHORIZATION": f"Bearer {raw}"}
    created = client.post(
        f"/api/v1/contracts/{contract.pk}/statements",
        {"period_start": "2026-02-10"},
        content_type="application/json",
        **auth,
    )
    assert created.status_code == 201
    assert created.json()["period_start"] == "2026-02-01"
    url = f"/api/v1/statements/{created.json()['id']}/finalise"
    with time_machine.travel(at("2026-03-04")):
        assert client.post(url, **auth).json()["number"] == 1
        again = client.post(url, **auth)
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "statement_final"


def test_a_customer_token_sees_only_final_statements(client, tenant, draft):
    from accounts import services as account_services

    _, raw = account_services.api_token_create(
        ctx=tenant.ctx(),
        name="Customer portal",
        role=Role.CUSTOMER_ADMIN,
        customer_id=tenant.customer.pk,
    )
    auth = {"HTTP_AUTHORIZATION": f"Bearer {raw}"}
    assert client.get("/api/v1/statements", **auth).json()["results"] == []
    assert client.get(f"/api/v1/statements/{draft.pk}", **auth).status_code == 404
    assert client.get("/api/v1/billing/usage", {"month": "2026-02"}, **auth).status_code == 403


def test_a_correction_is_recorded_from_the_page(login, alice, tenant, printers):
    response = login(alice).post(
        reverse("correction-create", kwargs={"device_id": printers[0].pk})
        + "?next=https://evil.example/",
        {
            "counter": "impressions.mono",
            "kind": "meter_read",
            "effective_at": "2026-02-28T17:00",
            "value": "12345",
            "note": "Read by the technician",
        },
    )
    from billing.models import CounterCorrection

    correction = CounterCorrection.objects.for_tenant(tenant.ctx()).get()
    assert response["Location"] == reverse("contract-list")  # never to another site
    assert (correction.value, correction.entered_by_email) == (Decimal(12345), alice.email)
    assert correction.effective_at == at("2026-02-28", 17)


def test_services_refuse_support_users(tenant):
    from portal.errors import PermissionDeniedError

    with pytest.raises(PermissionDeniedError):
        services.plan_create(
            ctx=tenant.ctx(Role.RESELLER_SUPPORT),
            name="x",
            currency="EUR",
            terms=services.plan_terms_demo(FEB),
        )
    assert not PricePlan.objects.for_tenant(tenant.ctx()).exists()


def test_units_print_without_exponents_or_trailing_zeros():
    from billing.templatetags.billing import units

    assert units(Decimal("1600.0000")) == "1,600"
    assert units(Decimal("0.01250000")) == "0.0125"
    assert units(Decimal("1234567.5")) == "1,234,567.5"
    assert units(None) == ""


def test_list_pages_use_a_constant_number_of_queries(login, alice, tenant, plan, printers):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = login(alice)
    ctx = tenant.ctx()

    def counts() -> list[int]:
        result = []
        for name in ("plan-list", "contract-list", "statement-list"):
            with CaptureQueriesContext(connection) as queries:
                assert client.get(reverse(name)).status_code == 200
            result.append(len(queries))
        return result

    def add_contract(n: int) -> None:
        contract = services.contract_create(
            ctx=ctx,
            customer_id=tenant.customer.pk,
            plan_id=plan.pk,
            reference=f"Q-{n}",
            starts_on=FEB,
        )
        statement_services.statement_compute(ctx=ctx, contract_id=contract.pk, period_start=FEB)

    add_contract(1)
    few = counts()
    for n in range(2, 7):
        add_contract(n)
    services.plan_create(
        ctx=ctx, name="Another", currency="USD", terms=services.plan_terms_demo(FEB)
    )

    assert counts() == few


def test_the_api_shows_plans_and_contracts_to_finance_only(client, tenant, contract, charlie):
    from accounts import services as account_services

    def bearer(ctx, role, **kw):
        _, raw = account_services.api_token_create(ctx=ctx, name="t", role=role, **kw)
        return {"HTTP_AUTHORIZATION": f"Bearer {raw}"}

    finance = bearer(tenant.ctx(), Role.RESELLER_FINANCE)
    plan = client.get(f"/api/v1/plans/{contract.plan_id}", **finance).json()
    detail = client.get(f"/api/v1/contracts/{contract.pk}", **finance).json()

    (version,) = plan["versions"]
    mono = next(r for r in version["rates"] if r["counter"] == "impressions.mono")
    assert mono["tiers"] == [
        {"from_units": "0.0000", "to_units": "1000.0000", "unit_price": "0.01000000"},
        {"from_units": "1000.0000", "to_units": None, "unit_price": "0.00500000"},
    ]
    assert [d["serial"] for d in detail["devices"]] == ["SN-1", "SN-2"]
    assert detail["purchase_order"] == "PO-77"
    support = bearer(tenant.ctx(), Role.RESELLER_SUPPORT)
    assert client.get(f"/api/v1/contracts/{contract.pk}", **support).status_code == 403
    foreign = bearer(_ctx_of(charlie), Role.RESELLER_ADMIN)
    assert client.get(f"/api/v1/contracts/{contract.pk}", **foreign).status_code == 404
    assert client.get(f"/api/v1/plans/{contract.plan_id}", **foreign).status_code == 404


def _ctx_of(user):
    from portal.tenancy import TenantContext

    membership = user.memberships.get()
    return TenantContext(reseller=membership.reseller, role=Role.RESELLER_ADMIN, user=user)


def test_usage_export_keeps_machine_column_names_for_a_german_reader(login, alice, final):
    alice.language = "de"
    alice.save(update_fields=["language"])

    response = login(alice).get(reverse("usage-export"), {"month": "2026-02"})

    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0][:3] == ["statement_number", "statement_status", "statement_kind"]
    assert rows[1][1] == "final"  # codes, not "Endgültig"
