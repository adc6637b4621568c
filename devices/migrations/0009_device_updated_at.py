import django.db.models.functions.datetime
import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0007_user_time_zone_locale"),
        ("devices", "0008_merge_alert_key_management_and_rollups"),
    ]

    operations = [
        # now() is stable, not volatile: PostgreSQL stores it once in the catalog, no rewrite.
        migrations.AddField(
            model_name="device",
            name="updated_at",
            field=models.DateTimeField(
                db_default=django.db.models.functions.datetime.Now(),
                default=django.utils.timezone.now,
            ),
        ),
    ]
