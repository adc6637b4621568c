"""Writes of the portal itself (not of a tenant): the Celery worker's heartbeat."""

from __future__ import annotations

from django.core.cache import cache
from django.utils.timezone import now

WORKER_HEARTBEAT_KEY = "portal:worker-heartbeat"


def worker_heartbeat_record() -> float:
    """Note that a worker ran a task just now; readyz and /metrics read it back."""
    moment = now().timestamp()
    cache.set(WORKER_HEARTBEAT_KEY, moment, timeout=None)
    return moment
