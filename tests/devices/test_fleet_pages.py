"""The fleet pages: device list, device detail, supplies, alerts and the dashboard's fleet figures,
through HTTP as alice (reseller admin), bob (customer admin) and charlie (foreign admin)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django.utils.timezone import now

from devices import charts
from devices.models import Device, DeviceState, Supply
from devices.rollup_services import device_figures_refresh, page_days_rebuild
from orders.supply_services import supplies_evaluate
from tests.conftest import Tenant
from tests.factories import (
    AlertFactory,
    CounterReadingFactory,
    CustomerFactory,
    DeviceFactory,
    DeviceStateFactory,
    JobFactory,
    SiteFactory,
    SupplyFactory,
    SupplyReadingFactory,
)

pytestmark = pytest.mark.django_db

DEVICES = "/devices/"


def serials(response: Any) -> list[str]:
    """The serials of the device table, in page order."""
    return re.findall(r'class="mono">([^<]+)</a>', response.content.decode())


def online(site: Any, serial: str, **state: Any) -> Device:
    device = DeviceFactory(site=site, serial=serial, **state.pop("device", {}))
    DeviceStateFactory(device=device, **state)
    return device


# --- Charts -----------------------------------------------------------------------------------


def test_nice_max_rounds_up_to_a_readable_axis_top() -> None:
    assert [charts.nice_max(v) for v in (0, 0.7, 1, 3, 7, 12, 230, 2600)] == [
        1.0,
        1.0,
        1.0,
        5.0,
        10.0,
        20.0,
        250.0,
        5000.0,
    ]


def test_line_chart_draws_one_point_per_reading_scaled_into_the_plot() -> None:
    t0 = datetime(2026, 3, 1, tzinfo=UTC)
    points = [(t0 + timedelta(days=i), v) for i, v in enumerate([100.0, 50.0, 0.0])]

    svg = charts.line_chart([charts.Series("Black", points, "supply-black")], title="t", y_max=100)

    (polyline,) = re.findall(r'points="([^"]+)"', svg)
    coords = [tuple(map(float, p.split(","))) for p in polyline.split()]
    left, right = charts.LEFT, 640 - charts.RIGHT
    top, bottom = charts.TOP, 220 - charts.BOTTOM
    assert coords == [(left, top), ((left + right) / 2, (top + bottom) / 2), (right, bottom)]
    assert 'class="chart-line supply-black"' in svg
    assert "style=" not in svg


def test_line_chart_breaks_the_line_at_a_gap_and_keeps_a_lone_point_as_a_dot() -> None:
    t0 = datetime(2026, 3, 1, tzinfo=UTC)
    values = [10.0, 20.0, None, 30.0, None, 40.0, 50.0, 60.0]
    points = [(t0 + timedelta(hours=i), v) for i, v in enumerate(values)]

    svg = charts.line_chart([charts.Series("x", points)], title="t")

    runs = [p.split() for p in re.findall(r'points="([^"]+)"', svg)]
    assert [len(run) for run in runs] == [2, 3]
    assert svg.count("<circle") == 1


def test_chart_text_is_escaped_and_empty_charts_say_so() -> None:
    t0 = datetime(2026, 3, 1, tzinfo=UTC)
    svg = charts.line_chart(
        [charts.Series("<script>", [(t0, 1.0), (t0 + timedelta(days=1), 2.0)])], title='a"b'
    )
    assert "<script>" not in svg
    assert "&lt;script&gt;" in svg
    assert 'aria-label="a&quot;b"' in svg

    assert "No data yet" in charts.line_chart([charts.Series("x", [(t0, None)])], title="t")
    assert "Nothing" in charts.bar_chart([charts.Bar("a", 0)], title="t", empty="Nothing")


def test_bar_chart_draws_a_bar_per_value_with_heights_in_proportion() -> None:
    svg = charts.bar_chart(
        [charts.Bar("a", 10), charts.Bar("b", 20), charts.Bar("c", 0)], title="t", label_every=2
    )

    heights = [
        float(h) for h in re.findall(r'<rect class="chart-bar [^"]*"[^>]* height="([^"]+)"', svg)
    ]
    plot_height = 220 - charts.TOP - charts.BOTTOM
    assert heights == [plot_height / 2, plot_height, 0.0]
    assert re.findall(r'text-anchor="middle">(\w)</text>', svg) == ["a", "c"]


def test_gauge_width_is_the_clamped_percentage() -> None:
    assert 'class="gauge-fill" x="0" y="0" width="42.5"' in charts.gauge(42.5)
    assert 'width="100" height="10" rx="2"/></svg>' in charts.gauge(130)
    unknown = charts.gauge(None, label="Cyan")
    assert "gauge-fill" not in unknown
    assert "Cyan: level unknown" in unknown


# --- Device list ------------------------------------------------------------------------------


def test_the_list_shows_the_tenants_devices_and_not_a_foreign_one(
    tenant: Tenant, foreign_tenant: Tenant, alice: Any, login: Any
) -> None:
    online(tenant.site, "ALPHA-1")
    online(foreign_tenant.site, "CHARLIE-1")

    response = login(alice).get(DEVICES)

    assert response.status_code == 200
    assert serials(response) == ["ALPHA-1"]
    assert "CHARLIE-1" not in response.content.decode()


@pytest.fixture
def fleet(tenant: Tenant) -> dict[str, Device]:
    """Five devices of alice's reseller over two customers, each in a different condition."""
    other_site = SiteFactory(customer=CustomerFactory(reseller=tenant.reseller, name="Other Co"))
    devices = {
        "idle": online(tenant.site, "A-IDLE", ip="10.1.0.5", device={"model": "Mono 400"}),
        "error": online(tenant.site, "B-ERROR", ip="10.1.0.6", state="error"),
        "offline": online(
            other_site,
            "C-OFFLINE",
            ip="172.16.0.9",
            is_online=False,
            offline_since=now(),
            device={"model": "DesignJet T830"},
        ),
        "never": DeviceFactory(site=other_site, serial="D-NEVER"),
    }
    SupplyFactory(device=devices["idle"], percent=8.0, supply_key="toner-k")
    SupplyFactory(device=devices["idle"], percent=70.0, supply_key="toner-c", color="cyan")
    SupplyFactory(device=devices["error"], percent=40.0)
    SupplyFactory(device=devices["offline"], percent=3.0)
    AlertFactory(device=devices["error"], severity="critical")
    AlertFactory(device=devices["error"])
    AlertFactory(device=devices["idle"], cleared_at=now())
    return devices


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", ["A-IDLE", "B-ERROR", "C-OFFLINE", "D-NEVER"]),
        ("?status=online", ["A-IDLE"]),
        ("?status=error", ["B-ERROR"]),
        ("?status=offline", ["C-OFFLINE"]),
        ("?status=never", ["D-NEVER"]),
        ("?low=1", ["A-IDLE", "C-OFFLINE"]),
        ("?model=DesignJet+T830", ["C-OFFLINE"]),
        ("?q=b-err", ["B-ERROR"]),
        ("?q=172.16", ["C-OFFLINE"]),
        ("?q=mono+400", ["A-IDLE"]),
        ("?q=nothing-like-it", []),
        ("?sort=-serial", ["D-NEVER", "C-OFFLINE", "B-ERROR", "A-IDLE"]),
        ("?sort=supply", ["C-OFFLINE", "A-IDLE", "B-ERROR", "D-NEVER"]),
        ("?sort=-alerts", ["B-ERROR", "A-IDLE", "C-OFFLINE", "D-NEVER"]),
        ("?sort=bogus&status=bogus", ["A-IDLE", "B-ERROR", "C-OFFLINE", "D-NEVER"]),
    ],
)
def test_filters_search_and_sorts(
    fleet: dict[str, Device], alice: Any, login: Any, query: str, expected: list[str]
) -> None:
    response = login(alice).get(DEVICES + query)

    assert response.status_code == 200
    assert serials(response) == expected


def test_filters_by_customer_and_site(fleet: dict[str, Device], alice: Any, login: Any) -> None:
    client = login(alice)
    offline = fleet["offline"]

    by_customer = client.get(DEVICES, {"customer": offline.customer_id})
    by_site = client.get(DEVICES, {"site": fleet["idle"].site_id})

    assert serials(by_customer) == ["C-OFFLINE", "D-NEVER"]
    assert serials(by_site) == ["A-IDLE", "B-ERROR"]


def test_a_row_shows_status_ip_supplies_and_open_alerts(
    fleet: dict[str, Device], alice: Any, login: Any
) -> None:
    body = login(alice).get(DEVICES, {"q": "B-ERROR"}).content.decode()

    assert '<span class="badge bad">Error</span>' in body
    assert "10.1.0.6" in body
    assert '<span class="badge warn">2</span>' in body  # the cleared alert is not counted
    assert body.count('<svg class="level-bar') == 1


def test_an_htmx_request_gets_the_table_alone(
    fleet: dict[str, Device], alice: Any, login: Any
) -> None:
    response = login(alice).get(DEVICES, {"status": "error"}, headers={"HX-Request": "true"})

    body = response.content.decode()
    assert "<html" not in body
    assert serials(response) == ["B-ERROR"]
    # The sort rides along with the filter form from inside the swapped table.
    sort_input = '<input type="hidden" name="sort" id="device-sort" value="serial"'
    assert f'{sort_input} form="device-filters">' in body
    assert response["Vary"].count("HX-Request") == 1


def test_pages_of_25(tenant: Tenant, alice: Any, login: Any) -> None:
    for n in range(27):
        online(tenant.site, f"P-{n:02d}")
    client = login(alice)

    first = client.get(DEVICES)
    last = client.get(DEVICES, {"page": 2, "sort": "-serial"})

    assert serials(first) == [f"P-{n:02d}" for n in range(25)]
    assert serials(last) == ["P-01", "P-00"]
    assert "26\u201327 of 27" in last.content.decode()


def test_bob_sees_only_his_customers_devices(
    fleet: dict[str, Device], bob: Any, login: Any
) -> None:
    client = login(bob)

    response = client.get(DEVICES)
    other = client.get(f"{DEVICES}{fleet['offline'].pk}/")

    assert serials(response) == ["A-IDLE", "B-ERROR"]
    assert 'name="customer"' not in response.content.decode()
    assert other.status_code == 404


# Session, user, the membership behind the tenant context, the customer, site and model filter
# options, the count, the page's ids (sorted and filtered), the page's rows with their figures,
# the page's supplies. (The second factor is read from the session's authentication record now,
# not from a query for the user's authenticators.)
LIST_QUERIES = 10


def _fleet_of(tenant: Tenant, size: int) -> None:
    for n in range(size):
        device = online(tenant.site, f"Q-{n:05d}")
        SupplyFactory(device=device, percent=float(n % 100))
        AlertFactory(device=device)


@pytest.mark.parametrize("size", [3, 30])
def test_the_list_costs_the_same_queries_at_3_and_30_devices(
    tenant: Tenant, alice: Any, login: Any, assert_data_queries: Any, size: int
) -> None:
    _fleet_of(tenant, size)
    client = login(alice)

    with assert_data_queries(LIST_QUERIES):
        response = client.get(DEVICES, {"sort": "-supply", "low": "1", "q": "Q-"})

    assert response.status_code == 200


def test_ten_thousand_devices_page_in_the_same_queries(
    tenant: Tenant, alice: Any, login: Any, assert_data_queries: Any
) -> None:
    size = 10_000
    moment = now()
    devices = Device.unscoped.bulk_create(
        Device(
            reseller=tenant.reseller,
            customer=tenant.customer,
            site=tenant.site,
            serial=f"T-{n:05d}",
            model=f"Model {n % 7}",
        )
        for n in range(size)
    )
    DeviceState.unscoped.bulk_create(
        DeviceState(
            device=d,
            reseller=tenant.reseller,
            customer=tenant.customer,
            last_seen_at=moment,
            last_snapshot_id="00000000-0000-4000-8000-000000000000",
            ip=f"10.{n // 65536}.{n // 256 % 256}.{n % 256}",
            is_online=n % 10 != 0,
        )
        for n, d in enumerate(devices)
    )
    Supply.unscoped.bulk_create(
        Supply(
            reseller=tenant.reseller,
            device=d,
            supply_key=key,
            color=key,
            percent=float((n * 7 + i * 13) % 100),
            observed_at=moment,
            observed_snapshot_id="00000000-0000-4000-8000-000000000000",
        )
        for n, d in enumerate(devices)
        for i, key in enumerate(("black", "cyan"))
    )
    device_figures_refresh(device_ids=[d.pk for d in devices])
    client = login(alice)

    with assert_data_queries(LIST_QUERIES):
        response = client.get(DEVICES, {"sort": "supply", "status": "online", "low": "1"})

    body = response.content.decode()
    assert response.status_code == 200
    assert len(serials(response)) == 25
    assert body.count('<svg class="level-bar') == 50


# --- Device detail ----------------------------------------------------------------------------


@pytest.fixture
def reporting_device(tenant: Tenant) -> Device:
    device = online(
        tenant.site,
        "DJ-0001",
        ip="10.2.0.9",
        hostname="plotter-1.local",
        mac="00:11:22:33:44:55",
        firmware="2416A",
        impressions_total=Decimal(1500),
        device={"model": "HP DesignJet T830", "name": "Plotter by the window"},
    )
    SupplyFactory(device=device, supply_key="ink-cyan", kind="ink", color="cyan", percent=42.0)
    SupplyFactory(device=device, supply_key="ink-black", kind="ink", color="black", percent=9.0)
    start = now() - timedelta(days=4)
    # Cyan on four days, two readings on the first: a point per day, the day's last level.
    for at, percent in [(0, 61.0), (1, 60.0), (24, 55.0), (48, 50.0), (72, 42.0)]:
        SupplyReadingFactory(
            device=device,
            supply_key="ink-cyan",
            percent=percent,
            collected_at=start.replace(hour=8) + timedelta(hours=at),
        )
    SupplyReadingFactory(device=device, supply_key="ink-black", percent=9.0, collected_at=start)
    SupplyReadingFactory(
        device=device, supply_key="ink-black", percent=9.0, collected_at=now() - timedelta(days=40)
    )
    for days_ago, value in [(2, 1000), (1, 1200), (0, 1500)]:
        CounterReadingFactory(
            device=device, value=value, collected_at=now() - timedelta(days=days_ago)
        )
    # The daily series the charts read, as the follow-ups of these readings fold them.
    supplies_evaluate(device_ids=[device.pk])
    page_days_rebuild()
    CounterReadingFactory(
        device=device, name="media.area", unit="m2", media_type="Coated", value=Decimal("12.5")
    )
    AlertFactory(device=device, severity="critical", description="Cyan cartridge missing")
    AlertFactory(device=device, description="Old jam", cleared_at=now())
    JobFactory(device=device, name="Site plan.pdf", user="anna", pages=4)
    JobFactory(device=device, name="sha256:abc", user="sha256:def", pages=1)
    return device


def test_detail_shows_identity_status_gauges_charts_alerts_and_jobs(
    reporting_device: Device, alice: Any, login: Any
) -> None:
    response = login(alice).get(f"{DEVICES}{reporting_device.pk}/")

    body = response.content.decode()
    assert response.status_code == 200
    for text in ("Plotter by the window", "HP DesignJet T830", "DJ-0001", "2416A", "10.2.0.9"):
        assert text in body
    assert "plotter-1.local" in body
    assert "00:11:22:33:44:55" in body
    assert '<span class="badge ok">Online</span>' in body
    # Gauges: one per supply, filled to the level, the low one marked.
    fills = re.findall(r'<rect class="gauge-fill" x="0" y="0" width="([^"]+)"', body)
    assert fills == ["9", "42"]
    assert body.count('<span class="badge bad">low</span>') == 1
    # The supply chart: a line per supply with a point per day of the last 30 days.
    supply_chart = body[body.index('id="supply-history"') : body.index('id="page-history"')]
    lines = re.findall(r'class="chart-line ([\w-]+)" fill="none" points="([^"]+)"', supply_chart)
    assert [(css, len(points.split())) for css, points in lines] == [("supply-cyan", 4)]
    assert supply_chart.count('<circle class="chart-dot supply-black"') == 1
    # The page chart: 30 days, pages are growth of the counter per day.
    page_chart = body[body.index('id="page-history"') :]
    assert page_chart.count('<rect class="chart-bar') == 30
    assert "Pages, 30 days</dt><dd>500</dd>" in body
    # Counters: the latest value of each.
    assert "1,500 impressions" in body
    assert "12.5 m²" in body  # a measure, without trailing zeros or the sender's "m2"
    # Alerts: open first, the cleared one too; jobs with hashed names hidden.
    assert body.index("Cyan cartridge missing") < body.index("Old jam")
    assert "Site plan.pdf" in body
    assert "anna" in body
    assert "sha256:abc" not in body


def test_a_device_that_never_reported_has_a_detail_page(
    tenant: Tenant, alice: Any, login: Any
) -> None:
    device = DeviceFactory(site=tenant.site, serial="NEW-1")

    body = login(alice).get(f"{DEVICES}{device.pk}/").content.decode()

    assert "Never reported" in body
    assert "No supplies reported" in body
    assert "No supply readings in the last 30 days" in body


def test_a_foreign_device_is_not_found(reporting_device: Device, charlie: Any, login: Any) -> None:
    response = login(charlie).get(f"{DEVICES}{reporting_device.pk}/")

    assert response.status_code == 404
    assert "DJ-0001" not in response.content.decode()


def test_anonymous_visitors_are_sent_to_sign_in(reporting_device: Device, client: Any) -> None:
    response = client.get(f"{DEVICES}{reporting_device.pk}/")

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


# --- Supplies and alerts --------------------------------------------------------------------------


def test_supply_list_sorts_by_level_and_filters_kind_colour_and_low(
    fleet: dict[str, Device], foreign_tenant: Tenant, alice: Any, login: Any
) -> None:
    SupplyFactory(device=online(foreign_tenant.site, "CH-1"), percent=1.0)
    client = login(alice)

    def levels(query: dict[str, str]) -> list[str]:
        body = client.get("/supplies/", query).content.decode()
        return re.findall(r'<td class="num">(\d+)%', body)

    assert levels({}) == ["3", "8", "40", "70"]
    assert levels({"sort": "-level"}) == ["70", "40", "8", "3"]
    assert levels({"low": "1"}) == ["3", "8"]
    assert levels({"color": "cyan"}) == ["70"]
    assert levels({"kind": "ink"}) == ["3", "8", "40", "70"]  # not a kind of this fleet: ignored


def test_alert_list_shows_open_alerts_only(
    fleet: dict[str, Device], alice: Any, login: Any
) -> None:
    client = login(alice)

    everything = client.get("/alerts/").content.decode()
    critical = client.get("/alerts/", {"severity": "critical"}).content.decode()

    assert everything.count("B-ERROR</a>") == 2
    assert "A-IDLE" not in everything  # its alert is cleared
    assert critical.count("B-ERROR</a>") == 1


# --- Dashboard ----------------------------------------------------------------------------------


@time_machine.travel(datetime(2026, 3, 10, 12, 0, tzinfo=UTC), tick=False)
def test_dashboard_fleet_figures_are_exact(
    fleet: dict[str, Device], foreign_tenant: Tenant, alice: Any, login: Any
) -> None:
    idle, error = fleet["idle"], fleet["error"]

    def reading(device: Device, day: int, hour: int, value: int) -> None:
        month = 2 if day > 10 else 3
        CounterReadingFactory(
            device=device, value=value, collected_at=datetime(2026, month, day, hour, tzinfo=UTC)
        )

    reading(idle, 27, 23, 900)  # 27 February: the baseline of the month
    reading(idle, 1, 8, 1000)  # +100 on 1 March
    reading(idle, 5, 8, 1250)  # +250
    reading(idle, 5, 18, 1300)  # +50 the same day
    reading(error, 3, 9, 50)  # the first reading: no pages counted for it
    reading(error, 9, 9, 80)  # +30
    reading(error, 10, 9, 20)  # the counter was reset: nothing, not -60
    reading(error, 10, 11, 25)  # still below the count before the reset: nothing
    CounterReadingFactory(device=online(foreign_tenant.site, "CH-1"), value=10**6)
    page_days_rebuild()

    response = login(alice).get("/")

    body = response.content.decode()
    assert response.status_code == 200

    def stat(name: str) -> str:
        block = body[body.index(f'id="stat-{name}"') :]
        return re.search(r'<div class="value">(\d+)', block).group(1)

    assert stat("devices") == "2"  # idle and error online; of 4
    assert '<span class="of"> / 4</span>' in body
    assert "1 offline" in body
    assert "1 never reported" in body
    assert stat("alerts") == "2"
    assert "1 critical" in body
    assert stat("supplies") == "2"  # 8 % and 3 %
    assert stat("pages") == "430"  # 100 + 250 + 50 + 30
    assert body.count('<rect class="chart-bar bar-pages"') == 30


def test_customer_and_site_pages_link_to_their_devices(
    fleet: dict[str, Device], alice: Any, login: Any
) -> None:
    device = fleet["offline"]
    client = login(alice)

    customer_page = client.get(f"/customers/{device.customer_id}/").content.decode()
    site_page = client.get(f"/sites/{device.site_id}/").content.decode()

    assert f'href="/devices/?customer={device.customer_id}"' in customer_page
    assert f'href="/devices/?site={device.site_id}"' in site_page


# --- Query counts of the other fleet pages ------------------------------------------------------


def _fleet_with_history(tenant: Tenant, size: int) -> Device:
    """`size` printers, each with a supply, an open alert, a week of page counts and supply
    levels, folded into the daily rows the pages read; returns the first."""
    _fleet_of(tenant, size)
    devices = list(Device.unscoped.filter(reseller=tenant.reseller).order_by("serial"))
    for n, device in enumerate(devices):
        for day in range(7):
            at = now() - timedelta(days=7 - day)
            CounterReadingFactory(device=device, collected_at=at, value=1000 + 100 * day + n)
            SupplyReadingFactory(
                device=device,
                supply_key=device.supplies.get().supply_key,
                collected_at=at,
                percent=90.0 - day,
            )
    supplies_evaluate(device_ids=[d.pk for d in devices])
    page_days_rebuild()
    return devices[0]


# Per page, after the session, user and membership (3): the data it reads.
PAGE_QUERIES = {
    # Customers, sites, users, invitations; devices by state, open alerts, supply levels, pages
    # per day; the low-supply widget (reorder alerts, emptying in a week, orders waiting, the
    # first to empty, the lowest without a date, their rows); the newest customers.
    "/": 3 + 15,
    # Kinds and colours (cached after), the count, the page's ids, its rows.
    "/supplies/?sort=days&low=1": 3 + 4,
    # The count, the silent collectors (a banner), the page.
    "/alerts/": 3 + 3,
}


@pytest.mark.parametrize("path", list(PAGE_QUERIES))
@pytest.mark.parametrize("size", [3, 30])
def test_the_fleet_pages_cost_the_same_queries_at_3_and_30_devices(
    tenant: Tenant, alice: Any, login: Any, assert_data_queries: Any, size: int, path: str
) -> None:
    _fleet_with_history(tenant, size)
    client = login(alice)

    with assert_data_queries(PAGE_QUERIES[path]):
        response = client.get(path)

    assert response.status_code == 200


# The device; its supplies with their forecasts; their levels per day; its pages per day; its
# counters; its open and its cleared alerts; its notes; its jobs.
DETAIL_QUERIES = 3 + 9


@pytest.mark.parametrize("size", [3, 30])
def test_a_device_page_costs_the_same_queries_at_3_and_30_devices(
    tenant: Tenant, alice: Any, login: Any, assert_data_queries: Any, size: int
) -> None:
    device = _fleet_with_history(tenant, size)
    client = login(alice)

    with assert_data_queries(DETAIL_QUERIES):
        response = client.get(f"{DEVICES}{device.pk}/")

    body = response.content.decode()
    assert response.status_code == 200
    assert "Pages, 30 days</dt><dd>600</dd>" in body


def test_the_filter_choices_are_escaped_and_the_chosen_one_selected(
    tenant: Tenant, alice: Any, login: Any
) -> None:
    odd = CustomerFactory(reseller=tenant.reseller, name='A & <B> "C"')

    body = login(alice).get(DEVICES, {"customer": odd.pk}).content.decode()

    assert f'<option value="{odd.pk}" selected>A &amp; &lt;B&gt; &quot;C&quot;</option>' in body
    assert f'<option value="{tenant.customer.pk}">{tenant.customer.name}</option>' in body
    assert "<B>" not in body


def test_a_foreign_or_unknown_customer_or_site_filter_is_ignored(
    fleet: dict[str, Device], foreign_tenant: Tenant, alice: Any, login: Any
) -> None:
    online(foreign_tenant.site, "CHARLIE-1")
    client = login(alice)
    everything = ["A-IDLE", "B-ERROR", "C-OFFLINE", "D-NEVER"]

    for query in (
        {"customer": foreign_tenant.customer.pk},
        {"site": foreign_tenant.site.pk},
        {"customer": "999999"},
        {"site": "nope"},
    ):
        assert serials(client.get(DEVICES, query)) == everything
