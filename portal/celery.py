"""The Celery app. Every periodic job is listed in BEAT_SCHEDULE below, and nowhere else."""

import gc
import os
from typing import Any

from celery import Celery
from celery.schedules import crontab
from celery.signals import worker_process_init
from kombu import Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

# Every task starts with no tenant in scope and sets its own (portal/rls.py).
app = Celery("portal", task_cls="portal.rls:ScopedTask")
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
    "collectors-silent-sweep": {
        "task": "devices.tasks.collectors_silent_sweep_task",
        "schedule": crontab(minute="*/10"),
    },
    "telemetry-followup-sweep": {
        "task": "devices.tasks.telemetry_followup_sweep_task",
        "schedule": crontab(minute="*/2"),
    },
    "devices-partitions-ensure": {
        "task": "devices.tasks.partitions_ensure_task",
        "schedule": crontab(hour=2, minute=10),  # months ahead: any hour will do
    },
    "orders-sweep": {
        "task": "orders.tasks.orders_sweep_task",
        "schedule": crontab(minute="*/2"),
    },
    "webhooks-deliver-sweep": {
        "task": "integrations.tasks.webhooks_deliver_sweep_task",
        "schedule": crontab(),  # retries are due by the minute (integrations/services.py)
    },
    "billing-statements-email-sweep": {
        "task": "billing.tasks.statements_email_sweep_task",
        "schedule": crontab(minute="*/15"),
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

# Queues by kind of work, so that one kind cannot hold up another: a month close that runs for
# minutes does not delay alert emails, and a slow SMTP server does not delay telemetry
# follow-ups. `celery -A portal worker` without -Q consumes every queue below (docker-compose's
# `worker`); eager mode (the demo, the tests) runs every task in-process and ignores routes.
# docker-compose.yml shows the alternative of one worker per queue; docs/scale.md sizes them.
QUEUES = ("ingest", "billing", "email", "pdf", "default")
# Exact names are matched first, then the patterns in this order; anything else goes to
# `default`. A new task in a routed module lands on its module's queue without an edit here.
TASK_ROUTES: dict[str, dict[str, str]] = {
    # Alert and order emails: claims and SMTP calls that may wait on a slow mail server.
    "devices.tasks.alerts_notify_task": {"queue": "email"},
    "orders.tasks.supply_alert_notify_task": {"queue": "email"},
    # The orders sweep mostly re-runs supply evaluations (CPU-heavy, docs/scale.md); the emails
    # it finds unsent are the rare lost ones.
    "orders.tasks.orders_sweep_task": {"queue": "ingest"},
    # Partition maintenance: daily DDL, kept off the queue whose backlog ingestion watches.
    "devices.tasks.partition*": {"queue": "default"},
    "*.tasks.*email*": {"queue": "email"},
    "*.tasks.*notify*": {"queue": "email"},
    # A finalised statement's email renders its PDF first.
    "billing.tasks.statement_email_task": {"queue": "pdf"},
    # PDF rendering is CPU-bound and slow per item; no task renders one yet (docs/scale.md).
    "*.tasks.*pdf*": {"queue": "pdf"},
    # Telemetry follow-ups, supply evaluation after ingest, the offline sweep.
    "devices.tasks.*": {"queue": "ingest"},
    "orders.tasks.supplies_*": {"queue": "ingest"},
    # Statement computation, the nightly close and the stale-draft sweep.
    "billing.tasks.*": {"queue": "billing"},
}
app.conf.task_queues = [Queue(name) for name in QUEUES]
app.conf.task_default_queue = "default"
app.conf.task_routes = (TASK_ROUTES,)


@worker_process_init.connect
def _freeze_startup_objects(**kwargs: Any) -> None:
    """A pool process starts with Django, the tasks and their modules loaded, and keeps them
    as long as it lives: moved out of the collector's reach, a full collection no longer walks
    them each time a task has allocated its share of rows (as portal/wsgi.py does for the web).
    Supply evaluations build thousands of model instances a run; without this, collections
    were about a tenth of the worker's CPU (docs/scale.md)."""
    gc.freeze()
