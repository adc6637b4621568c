"""Celery queues by kind of work: every task, present and future, routes to a queue that a
worker consumes, both with the one worker of docker-compose.yml and with its commented
alternative of one worker per queue."""

import re
import shlex
from pathlib import Path

import pytest
import yaml

from portal.celery import BEAT_SCHEDULE, QUEUES, app

ROOT = Path(__file__).resolve().parents[2]


def _queue_of(task_name: str) -> str:
    """The queue Celery sends `task_name` to: the router that apply_async and beat use."""
    return app.amqp.router.route({}, task_name)["queue"].name


def _all_task_names() -> list[str]:
    app.loader.import_default_modules()  # every app's tasks.py, as a worker loads them
    return sorted(app.tasks)


def _consumed_queues(command: str) -> set[str]:
    """The queues a `celery -A portal worker` command line consumes: -Q, or all declared."""
    args = shlex.split(command)
    assert args[:4] == ["celery", "-A", "portal", "worker"], command
    for flag in ("-Q", "--queues"):
        if flag in args:
            return set(args[args.index(flag) + 1].split(","))
        joined = [a for a in args if a.startswith(f"{flag}=")]
        if joined:
            return set(joined[0].split("=", 1)[1].split(","))
    return set(app.amqp.queues)


def _compose_text() -> str:
    return (ROOT / "docker-compose.yml").read_text()


def _commented_workers() -> dict[str, dict[str, str]]:
    """The per-queue workers that docker-compose.yml shows commented out, parsed as YAML."""
    lines = re.findall(r"^  # (worker-\w+:|  \S.*)$", _compose_text(), flags=re.MULTILINE)
    block = "\n".join(line.replace("<<: *app", "image: inkmeter:latest") for line in lines)
    parsed: dict[str, dict[str, str]] = yaml.safe_load(block)
    return parsed


def test_a_worker_without_q_consumes_exactly_the_declared_queues():
    assert set(app.amqp.queues) == set(QUEUES)
    assert app.conf.task_default_queue in QUEUES


def test_every_task_routes_to_a_declared_queue():
    names = _all_task_names()

    misrouted = {name: _queue_of(name) for name in names if _queue_of(name) not in QUEUES}

    assert len(names) > 10
    assert misrouted == {}


def test_every_beat_entry_routes_to_a_declared_queue():
    misrouted = {
        entry["task"]: _queue_of(str(entry["task"]))
        for entry in BEAT_SCHEDULE.values()
        if _queue_of(str(entry["task"])) not in QUEUES
    }

    assert misrouted == {}


@pytest.mark.parametrize(
    ("task_name", "queue"),
    [
        ("devices.tasks.batch_followup_task", "ingest"),
        ("devices.tasks.telemetry_followup_sweep_task", "ingest"),
        ("devices.tasks.devices_offline_sweep_task", "ingest"),
        ("orders.tasks.supplies_evaluate_task", "ingest"),
        ("orders.tasks.supplies_evaluate_pending_task", "ingest"),
        ("billing.tasks.statements_close_task", "billing"),
        ("billing.tasks.statements_stale_sweep_task", "billing"),
        ("billing.tasks.statement_compute_task", "billing"),
        ("billing.tasks.statement_pdf_render_task", "pdf"),
        ("devices.tasks.alerts_notify_task", "email"),
        ("orders.tasks.supply_alert_notify_task", "email"),
        ("orders.tasks.emails_send_task", "email"),
        ("orders.tasks.orders_sweep_task", "ingest"),
        ("accounts.tasks.invitations_purge_task", "default"),
        ("portal.tasks.worker_heartbeat_task", "default"),
        ("portal.tasks.worker_ping", "default"),
        ("celery.backend_cleanup", "default"),
    ],
)
def test_each_kind_of_work_has_its_queue(task_name, queue):
    assert _queue_of(task_name) == queue


@pytest.mark.parametrize(
    ("task_name", "queue"),
    [
        # Tasks that do not exist yet land by their module and name, without an edit.
        ("billing.tasks.usage_pdf_export_task", "pdf"),
        ("orders.tasks.emails_resend_sweep_task", "email"),
        ("devices.tasks.readings_archive_task", "ingest"),
        ("devices.tasks.partitions_ensure_task", "default"),
        ("accounts.tasks.anything_else_task", "default"),
    ],
)
def test_a_task_added_later_is_routed_by_its_module_and_name(task_name, queue):
    assert _queue_of(task_name) == queue


def test_the_compose_worker_consumes_every_queue():
    worker = yaml.safe_load(_compose_text())["services"]["worker"]

    assert _consumed_queues(worker["command"]) == set(QUEUES)


def test_the_commented_worker_per_queue_alternative_covers_every_queue_once():
    workers = _commented_workers()

    consumed = [q for w in workers.values() for q in _consumed_queues(w["command"])]

    assert set(workers) == {f"worker-{q}" for q in QUEUES}
    assert sorted(consumed) == sorted(QUEUES)
