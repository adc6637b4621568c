"""The acceptance stack: benchmarks/stack.py with HTTPS gunicorn on production settings, a Celery
worker and beat, the SMTP sink, snmpsim serving real printer recordings on loopback, and the real
`inkmeter-collector`. On a failure the report carries the tail of every process's log
(tests/conftest.py)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from benchmarks.stack import Stack
from tests.collector import snmpsim_server
from tests.collector.support import require_service


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    if not Path("/usr/lib/postgresql/15/bin/initdb").exists():
        require_service("PostgreSQL 15's server binaries are not installed")
    started = time.monotonic()
    with Stack(tmp_path / "stack", beat=True, tls=True, celery_concurrency=2) as running:
        print(f"stack up in {time.monotonic() - started:.0f} s: {running.timings}")
        yield running


@pytest.fixture(scope="session")
def snmpsim_venv() -> Path:
    path = snmpsim_server.venv()
    if path is None:
        require_service("snmpsim is not available (collector/scripts/snmpsim-venv.sh failed)")
        raise AssertionError("unreachable")
    return path
