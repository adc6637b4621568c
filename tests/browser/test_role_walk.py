"""Each role's main pages in a real browser, on a desktop and on a phone.

For every role the walk opens the pages the role's sidebar offers it (and a device, order and
statement of its fleet), at 1440 and at 390 pixels wide, and asks of each: answered 200 where it
was asked (no bounce to a sign-in or second-factor page), no console or script error, nothing
wider than the screen, and the page's heading on view. A page the role may not see is not in
its walk; each list page of the walk must be a link of the role's own sidebar.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from allauth.account.models import EmailAddress
from django.conf import settings
from django.test import Client
from django.urls import reverse
from django.utils.timezone import now

from portal.tenancy import Role, TenantContext
from tests.factories import (
    AlertFactory,
    CounterReadingFactory,
    CustomerFactory,
    DeviceFactory,
    DeviceStateFactory,
    JobFactory,
    MembershipFactory,
    ProductFactory,
    ResellerFactory,
    SiteFactory,
    SupplyFactory,
    SupplyReadingFactory,
    UserFactory,
    sign_in,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WIDTHS = {1440: 900, 390: 844}


@dataclass(frozen=True)
class Fleet:
    reseller: Any
    customer: Any
    device: Any
    order: Any
    statement: Any


def _fleet() -> Fleet:
    """A reseller with a customer's office: three printers with supplies, readings, jobs and an
    alert, a placed order, and a final statement for last year's March."""
    from billing import services, statement_services
    from devices.models import Supply
    from orders.models import Order, OrderLine

    reseller = ResellerFactory(name="Northwind Print Services", slug="northwind")
    customer = CustomerFactory(reseller=reseller, name="Harbour Logistics GmbH")
    CustomerFactory(reseller=reseller, name="Kessler Architects")
    site = SiteFactory(customer=customer, name="Speicherstadt office", city="Hamburg")
    devices = [
        DeviceFactory(site=site, name=name, model=model)
        for name, model in (
            ("Reception colour printer", "HP Color LaserJet Enterprise MFP M578"),
            ("Accounts mono", "Brother HL-L6400DW"),
            ("Warehouse label desk", "Kyocera ECOSYS P3155dn"),
        )
    ]
    for number, device in enumerate(devices):
        DeviceStateFactory(device=device, hostname=f"printer-{number}.harbour.local")
        for color, percent in (("black", 42.0), ("cyan", 7.0), ("magenta", 63.0), ("yellow", 88.0)):
            SupplyFactory(
                device=device,
                supply_key=f"toner-{color}",
                color=color,
                percent=percent - number * 3,
                level_state="low" if percent < 10 else "ok",
            )
        for days_ago in (2, 1, 0):
            CounterReadingFactory(
                device=device,
                collected_at=now() - timedelta(days=days_ago),
                name="impressions.total",
                value=12000 + number * 5000 - days_ago * 150,
            )
            SupplyReadingFactory(
                device=device,
                supply_key="toner-black",
                collected_at=now() - timedelta(days=days_ago),
                percent=50.0 - days_ago * 4,
            )
        JobFactory(device=device, name="Quarterly freight report.pdf")
    device = devices[0]
    AlertFactory(device=device, severity="critical", description="Paper jam in tray 2")
    _webhooks(reseller)

    product = ProductFactory(reseller=reseller, name="HP 212X Cyan toner", sku="W2121X")
    order = Order.unscoped.create(
        reseller=reseller, customer=customer, site=site, currency="EUR", note="For reception"
    )
    OrderLine.unscoped.create(
        reseller=reseller,
        order=order,
        product=product,
        supply=Supply.unscoped.get(device=device, supply_key="toner-cyan"),
        unit_price=Decimal("189.00"),
        line_total=Decimal("189.00"),
    )

    ctx = TenantContext.system(reseller=reseller)
    plan = services.plan_create(
        ctx=ctx,
        name="Managed print, standard",
        currency="EUR",
        terms=services.plan_terms_demo(date(2025, 1, 1)),
    )
    contract = services.contract_create(
        ctx=ctx,
        customer_id=customer.pk,
        plan_id=plan.pk,
        reference="HL-2025-001",
        purchase_order="PO-4471",
        starts_on=date(2025, 1, 1),
    )
    for billed in devices[:2]:
        services.contract_device_add(
            ctx=ctx, contract_id=contract.pk, device_id=billed.pk, joined_on=date(2025, 1, 1)
        )
        for day, value in (("2025-02-28", 10000), ("2025-03-31", 16400)):
            CounterReadingFactory(
                device=billed,
                collected_at=datetime.fromisoformat(day).replace(hour=12, tzinfo=UTC),
                name="impressions.mono",
                value=value,
            )
    draft = statement_services.statement_compute(
        ctx=ctx, contract_id=contract.pk, period_start=date(2025, 3, 1)
    )
    statement = statement_services.statement_finalise(ctx=ctx, statement_id=draft.pk, by=None)
    return Fleet(reseller, customer, device, order, statement)


@pytest.fixture
def final_statements_cleared(live_server):
    """The flush that ends a transactional test deletes rows one by one on SQLite, which the
    triggers keeping a final statement immutable refuse: the test's final statements go first,
    with the triggers lifted for that moment. (PostgreSQL truncates, which they let through.)"""
    yield
    from importlib import import_module

    from django.db import connection

    from billing.models import Statement

    if connection.vendor != "sqlite":
        return
    triggers = import_module("billing.migrations.0002_final_statements_immutable")
    with connection.cursor() as cursor:
        for sql in triggers.SQLITE_BACKWARD:
            cursor.execute(sql)
        try:
            Statement.unscoped.all().delete()
        finally:
            for sql in triggers.SQLITE_FORWARD:
                cursor.execute(sql)


def _webhooks(reseller: Any) -> None:
    """An ERP endpoint with a delivery that failed and one that went through."""
    from integrations.models import Event, WebhookDelivery, WebhookEndpoint

    endpoint = WebhookEndpoint.unscoped.create(
        reseller=reseller,
        url="https://erp.northwind-print.example/inkmeter/webhooks/incoming-events",
        description="ERP order intake",
        secret="whsec_walk",
        events=[Event.ORDER_PLACED, Event.STATEMENT_FINALISED],
    )
    for status, code in (("failed", 502), ("succeeded", 200)):
        WebhookDelivery.unscoped.create(
            reseller=reseller,
            endpoint=endpoint,
            event=Event.ORDER_PLACED,
            payload={"type": "order.placed"},
            status=status,
            attempts=8 if status == "failed" else 1,
            response_code=code,
            error="HTTP 502" if code == 502 else "",
        )


def _member(fleet: Fleet, role: Role, email: str) -> Any:
    totp = role in (Role.RESELLER_ADMIN, Role.RESELLER_FINANCE)
    user = UserFactory(email=email, totp=totp)
    EmailAddress.objects.create(user=user, email=email, verified=True, primary=True)
    MembershipFactory(
        user=user,
        reseller=fleet.reseller,
        role=role,
        customer=fleet.customer if role == Role.CUSTOMER_ADMIN else None,
    )
    return user


def _sign_in_browser(page: Any, live_server: Any, user: Any) -> None:
    """The session of someone who gave password and (for staff roles) the authenticator's code,
    as the test client signs it in, handed to the browser."""
    client = sign_in(Client(), user)
    page.context.add_cookies(
        [
            {
                "name": settings.SESSION_COOKIE_NAME,
                "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
                "url": live_server.url,
            }
        ]
    )


DEVICES = ["dashboard", "devices", "device", "supplies", "alerts", "orders", "order"]
STATEMENTS = ["statements", "statement"]
# Pages reached from another page's button, by route name: forms (walked for their labels in
# both languages), the delivery log and the reorder rules.
FORMS = (
    "webhook-deliveries",
    "reseller-settings",
    "plan-create",
    "contract-create",
    "credential-create",
    "product-create",
    "policy-list",
)
WALKS: dict[str, tuple[Role, list[str]]] = {
    "reseller-admin": (
        Role.RESELLER_ADMIN,
        [*DEVICES, *STATEMENTS, "customers", "customer-edit", "users", "webhooks", *FORMS],
    ),
    "reseller-support": (Role.RESELLER_SUPPORT, [*DEVICES, "customers"]),
    "finance": (Role.RESELLER_FINANCE, [*DEVICES, *STATEMENTS]),
    "customer": (Role.CUSTOMER_ADMIN, [*DEVICES, *STATEMENTS]),
    "operator": (Role.OPERATOR, ["resellers", "operator-audit", "dashboard", "devices", "device"]),
}
# The pages a sidebar link leads to; the others are one object's page, reached from a list.
LIST_ROUTES = {
    "dashboard": "dashboard",
    "devices": "device-list",
    "supplies": "supply-list",
    "alerts": "alert-list",
    "orders": "order-list",
    "statements": "statement-list",
    "customers": "customer-list",
    "users": "user-list",
    "webhooks": "webhook-list",
    "resellers": "operator-home",
    "operator-audit": "operator-audit",
}


def _url(name: str, fleet: Fleet) -> str:
    if name == "device":
        return reverse("device-detail", kwargs={"device_id": fleet.device.pk})
    if name == "order":
        return reverse("order-detail", kwargs={"order_id": fleet.order.pk})
    if name == "statement":
        return reverse("statement-detail", kwargs={"statement_id": fleet.statement.pk})
    if name == "customer-edit":
        return reverse("customer-edit", kwargs={"customer_id": fleet.customer.pk})
    if name in FORMS:
        return reverse(name)
    return reverse(LIST_ROUTES[name])


def _check(
    page: Any, live_server: Any, role: str, name: str, path: str, width: int, shot: Any, lang: str
):
    response = page.goto(f"{live_server.url}{path}")
    where = f"{role} {name} at {width}px in {lang}"
    assert response is not None, where
    assert response.status == 200, where
    assert page.url == f"{live_server.url}{path}", f"{where}: ended at {page.url}"
    heading = page.locator("h1").first
    assert heading.is_visible(), f"{where}: no visible heading"
    scroll_width = page.evaluate("document.documentElement.scrollWidth")
    assert scroll_width <= width + 1, f"{where}: {scroll_width}px wide"
    if name in LIST_ROUTES and name not in ("resellers", "operator-audit"):
        # Only what the role's own sidebar offers it is in its walk.
        assert page.locator(f'nav.nav a[href="{path}"]').count() == 1, f"{where}: not in nav"
    assert page.locator("html").get_attribute("lang") == lang, where
    shot(f"{role}-{name}-{width}" + ("" if lang == "en" else f"-{lang}"))
    assert page.console_errors == [], f"{where}: {page.console_errors}"


# German words are longer: the walk is made in both languages, each page checked for width.
@pytest.mark.parametrize("language", ["en", "de"])
@pytest.mark.parametrize("role", list(WALKS))
def test_each_role_walks_its_main_pages_at_desktop_and_phone_width(
    role, language, page, live_server, screenshot, final_statements_cleared
):
    fleet = _fleet()
    role_value, walk = WALKS[role]
    page.on("pageerror", lambda error: page.console_errors.append(str(error)))
    if role_value == Role.OPERATOR:
        user = UserFactory(email="olga@inkmeter.test", is_superuser=True, is_staff=True, totp=True)
    else:
        user = _member(fleet, role_value, f"{role}@northwind.test")
    user.language = language
    user.save(update_fields=["language"])
    _sign_in_browser(page, live_server, user)

    for width, height in WIDTHS.items():
        page.set_viewport_size({"width": width, "height": height})
        for name in walk:
            if role_value == Role.OPERATOR and name == "dashboard":
                # Inside the reseller from here on, as the console's Enter button puts them.
                page.goto(f"{live_server.url}{reverse('operator-home')}")
                page.locator("tr", has_text=fleet.reseller.name).locator(
                    "button[type=submit]"
                ).click()
                page.wait_for_url(f"{live_server.url}/")
            path = _url(name, fleet)
            _check(page, live_server, role, name, path, width, screenshot, language)
        if role_value == Role.OPERATOR:
            page.locator(".operator-banner button[type=submit]").click()
            page.wait_for_url(f"{live_server.url}{reverse('operator-home')}")
