"""Operations: request and task ids in every log line, /metrics for a scraper with the token,
and readiness that notices when no Celery worker runs the beat's heartbeat any more."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from celery import shared_task
from django.test import Client

from devices import services as device_services
from orders.models import EmailLog
from portal import logging as portal_logging
from portal.celery import BEAT_SCHEDULE
from portal.tasks import worker_heartbeat_task
from tests.devices.conftest import collector as collector
from tests.devices.conftest import post as post
from tests.devices.conftest import snapshot
from tests.portal.test_settings import ROOT

pytestmark = pytest.mark.django_db


@pytest.fixture
def log_lines():
    """JSON lines of every log record, formatted as production does (LOG_FORMAT=json)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(portal_logging.ContextFilter())
    handler.setFormatter(portal_logging.JsonFormatter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)

    def lines(logger: str | None = None) -> list[dict[str, object]]:
        parsed = [json.loads(line) for line in stream.getvalue().splitlines()]
        return [p for p in parsed if logger is None or p["logger"] == logger]

    yield lines
    root.removeHandler(handler)
    root.setLevel(level)


# --- Request ids --------------------------------------------------------------------------------


def test_the_proxys_request_id_is_echoed_and_on_the_requests_log_lines(client, log_lines):
    response = client.get("/no-such-page/", headers={"X-Request-ID": "lb-7f3a.1"})

    assert response.status_code == 404
    assert response["X-Request-ID"] == "lb-7f3a.1"
    # Django logs the 404 after the middleware has returned: the id must still be there.
    (line,) = log_lines("django.request")
    assert line["request_id"] == "lb-7f3a.1"
    assert line["level"] == "WARNING"
    assert line["message"] == "Not Found: /no-such-page/"


def test_without_a_usable_id_one_is_made(client, log_lines):
    made = client.get("/no-such-page/")["X-Request-ID"]
    hostile = client.get("/no-such-page/", headers={"X-Request-ID": 'x" evil\nline'})

    assert len(made) == 32
    assert int(made, 16) >= 0
    assert hostile["X-Request-ID"] not in ('x" evil\nline', made)
    assert [line["request_id"] for line in log_lines("django.request")] == [
        made,
        hostile["X-Request-ID"],
    ]


def test_log_lines_outside_a_request_carry_no_request_id(client, log_lines):
    client.get("/healthz", headers={"X-Request-ID": "done-1"})

    logging.getLogger("tests.after").warning("between requests")

    assert "request_id" not in log_lines("tests.after")[0]


@shared_task
def log_something_task() -> None:
    logging.getLogger("tests.task").warning("inside the task")


def test_task_log_lines_carry_the_task_id(log_lines):
    result = log_something_task.apply()
    logging.getLogger("tests.task").warning("after the task")

    inside, after = log_lines("tests.task")
    assert inside["task_id"] == result.id
    assert inside["message"] == "inside the task"
    assert "task_id" not in after


def _log_in_fresh_interpreter(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    code = (
        "import django, logging; django.setup();"
        "logging.getLogger('probe').warning('hello %s', 'there')"
    )
    return subprocess.run(  # noqa: S603 - our own interpreter
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "DJANGO_SETTINGS_MODULE": "portal.settings", **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_log_format_json_writes_one_json_object_per_line():
    result = _log_in_fresh_interpreter({"LOG_FORMAT": "json"})

    assert result.returncode == 0, result.stderr
    line = json.loads(result.stderr.strip().splitlines()[-1])
    assert (line["level"], line["logger"], line["message"]) == ("WARNING", "probe", "hello there")
    assert datetime.fromisoformat(line["time"]).tzinfo is not None


def test_the_default_log_format_is_plain_and_a_typo_is_refused():
    plain = _log_in_fresh_interpreter({})
    typo = _log_in_fresh_interpreter({"LOG_FORMAT": "jsn"})

    assert plain.stderr.strip().splitlines()[-1].endswith(" WARNING probe hello there")
    assert typo.returncode != 0
    assert "LOG_FORMAT must be plain or json, not 'jsn'" in typo.stderr


# --- /metrics -----------------------------------------------------------------------------------

TOKEN = "scrape-secret-0123456789"


def _scrape(token: str | None = TOKEN) -> tuple[int, dict[str, float]]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = Client().get("/metrics", headers=headers)
    values = {}
    if response.status_code == 200:
        assert response["Content-Type"].startswith("text/plain; version=0.0.4")
        for line in response.content.decode().splitlines():
            if line and not line.startswith("#"):
                name, value = line.split(" ")
                values[name] = float(value)
    return response.status_code, values


def test_metrics_do_not_exist_without_a_token(settings):
    settings.METRICS_TOKEN = ""

    assert _scrape()[0] == 404
    assert _scrape(None)[0] == 404


def test_metrics_need_the_token(settings):
    settings.METRICS_TOKEN = TOKEN

    assert _scrape(None)[0] == 401
    assert _scrape("wrong")[0] == 401
    assert _scrape(TOKEN + "x")[0] == 401


def test_metrics_count_ingest_lag_emails_and_devices(settings, tenant, collector, post):
    settings.METRICS_TOKEN = TOKEN
    assert _scrape() == (
        200,
        {
            "inkmeter_telemetry_batches_recent": 0,
            "inkmeter_telemetry_snapshots_recent": 0,
            "inkmeter_followup_oldest_pending_seconds": 0,
            "inkmeter_emails_failed": 0,
            "inkmeter_emails_retrying": 0,
            "inkmeter_devices_online": 0,
            "inkmeter_devices_offline": 0,
        },
    )
    start = datetime.now(tz=UTC)
    with time_machine.travel(start, tick=False):
        # Follow-up runs on commit, which the test transaction never reaches: both stay due.
        assert post(collector, [snapshot("CN-1"), snapshot("CN-2")]).status_code == 202
        assert post(collector, [snapshot("CN-3")]).status_code == 202
        for status, attempts in (
            (EmailLog.Status.FAILED, 5),
            (EmailLog.Status.FAILED, 1),
            (EmailLog.Status.SENT, 1),
            (EmailLog.Status.PENDING, 0),  # never tried: not retrying
            (EmailLog.Status.PENDING, 2),
        ):
            EmailLog.unscoped.create(
                reseller=tenant.reseller,
                recipient="a@b.test",
                subject="s",
                body="b",
                kind=(EmailLog.Kind.ORDER_STATUS),
                status=status,
                attempts=attempts,
            )
        now_values = _scrape()[1]
    with time_machine.travel(start + timedelta(days=2), tick=False):
        device_services.devices_offline_sweep()
        later_values = _scrape()[1]

    assert now_values == {
        "inkmeter_telemetry_batches_recent": 2,
        "inkmeter_telemetry_snapshots_recent": 3,
        "inkmeter_followup_oldest_pending_seconds": 0,
        "inkmeter_emails_failed": 2,
        "inkmeter_emails_retrying": 1,
        "inkmeter_devices_online": 3,
        "inkmeter_devices_offline": 0,
    }
    assert later_values == {
        "inkmeter_telemetry_batches_recent": 0,
        "inkmeter_telemetry_snapshots_recent": 0,
        "inkmeter_followup_oldest_pending_seconds": 2 * 86400,
        "inkmeter_emails_failed": 2,
        "inkmeter_emails_retrying": 1,
        "inkmeter_devices_online": 0,
        "inkmeter_devices_offline": 3,
    }


def test_metrics_show_the_heartbeat_age(settings):
    settings.METRICS_TOKEN = TOKEN
    start = datetime.now(tz=UTC)
    with time_machine.travel(start, tick=False):
        worker_heartbeat_task.apply()
    with time_machine.travel(start + timedelta(seconds=90), tick=False):
        assert _scrape()[1]["inkmeter_worker_heartbeat_age_seconds"] == 90


# --- Readiness ----------------------------------------------------------------------------------


@pytest.fixture
def redis_configured(settings, monkeypatch):
    """REDIS_URL set, with the network edge (the Redis ping) answered here."""
    import redis

    class Answering:
        def ping(self) -> bool:
            return True

    settings.REDIS_URL = "redis://cache.invalid:6379/0"
    monkeypatch.setattr(redis.Redis, "from_url", staticmethod(lambda *a, **k: Answering()))


def test_readyz_needs_a_recent_worker_heartbeat(settings, redis_configured):
    settings.CELERY_HEARTBEAT_STALE_MINUTES = 5
    start = datetime.now(tz=UTC)
    with time_machine.travel(start, tick=False):
        never = Client().get("/readyz")
        worker_heartbeat_task.apply()
        fresh = Client().get("/readyz")
    with time_machine.travel(start + timedelta(minutes=5, seconds=30), tick=False):
        stale = Client().get("/readyz")

    assert (never.status_code, never.json()["checks"]["worker"]) == (503, "error: no heartbeat yet")
    assert fresh.status_code == 200
    assert fresh.json() == {
        "status": "ok",
        "checks": {"database": "ok", "redis": "ok", "worker": "ok"},
    }
    assert (stale.status_code, stale.json()["checks"]["worker"]) == (
        503,
        "error: last heartbeat 330s ago",
    )


def test_without_redis_readyz_does_not_ask_for_workers(settings):
    settings.REDIS_URL = ""  # eager Celery: the web process runs the tasks itself

    response = Client().get("/readyz")

    assert response.json() == {"status": "ok", "checks": {"database": "ok"}}


def test_beat_sends_the_heartbeat_more_often_than_readyz_calls_it_stale(settings):
    entry = BEAT_SCHEDULE["worker-heartbeat"]

    assert entry["task"] == "portal.tasks.worker_heartbeat_task"
    assert entry["schedule"].minute == set(range(60))  # every minute
    assert settings.CELERY_HEARTBEAT_STALE_MINUTES >= 3
