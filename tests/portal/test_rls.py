"""Row-level security, the second wall (portal/rls.py): a query that forgets its tenant scope
returns nothing of another tenant, in a request, in a Celery task and in a management command.

These run on PostgreSQL only; on SQLite the wall does not exist and `portal.rls` is a plain
transaction (the rest of the suite runs there too)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.db import connection, transaction
from django.db.utils import ProgrammingError

from accounts.models import Customer
from devices import fleet_selectors
from devices.models import Device
from portal import rls
from portal.celery import app
from portal.tenancy import TenantContext
from tests.conftest import Tenant
from tests.factories import DeviceFactory

pytestmark = pytest.mark.postgres
ROOT = Path(__file__).resolve().parents[2]


@app.task(name="tests.rls.devices_count_forgetting_the_scope")
def devices_count_forgetting_the_scope() -> int:
    return Device.unscoped.count()


@app.task(name="tests.rls.devices_count_of")
def devices_count_of(reseller_id: int) -> int:
    with rls.tenant(reseller_id):
        return Device.unscoped.count()


@pytest.fixture
def fleets(tenant: Tenant, foreign_tenant: Tenant) -> dict[str, list[str]]:
    """Two devices of `tenant` ("ours"), one of `foreign_tenant` ("theirs"): their serials."""
    ours: list[str] = [str(DeviceFactory(site=tenant.site).serial) for _ in range(2)]
    theirs: list[str] = [str(DeviceFactory(site=foreign_tenant.site).serial)]
    return {"ours": ours, "theirs": theirs}


def _scalar(sql: str, params: list[Any] | None = None) -> Any:
    with connection.cursor() as cursor:
        cursor.execute(sql, params or [])
        row = cursor.fetchone()
    return row[0] if row else None


def test_every_tenant_table_has_a_forced_policy(db: Any) -> None:
    tables = rls.tenant_tables()
    assert {"devices_device", "billing_statement", "orders_order", "accounts_reseller"} <= set(
        tables
    )
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity, "
            "EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = c.oid AND p.polname = %s) "
            "FROM pg_class c WHERE c.relname = ANY(%s) "
            "OR c.oid IN (SELECT inhrelid FROM pg_inherits WHERE inhparent::regclass::text "
            "= ANY(%s))",
            [rls.POLICY, list(tables), list(tables)],
        )
        rows = cursor.fetchall()
    assert {r[0] for r in rows} >= set(tables)
    unguarded = [r[0] for r in rows if not (r[1] and r[2] and r[3])]
    assert unguarded == []


def test_the_application_role_owns_nothing_and_cannot_bypass(db: Any) -> None:
    assert _scalar("SELECT current_user") == "inkmeter_app"
    privileged = "SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user"
    assert _scalar(privileged) is False
    owned = _scalar(
        "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = 'public' AND pg_get_userbyid(c.relowner) = current_user"
    )
    assert owned == 0
    with pytest.raises(ProgrammingError, match="permission denied"), transaction.atomic():
        _scalar("TRUNCATE devices_device")


def test_a_request_that_forgets_the_scope_sees_only_its_own_tenant(
    fleets: dict[str, list[str]],
    foreign_tenant: Tenant,
    login: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A device list that forgot `for_tenant(ctx)` still shows Charlie only Charlie's fleet."""

    def device_list_forgetting_the_scope(*, ctx: TenantContext, f: Any = None) -> Any:
        return Device.unscoped.select_related("site", "customer", "state").order_by("serial")

    monkeypatch.setattr(fleet_selectors, "device_list", device_list_forgetting_the_scope)
    client = login(foreign_tenant.admin.user)

    page = client.get("/devices/").content.decode()

    assert all(serial in page for serial in fleets["theirs"])
    assert not any(serial in page for serial in fleets["ours"])
    # The same query from the test itself (system code) does see both fleets.
    assert Device.unscoped.count() == 3


def test_a_task_that_forgets_the_scope_sees_nothing(
    fleets: dict[str, list[str]], tenant: Tenant
) -> None:
    assert devices_count_forgetting_the_scope.delay().get() == 0
    assert devices_count_of.delay(tenant.reseller.pk).get() == 2
    assert Device.unscoped.count() == 3


def test_a_write_into_another_tenant_is_refused(tenant: Tenant, foreign_tenant: Tenant) -> None:
    with (
        pytest.raises(ProgrammingError, match="row-level security"),
        rls.tenant(tenant.reseller.pk),
    ):
        Customer.unscoped.create(reseller=foreign_tenant.reseller, name="Planted")
    with rls.tenant(tenant.reseller.pk):
        assert not Customer.unscoped.filter(reseller=foreign_tenant.reseller).exists()
        assert Customer.unscoped.filter(reseller=tenant.reseller).exists()


@pytest.mark.django_db(transaction=True)
def test_a_management_command_that_forgets_the_scope_sees_nothing(
    fleets: dict[str, list[str]], tenant: Tenant
) -> None:
    """`manage.py shell` is a management command like any other: in a process of its own,
    a query without a scope counts no device, one in a tenant's scope only that tenant's."""
    script = (
        "from devices.models import Device; from portal import rls\n"
        "print(Device.unscoped.count())\n"
        f"with rls.tenant({tenant.reseller.pk}):\n"
        "    print(Device.unscoped.count())\n"
        "with rls.system('test'):\n"
        "    print(Device.unscoped.count())\n"
    )
    settings_dict = connection.settings_dict
    url = (
        f"postgres://{settings_dict['USER']}@{settings_dict['HOST']}:{settings_dict['PORT']}"
        f"/{settings_dict['NAME']}"
    )
    env = os.environ | {"DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "portal.settings"}
    result = subprocess.run(  # noqa: S603 - our own manage.py
        [sys.executable, "manage.py", "shell", "--verbosity", "0", "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert result.stdout.split() == ["0", "2", "3"]
