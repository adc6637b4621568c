"""No primary-key index on the counter and supply readings (issue 12, point 2).

Their key `(id, collected_at)` (devices/0005) is looked up by nothing: every read of the readings
goes by device and series (`devices_counter_series`, `devices_supply_series`) and time, and no
other table refers to a reading. The index cost every reading an index entry and a WAL record at
ingest, 2,000 a batch of 100 snapshots (docs/scale.md, "Ingest"). The `id` column stays, filled
from its sequence, so the ORM and the API read readings as before.

PostgreSQL only (on SQLite the table keeps its rowid key). Dropping the constraint of the
partitioned parent drops each partition's index with it: a moment's ACCESS EXCLUSIVE lock, no
scan. Going back builds the index on every partition under that lock: a maintenance window on an
installation with data.

Their ids are also handed out 1,000 at a time per connection (the sequence's CACHE): without it
every reading took the sequence's buffer lock, and every 32nd wrote WAL. Ids stay unique but no
longer follow insertion order across connections; nothing orders readings by id.
"""

from typing import Any

from django.db import migrations

TABLES = ("devices_counterreading", "devices_supplyreading")
ID_CACHE = 1000


def _forwards(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    for table in TABLES:
        schema_editor.execute(f"ALTER TABLE {table} DROP CONSTRAINT IF EXISTS {table}_pkey")
        schema_editor.execute(f"ALTER SEQUENCE {table}_id_seq CACHE {ID_CACHE}")


def _backwards(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    for table in TABLES:
        schema_editor.execute(f"ALTER SEQUENCE {table}_id_seq CACHE 1")
        schema_editor.execute(
            f"ALTER TABLE {table} ADD CONSTRAINT {table}_pkey PRIMARY KEY (id, collected_at)"
        )


class Migration(migrations.Migration):
    dependencies = [
        ("devices", "0011_supply_fillfactor"),
    ]

    operations = [
        migrations.RunPython(_forwards, _backwards, elidable=False),
    ]
