"""A task sent through Redis to a real `celery -A portal worker` process comes back."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.redis
def test_a_real_worker_runs_a_task_sent_through_redis():
    from portal.celery import app
    from portal.tasks import worker_ping

    env = {**os.environ, "REDIS_URL": settings.REDIS_URL}
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "portal",
            "worker",
            "--pool=solo",
            "--concurrency=1",
            "--without-gossip",
            "--without-mingle",
            "-Q",
            "default",  # worker_ping's queue (portal/celery.py)
            "--loglevel=WARNING",
        ],
        cwd=ROOT,
        env=env,
    )
    try:
        app.conf.task_always_eager = False
        result = worker_ping.delay("inkmeter")
        assert result.get(timeout=60) == "pong:inkmeter"
    finally:
        app.conf.task_always_eager = settings.CELERY_TASK_ALWAYS_EAGER
        worker.terminate()
        worker.wait(timeout=30)
