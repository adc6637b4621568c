"""A NUL byte in any text a client sends (query parameter, form field, path) is refused with a
400 and a clear message, never a 500: PostgreSQL rejects NUL in text, SQLite stores it."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from accounts import services
from accounts.models import Role, User
from tests.conftest import LoginFn, Tenant

pytestmark = pytest.mark.django_db

NUL = "a\x00b"

WEB_LISTS = [
    "/customers/",
    "/orders/",
    "/catalog/",
    "/audit/",
    "/devices/",
    "/supplies/",
    "/alerts/",
    "/billing/statements/",
    "/billing/contracts/",
    "/billing/plans/",
    "/users/",
    "/emails/",
]
API_LISTS = [
    "/api/v1/customers",
    "/api/v1/orders",
    "/api/v1/products",
    "/api/v1/statements",
    "/api/v1/credentials",
    "/api/v1/billing/usage",
]
PARAMETERS = ["q", "status", "month", "severity", "kind", "page", "sort", "customer"]


def _bearer(tenant: Tenant) -> dict[str, str]:
    _, raw = services.api_token_create(ctx=tenant.ctx(), name="ERP", role=Role.RESELLER_ADMIN)
    return {"Authorization": f"Bearer {raw}"}


def _assert_web_refusal(response: Any) -> None:
    assert response.status_code == 400, response.content[:300]
    assert b"NUL" in response.content


def _assert_api_refusal(response: Any, parameter: str) -> None:
    assert response.status_code == 400, response.content[:300]
    error = response.json()["error"]
    assert error["code"] == "nul_character"
    assert "NUL" in error["message"]
    assert parameter in error["fields"]


@pytest.mark.parametrize("url", WEB_LISTS)
def test_nul_in_q_on_a_page_gets_400(login: LoginFn, alice: User, url: str) -> None:
    _assert_web_refusal(login(alice).get(url, {"q": NUL}))


@pytest.mark.parametrize("url", API_LISTS)
@pytest.mark.parametrize("parameter", PARAMETERS)
def test_nul_in_any_api_list_parameter_gets_400(
    client: Client, tenant: Tenant, url: str, parameter: str
) -> None:
    response = client.get(url, {parameter: NUL}, headers=_bearer(tenant))
    _assert_api_refusal(response, parameter)


@pytest.mark.parametrize("parameter", PARAMETERS)
def test_nul_in_any_page_parameter_gets_400(login: LoginFn, alice: User, parameter: str) -> None:
    client = login(alice)
    for url in ("/customers/", "/orders/", "/billing/statements/", "/alerts/"):
        _assert_web_refusal(client.get(url, {parameter: NUL}))


def test_nul_in_a_posted_form_field_gets_400_and_creates_nothing(
    login: LoginFn, alice: User, tenant: Tenant
) -> None:
    from accounts.models import Customer

    before = Customer.objects.for_tenant(tenant.ctx()).count()
    response = login(alice).post("/customers/new/", {"name": "Acme\x00", "account_number": "A1"})

    assert response.status_code in (200, 400)
    assert b"NUL" in response.content or b"Null characters are not allowed" in response.content
    assert Customer.objects.for_tenant(tenant.ctx()).count() == before


def test_nul_in_a_path_gets_400(client: Client) -> None:
    _assert_web_refusal(client.get("/invitations/abc%00def/"))


def test_nul_escaped_in_a_json_body_is_a_field_error(client: Client, tenant: Tenant) -> None:
    response = client.post(
        "/api/v1/customers",
        data='{"name": "Acme\\u0000", "account_number": "A1"}',
        content_type="application/json",
        headers=_bearer(tenant),
    )
    assert response.status_code == 400
    assert response.json()["error"]["fields"]["name"]


def _routes(resolver: Any, prefix: str = "") -> list[str]:
    found = []
    for entry in resolver.url_patterns:
        route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            found += _routes(entry, route)
        elif isinstance(entry, URLPattern) and "<" not in route and "^" not in route:
            found.append("/" + route)
    return found


def test_every_parameterless_route_refuses_nul_in_the_query(login: LoginFn, alice: User) -> None:
    # Whatever a future view reads from the query string, NUL never reaches it.
    client = login(alice)
    routes = [r for r in _routes(get_resolver()) if not r.startswith(("/admin/", "/accounts/"))]
    assert len(routes) > 40
    for route in routes:
        response = client.get(route, {"q": NUL})
        assert response.status_code == 400, route
