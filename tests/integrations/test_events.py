"""Each event fires exactly once on its domain action, to the endpoints of its own reseller that
subscribed to it, after the action commits."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from django.utils.timezone import now

from devices import services as device_services
from integrations import services
from integrations.models import Event, WebhookDelivery
from orders import services as order_services
from orders import supply_services
from portal.tenancy import Role, TenantContext
from tests.factories import DeviceStateFactory, ProductFactory, SupplyFactory
from tests.integrations.conftest import Receiver
from tests.orders.conftest import daily

pytestmark = pytest.mark.django_db


def events_received(receiver: Receiver) -> list[dict[str, Any]]:
    return [json.loads(r.body) for r in receiver.received]


@pytest.fixture
def foreign_hooked(foreign_tenant, receiver, private_urls_allowed):
    """Charlie's endpoint, subscribed to everything, on the same receiver (path /theirs)."""
    endpoint, _ = services.webhook_endpoint_create(
        ctx=foreign_tenant.ctx(),
        url=receiver.url.replace("/hooks", "/theirs"),
        events=[e for e in Event.values if e != Event.PING],
    )
    return endpoint


@pytest.fixture
def product(tenant):
    return ProductFactory(reseller=tenant.reseller, compatible_models=["HP Color LaserJet M555"])


def _place(tenant, product):
    ctx = TenantContext(reseller=tenant.reseller, role=Role.RESELLER_ADMIN, user=tenant.admin.user)
    return order_services.order_create(
        ctx=ctx,
        site_id=tenant.site.pk,
        lines=[order_services.LineIn(product_id=product.pk, quantity=2)],
        submit=True,
    ), ctx


def test_order_placed_and_shipped_fire_once_each(
    tenant, hooked, foreign_hooked, receiver, product, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        order, ctx = _place(tenant, product)
    with django_capture_on_commit_callbacks(execute=True):
        order_services.order_transition(ctx=ctx, order_id=order.pk, to="accepted")
        order_services.order_transition(
            ctx=ctx, order_id=order.pk, to="shipped", carrier="DHL", tracking_number="JD0001"
        )
        order_services.order_transition(ctx=ctx, order_id=order.pk, to="delivered")

    placed, shipped = events_received(receiver)
    assert (placed["type"], shipped["type"]) == ("order.placed", "order.shipped")
    assert placed["data"]["order"]["number"] == order.number
    assert placed["data"]["order"]["lines"][0]["quantity"] == 2
    assert shipped["data"]["order"]["tracking_number"] == "JD0001"
    assert {r.path for r in receiver.received} == {"/hooks"}  # nothing to the other reseller
    assert WebhookDelivery.unscoped.filter(reseller=tenant.reseller).count() == 2


def test_an_endpoint_gets_only_the_events_it_chose(
    tenant, hooked, receiver, product, django_capture_on_commit_callbacks
):
    services.webhook_endpoint_update(
        ctx=tenant.ctx(),
        endpoint_id=hooked.endpoint.pk,
        url=hooked.endpoint.url,
        events=[Event.ORDER_SHIPPED],
        description="",
        is_active=True,
    )

    with django_capture_on_commit_callbacks(execute=True):
        _place(tenant, product)

    assert receiver.received == []


def test_supply_low_fires_once_per_alert(
    tenant, hooked, receiver, django_capture_on_commit_callbacks
):
    from tests.factories import DeviceFactory, SupplyReadingFactory

    device = DeviceFactory(site=tenant.site, serial="SN-LOW-1")
    supply = SupplyFactory(device=device, supply_key="toner-black", percent=60.0, serial="C1")
    points = daily(20, 1, 10)
    for at, percent in points:
        SupplyReadingFactory(
            device=device,
            supply_key=supply.supply_key,
            collected_at=at,
            percent=percent,
            level=percent,
            max_capacity=100.0,
            serial="C1",
        )
    supply.percent = supply.level = points[-1][1]
    supply.observed_at = points[-1][0]
    supply.save()

    for _ in range(2):  # a second evaluation finds the alert open: no second event
        with django_capture_on_commit_callbacks(execute=True):
            supply_services.supplies_evaluate(device_ids=[device.pk])

    [event] = events_received(receiver)
    assert event["type"] == "supply.low"
    assert event["data"]["device"]["serial"] == "SN-LOW-1"
    assert event["data"]["supply"]["key"] == "toner-black"
    assert event["data"]["alert"]["percent"] == pytest.approx(11.0)


def test_device_offline_fires_once_per_silence(
    tenant, foreign_tenant, hooked, receiver, django_capture_on_commit_callbacks
):
    silent = DeviceStateFactory(
        device__site=tenant.site, device__serial="SN-QUIET", last_seen_at=now() - timedelta(hours=5)
    )
    DeviceStateFactory(device__site=tenant.site, device__serial="SN-TALKS")
    DeviceStateFactory(  # offline too, but its reseller has no endpoint
        device__site=foreign_tenant.site, last_seen_at=now() - timedelta(hours=5)
    )

    with django_capture_on_commit_callbacks(execute=True):
        assert device_services.devices_offline_sweep() == 2
    with django_capture_on_commit_callbacks(execute=True):
        assert device_services.devices_offline_sweep() == 0

    [event] = events_received(receiver)
    assert event["type"] == "device.offline"
    assert event["data"]["device"]["serial"] == "SN-QUIET"
    assert event["data"]["device"]["id"] == silent.device_id
    assert WebhookDelivery.unscoped.count() == 1
