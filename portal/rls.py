"""PostgreSQL row-level security: the second wall behind `objects.for_tenant(ctx)`.

Every tenant-owned table has a forced policy that shows and accepts only the rows of the
reseller named by the transaction-local setting `inkmeter.reseller_id`. The application works
as a database role that owns no table (`DATABASE_APP_ROLE`, default `inkmeter_app`), so the
policies bind it; only migrations and partition maintenance run as the owner (`owner()`).

Each unit of work says whose rows it touches, with `SET LOCAL` semantics (`set_config(..., true)`,
which takes bind parameters) inside a transaction:

- a request: `TenantMiddleware` runs the request in one transaction and `activate`s the
  tenant it resolved; API authentication activates the token's or credential's reseller;
- a Celery task or management command: `with rls.tenant(reseller_id):` around its work, or
  `with rls.system("why"):` for the few that legitimately span tenants (beat sweeps, lookups
  by credential before the tenant is known, the operator console, the demo seed);
- a task starts with nothing in scope even when it runs inside a caller's transaction
  (`ScopedTask`), so a task that forgets its scope sees no tenant rows at all.

A query that forgets its scope therefore returns nothing, and one in the wrong scope sees
only that tenant's rows, never another's. On SQLite (the embedded default) and with
`INKMETER_RLS=False` every function here is a plain transaction or a no-op.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from celery import Task
from django.conf import settings
from django.db import connection, transaction
from django.db.backends.base.base import NO_DB_ALIAS, BaseDatabaseWrapper

RESELLER = "inkmeter.reseller_id"
SCOPE = "inkmeter.scope"
SYSTEM = "system"

# Statements in a policy see these settings through a scalar sub-select: PostgreSQL then reads
# them once per statement (an InitPlan), and `reseller_id = $param` can use an index.
_RESELLER_SQL = f"(SELECT nullif(current_setting('{RESELLER}', true), '')::bigint)"
_SYSTEM_SQL = f"(SELECT current_setting('{SCOPE}', true) = '{SYSTEM}')"
POLICY = "inkmeter_tenant_wall"

_owner = threading.local()


def enabled(conn: BaseDatabaseWrapper | None = None) -> bool:
    return bool(settings.INKMETER_RLS) and (conn or connection).vendor == "postgresql"


# --- Scopes ----------------------------------------------------------------------------------


def _get() -> tuple[str, str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT coalesce(current_setting(%s, true), ''), "
            "coalesce(current_setting(%s, true), '')",
            [RESELLER, SCOPE],
        )
        row = cursor.fetchone()
    return (row[0], row[1]) if row else ("", "")


def _set(reseller: str, scope: str) -> tuple[str, str]:
    """Set both for the current transaction and return what they were, in one statement (the
    fenced sub-select reads them before the outer select list sets them)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT was.reseller, was.scope, set_config(%s, %s, true), set_config(%s, %s, true) "
            "FROM (SELECT coalesce(current_setting(%s, true), '') AS reseller, "
            "coalesce(current_setting(%s, true), '') AS scope OFFSET 0) AS was",
            [RESELLER, reseller, SCOPE, scope, RESELLER, SCOPE],
        )
        row = cursor.fetchone()
    return (row[0], row[1]) if row else ("", "")


def _activate(reseller: str, scope: str) -> None:
    if not enabled():
        return
    if not connection.in_atomic_block:
        raise RuntimeError("SET LOCAL needs a transaction: it would not outlive the statement")
    _set(reseller, scope)


def activate(reseller_id: int | None) -> None:
    """Scope the rest of the current transaction to one reseller (or to nothing)."""
    _activate("" if reseller_id is None else str(int(reseller_id)), "")


def activate_system(reason: str) -> None:
    """Every tenant's rows for the rest of the current transaction (the operator console,
    a request resolving whose it is). The reason is for the reader, as in `system`."""
    del reason
    _activate("", SYSTEM)


@contextmanager
def _scoped(reseller: str, scope: str, *, durable: bool = False) -> Iterator[None]:
    """A transaction (or savepoint) whose statements run in this scope. Nested in a caller's
    transaction, the caller's scope comes back afterwards; after an error the savepoint's
    rollback restores it by itself. A transaction of its own needs no restoring."""
    outermost = not connection.in_atomic_block
    with transaction.atomic(durable=durable):
        if not enabled():
            yield
            return
        previous = _set(reseller, scope)
        yield
        if not outermost and not connection.needs_rollback:
            _set(*previous)


def tenant(reseller_id: int) -> Any:
    """`with rls.tenant(reseller_id):` the rows of one reseller, in one transaction."""
    return _scoped(str(int(reseller_id)), "")


def system(reason: str, *, durable: bool = False) -> Any:
    """`with rls.system("why"):` every tenant's rows, for code that spans tenants by design.
    The reason is for the reader: each use says why it may cross the wall. `durable` as in
    `transaction.atomic`: for a transaction that must commit before the caller goes on."""
    del reason
    return _scoped("", SYSTEM, durable=durable)


@contextmanager
def cleared() -> Iterator[None]:
    """Nothing in scope. Only needed inside a caller's transaction (a task run eagerly, a
    test): outside one, a new transaction starts with nothing set anyway. No savepoint, so
    that the task may still open durable transactions of its own."""
    if not enabled() or not connection.in_atomic_block:
        yield
        return
    previous = _set("", "")
    try:
        yield
    finally:
        if not connection.needs_rollback:
            _set(*previous)


def request() -> Any:
    """The transaction of one request, which starts with nothing in scope."""
    return _scoped("", "")


def current_reseller_id() -> int | None:
    """The reseller in scope in the current transaction, if any."""
    reseller, _ = _get()
    return int(reseller) if reseller else None


def stream_in_scope(content: Iterable[Any], reseller_id: int | None) -> Iterator[Any]:
    """A streamed response body runs after its request's transaction: in a new one, with the
    request's tenant in scope again (`cleared` when it had none)."""
    with tenant(reseller_id) if reseller_id is not None else _scoped("", ""):
        yield from content


def reseller_of(model: Any, pk: int) -> int | None:
    """The reseller of one row found by its primary key alone (a task's argument)."""
    with system("the row is found by id before its reseller is known"):
        return model.unscoped.filter(pk=pk).values_list("reseller_id", flat=True).first()


class ScopedTask(Task):
    """The base of every Celery task: it starts with no tenant in scope (see module doc)."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        with cleared():
            return super().__call__(*args, **kwargs)


# --- Roles -----------------------------------------------------------------------------------


@contextmanager
def owner() -> Iterator[None]:
    """Run as the tables' owner (migrations, partition maintenance): on a fresh connection
    that logs in with DATABASE_OWNER_URL if set, and never drops to the application role."""
    connection.close()
    saved = dict(connection.settings_dict)
    connection.settings_dict.update(settings.DATABASE_OWNER)
    _owner.active = True
    try:
        yield
    finally:
        connection.close()
        connection.settings_dict.clear()
        connection.settings_dict.update(saved)
        _owner.active = False


def drop_to_app_role(sender: Any, connection: BaseDatabaseWrapper, **kwargs: Any) -> None:
    """`connection_created`: a connection that logged in as the owner works as the app role.

    In production DATABASE_URL logs in as the application role itself and this does nothing;
    a single-URL set-up (the demo on PostgreSQL, CI) logs in as the owner and switches here.
    """
    # The no-database connection creates and drops databases (tests): the owner's business.
    if (
        not enabled(connection)
        or getattr(_owner, "active", False)
        or connection.alias == NO_DB_ALIAS
    ):
        return
    role = settings.DATABASE_APP_ROLE
    with connection.cursor() as cursor:
        # Before the first migrate the role may not exist yet; neither do the tables.
        cursor.execute(
            "SELECT current_user, EXISTS (SELECT 1 FROM pg_roles WHERE rolname = %s)", [role]
        )
        row = cursor.fetchone()
        if row and row[0] != role and row[1]:
            cursor.execute(f"SET ROLE {connection.ops.quote_name(role)}")


# --- Policies --------------------------------------------------------------------------------


def tenant_tables() -> dict[str, str]:
    """Every tenant-owned table and the SQL condition that says a row is in scope."""
    from django.apps import apps

    from portal.tenancy import TenantModel

    in_scope = f"{_SYSTEM_SQL} OR {{column}} = {_RESELLER_SQL}"
    tables = {
        m._meta.db_table: in_scope.format(column="reseller_id")
        for m in apps.get_models()
        if issubclass(m, TenantModel)
    }
    tables["accounts_reseller"] = in_scope.format(column="id")
    # Plan rates and tiers carry no reseller: they are visible when their parent is, and the
    # parent's own policy applies inside the sub-select.
    tables["billing_planrate"] = (
        "EXISTS (SELECT 1 FROM billing_planversion v WHERE v.id = version_id)"
    )
    tables["billing_plantier"] = "EXISTS (SELECT 1 FROM billing_planrate r WHERE r.id = rate_id)"
    return tables


def install(**kwargs: Any) -> None:
    """`post_migrate`: create the app role, grant it the data (not the schema), and force a
    policy on every tenant table and on its partitions. Idempotent; runs as the owner."""
    if not enabled():
        return
    role = connection.ops.quote_name(settings.DATABASE_APP_ROLE)
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [settings.DATABASE_APP_ROLE])
        if cursor.fetchone() is None:
            cursor.execute(f"CREATE ROLE {role} NOLOGIN")
        cursor.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
        row = cursor.fetchone()
        if not (row and row[0]):
            cursor.execute(f"GRANT {role} TO current_user")
        cursor.execute(
            f"GRANT USAGE ON SCHEMA public TO {role};"
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role};"
            f"GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO {role};"
            f"REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON django_migrations FROM {role};"
        )
        for table, condition in tenant_tables().items():
            cursor.execute(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                "WHERE i.inhparent = %s::regclass",
                [table],
            )
            for name in [table, *(r[0] for r in cursor.fetchall())]:
                q = connection.ops.quote_name(name)
                cursor.execute(
                    f"ALTER TABLE {q} ENABLE ROW LEVEL SECURITY;"
                    f"ALTER TABLE {q} FORCE ROW LEVEL SECURITY;"
                    f"DROP POLICY IF EXISTS {POLICY} ON {q};"
                    f"CREATE POLICY {POLICY} ON {q} USING ({condition}) WITH CHECK ({condition});"
                )
