"""Shared set-up for the orders tests: a printer with one black toner at the tenant's site, its
readings written the way ingestion leaves them, and the catalog product that matches it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.utils.timezone import now

from accounts.models import Membership, User
from devices.models import CounterReading, Device, Supply
from orders.models import Product
from portal.tenancy import Role
from tests.conftest import Tenant
from tests.factories import (
    CounterReadingFactory,
    DeviceFactory,
    MembershipFactory,
    ProductFactory,
    SupplyFactory,
    SupplyReadingFactory,
    UserFactory,
)

MODEL = "HP Color LaserJet M555"


@pytest.fixture
def device(tenant: Tenant) -> Device:
    tenant.site.contact_email = "frontdesk@alpha-customer.test"
    tenant.site.save(update_fields=["contact_email"])
    tenant.reseller.support_email = "support@alpha-printing.test"
    tenant.reseller.save(update_fields=["support_email"])
    return DeviceFactory(site=tenant.site, serial="SN-ORD-1", model=MODEL, name="Front office")


@pytest.fixture
def product(tenant: Tenant) -> Product:
    return ProductFactory(
        reseller=tenant.reseller,
        sku="HP-212X-K",
        part_number="W2120X",
        name="HP 212X black toner",
        color="black",
        rated_yield=13000,
        compatible_models=[MODEL],
        price=Decimal("189.00"),
    )


@pytest.fixture
def supply(device: Device) -> Supply:
    return SupplyFactory(
        device=device,
        supply_key="toner-black",
        part_number="W2120X",
        color="black",
        percent=60.0,
        serial="CART-1",
        is_genuine=True,
    )


ReportFn = Callable[..., None]


@pytest.fixture
def report(supply: Supply) -> ReportFn:
    """Record readings of `supply` as ingestion does: history rows plus the current state."""

    def _report(
        *points: tuple[datetime, float | None],
        serial: str | None = None,
        level_state: str = "ok",
        pages: float | None = None,
    ) -> None:
        for at, percent in points:
            SupplyReadingFactory(
                device=supply.device,
                supply_key=supply.supply_key,
                collected_at=at,
                percent=percent,
                level=percent,
                max_capacity=100.0,
                level_state=level_state if percent is None else "ok",
                serial=serial if serial is not None else supply.serial,
            )
            if pages is not None:
                CounterReadingFactory(device=supply.device, collected_at=at, value=pages)
        at, percent = points[-1]
        supply.percent = percent
        supply.level = percent
        supply.level_state = level_state if percent is None else "ok"
        supply.observed_at = at
        if serial is not None:
            supply.serial = serial
        supply.save()

    return _report


def daily(start_percent: float, per_day: float, days: int, *, end: datetime | None = None):
    """`days` readings one day apart, falling `per_day`, the last one at `end` (now)."""
    end = end or now()
    return [(end - timedelta(days=days - 1 - i), start_percent - per_day * i) for i in range(days)]


def customer_member(tenant: Tenant, role: Role, email: str) -> User:
    membership: Membership = MembershipFactory(
        reseller=tenant.reseller,
        customer=tenant.customer,
        role=role,
        user=UserFactory(email=email),
    )
    return membership.user


def pages_reading(device: Device, at: datetime, value: int) -> Any:
    return CounterReading.unscoped.create(
        reseller=device.reseller,
        device=device,
        collected_at=at,
        name="impressions.total",
        unit="impressions",
        value=value,
    )
