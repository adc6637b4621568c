"""The three devices 0007 migrations of parallel branches (alert key, device management, page
rollups) touch different fields and tables: any order gives the same schema."""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('devices', '0007_alert_key'),
        ('devices', '0007_device_management_and_collector_health'),
        ('devices', '0007_page_rollups_and_device_figures'),
    ]

    operations = [
    ]
