"""Database connections: how PostgreSQL's results become Python values, where Django's default
costs what it need not, and how long a worker keeps its connection.

Django reads every `timestamptz` through its own subclass of psycopg's loader, which is Python
even when psycopg's C implementation is installed: it parses the text, then replaces the zone
with the connection's. On a connection whose session is in UTC (Django sets it so, with
USE_TZ and no database TIME_ZONE) psycopg's own loader already returns that value, aware in
UTC, in C. Reading supply forecasts and readings, Django's loader was a fifth of the worker's
CPU (docs/scale.md).
"""

from __future__ import annotations

from datetime import UTC
from functools import cache
from typing import Any

from django.db import close_old_connections
from django.db.backends.base.base import BaseDatabaseWrapper


@cache
def _utc_loader() -> type:
    from psycopg import abc, adapters, postgres
    from psycopg.adapt import Loader
    from psycopg.pq import Format

    # psycopg's registered loader: its C class when psycopg[binary] or [c] is installed. C
    # classes cannot be subclassed, so each instance lends its `load`: psycopg's row loaders
    # take `loader.load` once per result column, and call it straight.
    registered = adapters.get_loader(postgres.types["timestamptz"].oid, Format.TEXT)
    if registered is None:  # psycopg registers one by default; someone took it away
        raise RuntimeError("psycopg has no timestamptz loader")
    base: type[abc.Loader] = registered

    class UtcTimestamptzLoader(Loader):
        # What Django's cursors compare with their connection's timezone before registering
        # a loader of their own (DatabaseWrapper.create_cursor): the same, so they do not.
        timezone = UTC

        def __init__(self, oid: int, context: Any = None) -> None:
            super().__init__(oid, context)
            self._psycopg = base(oid, context)
            self.load = self._psycopg.load  # type: ignore[method-assign]

        def load(self, data: Any) -> Any:  # the class's, for callers that look it up there
            return self._psycopg.load(data)

    return UtcTimestamptzLoader


def timestamptz_loader_install(sender: Any, connection: BaseDatabaseWrapper, **kwargs: Any) -> None:
    """`connection_created`: load `timestamptz` with psycopg's own loader where that gives
    what Django's would, i.e. when Django wants UTC and the session is in UTC."""
    if connection.vendor != "postgresql" or connection.timezone != UTC:
        return
    raw = connection.connection
    if raw.info.parameter_status("TimeZone") != "UTC":
        return
    raw.adapters.register_loader("timestamptz", _utc_loader())


def task_connections_recycle(sender: Any = None, **kwargs: Any) -> None:
    """`task_prerun` and `task_postrun`: what `request_started` and `request_finished` do for
    a request, for a task. Celery's Django fixup would close the connection around every task
    (settings.CELERY_DB_REUSE_MAX keeps it); here a connection is closed when CONN_MAX_AGE has
    passed or it broke, as between requests. Not for a task run eagerly: that runs inside its
    caller's request and transaction."""
    if getattr(getattr(sender, "request", None), "is_eager", False):
        return
    close_old_connections()
