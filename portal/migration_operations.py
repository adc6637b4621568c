"""Migration operations that do not lock the big tables on PostgreSQL and still run on SQLite.

Django's own (django.contrib.postgres.operations) are PostgreSQL-only: on SQLite, the embedded
default of the demo and the tests, AddIndexConcurrently fails with a TypeError and
AddConstraintNotValid with a syntax error. These subclasses keep the PostgreSQL behaviour and
fall back to the plain operation elsewhere, where no concurrent writer waits on the lock.
docs/operations.md ("Upgrading without downtime") says when to use each;
tests/portal/test_migrations.py requires them on the big tables.
"""

from __future__ import annotations

from typing import Any

from django.contrib.postgres import operations as pg
from django.db import migrations


def _on_postgres(schema_editor: Any) -> bool:
    return bool(schema_editor.connection.vendor == "postgresql")


class AddIndexConcurrently(pg.AddIndexConcurrently):
    """CREATE INDEX CONCURRENTLY on PostgreSQL (in a migration with `atomic = False`)."""

    def database_forwards(self, app_label: str, schema_editor: Any, *states: Any) -> None:
        if _on_postgres(schema_editor):
            super().database_forwards(app_label, schema_editor, *states)
        else:
            migrations.AddIndex.database_forwards(self, app_label, schema_editor, *states)

    def database_backwards(self, app_label: str, schema_editor: Any, *states: Any) -> None:
        if _on_postgres(schema_editor):
            super().database_backwards(app_label, schema_editor, *states)
        else:
            migrations.AddIndex.database_backwards(self, app_label, schema_editor, *states)


class RemoveIndexConcurrently(pg.RemoveIndexConcurrently):
    """DROP INDEX CONCURRENTLY on PostgreSQL (in a migration with `atomic = False`)."""

    def database_forwards(self, app_label: str, schema_editor: Any, *states: Any) -> None:
        if _on_postgres(schema_editor):
            super().database_forwards(app_label, schema_editor, *states)
        else:
            migrations.RemoveIndex.database_forwards(self, app_label, schema_editor, *states)

    def database_backwards(self, app_label: str, schema_editor: Any, *states: Any) -> None:
        if _on_postgres(schema_editor):
            super().database_backwards(app_label, schema_editor, *states)
        else:
            migrations.RemoveIndex.database_backwards(self, app_label, schema_editor, *states)


class AddConstraintNotValid(pg.AddConstraintNotValid):
    """A check constraint added NOT VALID: new rows are checked at once, old ones are not
    scanned under the lock; a later ValidateConstraint checks them without blocking writes."""

    def database_forwards(self, app_label: str, schema_editor: Any, *states: Any) -> None:
        if _on_postgres(schema_editor):
            super().database_forwards(app_label, schema_editor, *states)
        else:
            migrations.AddConstraint.database_forwards(self, app_label, schema_editor, *states)


class ValidateConstraint(pg.ValidateConstraint):
    """VALIDATE CONSTRAINT: scans the table under a lock that lets reads and writes go on.
    Elsewhere the constraint was checked when it was added."""

    def database_forwards(self, app_label: str, schema_editor: Any, *states: Any) -> None:
        if _on_postgres(schema_editor):
            super().database_forwards(app_label, schema_editor, *states)
