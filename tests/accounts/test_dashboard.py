"""The dashboard, through HTTP: every tile's figure is the count of the list it links to, and a
customer's dashboard is about their printers, supplies and orders, not the reseller's business.
As alice (reseller admin), bob (customer admin of tenant.customer) and charlie (foreign)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client
from django.utils.timezone import now

from devices.models import Supply
from orders.models import Order, SupplyAlert, SupplyForecast
from tests.conftest import Tenant
from tests.factories import (
    AlertFactory,
    CustomerFactory,
    DeviceFactory,
    DeviceStateFactory,
    InvitationFactory,
    SiteFactory,
    SupplyFactory,
)

pytestmark = pytest.mark.django_db


def _forecast(supply: Supply, days: float | None) -> None:
    SupplyForecast.unscoped.create(
        supply=supply,
        reseller=supply.reseller,
        customer=supply.device.customer,
        method=SupplyForecast.Method.THEIL_SEN,
        days_to_empty=days,
        evaluated_observed_at=supply.observed_at,
    )


def _reorder_alert(supply: Supply, status: str = SupplyAlert.Status.ARMED) -> None:
    SupplyAlert.unscoped.create(
        supply=supply,
        device=supply.device,
        customer=supply.device.customer,
        reseller=supply.reseller,
        status=status,
        reason=SupplyAlert.Reason.REORDER_POINT,
        percent=supply.percent,
    )


@pytest.fixture
def fleet(tenant: Tenant, foreign_tenant: Tenant) -> dict[str, Any]:
    """Two customers of alice's reseller with supplies at every stage, and a foreign fleet
    whose figures must count nowhere."""
    other_site = SiteFactory(customer=CustomerFactory(reseller=tenant.reseller, name="Other Co"))
    ours = DeviceFactory(site=tenant.site, serial="OURS-1")
    theirs = DeviceFactory(site=other_site, serial="OTHER-1")
    foreign = DeviceFactory(site=foreign_tenant.site, serial="FOREIGN-1")
    for device in (ours, theirs, foreign):
        DeviceStateFactory(device=device)
    # ours: 4% (alert armed, empty in 2 days), 10% (alert sent, 6.5 days), 40% (alert closed,
    # 7 days exactly), 90% (30 days); theirs: 3% (alert, 1 day); foreign: 1% (alert, 1 day).
    plan = [
        (ours, 4.0, SupplyAlert.Status.ARMED, 2.0),
        (ours, 10.0, SupplyAlert.Status.SENT, 6.5),
        (ours, 40.0, SupplyAlert.Status.CLOSED, 7.0),
        (ours, 90.0, None, 30.0),
        (theirs, 3.0, SupplyAlert.Status.ARMED, 1.0),
        (foreign, 1.0, SupplyAlert.Status.ARMED, 1.0),
    ]
    for device, percent, alert, days in plan:
        supply = SupplyFactory(device=device, percent=percent)
        _forecast(supply, days)
        if alert is not None:
            _reorder_alert(supply, alert)
    AlertFactory(device=ours, severity="critical", description="Paper jam")
    AlertFactory(device=theirs, severity="warning", description="Cover open")
    AlertFactory(device=ours, severity="warning", cleared_at=now())
    AlertFactory(device=foreign, severity="critical")
    return {"ours": ours, "theirs": theirs}


def _tile(body: str, tile_id: str) -> tuple[int, str]:
    """The figure of a dashboard tile and the link it leads to."""
    match = re.search(
        rf'<a class="stat stat-link" href="([^"]+)" id="{tile_id}">(.*?)</a>', body, re.S
    )
    assert match, f"no tile {tile_id}"
    value = re.search(r'<div class="value">([\d,]+)', match.group(2))
    assert value, f"tile {tile_id} shows no figure"
    return int(value.group(1).replace(",", "")), match.group(1).replace("&amp;", "&")


def _listed(client: Client, url: str) -> int:
    """How many rows the list at `url` says it has (its pagination's total), 0 when empty."""
    body = client.get(url).content.decode()
    total = re.search(r'class="pagination"[^>]*data-total="(\d+)"', body)
    return int(total.group(1)) if total else 0


TILES = ["stat-alerts", "stat-supplies", "stat-reorder", "stat-empty-soon", "stat-orders"]


@pytest.mark.parametrize("who", ["alice", "bob"])
def test_every_tile_shows_the_count_of_the_list_it_links_to(
    who: str, request: Any, fleet: dict[str, Any], login: Any
) -> None:
    client = login(request.getfixturevalue(who))

    body = client.get("/").content.decode()

    for tile_id in TILES:
        figure, url = _tile(body, tile_id)
        assert figure == _listed(client, url), (tile_id, url)


def test_the_tiles_count_what_they_say(fleet: dict[str, Any], alice: Any, login: Any) -> None:
    body = login(alice).get("/").content.decode()

    # Open alerts: the cleared one and the foreign one do not count.
    assert _tile(body, "stat-alerts") == (2, "/alerts/")
    # Below 15%: 4, 10 and 3; not 40 or 90, not the foreign 1.
    assert _tile(body, "stat-supplies") == (3, "/supplies/?low=1")
    # At reorder point: the armed and the sent alerts; a closed alert is over.
    assert _tile(body, "stat-reorder") == (3, "/supplies/?reorder=1")
    # Empty within 7 days: 2, 6.5, 7 and 1 days; not 30.
    assert _tile(body, "stat-empty-soon") == (4, "/supplies/?days=7")


def test_a_customer_counts_only_its_own(fleet: dict[str, Any], bob: Any, login: Any) -> None:
    body = login(bob).get("/").content.decode()

    assert _tile(body, "stat-alerts")[0] == 1
    assert _tile(body, "stat-supplies")[0] == 2
    assert _tile(body, "stat-reorder")[0] == 2
    assert _tile(body, "stat-empty-soon")[0] == 3


def test_the_reorder_and_empty_soon_lists_show_those_supplies(
    fleet: dict[str, Any], alice: Any, login: Any
) -> None:
    client = login(alice)

    reorder = client.get("/supplies/?reorder=1").content.decode()
    soon = client.get("/supplies/?days=7").content.decode()

    assert len(re.findall(r'href="/devices/\d+/"', reorder)) == 3
    assert "OURS-1" in reorder
    assert "OTHER-1" in reorder
    assert "FOREIGN-1" not in reorder
    assert len(re.findall(r'href="/devices/\d+/"', soon)) == 4
    # The filters stay visible, checked, so they can be taken off.
    assert 'name="reorder" value="1" checked' in reorder
    assert 'name="days" value="7" checked' in soon


def test_a_customer_dashboard_shows_its_printers_and_orders_not_the_resellers_business(
    tenant: Tenant, fleet: dict[str, Any], bob: Any, login: Any
) -> None:
    InvitationFactory(reseller=tenant.reseller, email="new@alpha.test")
    Order.unscoped.create(
        reseller=tenant.reseller,
        customer=tenant.customer,
        site=tenant.site,
        status=Order.Status.SUBMITTED,
        currency="EUR",
    )

    body = login(bob).get("/").content.decode()

    for reseller_tile in ("Customers</div>", "Pending invitations", "Users</div>", "Sites</div>"):
        assert reseller_tile not in body
    printers = body[body.index('id="your-printers"') : body.index('id="open-orders"')]
    assert "OURS-1" in printers
    assert "OTHER-1" not in printers
    orders = body[body.index('id="open-orders"') :]
    assert "ORD-" in orders
    assert "Submitted" in orders
    assert "<h1>Alpha Customer</h1>" in body


def test_a_reseller_dashboard_keeps_its_business_tiles(
    fleet: dict[str, Any], alice: Any, login: Any
) -> None:
    body = login(alice).get("/").content.decode()

    assert "Pending invitations" in body
    assert _tile(body, "stat-customers") == (2, "/customers/")
    assert 'id="your-printers"' not in body
