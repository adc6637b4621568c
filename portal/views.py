"""Liveness and readiness probes for load balancers and orchestrators, and /metrics."""

from __future__ import annotations

import hmac

from django.conf import settings
from django.db import connection
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse

from portal import selectors


def healthz(request: HttpRequest) -> JsonResponse:
    """The process answers."""
    return JsonResponse({"status": "ok"})


def readyz(request: HttpRequest) -> JsonResponse:
    """The process can do its work: the database answers (and, when configured, Redis, and a
    Celery worker has run the beat's heartbeat task lately)."""
    checks: dict[str, str] = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"error: {type(exc).__name__}"
    if settings.REDIS_URL:
        try:
            import redis

            redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2).ping()
            checks["redis"] = "ok"
        except Exception as exc:
            checks["redis"] = f"error: {type(exc).__name__}"
        checks["worker"] = _worker_check()
    ready = all(v == "ok" for v in checks.values())
    return JsonResponse(
        {"status": "ok" if ready else "unavailable", "checks": checks}, status=200 if ready else 503
    )


def _worker_check() -> str:
    # The cache holds the heartbeat: no broker round trip per probe, and a stopped beat shows
    # up as well as a stopped worker (either way, periodic work has stopped).
    try:
        age = selectors.worker_heartbeat_age_seconds()
    except Exception as exc:
        return f"error: {type(exc).__name__}"
    limit = settings.CELERY_HEARTBEAT_STALE_MINUTES * 60
    if age is None:
        return "error: no heartbeat yet"
    if age > limit:
        return f"error: last heartbeat {int(age)}s ago"
    return "ok"


METRICS = [
    # (name, type, help, attribute of selectors.Metrics)
    (
        "inkmeter_telemetry_batches_recent",
        "gauge",
        "Telemetry batches received in the last 5 minutes.",
        "batches_recent",
    ),
    (
        "inkmeter_telemetry_snapshots_recent",
        "gauge",
        "Snapshots in the telemetry batches of the last 5 minutes.",
        "snapshots_recent",
    ),
    (
        "inkmeter_followup_oldest_pending_seconds",
        "gauge",
        "Age of the oldest telemetry batch whose follow-up has not run (0 if none): task lag.",
        "followup_oldest_pending_seconds",
    ),
    (
        "inkmeter_emails_failed",
        "gauge",
        "Emails whose sending failed (EmailLog status failed).",
        "emails_failed",
    ),
    (
        "inkmeter_emails_retrying",
        "gauge",
        "Emails whose last attempt failed and that will be tried again.",
        "emails_retrying",
    ),
    ("inkmeter_devices_online", "gauge", "Devices reporting on time.", "devices_online"),
    ("inkmeter_devices_offline", "gauge", "Devices marked offline.", "devices_offline"),
    (
        "inkmeter_worker_heartbeat_age_seconds",
        "gauge",
        "Seconds since a Celery worker last ran the heartbeat task (absent if never).",
        "worker_heartbeat_age_seconds",
    ),
]


def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus text format, for a scraper holding METRICS_TOKEN. Without a token configured
    the endpoint does not exist (404), so nothing is exposed by default."""
    token = settings.METRICS_TOKEN
    if not token:
        raise Http404
    given = request.headers.get("Authorization", "")
    if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
        response = HttpResponse("Bearer token required.\n", status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    values = selectors.metrics_get()
    lines: list[str] = []
    for name, kind, help_text, attribute in METRICS:
        value = getattr(values, attribute)
        if value is None:
            continue
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}", f"{name} {value:g}"]
    return HttpResponse(
        "\n".join(lines) + "\n", content_type="text/plain; version=0.0.4; charset=utf-8"
    )
