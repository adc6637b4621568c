"""The isolation matrix: every route of the resolver, with real objects of tenant A, requested by
every role of tenant B and by an anonymous visitor.

Routes are enumerated from the URL resolver, so a route added later is covered without editing
this file. A route that takes an object (`<noun>_id`) gets tenant A's object of that kind: the
answer must be a redirect to the login page, 403, 404 or 405, and the body must not contain
tenant A's data. A route that takes no object may answer as it likes (below 500), but must not
show tenant A's data either. A kwarg this file does not know fails the test, so whoever adds a
route with a new kind of object adds it to OBJECT_KWARGS.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from django.urls.resolvers import RegexPattern, RoutePattern

from accounts import services
from accounts.models import Customer, Membership, User
from portal import rls
from portal.errors import NotFoundError
from portal.services import worker_heartbeat_record
from portal.tenancy import Role
from tests.conftest import Tenant, make_tenant
from tests.factories import (
    ApiTokenFactory,
    AuditEventFactory,
    InvitationFactory,
    MembershipFactory,
    UserFactory,
    sign_in,
)

pytestmark = pytest.mark.django_db

# Every name in tenant A's data contains this marker; no answer to tenant B may contain it.
# Builders of other apps' objects (`*_for_isolation` in tests/factories.py) use it too.
MARKER = "zzalpha"
SECRETS = {
    "customer": "ZZALPHA-CUSTOMER-7F3K",
    "site": "ZZALPHA-SITE-9QZ",
    "user": "zzalpha-buyer@alpha-secret.test",
    "invitee": "zzalpha-invitee@alpha-secret.test",
    "token": "ZZALPHA-TOKEN-NAME",
    "audit": "zzalpha-audit-actor@alpha-secret.test",
}


@dataclass
class AlphaData:
    tenant: Tenant
    objects: dict[str, Any]


@pytest.fixture
def alpha(db: Any) -> AlphaData:
    tenant = make_tenant("Alpha")
    ctx = tenant.ctx()
    customer = services.customer_create(ctx=ctx, name=SECRETS["customer"])
    site = services.site_create(ctx=ctx, customer_id=customer.pk, name=SECRETS["site"])
    buyer = MembershipFactory(
        reseller=tenant.reseller,
        customer=customer,
        role=Role.CUSTOMER_BUYER,
        user=UserFactory(email=SECRETS["user"], full_name=SECRETS["user"]),
    )
    invitation = InvitationFactory(reseller=tenant.reseller, email=SECRETS["invitee"])
    token = ApiTokenFactory(reseller=tenant.reseller, name=SECRETS["token"])
    AuditEventFactory(reseller=tenant.reseller, actor_email=SECRETS["audit"])
    objects = {
        "customer": customer,
        "site": site,
        "membership": buyer,
        "invitation": invitation,
        "token": token,
        "reseller": tenant.reseller,
        "user": buyer.user,
    }
    objects.update(_alpha_device_objects(tenant, customer, site))
    return AlphaData(tenant=tenant, objects=objects)


def _alpha_device_objects(tenant: Tenant, customer: Customer, site: Any) -> dict[str, Any]:
    """Objects of the other apps: each `<noun>_for_isolation(reseller=, customer=, site=)` in
    tests/factories.py returns {noun: object, ...}, with names containing MARKER."""
    from tests import factories

    made: dict[str, Any] = {}
    for name in sorted(dir(factories)):
        if name.endswith("_for_isolation"):
            build: Callable[..., dict[str, Any]] = getattr(factories, name)
            made.update(build(reseller=tenant.reseller, customer=customer, site=site))
    return made


# URL kwargs that name an object of tenant A -> the key in AlphaData.objects.
OBJECT_KWARGS = {
    "customer_id": "customer",
    "site_id": "site",
    "membership_id": "membership",
    "invitation_id": "invitation",
    "token_id": "token",
    "reseller_id": "reseller",
    "credential_id": "credential",
    "device_id": "device",
    "collector_id": "credential",
    "supply_id": "supply",
    "alert_id": "alert",
    "plan_id": "plan",
    "contract_id": "contract",
    "contract_device_id": "contract_device",
    "statement_id": "statement",
    "order_id": "order",
    "product_id": "product",
    "policy_id": "policy",
    "email_id": "email",
    "supply_alert_id": "supply_alert",
    "endpoint_id": "webhook_endpoint",
    "delivery_id": "webhook_delivery",
}
# URL kwargs that are secrets or keys (links from emails): tenant B cannot know A's, so they get
# a random value and the route must not reveal anything for it.
OPAQUE_KWARGS = {"token", "key", "uidb36", "uidb64", "code", "email"}
# Django admin routes take app and model names; non-staff users are sent to its login.
ADMIN_KWARGS = {
    "app_label": "accounts",
    "object_id": None,
    "id": None,
    "content_type_id": "1",
    "url": "x",
}


@dataclass(frozen=True)
class Route:
    name: str
    template: str  # "/customers/{customer_id}/"
    kwargs: tuple[str, ...]


def _walk(patterns: list[Any], prefix: str = "", namespace: str = "") -> Iterator[Route]:
    for entry in patterns:
        part = _pattern_text(entry.pattern)
        if part is None:
            continue
        if isinstance(entry, URLResolver):
            ns = entry.namespace or namespace
            yield from _walk(entry.url_patterns, prefix + part, ns)
        elif isinstance(entry, URLPattern):
            name = f"{namespace}:{entry.name}" if namespace and entry.name else (entry.name or part)
            template = "/" + prefix + part
            kwargs = tuple(_kwarg_names(template))
            yield Route(name=name, template=template, kwargs=kwargs)


def _pattern_text(pattern: Any) -> str | None:
    """The route as a format string with {kwarg} holes; None for unroutable regexes."""
    if isinstance(pattern, RoutePattern):
        import re

        return re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", str(pattern))
    if isinstance(pattern, RegexPattern):
        import re

        text = str(pattern).lstrip("^").rstrip("$").replace("\\Z", "").replace("\\.", ".")
        text = re.sub(r"\(\?P<(\w+)>[^)]*\)", r"{\1}", text)
        if any(ch in text for ch in "()[]*+?|\\"):
            return None  # an alternation or optional group: not a single concrete route
        return text
    return None


def _kwarg_names(template: str) -> Iterator[str]:
    import string

    for _, field, _, _ in string.Formatter().parse(template):
        if field:
            yield field


def all_routes() -> list[Route]:
    routes = [r for r in _walk(get_resolver().url_patterns) if not r.template.startswith("/static")]
    return sorted(routes, key=lambda r: r.template)


def _fill(route: Route, alpha: AlphaData) -> tuple[str, bool]:
    """The concrete path, and whether it names one of tenant A's objects."""
    values: dict[str, str] = {}
    names_object = False
    for kwarg in route.kwargs:
        if kwarg in OBJECT_KWARGS:
            obj = alpha.objects.get(OBJECT_KWARGS[kwarg])
            if obj is None:
                pytest.fail(
                    f"{route.name} takes {kwarg}: give tests/factories.py a "
                    f"{OBJECT_KWARGS[kwarg]}_for_isolation builder"
                )
            values[kwarg] = str(obj.pk)
            names_object = True
        elif kwarg in OPAQUE_KWARGS:
            values[kwarg] = secrets.token_urlsafe(16)
        elif route.template.startswith("/admin/") and kwarg in ADMIN_KWARGS:
            values[kwarg] = ADMIN_KWARGS[kwarg] or str(alpha.objects["customer"].pk)
            names_object = True
        else:
            pytest.fail(
                f"route {route.name} ({route.template}) takes {kwarg!r}, which the isolation "
                f"matrix does not know: add it to OBJECT_KWARGS or OPAQUE_KWARGS"
            )
    return route.template.format(**values), names_object


B_ROLES = [
    Role.RESELLER_ADMIN,
    Role.RESELLER_FINANCE,
    Role.RESELLER_SUPPORT,
    Role.CUSTOMER_ADMIN,
    Role.CUSTOMER_BUYER,
]


def _b_users() -> dict[str, User | None]:
    beta = make_tenant("Beta")
    users: dict[str, User | None] = {"anonymous": None}
    for role in B_ROLES:
        customer = beta.customer if role in (Role.CUSTOMER_ADMIN, Role.CUSTOMER_BUYER) else None
        membership = MembershipFactory(
            reseller=beta.reseller,
            customer=customer,
            role=role,
            user=UserFactory(email=f"beta-{role}@beta.test", totp=True),
        )
        users[role.value] = membership.user
    return users


@dataclass
class Breach:
    who: str
    method: str
    path: str
    status: int
    reason: str


def check_isolation(alpha: AlphaData, routes: list[Route]) -> list[Breach]:
    breaches: list[Breach] = []
    users = _b_users()
    for route in routes:
        # A worker is up, as in production: with REDIS_URL set, /readyz answers 503 without a
        # recent heartbeat, and the walk can outlast one on a busy machine.
        worker_heartbeat_record()
        path, names_object = _fill(route, alpha)
        for who, user in users.items():
            is_api = path.startswith("/api/")
            for method in ("get", "post", "patch") if is_api else ("get", "post"):
                client = Client()
                if user is not None:
                    sign_in(client, user)
                if is_api and method != "get":
                    # A well-formed body, so that the request reaches the tenant check.
                    response = getattr(client, method)(path, "{}", content_type="application/json")
                else:
                    response = getattr(client, method)(path)
                raw = (
                    b"".join(response.streaming_content) if response.streaming else response.content
                )
                body = raw.decode(errors="replace")
                leaked = [k for k, v in SECRETS.items() if v.lower() in body.lower()]
                if not leaked and MARKER in body.lower():
                    leaked = ["data"]
                status = response.status_code
                location = response.get("Location", "")
                if leaked:
                    reason = f"shows tenant A's {', '.join(leaked)}"
                elif status >= 500:
                    reason = "server error"
                elif names_object and not _refused(status, location):
                    reason = f"answered {status} {location} for tenant A's object"
                else:
                    continue
                breaches.append(Breach(who, method.upper(), path, status, reason))
    return breaches


def _refused(status: int, location: str) -> bool:
    if status in (401, 403, 404, 405, 410):
        return True
    return status == 302 and location.startswith(("/accounts/login/", "/admin/login/"))


def test_every_route_refuses_tenant_b_and_anonymous(alpha: AlphaData) -> None:
    routes = all_routes()
    assert len(routes) > 40  # the resolver was walked, not skipped
    snapshot = _alpha_state(alpha)

    breaches = check_isolation(alpha, routes)

    assert breaches == [], "\n".join(
        f"{b.who:>18} {b.method} {b.path} -> {b.status}: {b.reason}" for b in breaches
    )
    assert _alpha_state(alpha) == snapshot, "tenant B changed tenant A's data"


def test_the_matrix_catches_a_view_that_forgets_the_scope(
    alpha: AlphaData, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Proof that the matrix can fail: break the customer selector the way a careless view
    would (reading without the tenant scope) and the matrix must report the leak."""
    from accounts import selectors

    def unscoped_customer_get(*, ctx: Any, customer_id: int) -> Customer:
        customer = Customer.unscoped.filter(pk=customer_id).first()
        if customer is None:
            raise NotFoundError("No such customer.")
        return customer

    monkeypatch.setattr(selectors, "customer_get", unscoped_customer_get)
    route = next(r for r in all_routes() if r.name == "customer-detail")

    breaches = check_isolation(alpha, [route])

    leaking = {b.who for b in breaches if "customer" in b.reason}
    if rls.enabled():
        # PostgreSQL's row-level security is the second wall: the query that forgot its scope
        # finds no row of tenant A, the selector answers "not found", and nothing leaks.
        assert breaches == []
    else:
        assert leaking == {r.value for r in B_ROLES}


def _alpha_state(alpha: AlphaData) -> dict[str, Any]:
    ctx = alpha.tenant.ctx()
    return {
        "customers": sorted(Customer.objects.for_tenant(ctx).values_list("pk", "name")),
        "memberships": sorted(Membership.objects.for_tenant(ctx).values_list("pk", "role")),
        "invitation": alpha.objects["invitation"]
        .__class__.unscoped.filter(pk=alpha.objects["invitation"].pk, revoked_at=None)
        .exists(),
        "token": alpha.objects["token"]
        .__class__.unscoped.filter(pk=alpha.objects["token"].pk, revoked_at=None)
        .exists(),
    }
