import os
import subprocess
import sys
from io import StringIO

import pytest
from django.apps import apps as django_apps
from django.contrib.postgres import operations as pg
from django.core.management import call_command
from django.db import connection, migrations, models
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.state import ProjectState
from django.db.models.fields import NOT_PROVIDED

from portal import migration_operations, rls


@pytest.mark.django_db
def test_models_and_migrations_agree():
    out = StringIO()
    try:
        call_command("makemigrations", "--check", "--dry-run", stdout=out, stderr=StringIO())
    except SystemExit as exit_:
        pytest.fail(f"a model change has no migration:\n{out.getvalue()}")
        raise AssertionError from exit_


# --- Zero-downtime guard (docs/operations.md, "Upgrading without downtime") ------------------
#
# A rolling upgrade runs the old code against the new schema, and the big tables take writes
# all the time: an operation that holds an ACCESS EXCLUSIVE lock for the length of a scan or a
# rewrite stops ingestion for that long. So every operation on a big table must be of a kind
# that PostgreSQL 15 does without a long lock and that the previous release survives.

BIG_MODELS = {
    ("devices", "telemetrybatch"),
    ("devices", "snapshot"),
    ("devices", "counterreading"),
    ("devices", "supplyreading"),
    ("devices", "job"),
    ("billing", "statementline"),
    ("accounts", "auditevent"),
}
# Partitioned by month on PostgreSQL (devices/migrations/0005, devices/partitions.py).
PARTITIONED_MODELS = {
    ("devices", "telemetrybatch"),
    ("devices", "snapshot"),
    ("devices", "counterreading"),
    ("devices", "supplyreading"),
}
PROJECT_APPS = ("accounts", "devices", "billing", "orders", "portal", "integrations")

# Migrations that predate this guard: they ran when the tables were small or empty.
GRANDFATHERED = {
    ("accounts", "0001_initial"),
    ("accounts", "0002_alter_apitoken_role_alter_invitation_role"),
    ("accounts", "0003_alter_apitoken_role_alter_invitation_role"),
    ("accounts", "0004_reseller_logo"),
    ("accounts", "0005_customer_billing_address"),
    ("billing", "0001_initial"),
    ("billing", "0002_final_statements_immutable"),
    ("devices", "0001_initial"),
    ("devices", "0002_snapshot_alerts_always_reported"),
    ("devices", "0003_readings_without_fk_checks"),
    ("devices", "0004_supply_without_redundant_indexes"),
    ("orders", "0001_initial"),
    ("orders", "0002_emaillog_lease"),
}
# Migrations with SQL, Python or a locking operation that someone read and accepted; say why,
# and how an operator runs it (docs/operations.md).
REVIEWED = {
    ("billing", "0004_line_device_unchecked"): (
        "Drops the foreign-key check of a statement line's device on PostgreSQL (DROP "
        "CONSTRAINT: a moment's exclusive lock, no scan); going back adds it again and checks "
        "every line, so a reverse runs in a maintenance window."
    ),
    ("devices", "0005_readings_partitioned_by_month"): (
        "Rebuilds batches, snapshots and readings as monthly partitions, copying every row "
        "under an exclusive lock: a maintenance window on an installation with data."
    ),
    ("devices", "0007_page_rollups_and_device_figures"): (
        "Creates the daily page rollups and fills them from the last 40 days of page-counter "
        "readings, and computes every device state's figures from its supplies and alerts: "
        "plain reads and writes (no DDL lock), in transactions of 20,000 devices each; the "
        "readings of a device silent since the month before start from nothing."
    ),
    ("devices", "0010_snapshot_by_reseller"): (
        "Adds the meter-read index to the partitioned snapshots the way docs/operations.md "
        "says: CONCURRENTLY on each partition, ON ONLY the parent, then ATTACH PARTITION each; "
        "no write waits for the build. A failed run leaves an invalid index: drop it "
        "(`DROP INDEX IF EXISTS devices_snapshot_by_reseller` and each `<partition>_by_reseller` "
        "CONCURRENTLY) and migrate again."
    ),
    ("devices", "0011_supply_fillfactor"): (
        "Sets (and going back resets) the fillfactor of the current supplies on PostgreSQL: a "
        "storage parameter, written to the catalog under a SHARE UPDATE EXCLUSIVE lock; no "
        "rewrite, writes go on. Existing pages change as rows are updated."
    ),
    ("devices", "0012_readings_without_primary_key"): (
        "Drops the primary-key index of the counter and supply readings on PostgreSQL (DROP "
        "CONSTRAINT on the partitioned parent: a moment's exclusive lock, no scan; each "
        "partition's index goes with it), and gives their id sequences a cache of 1,000 (a "
        "catalog change). Going back builds the index on every partition under an exclusive "
        "lock: a maintenance window."
    ),
}

# Changes of a field that PostgreSQL does not see, or sees in the catalog only.
CATALOG_ONLY_FIELD_KEYS = {
    "verbose_name",
    "help_text",
    "choices",
    "validators",
    "blank",
    "default",  # Django applies it in Python; the column has no DEFAULT
    "editable",
    "error_messages",
    "related_name",
    "related_query_name",
    "limit_choices_to",
    "on_delete",  # Django cascades in Python
}


def _safe_added_field(field) -> str | None:
    if field.many_to_many:
        return None  # a new table
    if not field.null and field.db_default is NOT_PROVIDED:
        return "a NOT NULL column without db_default breaks the old code's INSERTs"
    if field.unique or (field.db_index and not field.primary_key):
        return "its index is built under a write lock; add it with AddIndexConcurrently"
    if field.is_relation and field.db_constraint:
        return "its foreign key is validated under a lock; db_constraint=False, then NOT VALID"
    return None


def _safe_altered_field(old, new) -> str | None:
    if type(old) is not type(new):
        return "a type change rewrites the table under an exclusive lock"
    old_kwargs, new_kwargs = old.deconstruct()[3], new.deconstruct()[3]
    changed = {
        key
        for key in old_kwargs.keys() | new_kwargs.keys()
        if old_kwargs.get(key) != new_kwargs.get(key)
    } - CATALOG_ONLY_FIELD_KEYS
    if "null" in changed and new.null:
        changed.discard("null")  # DROP NOT NULL: catalog only
    if "max_length" in changed and (new.max_length or 0) >= (old.max_length or 0):
        changed.discard("max_length")  # a longer varchar: catalog only
    if changed:
        return f"changes {sorted(changed)}: a scan or a rewrite under an exclusive lock"
    return None


def _model_of(operation) -> str | None:
    name = getattr(operation, "model_name", None) or getattr(operation, "name", None)
    return name.lower() if isinstance(name, str) else None


def _problem(operation, app_label: str, state) -> str | None:
    """Why `operation` is not safe on a big table, or None."""
    if isinstance(operation, migrations.RunSQL | migrations.RunPython):
        return "SQL or Python that nobody reviewed (add it to REVIEWED with the reason)"
    if (app_label, _model_of(operation)) not in BIG_MODELS:
        return None
    if (app_label, _model_of(operation)) in PARTITIONED_MODELS and isinstance(
        operation, pg.AddIndexConcurrently
    ):
        return (
            "PostgreSQL cannot build an index CONCURRENTLY on a partitioned table: build it "
            "on each partition, then attach (a reviewed RunSQL, docs/operations.md)"
        )
    if isinstance(
        operation,
        pg.AddIndexConcurrently
        | pg.RemoveIndexConcurrently
        | pg.AddConstraintNotValid
        | pg.ValidateConstraint
        | migrations.CreateModel
        | migrations.AlterModelOptions
        | migrations.AlterModelManagers,
    ):
        return None
    if isinstance(operation, migrations.AddField):
        return _safe_added_field(operation.field)
    if isinstance(operation, migrations.AlterField):
        old = state.models[app_label, operation.model_name_lower].fields[operation.name]
        return _safe_altered_field(old, operation.field)
    return (
        f"{type(operation).__name__} locks the table or breaks the running release "
        "(see docs/operations.md for the safe way)"
    )


def _operations(operation):
    if isinstance(operation, migrations.SeparateDatabaseAndState):
        for inner in operation.database_operations:
            yield from _operations(inner)
    else:
        yield operation


def _project_migrations():
    loader = MigrationLoader(None, ignore_no_migrations=True)
    for key, migration in sorted(loader.disk_migrations.items()):
        if key[0] in PROJECT_APPS:
            yield loader, key, migration


def migration_problems(loader, key, migration) -> list[str]:
    """What the zero-downtime rules find in one migration."""
    if key in GRANDFATHERED or key in REVIEWED:
        return []
    state = loader.project_state(key, at_end=False)
    problems = []
    concurrent = False
    for operation in migration.operations:
        for database_operation in _operations(operation):
            concurrent |= isinstance(
                database_operation, pg.AddIndexConcurrently | pg.RemoveIndexConcurrently
            )
            problem = _problem(database_operation, key[0], state)
            if problem:
                problems.append(f"{key[0]}.{key[1]}: {database_operation.describe()}: {problem}")
        operation.state_forwards(key[0], state)
    if concurrent and migration.atomic:
        problems.append(f"{key[0]}.{key[1]}: CONCURRENTLY needs `atomic = False`")
    return problems


def test_migrations_on_big_tables_take_no_long_lock():
    problems = [p for args in _project_migrations() for p in migration_problems(*args)]

    assert problems == []


def test_every_grandfathered_migration_exists():
    on_disk = {key for _, key, _ in _project_migrations()}

    assert GRANDFATHERED - on_disk == set()


def _migration(app_label: str, *operations, atomic: bool = True):
    class Migration(migrations.Migration):
        pass

    migration = Migration("9999_probe", app_label)
    migration.operations = list(operations)
    migration.atomic = atomic
    return migration


def _problems_of(migration) -> list[str]:
    loader = MigrationLoader(None, ignore_no_migrations=True)
    key = (migration.app_label, migration.name)
    leaf = loader.graph.leaf_nodes(migration.app_label)[0]
    loader.graph.add_node(key, migration)
    loader.graph.add_dependency(migration, key, leaf)
    return migration_problems(loader, key, migration)


@pytest.mark.parametrize(
    ("operation", "atomic"),
    [
        (
            migration_operations.AddIndexConcurrently(
                "job", models.Index(fields=["completed_at"], name="probe_idx")
            ),
            False,
        ),
        (migrations.AddField("snapshot", "probe", models.IntegerField(null=True)), True),
        (migrations.AddField("snapshot", "probe", models.IntegerField(db_default=0)), True),
        (
            migrations.AlterField(
                "snapshot", "hostname", models.CharField(max_length=512, blank=True)
            ),
            True,
        ),
        (
            migration_operations.AddConstraintNotValid(
                "counterreading",
                models.CheckConstraint(condition=models.Q(value__gte=0), name="probe_check"),
            ),
            True,
        ),
        (migrations.AddIndex("device", models.Index(fields=["name"], name="probe_idx")), True),
    ],
)
def test_the_guard_accepts_the_safe_kinds(operation, atomic):
    assert _problems_of(_migration("devices", operation, atomic=atomic)) == []


@pytest.mark.parametrize(
    ("operation", "atomic", "reason"),
    [
        (
            migrations.AddIndex(
                "counterreading", models.Index(fields=["collected_at"], name="probe_idx")
            ),
            True,
            "AddIndex locks the table",
        ),
        (
            migration_operations.AddIndexConcurrently(
                "job", models.Index(fields=["completed_at"], name="probe_idx")
            ),
            True,
            "CONCURRENTLY needs `atomic = False`",
        ),
        (
            migration_operations.AddIndexConcurrently(
                "counterreading", models.Index(fields=["collected_at"], name="probe_idx")
            ),
            False,
            "cannot build an index CONCURRENTLY on a partitioned table",
        ),
        (
            migrations.AddField("snapshot", "probe", models.IntegerField(default=0)),
            True,
            "NOT NULL column without db_default",
        ),
        (
            migrations.AddField("snapshot", "probe", models.IntegerField(null=True, db_index=True)),
            True,
            "add it with AddIndexConcurrently",
        ),
        (
            migrations.AlterField("snapshot", "hostname", models.TextField(blank=True)),
            True,
            "a type change rewrites the table",
        ),
        (
            migrations.AlterField("snapshot", "hostname", models.CharField(max_length=64)),
            True,
            "changes ['max_length']",
        ),
        (
            migrations.AlterField("telemetrybatch", "followup_done_at", models.DateTimeField()),
            True,
            "changes ['null']",
        ),
        (
            migrations.AddConstraint(
                "statementline",
                models.CheckConstraint(condition=models.Q(position__gte=0), name="probe_check"),
            ),
            True,
            "AddConstraint locks the table",
        ),
        (migrations.RemoveField("auditevent", "detail"), True, "RemoveField locks the table"),
        (migrations.RunSQL("SELECT 1"), True, "nobody reviewed"),
    ],
)
def test_the_guard_refuses_the_locking_kinds(operation, atomic, reason):
    app_label = {
        "auditevent": "accounts",
        "statementline": "billing",
    }.get(getattr(operation, "model_name", ""), "devices")

    problems = _problems_of(_migration(app_label, operation, atomic=atomic))

    assert len(problems) == 1
    assert reason in problems[0]


@pytest.mark.postgres
def test_pgoptions_sets_the_lock_timeout_of_a_migrate_run():
    """The documented way to bound a migration's lock waits reaches Django's connection."""
    code = (
        "import django; django.setup(); from django.db import connection;"
        "c = connection.cursor(); c.execute('SHOW lock_timeout'); print(c.fetchone()[0])"
    )
    # The maintenance database always exists; DATABASE_URL's may not (pytest uses test_<name>).
    db = connection.settings_dict
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    url = f"postgres://{db['USER']}{password}@{db['HOST']}:{db['PORT']}/postgres"
    env = {**os.environ, "DATABASE_URL": url, "PGOPTIONS": "-c lock_timeout=5s"}
    done = subprocess.run(  # noqa: S603 - our own interpreter
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )

    assert done.stdout.strip() == "5s"


def _constraint_names(table: str) -> set[str]:
    with connection.cursor() as cursor:
        return set(connection.introspection.get_constraints(cursor, table))


def _run(operation, app_label: str, *, backwards: bool = False) -> None:
    before = ProjectState.from_apps(django_apps)
    after = before.clone()
    operation.state_forwards(app_label, after)
    # DDL runs as the tables' owner, as `migrate` does: the app role owns no table.
    with rls.owner(), connection.schema_editor(atomic=False) as editor:
        if backwards:
            operation.database_backwards(app_label, editor, after, before)
        else:
            operation.database_forwards(app_label, editor, before, after)


@pytest.mark.django_db(transaction=True)
def test_the_concurrent_index_operation_runs_on_this_database_and_back():
    index = models.Index(fields=["statement", "kind"], name="probe_line_kind")
    operation = migration_operations.AddIndexConcurrently("statementline", index)

    _run(operation, "billing")
    created = _constraint_names("billing_statementline")
    _run(operation, "billing", backwards=True)

    assert "probe_line_kind" in created
    assert "probe_line_kind" not in _constraint_names("billing_statementline")


@pytest.mark.django_db(transaction=True)
def test_the_not_valid_check_runs_on_this_database_then_validates():
    check = models.CheckConstraint(condition=models.Q(position__gte=0), name="probe_position")
    add = migration_operations.AddConstraintNotValid("statementline", check)
    validate = migration_operations.ValidateConstraint("statementline", "probe_position")

    _run(add, "billing")
    _run(validate, "billing")
    created = _constraint_names("billing_statementline")
    _run(add, "billing", backwards=True)

    assert "probe_position" in created
    assert "probe_position" not in _constraint_names("billing_statementline")
