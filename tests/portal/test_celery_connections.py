"""A worker keeps its database connection from task to task, as gunicorn does from request to
request (CONN_MAX_AGE, health checks), instead of Celery's default of a new one per task: a
new PostgreSQL backend for each of thousands of follow-ups an hour, its catalog caches and
prepared statements rebuilt each time (docs/scale.md)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from celery.fixups.django import DjangoWorkerFixup
from celery.signals import task_postrun, task_prerun
from django.db import connection

from portal.celery import app
from portal.tasks import worker_ping

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def worker_task() -> Iterator[Any]:
    """A task as a worker runs it (not eagerly), with the worker's Django fixup in place."""
    fixup = DjangoWorkerFixup(app)
    task_prerun.connect(fixup.on_task_prerun, weak=False)
    task_postrun.connect(fixup.on_task_postrun, weak=False)
    task = worker_ping
    task.push_request(is_eager=False)  # type: ignore[call-arg]
    try:
        yield task
    finally:
        task.pop_request()
        task_prerun.disconnect(fixup.on_task_prerun)
        task_postrun.disconnect(fixup.on_task_postrun)


def _run(task: Any) -> None:
    task_prerun.send(sender=task, task_id="t", task=task, args=(), kwargs={})
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    task_postrun.send(sender=task, task_id="t", task=task, args=(), kwargs={}, retval=None)


def test_tasks_in_a_row_share_one_connection(worker_task: Any) -> None:
    connection.ensure_connection()
    first = connection.connection
    for _ in range(5):
        _run(worker_task)
    assert connection.connection is first


def test_a_connection_past_its_age_is_replaced_between_tasks(worker_task: Any) -> None:
    connection.ensure_connection()
    first = connection.connection
    connection.close_at = time.monotonic() - 1  # CONN_MAX_AGE reached
    _run(worker_task)
    assert connection.connection is not None
    assert connection.connection is not first
    second = connection.connection
    _run(worker_task)
    assert connection.connection is second


def test_a_broken_connection_is_replaced_before_the_next_task(worker_task: Any) -> None:
    connection.ensure_connection()
    first = connection.connection
    first.close()  # as a database restart leaves it
    connection.errors_occurred = True  # set by Django on the error the dead socket raised
    _run(worker_task)
    assert connection.connection is not first
