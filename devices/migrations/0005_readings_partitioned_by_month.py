"""Raw batches, snapshots and readings partitioned by month on PostgreSQL (issue #7).

The model state changes on both databases: a partitioned table's unique constraints must hold
its partition key, so a snapshot is unique by (snapshot_id, collected_at), a batch is found by
its key under a lock instead of a unique constraint (devices/ingest.py), and a snapshot's batch
is no longer checked by a foreign key (the batch table's key becomes (id, received_at)).

Then, on PostgreSQL only, each table is rebuilt as `PARTITION BY RANGE` under its own name:
its rows, sequence, primary key, unique constraints, foreign keys and indexes are carried over
under the same names, into one partition per month that holds data, one per month from this one
to three ahead, and a DEFAULT partition. The rebuild copies every row under an exclusive lock,
so on an installation with much data it belongs in a maintenance window (docs/operations.md).
SQLite, the embedded default, keeps plain tables.

Everything here is frozen on purpose: devices/partitions.py may change, this migration not.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import django.db.models.deletion
from django.db import migrations, models

# Table -> partition key. Batches by when they were received (the follow-up sweep and the audit
# read them so), the rest by when the device took the reading (billing, charts, forecasts).
PARTITION_KEYS = {
    "devices_telemetrybatch": "received_at",
    "devices_snapshot": "collected_at",
    "devices_counterreading": "collected_at",
    "devices_supplyreading": "collected_at",
}
MONTHS_AHEAD = 3


def _month_add(month: date, months: int) -> date:
    index = month.year * 12 + month.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def _bound(month: date) -> str:
    return f"{month.isoformat()} 00:00:00+00"


def _rebuild(cursor: Any, quote: Any, table: str, key: str | None) -> None:
    """Rebuild `table` partitioned by month of `key`, or (key None) as a plain table again."""
    old = f"{table}__old"
    cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [table])
    sequence = cursor.fetchone()[0]
    cursor.execute(f"SELECT last_value, is_called FROM {sequence}")  # noqa: S608 - catalog name
    last_value, is_called = cursor.fetchone()
    cursor.execute(
        "SELECT conname, contype, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conrelid = %s::regclass AND contype IN ('p', 'u', 'f') ORDER BY contype, conname",
        [table],
    )
    constraints = cursor.fetchall()
    # Indexes that back no constraint; their definitions name `table`, which is the new table
    # by the time they run.
    cursor.execute(
        "SELECT pg_get_indexdef(x.indexrelid) FROM pg_index x "
        "WHERE x.indrelid = %s::regclass AND NOT EXISTS (SELECT 1 FROM pg_constraint c "
        "WHERE c.conindid = x.indexrelid AND c.conrelid = x.indrelid) ORDER BY x.indexrelid",
        [table],
    )
    indexes = [row[0] for row in cursor.fetchall()]
    cursor.execute(
        "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 "
        "AND NOT attisdropped ORDER BY attnum",
        [table],
    )
    columns = ", ".join(quote(row[0]) for row in cursor.fetchall())

    cursor.execute(f"ALTER TABLE {table} RENAME TO {old}")
    cursor.execute(
        f"CREATE TABLE {table} (LIKE {old} INCLUDING DEFAULTS INCLUDING CONSTRAINTS "
        "INCLUDING IDENTITY INCLUDING STORAGE INCLUDING COMMENTS)"
        + (f" PARTITION BY RANGE ({quote(key)})" if key else "")
    )
    if key:
        cursor.execute(
            f"SELECT DISTINCT date_trunc('month', {quote(key)} AT TIME ZONE 'UTC') FROM {old}"  # noqa: S608
        )
        months = {row[0].date() for row in cursor.fetchall()}
        this_month = datetime.now(tz=UTC).date().replace(day=1)
        months |= {_month_add(this_month, n) for n in range(MONTHS_AHEAD + 1)}
        for month in sorted(months):
            cursor.execute(
                f"CREATE TABLE {table}_p{month:%Y%m} PARTITION OF {table} "
                f"FOR VALUES FROM ('{_bound(month)}') TO ('{_bound(_month_add(month, 1))}')"
            )
        cursor.execute(f"CREATE TABLE {table}_default PARTITION OF {table} DEFAULT")
    cursor.execute(f"INSERT INTO {table} ({columns}) SELECT {columns} FROM {old}")  # noqa: S608
    cursor.execute("SELECT max(id) FROM " + old)  # noqa: S608 - our name
    top = cursor.fetchone()[0]
    cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [table])
    new_sequence = cursor.fetchone()[0]
    if top is not None and top > last_value:
        last_value, is_called = top, True
    cursor.execute("SELECT setval(%s::regclass, %s, %s)", [new_sequence, last_value, is_called])
    cursor.execute(f"DROP TABLE {old}")
    cursor.execute(f"ALTER SEQUENCE {new_sequence} RENAME TO {table}_id_seq")

    for name, kind, definition in constraints:
        if kind == "p":
            definition = f"PRIMARY KEY (id, {quote(key)})" if key else "PRIMARY KEY (id)"
        cursor.execute(f"ALTER TABLE {table} ADD CONSTRAINT {quote(name)} {definition}")
    for definition in indexes:
        cursor.execute(definition)


def _each_table(forwards: bool) -> Any:
    def run(apps: Any, schema_editor: Any) -> None:
        connection = schema_editor.connection
        if connection.vendor != "postgresql":
            return
        with connection.cursor() as cursor:
            for table, key in PARTITION_KEYS.items():
                _rebuild(cursor, connection.ops.quote_name, table, key if forwards else None)

    return run


class Migration(migrations.Migration):
    dependencies = [
        ("devices", "0004_supply_without_redundant_indexes"),
    ]

    operations = [
        migrations.AlterField(
            model_name="snapshot",
            name="batch",
            field=models.ForeignKey(
                db_constraint=False,
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to="devices.telemetrybatch",
            ),
        ),
        migrations.AlterField(
            model_name="snapshot",
            name="snapshot_id",
            field=models.UUIDField(),
        ),
        migrations.AddConstraint(
            model_name="snapshot",
            constraint=models.UniqueConstraint(
                fields=("snapshot_id", "collected_at"), name="devices_snapshot_once"
            ),
        ),
        migrations.RemoveConstraint(
            model_name="telemetrybatch",
            name="devices_batch_once",
        ),
        migrations.AddIndex(
            model_name="telemetrybatch",
            index=models.Index(fields=["credential", "batch_id"], name="devices_batch_by_key"),
        ),
        migrations.RunPython(_each_table(forwards=True), _each_table(forwards=False)),
    ]
