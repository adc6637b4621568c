"""The index of the meter-read history (devices.selectors.meter_read_list) on the partitioned
snapshot table, built without blocking ingestion.

PostgreSQL refuses CREATE INDEX CONCURRENTLY on a partitioned table, and a plain CREATE INDEX
blocks every write of the snapshots until it is built. So, as docs/operations.md says: the index
is built CONCURRENTLY on each partition, created ON ONLY the parent (invalid, empty), and each
partition's index is attached to it; with the last one attached the parent's index is valid.
Partitions made later (devices/partitions.py) get it when they are attached. SQLite has no
partitions: a plain index there.
"""

from typing import Any

from django.db import migrations, models

NAME = "devices_snapshot_by_reseller"
COLUMNS = "(reseller_id, collected_at, id)"
INDEX = models.Index(fields=["reseller", "collected_at", "id"], name=NAME)


def _partitions(cursor: Any) -> list[str]:
    cursor.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'devices_snapshot'::regclass ORDER BY c.relname"
    )
    return [row[0] for row in cursor.fetchall()]


def forwards(apps: Any, schema_editor: Any) -> None:
    connection = schema_editor.connection
    if connection.vendor != "postgresql":
        schema_editor.add_index(apps.get_model("devices", "Snapshot"), INDEX)
        return
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        for partition in _partitions(cursor):
            cursor.execute(
                f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {quote(partition + '_by_reseller')} "
                f"ON {quote(partition)} {COLUMNS}"
            )
        cursor.execute(f"CREATE INDEX IF NOT EXISTS {NAME} ON ONLY devices_snapshot {COLUMNS}")
        # Listed again: a partition attached meanwhile got the index with its attachment.
        cursor.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = %s::regclass",
            [NAME],
        )
        attached = {row[0] for row in cursor.fetchall()}
        for partition in _partitions(cursor):
            index = partition + "_by_reseller"
            if index not in attached:
                cursor.execute(f"ALTER INDEX {NAME} ATTACH PARTITION {quote(index)}")


def backwards(apps: Any, schema_editor: Any) -> None:
    schema_editor.remove_index(apps.get_model("devices", "Snapshot"), INDEX)


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY cannot run in a transaction

    dependencies = [("devices", "0009_device_updated_at")]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.AddIndex(model_name="snapshot", index=INDEX)],
            database_operations=[migrations.RunPython(forwards, backwards)],
        ),
    ]
