"""The backup and restore of docs/operations.md, run once for real: data made through the
services in a scratch database, dumped with pg_dump, restored with pg_restore into another
fresh database, and compared table by table, row by row."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs/operations.md").read_text()

# The commands of docs/operations.md, with their placeholders.
BACKUP = ["pg_dump", "--format=custom", "--no-owner", "--file={dump}", "{url}"]
CREATE = ["createdb", "--maintenance-db={admin_url}", "{name}"]
RESTORE = ["pg_restore", "--no-owner", "--exit-on-error", "--dbname={url}", "{dump}"]

SEED = """
from datetime import date
from accounts import services
from accounts.models import User
from billing import services as billing
from devices import services as devices
from portal.tenancy import TenantContext
from portal import rls

# A command acting across tenants says so (portal/rls.py).
with rls.system("the seed creates a reseller and its data"):
    operator = User.objects.create_superuser(email="op@example.test", password="x" * 12)
    reseller = services.reseller_create(by=operator, name="Backup Printing", address="1 Dump Lane")
    ctx = TenantContext.system(reseller=reseller)
    customer = services.customer_create(ctx=ctx, name="Restored Customer", notes="ümlaut ✓")
    site = services.site_create(ctx=ctx, customer_id=customer.pk, name="Restored HQ")
    devices.credential_create(ctx=ctx, kind="collector", site_id=site.pk)
    plan = billing.plan_create(
        ctx=ctx, name="Plan", currency="EUR", terms=billing.plan_terms_demo(date(2026, 1, 1))
    )
    billing.contract_create(
        ctx=ctx, customer_id=customer.pk, plan_id=plan.pk, reference="C-1",
        purchase_order="PO-1", starts_on=date(2026, 1, 1),
    )
"""


def _server_url(database: str) -> str:
    db = settings.DATABASES["default"]
    user = db.get("USER") or "postgres"
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    host = db.get("HOST") or "127.0.0.1"
    port = db.get("PORT") or 5432
    return f"postgres://{user}{password}@{host}:{port}/{database}"


def _run(command: list[str], env: dict[str, str] | None = None) -> str:
    result = subprocess.run(  # noqa: S603 - our own binaries and interpreter
        command,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, f"{command[0]} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def _fill(template: list[str], **values: str) -> list[str]:
    return [part.format(**values) for part in template]


@pytest.fixture
def scratch() -> Iterator[list[str]]:
    """Names for scratch databases on the test server; every one is dropped afterwards."""
    import psycopg

    names: list[str] = []
    yield names
    with psycopg.connect(_server_url("postgres"), autocommit=True) as connection:
        for name in names:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _tables(url: str) -> dict[str, list[tuple[object, ...]]]:
    """Every table of the public schema, its rows in primary key order."""
    import psycopg

    with psycopg.connect(url) as connection:
        names = [
            row[0]
            for row in connection.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"
            )
        ]
        return {
            # Names from pg_tables, not from input.
            name: connection.execute(f'SELECT * FROM "{name}" ORDER BY 1').fetchall()  # noqa: S608
            for name in names
        }


def test_the_documented_commands_are_the_ones_tested():
    for command in (BACKUP, CREATE, RESTORE):
        documented = " ".join(command[:-1]).split("{")[0]
        assert documented in DOC, documented


@pytest.mark.postgres
def test_a_dump_restores_into_a_fresh_database_with_every_row(scratch, tmp_path):
    import psycopg

    suffix = secrets.token_hex(4)
    source, target = f"inkmeter_backup_src_{suffix}", f"inkmeter_backup_dst_{suffix}"
    scratch += [source, target]
    admin_url, source_url, target_url = (
        _server_url("postgres"),
        _server_url(source),
        _server_url(target),
    )
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{source}"')
    app_env = {
        "DATABASE_URL": source_url,
        "REDIS_URL": "",
        "DJANGO_SETTINGS_MODULE": "portal.settings",
    }
    _run([sys.executable, "manage.py", "migrate", "--noinput"], app_env)
    _run([sys.executable, "manage.py", "shell", "-c", SEED], app_env)
    dump = tmp_path / "inkmeter.dump"

    _run(_fill(BACKUP, dump=str(dump), url=source_url))
    _run(_fill(CREATE, admin_url=admin_url, name=target))
    _run(_fill(RESTORE, url=target_url, dump=str(dump)))

    before, after = _tables(source_url), _tables(target_url)
    assert after == before
    with psycopg.connect(target_url) as connection:
        customers = connection.execute("SELECT name, notes FROM accounts_customer").fetchall()
    assert customers == [("Restored Customer", "ümlaut ✓")]
    assert len(before["devices_credential"]) == 1
    assert len(before["billing_contract"]) == 1
    assert len(before["django_migrations"]) > 20
    # The restored database is current: nothing left to migrate.
    _run(
        [sys.executable, "manage.py", "migrate", "--check"],
        {**app_env, "DATABASE_URL": target_url},
    )


def test_the_binaries_are_installed_where_the_postgres_tests_run():
    if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
        pytest.skip("only checked next to a PostgreSQL server")
    assert all(shutil.which(tool) for tool in ("pg_dump", "pg_restore", "createdb"))
