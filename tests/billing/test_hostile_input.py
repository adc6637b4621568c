"""Hostile numbers and dates on the billing forms and API: field errors, nothing saved, no 500."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from django.urls import reverse

from accounts import services as account_services
from billing import services, statement_services
from billing.models import PlanTier, PlanVersion, PricePlan, Statement
from billing.pricing import Tier
from portal.errors import DomainError
from portal.tenancy import Role
from tests.billing.conftest import simple_terms

pytestmark = pytest.mark.django_db


def _plan_form(tiers: str, **overrides: str) -> dict[str, str]:
    return {
        "name": "Hostile",
        "currency": "EUR",
        "description": "",
        "effective_from": "2026-01-01",
        "monthly_fee_per_device": "15.00",
        "minimum_monthly": "0",
        "tax_rate": "19",
        "rates-TOTAL_FORMS": "1",
        "rates-INITIAL_FORMS": "0",
        "rates-0-counter": "impressions.mono",
        "rates-0-mode": "graduated",
        "rates-0-scope": "device",
        "rates-0-included_units": "0",
        "rates-0-tiers": tiers,
        **overrides,
    }


BAD_TIERS = [
    "0: NaN",
    "0: sNaN",
    "0: Infinity",
    "0: -Infinity",
    "0: 1e30",
    "NaN: 0.01",
    "0: 0.01; sNaN: 0.02",
    "0: 0.01; Infinity: 0.02",
    "0: 0.01; -Infinity: 0.02",
    "0: 0.01; 1e30: 0.02",
    "0: 0.01; 5000: 0.02; 5000: 0.03",
    "0: 0.01; 0: 0.02",
    "0: 0.01; 9000: 0.02; 5000: 0.03",
    "0: 0.000000001",
]


@pytest.mark.parametrize("tiers", BAD_TIERS)
def test_plan_form_refuses_hostile_tiers_next_to_the_field(login, alice, tiers: str) -> None:
    response = login(alice).post(reverse("plan-create"), _plan_form(tiers))

    assert response.status_code == 200
    errors = response.context["rates"].forms[0].errors
    assert errors["tiers"], errors
    assert not PricePlan.unscoped.exists()
    assert not PlanTier.objects.exists()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("monthly_fee_per_device", "1e30"),
        ("monthly_fee_per_device", "NaN"),
        ("minimum_monthly", "Infinity"),
        ("minimum_monthly", "1000000000000000"),
        ("rates-0-included_units", "1e30"),
        ("rates-0-included_units", "sNaN"),
    ],
)
def test_plan_form_refuses_numbers_past_their_columns(login, alice, field: str, value: str) -> None:
    response = login(alice).post(reverse("plan-create"), _plan_form("0: 0.01", **{field: value}))

    assert response.status_code == 200
    form = response.context["form"]
    rate = response.context["rates"].forms[0]
    errors = rate.errors if field.startswith("rates-") else form.errors
    assert errors[field.removeprefix("rates-0-")], errors
    assert not PricePlan.unscoped.exists()


@pytest.mark.parametrize(
    "tiers",
    [
        (Tier(Decimal(0), None, Decimal("NaN")),),
        (Tier(Decimal(0), None, Decimal("sNaN")),),
        (Tier(Decimal(0), None, Decimal("Infinity")),),
        (Tier(Decimal(0), None, Decimal("1e30")),),
        (Tier(Decimal(0), Decimal("1e30"), Decimal(1)), Tier(Decimal("1e30"), None, Decimal(1))),
        (Tier(Decimal(0), Decimal(0), Decimal(1)), Tier(Decimal(0), None, Decimal(1))),
        (
            Tier(Decimal(5000), None, Decimal(1)),
            Tier(Decimal(0), Decimal(5000), Decimal(2)),
        ),
    ],
)
def test_the_service_refuses_the_same_tiers_and_saves_nothing(tenant, tiers: Any) -> None:
    terms = simple_terms()
    rate = terms.rates[0]
    bad = services.Terms(
        effective_from=terms.effective_from,
        rates=(services.RateSpec(counter=rate.counter, tiers=tiers),),
    )
    with pytest.raises(DomainError) as refusal:
        services.plan_create(ctx=tenant.ctx(), name="Hostile", currency="EUR", terms=bad)

    assert refusal.value.fields["rates"]
    assert not PricePlan.unscoped.exists()
    assert not PlanVersion.unscoped.exists()


def test_the_service_refuses_an_amount_past_its_column(tenant) -> None:
    with pytest.raises(DomainError) as refusal:
        services.plan_create(
            ctx=tenant.ctx(),
            name="Hostile",
            currency="EUR",
            terms=simple_terms(monthly_fee_per_device=Decimal("1e30")),
        )
    assert refusal.value.fields["monthly_fee_per_device"]
    assert not PricePlan.unscoped.exists()


# --- Statement compute: the period -----------------------------------------------------------

BAD_DAYS = ["9999-12-31", "9999-12-01", "0001-01-01", "1899-12-31", "2200-01-01"]


@pytest.mark.parametrize("day", BAD_DAYS)
def test_compute_page_refuses_a_day_outside_the_years_it_can_bill(
    login, alice, contract, day: str
) -> None:
    response = login(alice).post(
        reverse("contract-compute", kwargs={"contract_id": contract.pk}),
        {"period_start": day},
        follow=True,
    )

    assert response.status_code == 200
    assert "between 2000 and 2100" in response.content.decode()
    assert not Statement.unscoped.exists()


@pytest.mark.parametrize("day", BAD_DAYS)
def test_compute_api_refuses_a_day_outside_the_years_it_can_bill(
    client, tenant, contract, day: str
) -> None:
    _, raw = account_services.api_token_create(
        ctx=tenant.ctx(), name="ERP", role=Role.RESELLER_FINANCE
    )
    response = client.post(
        f"/api/v1/contracts/{contract.pk}/statements",
        {"period_start": day},
        content_type="application/json",
        headers={"Authorization": f"Bearer {raw}"},
    )

    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "validation_failed"
    assert "between 2000 and 2100" in error["fields"]["period_start"][0]
    assert not Statement.unscoped.exists()


def test_the_compute_service_refuses_the_same_days(tenant, contract) -> None:
    with pytest.raises(DomainError) as refusal:
        statement_services.statement_compute(
            ctx=tenant.ctx(), contract_id=contract.pk, period_start=date(9999, 12, 31)
        )
    assert refusal.value.code == "invalid_period"
    assert refusal.value.fields == {"period_start": [refusal.value.message]}
    assert not Statement.unscoped.exists()


@pytest.mark.parametrize("month", ["9999-12", "0001-01"])
def test_statement_lists_take_any_month_without_failing(
    login, alice, client, tenant, month
) -> None:
    _, raw = account_services.api_token_create(
        ctx=tenant.ctx(), name="ERP", role=Role.RESELLER_FINANCE
    )
    auth = {"Authorization": f"Bearer {raw}"}
    for url in ("/api/v1/statements", "/api/v1/billing/usage"):
        assert client.get(url, {"month": month}, headers=auth).status_code < 500
    page = login(alice)
    for name in ("statement-list", "usage-export"):
        assert page.get(reverse(name), {"month": month}).status_code < 500
