"""Log records that say which request or task wrote them, as JSON lines or plain text.

The request id comes from the proxy's X-Request-ID (so one id follows a request from the load
balancer through every log line) or is made here; it is echoed on the response. Celery tasks
carry their task id the same way. Both live in context variables, so every logger of the
process picks them up through one filter on the handler.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Callable
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from django.http import HttpRequest, HttpResponse

request_id_var: ContextVar[str] = ContextVar("request_id", default="")
task_id_var: ContextVar[str] = ContextVar("task_id", default="")

HEADER = "X-Request-ID"
# A proxy's id is trusted only if it looks like one: it ends up in every log line.
_VALID_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class ContextFilter(logging.Filter):
    """Puts request_id, task_id and a ready-made `context` text on every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        rid, tid = request_id_var.get(), task_id_var.get()
        parts = [f"request={rid}"] if rid else []
        parts += [f"task={tid}"] if tid else []
        context = f" [{' '.join(parts)}]" if parts else ""
        record.__dict__.update(request_id=rid, task_id=tid, context=context)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line, for log shippers."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, tz=UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in ("request_id", "task_id"):
            value = getattr(record, name, "")
            if value:
                entry[name] = value
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class RequestIdMiddleware:
    """First in MIDDLEWARE: every later log line of the request carries its id."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.headers.get(HEADER, "")
        rid = incoming if _VALID_ID.match(incoming) else uuid.uuid4().hex
        # Not reset on the way out: Django logs 4xx/5xx answers after the middleware returns.
        # request_finished clears it (request_finished_clear).
        request_id_var.set(rid)
        response = self.get_response(request)
        response[HEADER] = rid
        return response


def request_finished_clear(**kwargs: Any) -> None:
    request_id_var.set("")


def task_prerun_set(task_id: str | None = None, **kwargs: Any) -> None:
    """celery's task_prerun: the task's log lines carry its id."""
    task_id_var.set(task_id or "")


def task_postrun_clear(**kwargs: Any) -> None:
    task_id_var.set("")
