"""Shared fixtures: the fixed trio of STYLE.md (alice, a reseller admin; bob, a customer user;
charlie, an admin of a foreign reseller) and the switch that turns "needs PostgreSQL/Redis"
skips into failures on CI's real-services run."""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
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
    sign_in,
)

REQUIRE_SERVICES = os.environ.get("INKMETER_REQUIRE_SERVICES") == "1"


# --- pytest-xdist (`make test` runs `-n auto --dist loadgroup`) -----------------------------
# Each worker has its own test database (pytest-django appends the worker id) and, here, its
# own Redis database: the tests clear the cache (FLUSHDB) and some start real Celery workers,
# which must not reach another worker's keys or queues. gwN uses the configured index + N.
XDIST_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")


def _redis_url_of_worker(url: str, worker: str) -> str:
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    base = int(parts.path.strip("/") or 0)
    return urlunsplit(parts._replace(path=f"/{(base + int(worker.removeprefix('gw'))) % 16}"))


if XDIST_WORKER and settings.REDIS_URL:
    from django.test.utils import override_settings

    _worker_redis = _redis_url_of_worker(settings.REDIS_URL, XDIST_WORKER)
    os.environ["REDIS_URL"] = _worker_redis  # for the servers and workers tests start
    # For the whole session; the setting_changed signal makes the cache handler reconnect.
    override_settings(
        REDIS_URL=_worker_redis,
        CACHES={
            **settings.CACHES,
            "default": {**settings.CACHES["default"], "LOCATION": _worker_redis},
        },
        CELERY_BROKER_URL=_worker_redis,
        CELERY_RESULT_BACKEND=_worker_redis,
    ).enable()
    from portal.celery import app as _celery_app

    _celery_app.conf.broker_url = _celery_app.conf.result_backend = _worker_redis

# Tests that share something fixed run on one xdist worker, one after another (loadgroup):
# the SNMP simulator listens on fixed UDP ports, and the throwaway stacks of the fault tests
# each want the machine's cores for their timeouts to hold.
XDIST_GROUPS = {"snmpsim": "snmpsim", "faults": "stack"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        for name, group in XDIST_GROUPS.items():
            fixtures = getattr(item, "fixturenames", ())
            if name in fixtures or item.get_closest_marker(name) is not None:
                if item.get_closest_marker("xdist_group") is None:
                    item.add_marker(pytest.mark.xdist_group(group))
                break


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix: None) -> None:
    """Before the workers create their test databases side by side: the app role that each
    database's post_migrate creates when it is missing (portal/rls.py) exists already, so that
    two workers cannot both try to create it."""
    if not (XDIST_WORKER and settings.DATABASES["default"]["ENGINE"].endswith("postgresql")):
        return
    import psycopg
    from psycopg import errors

    db = settings.DATABASES["default"]
    dsn = {"host": db["HOST"] or None, "port": db["PORT"] or None, "user": db["USER"] or None}
    with psycopg.connect(
        dbname="postgres", autocommit=True, password=db["PASSWORD"] or None, **dsn
    ) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_roles WHERE rolname = %s", [settings.DATABASE_APP_ROLE]
        ).fetchone()
        if exists is None:
            role = psycopg.sql.Identifier(settings.DATABASE_APP_ROLE)
            # The other worker may be first.
            with contextlib.suppress(errors.DuplicateObject, errors.UniqueViolation):
                conn.execute(psycopg.sql.SQL("CREATE ROLE {} NOLOGIN").format(role))


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
def _test_code_acts_as_system(request: pytest.FixtureRequest) -> Any:
    """A test's own set-up and checks (factories, ORM asserts) span tenants, as system code
    does; the code under test starts its own scopes (a request, a task) and the row-level
    security of PostgreSQL binds it there. See tests/portal/test_rls.py for the wall itself."""
    uses_db = request.node.get_closest_marker("django_db") or {"db", "transactional_db"} & set(
        request.fixturenames
    )
    if not uses_db:
        yield
        return
    request.getfixturevalue("_django_db_helper")
    from django.db import connection

    from portal import rls

    if not rls.enabled():
        yield
        return
    # Inside the test's transaction, for that transaction; without one (transactional tests),
    # for the test's connection until the end of the test.
    local = connection.in_atomic_block
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config(%s, %s, %s)", [rls.SCOPE, rls.SYSTEM, local])
    yield
    if not local and connection.connection is not None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config(%s, '', false)", [rls.SCOPE])


# What a request spends on its transaction and its row-level-security scope (portal/rls.py):
# a fixed few statements on PostgreSQL, none on SQLite. Query budgets count the rest.
_BOOKKEEPING = re.compile(r"^\s*(?:(?:RELEASE |ROLLBACK TO )?SAVEPOINT |SELECT was\.reseller)")


@pytest.fixture
def assert_data_queries() -> Callable[..., AbstractContextManager[Any]]:
    """`with assert_data_queries(10):` (or `exact=False` for at most): the queries that read
    or write data, whatever the database adds around them for the transaction and the wall."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    @contextmanager
    def check(expected: int, *, exact: bool = True) -> Iterator[Any]:
        with CaptureQueriesContext(connection) as captured:
            yield captured
        data = [q["sql"] for q in captured.captured_queries if not _BOOKKEEPING.match(q["sql"])]
        within = len(data) == expected if exact else len(data) <= expected
        assert within, (
            f"expected {'' if exact else 'at most '}{expected} data queries, got {len(data)}:\n"
            + "\n".join(data)
        )

    return check


@pytest.fixture(autouse=True)
def _default_language_after_each_test() -> Any:
    """A page answered in German leaves German active in the thread (LocaleMiddleware sets it
    per request and never resets it): code a later test calls outside a request would read it."""
    yield
    from django.utils import translation

    translation.deactivate()


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
        sign_in(client, user)  # with the second factor, where the user has one
        if membership is not None:
            session = client.session
            session[SESSION_MEMBERSHIP_KEY] = membership.pk
            session.save()
        return client

    return _login


# --- Whole stacks (benchmarks/stack.py) -----------------------------------------------------------
# A test that runs its own stack (acceptance, faults) and fails reports the tail of every
# process's log: the worker's or gunicorn's account of a fault is gone once the stack stops.


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    from benchmarks.stack import Stack, log_tail

    outcome = yield
    report = outcome.get_result()
    stack = getattr(item, "funcargs", {}).get("stack")
    if report.failed and isinstance(stack, Stack):
        logs = [*sorted(stack.logs.glob("*.log")), stack.postgres.log]
        text = "\n".join(f"--- {log.name} (tail) ---\n{log_tail(log)}" for log in logs)
        report.sections.append(("stack logs", text))
