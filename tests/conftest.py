"""Shared fixtures: the fixed trio of STYLE.md (alice, a reseller admin; bob, a customer user;
charlie, an admin of a foreign reseller) and the switch that turns "needs PostgreSQL/Redis"
skips into failures on CI's real-services run."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.conf import settings
from django.test import Client

from accounts.models import Customer, Membership, Reseller, Site, User
from portal.tenancy import SESSION_MEMBERSHIP_KEY, Role, TenantContext
from tests.factories import (
    CustomerFactory,
    MembershipFactory,
    ResellerFactory,
    SiteFactory,
    UserFactory,
)

REQUIRE_SERVICES = os.environ.get("INKMETER_REQUIRE_SERVICES") == "1"


def _postgres_missing() -> str | None:
    if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
        return "needs PostgreSQL: set DATABASE_URL=postgres://..."
    return None


def _redis_missing() -> str | None:
    if not settings.REDIS_URL:
        return "needs Redis: set REDIS_URL=redis://..."
    import redis

    try:
        redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2).ping()
    except redis.RedisError as exc:
        return f"Redis at {settings.REDIS_URL} does not answer: {exc}"
    return None


def pytest_runtest_setup(item: pytest.Item) -> None:
    checks = {"postgres": _postgres_missing, "redis": _redis_missing}
    for marker, check in checks.items():
        if item.get_closest_marker(marker) is None:
            continue
        reason = check()
        if reason is None:
            continue
        if REQUIRE_SERVICES:
            pytest.fail(f"INKMETER_REQUIRE_SERVICES=1 but this test {reason}")
        pytest.skip(reason)


@pytest.fixture(autouse=True)
def _tasks_run_in_process() -> Any:
    """Tasks run in the test's process even where REDIS_URL names a real broker: no worker
    consumes there, and a test waiting on a result would wait forever. The tests of a real
    worker and of a dead broker switch this off themselves."""
    from portal.celery import app

    previous = app.conf.task_always_eager, app.conf.task_eager_propagates
    app.conf.task_always_eager = app.conf.task_eager_propagates = True
    yield
    app.conf.task_always_eager, app.conf.task_eager_propagates = previous


@pytest.fixture(autouse=True)
def _fast_hashing_and_clean_cache(settings: Any) -> Any:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


@dataclass
class Tenant:
    reseller: Reseller
    customer: Customer
    site: Site
    admin: Membership

    def ctx(self, role: Role = Role.RESELLER_ADMIN) -> TenantContext:
        membership = self.admin
        return TenantContext(
            reseller=self.reseller,
            role=role,
            user=membership.user,
            customer=self.customer if role in (Role.CUSTOMER_ADMIN, Role.CUSTOMER_BUYER) else None,
            membership=membership,
        )


def make_tenant(name: str) -> Tenant:
    reseller = ResellerFactory(name=f"{name} Printing", slug=name.lower())
    customer = CustomerFactory(reseller=reseller, name=f"{name} Customer")
    site = SiteFactory(customer=customer, name=f"{name} HQ")
    admin = MembershipFactory(
        reseller=reseller,
        role=Role.RESELLER_ADMIN,
        user=UserFactory(email=f"admin@{name.lower()}.test", totp=True),
    )
    return Tenant(reseller=reseller, customer=customer, site=site, admin=admin)


@pytest.fixture
def tenant(db: Any) -> Tenant:
    """Alice's reseller, with one customer and site."""
    return make_tenant("Alpha")


@pytest.fixture
def foreign_tenant(db: Any) -> Tenant:
    """Charlie's reseller: must never see anything of `tenant`."""
    return make_tenant("Charlie")


@pytest.fixture
def alice(tenant: Tenant) -> User:
    """A reseller admin of `tenant`, with TOTP set up."""
    return tenant.admin.user


@pytest.fixture
def bob(tenant: Tenant) -> User:
    """A customer admin of `tenant.customer`."""
    membership = MembershipFactory(
        reseller=tenant.reseller,
        customer=tenant.customer,
        role=Role.CUSTOMER_ADMIN,
        user=UserFactory(email="bob@customer.test"),
    )
    return membership.user


@pytest.fixture
def charlie(foreign_tenant: Tenant) -> User:
    return foreign_tenant.admin.user


LoginFn = Callable[..., Client]


@pytest.fixture
def login(client: Client) -> LoginFn:
    """Sign a user in, acting for one of their memberships (the first by default)."""

    def _login(user: User, membership: Membership | None = None) -> Client:
        client.force_login(user)
        if membership is not None:
            session = client.session
            session[SESSION_MEMBERSHIP_KEY] = membership.pk
            session.save()
        return client

    return _login
