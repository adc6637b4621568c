"""A write to another tenant's object is a 404 whatever its body says: the object is looked up
before the body is read, so a bad body cannot tell an existing foreign object (400) from a
missing one (404)."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from accounts import services
from devices import services as devices
from portal.tenancy import Role
from tests.conftest import Tenant

pytestmark = pytest.mark.django_db


@pytest.fixture
def token(tenant: Tenant) -> str:
    _, raw = services.api_token_create(ctx=tenant.ctx(), name="ERP", role=Role.RESELLER_ADMIN)
    return raw


@pytest.fixture
def foreign_collector_id(foreign_tenant: Tenant) -> int:
    credential, _ = devices.credential_create(
        ctx=foreign_tenant.ctx(), kind="collector", site_id=foreign_tenant.site.pk
    )
    return credential.pk


@pytest.mark.parametrize("body", [b"not json", b'{"name": 7, "grace_hours": -1, "ranges": 1}'])
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("patch", "/api/v1/customers/{customer}"),
        ("patch", "/api/v1/sites/{site}"),
        ("post", "/api/v1/credentials/{collector}/rotate"),
        ("put", "/api/v1/credentials/{collector}/config"),
    ],
)
def test_foreign_object_is_not_found_whatever_the_body(
    client: Client,
    token: str,
    foreign_tenant: Tenant,
    foreign_collector_id: int,
    method: str,
    path: str,
    body: bytes,
) -> None:
    ids: dict[str, Any] = {
        "customer": foreign_tenant.customer.pk,
        "site": foreign_tenant.site.pk,
        "collector": foreign_collector_id,
    }
    send = getattr(client, method)

    response = send(
        path.format(**ids),
        data=body,
        content_type="application/json",
        headers={"Authorization": f"Bearer {token}"},
    )

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
