"""The integration API over the fleet: devices, supplies, counters, meter reads and alerts
(docs/api.md), and orders' `updated_since`. Read through HTTP with API tokens, as an ERP would:
alice's reseller (`tenant`), bob's customer (a customer token) and charlie's foreign reseller."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import time_machine
from django.test import Client

from accounts import services as accounts
from devices import fleet_services
from devices.models import Device, Snapshot
from orders import services as orders
from portal.tenancy import Role
from tests.conftest import Tenant
from tests.devices.conftest import Post, Signed, snapshot
from tests.factories import (
    AlertFactory,
    CustomerFactory,
    DeviceFactory,
    DeviceStateFactory,
    ProductFactory,
    SiteFactory,
    SupplyFactory,
)

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
LISTS = ["/api/v1/devices", "/api/v1/supplies", "/api/v1/meter-reads", "/api/v1/alerts"]


def _token(tenant: Tenant, role: Role = Role.RESELLER_ADMIN) -> dict[str, str]:
    customer_id = tenant.customer.pk if role in (Role.CUSTOMER_ADMIN, Role.CUSTOMER_BUYER) else None
    _, raw = accounts.api_token_create(
        ctx=tenant.ctx(), name=f"ERP {role}", role=role, customer_id=customer_id
    )
    return {"Authorization": f"Bearer {raw}"}


def _get(client: Client, path: str, headers: dict[str, str], **params: Any) -> Any:
    response = client.get(path, params, headers=headers)
    assert response.status_code == 200, response.content
    return response.json()


def _walk(
    client: Client, path: str, headers: dict[str, str], between: Any = None, **params: Any
) -> list[int]:
    """Every id of a cursor-paged list, page by page; `between(n)` runs after page n."""
    ids: list[int] = []
    page = _get(client, path, headers, **params)
    n = 0
    while True:
        ids += [row["id"] for row in page["results"]]
        if page["next"] is None:
            return ids
        n += 1
        if between is not None:
            between(n)
        cursor = parse_qs(urlsplit(page["next"]).query)["cursor"][0]
        page = _get(client, path, headers, **params, cursor=cursor)


@pytest.fixture
def alpha(tenant: Tenant) -> dict[str, str]:
    return _token(tenant)


# --- Authentication and tenants ---------------------------------------------------------------


@pytest.mark.parametrize("path", [*LISTS, "/api/v1/devices/1", "/api/v1/devices/1/counters"])
def test_every_endpoint_needs_a_token(client: Client, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"

    response = client.get(path, headers={"Authorization": "Bearer ink_000000000000_nope"})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "authentication_failed"


def test_foreign_device_is_not_found_and_foreign_rows_never_listed(
    client: Client, tenant: Tenant, foreign_tenant: Tenant, alpha: dict[str, str]
) -> None:
    mine = DeviceFactory(site=tenant.site)
    theirs = DeviceFactory(site=foreign_tenant.site, serial="CHARLIE-SN")
    for device in (mine, theirs):
        SupplyFactory(device=device)
        AlertFactory(device=device)

    for path in (f"/api/v1/devices/{theirs.pk}", f"/api/v1/devices/{theirs.pk}/counters"):
        response = client.get(path, headers=alpha)
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"
        # The same answer as for an id no device has.
        missing = client.get(path.replace(str(theirs.pk), str(2**31 - 1)), headers=alpha)
        assert (missing.status_code, missing.content) == (404, response.content)
    for path in ("/api/v1/supplies", "/api/v1/alerts", "/api/v1/meter-reads"):
        assert _get(client, path, alpha, device=theirs.pk)["results"] == []
    for path in LISTS:
        body = client.get(path, headers=alpha).content.decode()
        assert "CHARLIE" not in body
    assert _walk(client, "/api/v1/devices", alpha) == [mine.pk]


def test_customer_token_sees_only_its_customers_devices(
    client: Client, tenant: Tenant, post: Post, collector: Signed
) -> None:
    other_site = SiteFactory(customer=CustomerFactory(reseller=tenant.reseller, name="Other"))
    own = DeviceFactory(site=tenant.site)
    other = DeviceFactory(site=other_site, serial="OTHER-SN")
    for device in (own, other):
        DeviceStateFactory(device=device)
        SupplyFactory(device=device)
        AlertFactory(device=device)
    assert post(collector, [snapshot("CN-OWN")]).status_code == 202
    reported = Device.objects.for_tenant(tenant.ctx()).get(serial="CN-OWN")
    bob = _token(tenant, Role.CUSTOMER_BUYER)

    assert _walk(client, "/api/v1/devices", bob) == sorted([own.pk, reported.pk])
    assert {s["device"] for s in _get(client, "/api/v1/supplies", bob)["results"]} == {
        own.pk,
        reported.pk,
    }
    assert {a["device"] for a in _get(client, "/api/v1/alerts", bob)["results"]} == {own.pk}
    assert [r["device"] for r in _get(client, "/api/v1/meter-reads", bob)["results"]] == [
        reported.pk
    ]
    # Naming the other customer's objects finds nothing.
    assert client.get(f"/api/v1/devices/{other.pk}", headers=bob).status_code == 404
    assert client.get(f"/api/v1/devices/{other.pk}/counters", headers=bob).status_code == 404
    assert _get(client, "/api/v1/devices", bob, customer=other_site.customer_id)["results"] == []
    assert _get(client, "/api/v1/supplies", bob, device=other.pk)["results"] == []
    assert "OTHER-SN" not in client.get("/api/v1/alerts", headers=bob).content.decode()


# --- What the endpoints answer ------------------------------------------------------------------


def test_device_detail_has_supplies_and_current_counters(
    client: Client, tenant: Tenant, post: Post, collector: Signed, alpha: dict[str, str]
) -> None:
    first, last = T0, T0 + timedelta(hours=1)
    assert post(collector, [snapshot("CN1", at=first, total=1000)]).status_code == 202
    assert post(collector, [snapshot("CN1", at=last, total=1250, cyan=40)]).status_code == 202
    device = Device.objects.for_tenant(tenant.ctx()).get(serial="CN1")

    body = _get(client, f"/api/v1/devices/{device.pk}", alpha)

    assert body["serial"] == "CN1"
    assert body["customer"] == tenant.customer.pk
    assert body["site"] == tenant.site.pk
    assert body["last_seen_at"] == "2026-03-02T09:00:00Z"
    assert [(s["supply_key"], s["percent"]) for s in body["supplies"]] == [
        ("ink-cyan", 30.77)  # rounded to two places by ingestion
    ]
    current = {(c["name"], c["media_type"], c["color"]): c for c in body["counters"]}
    assert current[("impressions.total", "", "")]["value"] == "1250.0000"
    assert current[("impressions.total", "", "")]["collected_at"] == "2026-03-02T09:00:00Z"
    assert current[("ink.used", "", "cyan")]["value"] == "12.5000"
    assert _get(client, f"/api/v1/devices/{device.pk}/counters", alpha) == body["counters"]


def test_meter_reads_are_each_report_with_its_counters_oldest_first(
    client: Client, tenant: Tenant, post: Post, collector: Signed, alpha: dict[str, str]
) -> None:
    for hour, serial in [(2, "CN1"), (0, "CN1"), (1, "CN2")]:
        at = T0 + timedelta(hours=hour)
        assert post(collector, [snapshot(serial, at=at, total=1000 + hour)]).status_code == 202
    cn1 = Device.objects.for_tenant(tenant.ctx()).get(serial="CN1")

    reads = _get(client, "/api/v1/meter-reads", alpha)["results"]

    assert [(r["device_serial"], r["collected_at"]) for r in reads] == [
        ("CN1", "2026-03-02T08:00:00Z"),
        ("CN2", "2026-03-02T09:00:00Z"),
        ("CN1", "2026-03-02T10:00:00Z"),
    ]
    assert {c["name"]: c["value"] for c in reads[1]["counters"]} == {
        "impressions.total": "1001.0000",
        "ink.used": "10.0100",
        "media.area": "100.1000",
    }
    one = _get(client, "/api/v1/meter-reads", alpha, device=cn1.pk, since="2026-03-02T09:00:00Z")
    assert [(r["device"], r["collected_at"]) for r in one["results"]] == [
        (cn1.pk, "2026-03-02T10:00:00Z")
    ]


def test_supply_and_alert_filters(client: Client, tenant: Tenant, alpha: dict[str, str]) -> None:
    device = DeviceFactory(site=tenant.site)
    low = SupplyFactory(device=device, percent=8.0)
    SupplyFactory(device=device, percent=60.0)
    SupplyFactory(device=DeviceFactory(site=tenant.site, retired_at=T0), percent=1.0)
    open_alert = AlertFactory(device=device, code="printer.jam", severity="critical")
    closed = AlertFactory(device=device, code="printer.jam", cleared_at=T0)
    AlertFactory(device=device, code="printer.door")

    assert [s["id"] for s in _get(client, "/api/v1/supplies", alpha, below=10)["results"]] == [
        low.pk
    ]
    jams = _get(client, "/api/v1/alerts", alpha, code="printer.jam")["results"]
    assert [(a["id"], a["is_open"]) for a in jams] == [(open_alert.pk, True), (closed.pk, False)]
    assert [a["id"] for a in _get(client, "/api/v1/alerts", alpha, state="closed")["results"]] == [
        closed.pk
    ]
    assert [
        a["id"] for a in _get(client, "/api/v1/alerts", alpha, severity="critical")["results"]
    ] == [open_alert.pk]


# --- Cursor pages ---------------------------------------------------------------------------------


def test_device_pages_meet_every_device_once_while_devices_are_added(
    client: Client, tenant: Tenant, alpha: dict[str, str]
) -> None:
    devices = [DeviceFactory(site=tenant.site) for _ in range(7)]

    def add(n: int) -> None:
        devices.append(DeviceFactory(site=tenant.site))

    seen = _walk(client, "/api/v1/devices", alpha, between=add, page_size=3)

    # 7 devices, 3 a page, one added after each full page: 3 + 3 + 3 (the last one added).
    assert seen == sorted(d.pk for d in devices)
    assert len(devices) == 9


def test_meter_read_pages_meet_every_read_once_while_reads_arrive(
    client: Client, tenant: Tenant, post: Post, collector: Signed, alpha: dict[str, str]
) -> None:
    # Two reads at the same instant: the id breaks the tie.
    for n in range(5):
        at = T0 + timedelta(hours=n // 2)
        assert post(collector, [snapshot(f"CN{n % 2}", at=at)]).status_code == 202
    later = iter(range(10, 20))

    def arrive(n: int) -> None:
        at = T0 + timedelta(hours=next(later))
        assert post(collector, [snapshot("CN0", at=at)]).status_code == 202

    seen = _walk(client, "/api/v1/meter-reads", alpha, between=arrive, page_size=2)

    stored = Snapshot.objects.for_tenant(tenant.ctx()).order_by("collected_at", "id")
    assert seen == list(stored.values_list("id", flat=True))
    # 5 reads, 2 a page, one arriving after each full page: 2 + 2 + 2 + 2 (the last arrival).
    assert len(seen) == len(set(seen)) == 8


# --- updated_since --------------------------------------------------------------------------------


def test_updated_since_lists_what_changed(
    client: Client, tenant: Tenant, post: Post, collector: Signed, alpha: dict[str, str]
) -> None:
    with time_machine.travel(T0, tick=False):
        renamed, untouched, retired = (DeviceFactory(site=tenant.site) for _ in range(3))
        old_supply = SupplyFactory(device=untouched, observed_at=T0)
        old_alert = AlertFactory(device=untouched, first_seen_at=T0, last_seen_at=T0)
        cleared = AlertFactory(device=untouched, first_seen_at=T0, last_seen_at=T0)
        order = orders.order_create(
            ctx=tenant.ctx(),
            site_id=tenant.site.pk,
            lines=[orders.LineIn(product_id=ProductFactory(reseller=tenant.reseller).pk)],
            submit=True,
        )
    since = T0 + timedelta(hours=1)
    with time_machine.travel(since + timedelta(minutes=5), tick=False):
        fleet_services.device_rename(ctx=tenant.ctx(), device_id=renamed.pk, name="Front desk")
        fleet_services.device_retire(ctx=tenant.ctx(), device_id=retired.pk)
        new = post(collector, [snapshot("CN-NEW", at=since + timedelta(minutes=1))])
        assert new.status_code == 202
        orders.order_transition(ctx=tenant.ctx(), order_id=order.pk, to="accepted")
        cleared.cleared_at = since + timedelta(minutes=2)
        cleared.save(update_fields=["cleared_at"])
    reported = Device.objects.for_tenant(tenant.ctx()).get(serial="CN-NEW")
    stamp = "2026-03-02T09:00:00Z"

    devices = _get(client, "/api/v1/devices", alpha, updated_since=stamp)["results"]
    assert [d["id"] for d in devices] == sorted([renamed.pk, retired.pk, reported.pk])
    supplies = _get(client, "/api/v1/supplies", alpha, updated_since=stamp)["results"]
    assert [s["device"] for s in supplies] == [reported.pk]
    assert old_supply.pk not in {s["id"] for s in supplies}
    alerts = _get(client, "/api/v1/alerts", alpha, updated_since=stamp)["results"]
    assert [a["id"] for a in alerts] == [cleared.pk]
    assert old_alert.pk not in {a["id"] for a in alerts}
    assert [o["id"] for o in _get(client, "/api/v1/orders", alpha, updated_since=stamp)["results"]]
    assert _get(client, "/api/v1/orders", alpha, updated_since="2026-03-02T10:00:00Z") == {
        "count": 0,
        "next": None,
        "previous": None,
        "results": [],
    }
    # Without an offset, the time is UTC.
    naive = _get(client, "/api/v1/devices", alpha, updated_since="2026-03-02T09:00:00")
    assert naive["results"] == devices


# --- Bad input ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/api/v1/devices", {"updated_since": "yesterday"}, "updated_since"),
        ("/api/v1/devices", {"updated_since": "2026-02-30T00:00:00Z"}, "updated_since"),
        ("/api/v1/supplies", {"updated_since": "1"}, "updated_since"),
        ("/api/v1/alerts", {"updated_since": "2026-13-01"}, "updated_since"),
        ("/api/v1/orders", {"updated_since": "now"}, "updated_since"),
        ("/api/v1/meter-reads", {"since": "soon"}, "since"),
        ("/api/v1/devices", {"status": "asleep"}, "status"),
        ("/api/v1/devices", {"customer": "x"}, "customer"),
        ("/api/v1/devices", {"site": str(2**63)}, "site"),
        ("/api/v1/supplies", {"below": "101"}, "below"),
        ("/api/v1/alerts", {"state": "ajar"}, "state"),
        ("/api/v1/meter-reads", {"device": "0"}, "device"),
        ("/api/v1/devices", {"page_size": "0"}, "page_size"),
        ("/api/v1/meter-reads", {"page_size": "1001"}, "page_size"),
        ("/api/v1/devices", {"cursor": "not a cursor"}, "cursor"),
        ("/api/v1/devices", {"cursor": "WzEsMl0"}, "cursor"),  # [1, 2]: the wrong shape
        ("/api/v1/devices", {"cursor": "WyJ4Il0"}, "cursor"),  # ["x"]
        ("/api/v1/devices", {"cursor": "Wy0xXQ"}, "cursor"),  # [-1]
        ("/api/v1/devices", {"cursor": "W0luZmluaXR5XQ"}, "cursor"),  # [Infinity]
        ("/api/v1/devices", {"cursor": "W05hTl0"}, "cursor"),  # [NaN]
        ("/api/v1/devices", {"cursor": "W1sxXV0"}, "cursor"),  # [[1]]
        ("/api/v1/devices", {"cursor": "x" * 501}, "cursor"),
        ("/api/v1/meter-reads", {"cursor": "WyJ4IiwgMV0"}, "cursor"),  # ["x", 1]
        # A time without an offset: not a cursor this API gives.
        ("/api/v1/meter-reads", {"cursor": "WyIyMDI2LTAzLTAyVDA4OjAwOjAwIiwgMV0"}, "cursor"),
    ],
)
def test_bad_query_is_a_400_naming_the_parameter(
    client: Client, alpha: dict[str, str], path: str, params: dict[str, str], field: str
) -> None:
    response = client.get(path, params, headers=alpha)

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "validation_failed"
    assert list(error["fields"]) == [field]


# --- Query counts ---------------------------------------------------------------------------------


def _fleet(tenant: Tenant, n: int) -> None:
    for _ in range(n):
        device = DeviceFactory(site=tenant.site)
        DeviceStateFactory(device=device)
        SupplyFactory(device=device)
        AlertFactory(device=device)


@pytest.mark.parametrize("path", ["/api/v1/devices", "/api/v1/supplies", "/api/v1/alerts"])
def test_a_list_page_costs_the_same_queries_at_any_size(
    client: Client, tenant: Tenant, alpha: dict[str, str], assert_data_queries: Any, path: str
) -> None:
    client.get(path, headers=alpha)  # the token's first use is recorded once

    def queries(extra: int) -> int:
        _fleet(tenant, extra)
        # The token, then the page with its joins and figures.
        with assert_data_queries(2) as captured:
            assert client.get(path, {"page_size": 10}, headers=alpha).status_code == 200
        return len(captured.captured_queries)

    assert queries(2) == queries(30)


def test_a_meter_read_page_costs_the_same_queries_at_any_size(
    client: Client, post: Post, collector: Signed, alpha: dict[str, str], assert_data_queries: Any
) -> None:
    client.get("/api/v1/meter-reads", headers=alpha)  # the token's first use is recorded once

    def queries(serials: int) -> int:
        snapshots = [
            snapshot(f"CN{n}", at=T0 + timedelta(minutes=n + serials)) for n in range(serials)
        ]
        assert post(collector, snapshots).status_code == 202
        # The token, the page of reads, their counters.
        with assert_data_queries(3) as captured:
            body = client.get("/api/v1/meter-reads", {"page_size": 50}, headers=alpha).json()
        assert all(len(read["counters"]) == 3 for read in body["results"])
        return len(captured.captured_queries)

    assert queries(2) == queries(40)
