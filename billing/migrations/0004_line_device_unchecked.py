"""A statement line's device without a database key check (the membership's key holds; a
100,000-device close checked it 300,000 times at each commit). On PostgreSQL only: SQLite
would rebuild the table for it and lose the triggers of 0002 that keep final lines immutable;
there the key stays, which costs the demo's small closes nothing."""

from copy import copy
from typing import Any

import django.db.models.deletion
from django.db import migrations, models


def _device_key(*, checked: bool) -> Any:
    def run(apps: Any, schema_editor: Any) -> None:
        if schema_editor.connection.vendor != "postgresql":
            return
        line = apps.get_model("billing", "StatementLine")
        old = line._meta.get_field("device")
        new = copy(old)
        old.db_constraint, new.db_constraint = not checked, checked
        schema_editor.alter_field(line, old, new)

    return run


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0003_statement_pdf"),
        ("devices", "0008_merge_alert_key_management_and_rollups"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="statementline",
                    name="device",
                    field=models.ForeignKey(
                        blank=True,
                        db_constraint=False,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="devices.device",
                    ),
                ),
            ],
            database_operations=[
                migrations.RunPython(_device_key(checked=False), _device_key(checked=True)),
            ],
        ),
    ]
