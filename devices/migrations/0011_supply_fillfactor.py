"""Half-empty pages for the current supplies, so that ingestion's rewrite of each supply row is a
HOT update (issue 12, point 2).

Every batch rewrites the supply rows of its devices (`devices_supply`: the latest level and when
it was seen), and one batch rewrites every row of a page (a collector's printers were first seen
together, so their supplies sit side by side). With full pages each new row version goes to
another page and gets an entry in all three indexes; with room on its page, and no indexed
column changed (the level, hence `percent`, mostly stays the same from one poll to the next),
it is a heap-only tuple: no index entry, about a third of the WAL. Measured with
benchmarks/ingest.py (docs/scale.md, "Ingest").

PostgreSQL only (SQLite has no fillfactor). The setting applies to pages written from now on;
existing rows move to such pages as they are updated, or at once with `VACUUM FULL
devices_supply` in a maintenance window.
"""

from typing import Any

from django.db import migrations

FILLFACTOR = 50


def _alter(fillfactor: int | None) -> Any:
    def run(apps: Any, schema_editor: Any) -> None:
        if schema_editor.connection.vendor != "postgresql":
            return
        if fillfactor is None:
            schema_editor.execute("ALTER TABLE devices_supply RESET (fillfactor)")
        else:
            schema_editor.execute(f"ALTER TABLE devices_supply SET (fillfactor = {fillfactor})")

    return run


class Migration(migrations.Migration):
    dependencies = [
        ("devices", "0010_snapshot_by_reseller"),
    ]

    operations = [
        migrations.RunPython(_alter(FILLFACTOR), _alter(None), elidable=False),
    ]
