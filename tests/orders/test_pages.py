"""The orders pages as users see them: catalog, mappings, policies, the supplies overview with
its forecast column, the device page, the dashboard widget, emails and preferences."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.core import mail
from django.utils.timezone import now

from orders import supply_services
from orders.models import NotificationPreference, Order, Product, ReorderPolicy
from tests.factories import DeviceFactory, SupplyFactory, SupplyReadingFactory
from tests.orders.conftest import daily

pytestmark = pytest.mark.django_db


def evaluate(*devices, capture=None):
    ids = [d.pk for d in devices]
    if capture is None:
        supply_services.supplies_evaluate(device_ids=ids)
        return
    with capture(execute=True):
        supply_services.supplies_evaluate(device_ids=ids)


def test_a_reseller_admin_adds_a_product_and_customers_cannot_manage_the_catalog(
    tenant, alice, bob, login, client
):
    response = login(alice).post(
        "/catalog/new/",
        {
            "sku": "HP-212X-C",
            "part_number": "W2121X",
            "name": "HP 212X cyan",
            "kind": "toner",
            "color": "Cyan",
            "rated_yield": 10000,
            "yield_unit": "pages",
            "compatible_models": "HP Color LaserJet M555\n\nHP Color LaserJet M578",
            "price": "149.5",
            "currency": "EUR",
            "is_active": "on",
        },
    )

    assert response.status_code == 302
    product = Product.unscoped.get(sku="HP-212X-C")
    assert (product.color, str(product.price), product.compatible_models) == (
        "cyan",
        "149.50",
        ["HP Color LaserJet M555", "HP Color LaserJet M578"],
    )
    assert "HP-212X-C" in client.get("/catalog/").content.decode()
    duplicate = client.post("/catalog/new/", {**_product_post(), "sku": "hp-212x-c"})
    assert "Already in the catalog." in duplicate.content.decode()
    assert Product.unscoped.count() == 1

    client.logout()
    bobs = login(bob)
    assert bobs.get("/catalog/").status_code == 403
    assert bobs.post("/catalog/new/", _product_post()).status_code == 403


def _product_post():
    return {
        "sku": "X-1",
        "name": "X",
        "kind": "toner",
        "yield_unit": "pages",
        "price": "1.00",
        "currency": "EUR",
    }


def test_the_supplies_overview_shows_and_sorts_by_days_to_empty(tenant, alice, device, login):
    fast = SupplyFactory(device=device, supply_key="toner-cyan", color="cyan", percent=40.0)
    slow = SupplyFactory(device=device, supply_key="toner-magenta", color="magenta", percent=30.0)
    for supply, per_day in ((fast, 4.0), (slow, 0.5)):
        for at, percent in daily(supply.percent + per_day * 9, per_day, 10):
            SupplyReadingFactory(
                device=device, supply_key=supply.supply_key, collected_at=at, percent=percent
            )
    evaluate(device)
    client = login(alice)

    by_days = client.get("/supplies/?sort=days").content.decode()
    by_days_desc = client.get("/supplies/?sort=-days").content.decode()

    assert "Empties in" in by_days
    assert "10 days" in by_days
    assert "60 days" in by_days
    assert by_days.index("Cyan toner") < by_days.index("Magenta toner")
    assert by_days_desc.index("Magenta toner") < by_days_desc.index("Cyan toner")


def test_the_device_page_shows_the_forecast_and_coarse_printers_say_so(
    tenant, alice, device, login
):
    coarse = SupplyFactory(device=device, supply_key="toner-black", percent=50.0)
    for i, percent in enumerate((100.0, 75.0, 50.0)):
        SupplyReadingFactory(
            device=device,
            supply_key="toner-black",
            collected_at=now() - timedelta(days=3 - i),
            percent=percent,
        )
    evaluate(device)

    body = login(alice).get(f"/devices/{device.pk}/").content.decode()

    assert coarse.description in body
    assert "coarse levels · threshold" in body


def test_the_dashboard_shows_the_low_supply_widget(tenant, bob, supply, product, report, login):
    report(*daily(20, 1, 10))
    evaluate(supply.device)

    body = login(bob).get("/").content.decode()

    assert "Low supplies" in body
    assert re.search(r"At reorder point</div><div class=\"value\">1<", body)
    assert f"/orders/new/?supply_id={supply.pk}" in body


def test_suggested_supplies_become_one_order_per_site(tenant, bob, supply, product, report, login):
    other_site_device = DeviceFactory(site__customer=tenant.customer, model=supply.device.model)
    other = SupplyFactory(device=other_site_device, part_number="W2120X", percent=9.0)
    report(*daily(20, 1, 10))
    evaluate(supply.device, other_site_device)
    client = login(bob)
    page = client.get("/orders/suggested/").content.decode()
    assert page.count('name="supply"') == 2

    response = client.post(
        "/orders/suggested/", {"supply": [supply.pk, other.pk], "place": "1"}, follow=True
    )

    assert response.status_code == 200
    orders = list(Order.unscoped.order_by("site_id"))
    assert [(o.site_id, o.status, o.source) for o in orders] == sorted(
        [
            (supply.device.site_id, "submitted", "suggested"),
            (other_site_device.site_id, "submitted", "suggested"),
        ]
    )
    assert 'name="supply"' not in client.get("/orders/suggested/").content.decode()


def test_an_unmatched_supply_is_mapped_once_and_remembered(tenant, alice, device, login):
    supply = SupplyFactory(device=device, part_number="ODD-1", color="black")
    product = Product.unscoped.create(
        reseller=tenant.reseller, sku="GEN-K", name="Generic black", price="20.00"
    )
    evaluate(device)
    client = login(alice)
    assert "ODD-1" in client.get("/catalog/unmatched/").content.decode()

    response = client.post(f"/catalog/unmatched/{supply.pk}/map/", {"product": product.pk})

    assert response.status_code == 302
    assert "ODD-1" not in client.get("/catalog/unmatched/").content.decode()
    twin = SupplyFactory(
        device=DeviceFactory(site=tenant.site, model=device.model),
        part_number="ODD-1",
        color="black",
    )
    evaluate(twin.device)
    assert twin.forecast.product == product


def test_policies_are_set_on_the_page_and_a_customer_admin_may_change_its_own(
    tenant, alice, bob, login, client
):
    response = login(alice).post(
        "/settings/reorder/",
        {
            "customer": tenant.customer.pk,
            "threshold_percent": 20,
            "lead_time_days": 10,
            "mode": "draft",
            "requires_approval": "on",
        },
    )
    assert response.status_code == 302
    policy = ReorderPolicy.unscoped.get()
    assert (policy.threshold_percent, policy.lead_time_days, policy.mode) == (20, 10, "draft")
    assert policy.requires_approval is True

    client.logout()
    refused = login(bob).post(
        "/settings/reorder/",
        {
            "customer": tenant.customer.pk,
            "threshold_percent": 101,
            "lead_time_days": 3,
            "mode": "x",
        },
    )
    assert refused.status_code == 200
    policy.refresh_from_db()
    assert policy.threshold_percent == 20


def test_emails_are_listed_for_the_tenant_and_preferences_are_kept(
    tenant, bob, supply, product, report, login, django_capture_on_commit_callbacks
):
    report(*daily(20, 1, 10))
    evaluate(supply.device, capture=django_capture_on_commit_callbacks)
    client = login(bob)

    listing = client.get("/emails/").content.decode()
    detail_url = re.search(r'href="(/emails/\d+/)"', listing).group(1)
    detail = client.get(detail_url).content.decode()

    assert len(mail.outbox) == 3
    assert listing.count("Black toner low on Front office") == 3
    assert f"/orders/new/?supply_id={supply.pk}" in detail

    client.post("/settings/notifications/", {"order_status": "on"})
    assert dict(
        NotificationPreference.unscoped.filter(user=bob).values_list("kind", "is_enabled")
    ) == {"supply_low": False, "printer_critical": False, "order_status": True}


def test_the_replacements_page_shows_the_yield_against_the_rated_one(
    tenant, bob, supply, product, report, login
):
    start = now() - timedelta(days=20)
    report((start, 100.0), pages=50_000)
    report((start + timedelta(days=1), 100.0), serial="CART-2", pages=50_100)
    report((start + timedelta(days=5), 40.0), pages=56_000)
    report((start + timedelta(days=9), 98.0), serial="CART-3", pages=59_850)
    evaluate(supply.device)

    body = login(bob).get("/supplies/replacements/").content.decode()

    rows = re.findall(r"<tr>.*?</tr>", body, flags=re.S)[1:]
    assert len(rows) == 2
    newest, oldest = rows
    assert "40% → 98%" in newest
    assert re.search(r">9,750<.*>13,000<.*>75%<", newest, flags=re.S)
    assert "CART-3" in newest
    assert "unknown" in oldest  # the first cartridge's install was never seen


def _queries(client, path):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        assert client.get(path).status_code == 200
    return len(captured)


@pytest.mark.parametrize(
    "path",
    ["/orders/", "/orders/suggested/", "/emails/", "/supplies/replacements/", "/catalog/"],
)
def test_list_pages_cost_the_same_queries_for_two_rows_or_twelve(
    tenant, alice, device, product, login, path, django_capture_on_commit_callbacks
):
    from orders import services

    client = login(alice)

    def add_rows(n):
        for i in range(n):
            supply = SupplyFactory(device=device, part_number="W2120X", percent=5.0)
            for day in range(2):
                SupplyReadingFactory(
                    device=device,
                    supply_key=supply.supply_key,
                    collected_at=now() - timedelta(days=2 - day),
                    percent=100.0 if day else 8.0,
                    serial=f"S{i}-{day}",
                )
            services.order_create(
                ctx=tenant.ctx(),
                site_id=tenant.site.pk,
                lines=[services.LineIn(product_id=product.pk)],
                submit=True,
            )
        evaluate(device, capture=django_capture_on_commit_callbacks)

    add_rows(2)
    few = _queries(client, path)
    add_rows(10)
    many = _queries(client, path)

    assert few == many
