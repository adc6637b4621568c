"""The Redis broker transport: kombu's, with one guard.

Celery 5.7.0's worker, on losing the broker, first collects its connection (which tears the
transport down) and then closes it; closing the channel restores its unacknowledged messages
(an acks_late task in flight) through a client built from the transport's settings, which are
gone by then. kombu's Redis channel fails on that with AttributeError, which no one expects
there, and the worker exits as on an unrecoverable error: it never consumes again.

Here a channel whose transport is gone says so with a connection error, the kind the close
ignores; the worker reconnects when Redis is back. The unacknowledged message stays in Redis
(if Redis kept it) and comes back after the visibility timeout, as from a worker that died; the
work it stood for is re-derived by the sweeps anyway (DESIGN.md: lost work costs latency).
tests/faults/test_telemetry_faults.py holds a task in flight while Redis stops."""

from __future__ import annotations

from typing import Any

from kombu.transport import redis as kombu_redis
from redis import exceptions


class Channel(kombu_redis.Channel):
    def _connparams(self, asynchronous: bool = False) -> Any:
        if self.connection.client is None:
            raise exceptions.ConnectionError("the broker connection was closed")
        return super()._connparams(asynchronous=asynchronous)  # type: ignore[misc]  # not in the stubs


class Transport(kombu_redis.Transport):
    Channel = Channel
