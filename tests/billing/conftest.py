"""Billing fixtures: a plan, a contract with printers and a helper to write readings."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest

from billing import services
from billing.models import Contract, PlanRate, PricePlan
from billing.pricing import Tier
from devices.models import CounterReading, Device
from tests.conftest import Tenant
from tests.factories import DeviceFactory


def at(day: str, hour: int = 12) -> datetime:
    return datetime.fromisoformat(day).replace(hour=hour, tzinfo=UTC)


def read(
    device: Device, when: datetime, value: int | str, name: str = "impressions.mono", **q: str
) -> CounterReading:
    return CounterReading.unscoped.create(
        reseller_id=device.reseller_id,
        device=device,
        collected_at=when,
        name=name,
        media_type=q.get("media_type", ""),
        color=q.get("color", ""),
        value=Decimal(str(value)),
    )


def simple_terms(**overrides: Any) -> services.Terms:
    values: dict[str, Any] = {
        "effective_from": date(2026, 1, 1),
        "monthly_fee_per_device": Decimal("10.00"),
        "minimum_monthly": Decimal(0),
        "tax_rate": Decimal("20.00"),
        "rates": (
            services.RateSpec(
                counter="impressions.mono",
                included_units=Decimal(100),
                tiers=(
                    Tier(Decimal(0), Decimal(1000), Decimal("0.0100")),
                    Tier(Decimal(1000), None, Decimal("0.0050")),
                ),
            ),
            services.RateSpec(
                counter="impressions.color",
                mode=PlanRate.Mode.VOLUME,
                tiers=(
                    Tier(Decimal(0), Decimal(500), Decimal("0.0800")),
                    Tier(Decimal(500), None, Decimal("0.0600")),
                ),
            ),
        ),
    }
    values.update(overrides)
    return services.Terms(**values)


@pytest.fixture
def plan(tenant: Tenant) -> PricePlan:
    return services.plan_create(
        ctx=tenant.ctx(), name="Office Standard", currency="EUR", terms=simple_terms()
    )


@pytest.fixture
def printers(tenant: Tenant) -> list[Device]:
    return [DeviceFactory(site=tenant.site, serial=f"SN-{n}", name=f"Printer {n}") for n in (1, 2)]


@pytest.fixture
def contract(tenant: Tenant, plan: PricePlan, printers: list[Device]) -> Contract:
    ctx = tenant.ctx()
    contract = services.contract_create(
        ctx=ctx,
        customer_id=tenant.customer.pk,
        plan_id=plan.pk,
        reference="C-1",
        purchase_order="PO-77",
        starts_on=date(2026, 1, 1),
    )
    for device in printers:
        services.contract_device_add(
            ctx=ctx, contract_id=contract.pk, device_id=device.pk, joined_on=date(2026, 1, 1)
        )
    return contract


@pytest.fixture
def pdf_html(monkeypatch: Any) -> list[str]:
    """The HTML of every statement PDF rendered while the test runs, as WeasyPrint got it."""
    import weasyprint

    rendered: list[str] = []
    real_html = weasyprint.HTML

    def capture(*, string: str, **kwargs: Any) -> Any:
        rendered.append(string)
        return real_html(string=string, **kwargs)

    monkeypatch.setattr(weasyprint, "HTML", capture)
    return rendered
