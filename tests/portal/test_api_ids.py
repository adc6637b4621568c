"""Ids in request bodies are checked at the API's edge: one no row can have is invalid input
(400, nothing stored), never a database error."""

from __future__ import annotations

import pytest
from django.test import Client

from accounts import services
from devices.models import Credential
from orders.models import Order
from portal.tenancy import Role
from tests.conftest import Tenant
from tests.factories import ProductFactory

pytestmark = pytest.mark.django_db

TOO_BIG = 2**63  # one past the largest 64-bit primary key


@pytest.fixture
def headers(tenant: Tenant) -> dict[str, str]:
    _, raw = services.api_token_create(ctx=tenant.ctx(), name="ERP", role=Role.RESELLER_ADMIN)
    return {"Authorization": f"Bearer {raw}"}


@pytest.mark.parametrize(
    ("field", "line_field"), [("site", None), (None, "product"), (None, "supply")]
)
def test_order_with_an_impossible_id_is_refused(
    client: Client,
    headers: dict[str, str],
    tenant: Tenant,
    field: str | None,
    line_field: str | None,
) -> None:
    product = ProductFactory(reseller=tenant.reseller)
    line = {"product": product.pk, "quantity": 1} | ({line_field: TOO_BIG} if line_field else {})
    body = {"site": tenant.site.pk, "lines": [line]} | ({field: TOO_BIG} if field else {})

    response = client.post("/api/v1/orders", body, content_type="application/json", headers=headers)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_failed"
    assert not Order.unscoped.exists()


def test_credential_for_an_impossible_site_is_refused(
    client: Client, headers: dict[str, str]
) -> None:
    body = {"kind": "collector", "site": TOO_BIG}

    response = client.post(
        "/api/v1/credentials", body, content_type="application/json", headers=headers
    )

    assert response.status_code == 400
    assert response.json()["error"]["fields"]["site"]
    assert not Credential.unscoped.exists()
