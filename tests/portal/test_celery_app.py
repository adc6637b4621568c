"""The Celery app: one beat schedule, every entry naming a task the worker knows."""

import gc

from celery.schedules import crontab, schedule
from celery.signals import worker_process_init

from portal.celery import BEAT_SCHEDULE, app


def test_every_beat_entry_names_a_registered_task():
    app.loader.import_default_modules()

    unknown = {name: e["task"] for name, e in BEAT_SCHEDULE.items() if e["task"] not in app.tasks}

    assert BEAT_SCHEDULE
    assert unknown == {}
    assert all(
        isinstance(e["schedule"], crontab | schedule | float | int) for e in BEAT_SCHEDULE.values()
    )


def test_without_redis_tasks_run_in_process(settings):
    from portal.tasks import worker_ping

    assert settings.CELERY_TASK_ALWAYS_EAGER is True or settings.REDIS_URL
    if settings.CELERY_TASK_ALWAYS_EAGER:
        assert worker_ping.delay("x").get(timeout=1) == "pong:x"


def test_a_pool_process_moves_what_it_started_with_out_of_the_collectors_reach():
    gc.unfreeze()
    try:
        worker_process_init.send(sender="test@host")
        assert gc.get_freeze_count() > 10_000  # Django, the models, the tasks
    finally:
        gc.unfreeze()
