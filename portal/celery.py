"""The Celery app. Every periodic job is listed in BEAT_SCHEDULE below, and nowhere else."""

import os

from celery import Celery
from celery.schedules import crontab

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

app = Celery("portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# The one place where periodic work is declared. Each entry names a task that re-derives its
# work from the database, so a missed run costs latency, never data.
BEAT_SCHEDULE: dict[str, dict[str, object]] = {
    "worker-heartbeat": {
        "task": "portal.tasks.worker_heartbeat_task",
        "schedule": crontab(),  # every minute; readyz counts the minutes since the last one
    },
    "invitations-purge": {
        "task": "accounts.tasks.invitations_purge_task",
        "schedule": crontab(hour=3, minute=17),
    },
    "devices-offline-sweep": {
        "task": "devices.tasks.devices_offline_sweep_task",
        "schedule": crontab(minute="*/5"),
    },
    "telemetry-followup-sweep": {
        "task": "devices.tasks.telemetry_followup_sweep_task",
        "schedule": crontab(minute="*/2"),
    },
    "orders-sweep": {
        "task": "orders.tasks.orders_sweep_task",
        "schedule": crontab(minute="*/2"),
    },
    "billing-statements-close": {
        "task": "billing.tasks.statements_close_task",
        "schedule": crontab(hour=1, minute=30),
    },
    "billing-stale-drafts-sweep": {
        "task": "billing.tasks.statements_stale_sweep_task",
        "schedule": crontab(minute=45),
    },
}
app.conf.beat_schedule = BEAT_SCHEDULE
