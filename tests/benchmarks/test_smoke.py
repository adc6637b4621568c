"""Every benchmark in benchmarks/ runs at its --smoke size, so that none can rot (issue 11,
point 1): the real code path at a tiny size, as a subprocess, which must exit 0. The figures
they print are not checked (speed is the benchmarks' business, not the tests'); a benchmark's
own checks (batches refused, snapshots missing, statements miscounted) make it exit non-zero.

Each benchmark works in a scratch database of its own on the server of DATABASE_URL, dropped
afterwards, and a broker of its own (benchmarks/stack.py), never the shared Redis.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from django.conf import settings

from benchmarks.stack import Redis, base_env
from tests.collector.support import PRINTERS, require_service

ROOT = Path(__file__).resolve().parents[2]
BENCHMARKS = ROOT / "benchmarks"
# Modules of benchmarks/ that are not benchmarks: the throwaway stack and its SMTP sink.
HELPERS = {"__init__.py", "stack.py", "smtp_sink.py"}
# Benchmarks that start a throwaway stack of their own and need no argument but --smoke (the
# follow-up and page benchmarks of issue 12, as they land).
ON_OWN_STACK = ["followups.py", "pages.py"]
# Each benchmark's smoke test below; a new benchmark without one fails the first test.
SMOKED = {"ingest.py", "table_sizes.py", "billing_close.py", "collector.py", "load.py"}
SMOKED |= {"statement_pdf.py"}
SMOKED |= set(ON_OWN_STACK)
TIMEOUT_S = 900  # a migrate and a seeded stack on a busy 2-core machine


def run(script: str, *args: str, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(  # noqa: S603 - our own scripts
        [sys.executable, str(BENCHMARKS / script), "--smoke", *args],
        cwd=ROOT,
        env=env or base_env(),
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"{script} --smoke exited {result.returncode}:\n{output}"
    return output


def _server_url(database: str) -> str:
    """A database of the server that DATABASE_URL names, as its user."""
    db = settings.DATABASES["default"]
    user = db["USER"] or "postgres"
    password = f":{db['PASSWORD']}" if db["PASSWORD"] else ""
    host = db["HOST"] or "127.0.0.1"
    port = db["PORT"] or 5432
    return f"postgres://{user}{password}@{host}:{port}/{database}"


@pytest.fixture
def scratch_database(request: pytest.FixtureRequest) -> Iterator[str]:
    """The URL of a database nobody else uses (one per xdist worker and test); dropped after."""
    yield from _scratch(request.node.name)


def _scratch(what: str) -> Iterator[str]:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    name = f"{settings.DATABASES['default']['NAME']}_smoke_{worker}_{what}"[:63]
    name = "".join(c if c.isalnum() else "_" for c in name).lower()
    url = _server_url(name)
    try:
        yield url
    finally:
        admin = urlunsplit(urlsplit(url)._replace(path="/postgres"))
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[str]:
    """A redis-server of the test's own on a free loopback port."""
    redis = Redis(tmp_path / "redis", env=base_env(), log_dir=tmp_path)
    redis.start()
    try:
        yield redis.url
    finally:
        redis.stop()


def test_every_benchmark_has_a_smoke_test() -> None:
    scripts = {path.name for path in BENCHMARKS.glob("*.py")} - HELPERS
    assert scripts, BENCHMARKS
    assert scripts <= SMOKED, "add a --smoke size and a test here for each new benchmark"


@pytest.mark.postgres
def test_ingest_and_table_sizes(scratch_database: str, broker: str) -> None:
    """ingest.py fills a database through the real endpoint; table_sizes.py reports on it, as
    its docstring says to use it."""
    output = run(
        "ingest.py", "--url", scratch_database, env=base_env() | {"BENCH_REDIS_URL": broker}
    )
    assert "(0 failed)" in output

    output = run("table_sizes.py", env=base_env() | {"DATABASE_URL": scratch_database})
    assert "devices_snapshot" in output


@pytest.mark.postgres
def test_billing_close(scratch_database: str) -> None:
    run("billing_close.py", "--url", scratch_database)


@pytest.mark.postgres
def test_statement_pdf(scratch_database: str) -> None:
    """A finalised statement of 12 printers through the services; the PDF names each one."""
    output = run("statement_pdf.py", "--url", scratch_database)
    assert "12 printers" in output


@pytest.mark.xdist_group("snmpsim")
def test_collector() -> None:
    """On the SNMP simulator's fixed loopback ports: on the xdist worker of the collector's
    tests (tests/conftest.py)."""
    if not (PRINTERS / "expected.json").exists():
        require_service(f"recordings not found under {PRINTERS} (set INKMETER_SHARED)")
    output = run("collector.py", env=base_env() | {"INKMETER_SHARED": str(PRINTERS.parent)})
    assert "queued          10" in output


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.faults
def test_load() -> None:
    """A whole stack of its own (benchmarks/stack.py), like the fault tests."""
    output = run("load.py")
    assert "verdict: PASS" in output


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.faults
@pytest.mark.parametrize("script", [name for name in ON_OWN_STACK if (BENCHMARKS / name).exists()])
def test_on_own_stack(script: str) -> None:
    run(script)
