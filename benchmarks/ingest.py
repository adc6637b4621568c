"""Telemetry ingest benchmark (DESIGN.md budget: >= 5,000 snapshots/s, p99 batch < 250 ms).

Creates and migrates its own PostgreSQL database, starts the real server (gunicorn), sends
signed gzip batches of 100 snapshots (8 supplies, 12 counters each) from concurrent senders
over loopback, and prints snapshots per second and batch latency beside the raw bound: the same
rows inserted by PostgreSQL COPY in the same run.

The sender shares the machine's cores with the server and the database, so it is kept cheap:
batches are encoded before the server starts and signed just before the timed phase (the
signature's timestamp must be within 300 s of the server's clock), and each sender is one
thread with one http.client connection. CPU seconds per batch of the server's workers, the
database backends and the sender are printed too: on a shared machine they say where the time
goes when the wall-clock rate does not.

    .venv/bin/python benchmarks/ingest.py [--senders 4] [--batches 40] [--workers 4]
    .venv/bin/python benchmarks/ingest.py --smoke --url postgres://.../scratch   # CI: seconds

--smoke runs the same path at a tiny size (one sender, one timed batch, one gunicorn worker on
a free port) and exits non-zero if any batch is refused or a snapshot goes missing.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.stack import StackError, Web, free_port  # noqa: E402 - needs ROOT on the path

ADMIN_URL = "postgres://postgres@127.0.0.1:5432/postgres"
DB_NAME = "inkmeter_bench"
DB_URL = f"postgres://postgres@127.0.0.1:5432/{DB_NAME}"
TIME_LIMIT_S = 120
WARM_UP_BATCHES = 3


SNAPSHOTS_PER_BATCH = 100


def database_use(url: str) -> None:
    """Benchmark in the database at `url` (dropped and created again), on its server."""
    global ADMIN_URL, DB_NAME, DB_URL
    parts = urlsplit(url)
    DB_URL, DB_NAME = url, parts.path.lstrip("/")
    ADMIN_URL = urlunsplit(parts._replace(path="/postgres"))


def _env() -> dict[str, str]:
    return os.environ | {
        "DATABASE_URL": DB_URL,
        "DEBUG": "False",
        "SECURE_SSL_REDIRECT": "False",
        "SECRET_KEY": "benchmark-only-secret-key-0123456789",
        "LOG_LEVEL": "WARNING",
        # Longer than a run: a connection recycled mid-run would take its CPU count with it.
        "CONN_MAX_AGE": "600",
        # Tasks go to a real broker (db 15, flushed after), as in production; no worker runs.
        "REDIS_URL": os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/15"),
        "DJANGO_SETTINGS_MODULE": "portal.settings",
    }


def database_create() -> None:
    import psycopg

    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DB_NAME}"')
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=_env(), check=True
    )


def tenants_create(senders: int) -> list[tuple[str, str]]:
    """One reseller, one customer and site per sender, each with its collector credential."""
    os.environ.update(_env())
    import django

    django.setup()
    from accounts.models import Customer, Reseller, Site
    from devices import services
    from portal import rls
    from portal.tenancy import TenantContext

    with rls.system("the benchmark creates its reseller"):
        reseller = Reseller.objects.create(name="Bench", slug="bench")
    ctx = TenantContext.system(reseller=reseller)
    keys = []
    with rls.tenant(reseller.pk):
        for n in range(senders):
            customer = Customer.unscoped.create(reseller=reseller, name=f"Customer {n}")
            site = Site.unscoped.create(reseller=reseller, customer=customer, name="HQ")
            credential, secret = services.credential_create(
                ctx=ctx, kind="collector", site_id=site.pk
            )
            keys.append((credential.key_id, secret))
    from django.db import connections

    connections.close_all()
    return keys


def batches_build(sender: int, count: int) -> list[bytes]:
    """`count` gzip batches of 100 large-format snapshots: 8 supplies, 12 counters each."""
    import random

    from devices import simulator

    model = simulator.MODELS[3]
    fleet = [
        simulator.Printer(
            serial=f"B{sender:02d}{n:05d}",
            model=model,
            ip=f"10.{sender}.0.{n}",
            rng=random.Random(sender * 1000 + n),
        )
        for n in range(100)
    ]
    end = datetime.now(tz=UTC) - timedelta(hours=1)
    bodies: list[bytes] = []
    snaps = simulator.history(fleet, days=count / 24 * 1.2, interval_minutes=60, end=end)
    for chunk in simulator.batches(snaps, 100):
        if len(chunk) < 100 or len(bodies) == count:
            continue
        for snap in chunk:
            for key in ("jobs", "alerts", "media_sources"):
                snap.pop(key, None)
            assert len(snap["supplies"]) == 8, len(snap["supplies"])
            assert len(snap["counters"]) == 12, len(snap["counters"])
        bodies.append(simulator.encode_batch(chunk))
    return bodies[:count]


def server_start(port: int, workers: int, threads: int) -> Web:
    # gunicorn as the throwaway stack starts it, logging to our console, against the shared
    # PostgreSQL: a cluster of its own would change the figures this benchmark has recorded.
    server = Web(env=_env(), workers=workers, threads=threads, port=port)
    try:
        server.start()
    except StackError as error:
        raise SystemExit(f"gunicorn did not start: {error}") from None
    return server


Signed = tuple[dict[str, str], bytes]


def batches_sign(key_id: str, secret: str, bodies: list[bytes]) -> list[Signed]:
    from devices.simulator import TELEMETRY_PATH, signed_headers

    signed = []
    for body in bodies:
        headers = signed_headers(
            key_id=key_id, secret=secret, method="POST", path=TELEMETRY_PATH, body=body
        )
        headers |= {"Content-Type": "application/json", "Content-Encoding": "gzip"}
        signed.append((headers, body))
    return signed


def send_all(port: int, batches: list[list[Signed]]) -> dict[str, Any]:
    from devices.simulator import TELEMETRY_PATH

    latencies: list[float] = []
    failures: list[str] = []
    accepted = [0]
    lock = threading.Lock()
    deadline = time.monotonic() + TIME_LIMIT_S

    def run(mine: list[Signed]) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        for headers, body in mine:
            if time.monotonic() > deadline:
                return
            started = time.perf_counter()
            conn.request("POST", TELEMETRY_PATH, body=body, headers=headers)
            response = conn.getresponse()
            payload = response.read()
            elapsed = time.perf_counter() - started
            if response.will_close:  # gunicorn's sync workers close after each answer
                conn.close()
            with lock:
                latencies.append(elapsed)
                if response.status == 202:
                    accepted[0] += json.loads(payload)["accepted"]
                else:
                    failures.append(f"{response.status} {payload[:200]!r}")
        conn.close()

    threads = [threading.Thread(target=run, args=(mine,)) for mine in batches]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {
        "seconds": time.perf_counter() - started,
        "latencies": sorted(latencies),
        "accepted": accepted[0],
        "failures": failures,
    }


def _cpu_seconds(pids: list[int]) -> dict[int, float]:
    """User + system CPU seconds of each process, from /proc (Linux)."""
    ticks = os.sysconf("SC_CLK_TCK")
    seconds = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        seconds[pid] = (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
    return seconds


def server_pids(server: Web) -> tuple[list[int], list[int]]:
    """The gunicorn workers (children of the arbiter) and the database backends of the bench."""
    import psycopg

    with psycopg.connect(DB_URL, autocommit=True) as conn:
        backends = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            [DB_NAME],
        ).fetchall()
    return server.worker_pids(), [row[0] for row in backends]


def cpu_used(before: dict[int, float], after: dict[int, float]) -> float:
    # A process that started during the run (a new database connection) started from zero.
    return sum(seconds - before.get(pid, 0.0) for pid, seconds in after.items())


def copy_bound() -> dict[str, float]:
    """The stored rows again, copied with COPY into empty twins of the tables."""
    import psycopg

    tables = ["devices_snapshot", "devices_counterreading", "devices_supplyreading"]
    rows = 0
    seconds = 0.0
    with psycopg.connect(DB_URL) as conn:
        snapshots = conn.execute("SELECT count(*) FROM devices_snapshot").fetchone()[0]  # type: ignore[index]
        for table in tables:
            columns = [
                r[0]
                for r in conn.execute(
                    "SELECT column_name FROM information_schema.columns "
                    "WHERE table_name = %s AND column_name <> 'id' ORDER BY ordinal_position",
                    [table],
                )
            ]
            names = ", ".join(f'"{c}"' for c in columns)
            data = conn.execute(f"SELECT {names} FROM {table}").fetchall()  # noqa: S608
            conn.execute(f"CREATE TEMP TABLE bench_{table} (LIKE {table} INCLUDING ALL)")
            started = time.perf_counter()
            with conn.cursor().copy(f"COPY bench_{table} ({names}) FROM STDIN") as copy:
                for row in data:
                    copy.write_row(row)
            conn.commit()
            seconds += time.perf_counter() - started
            rows += len(data)
    return {"rows": rows, "seconds": seconds, "snapshots": snapshots}


def statements_profile(key: tuple[str, str], sender: int, count: int = 11) -> tuple[float, float]:
    """Round trips to the database per batch (statements through Django's cursor plus COPYs)
    and the CPU of the database backend per batch, for batches sent in this process through
    Django's handler (middleware and all) to printers of their own. The first batch, which
    registers the printers, is left out. Less sensitive to the machine's load than the rates."""
    from django.db import connection
    from django.test import Client

    from devices import writer
    from devices.simulator import TELEMETRY_PATH

    # COPYs and prepared statements do not pass Django's cursor: counted here.
    copies = [0]
    copy, prepared = writer.Writer._copy, writer.Writer._prepared

    def counted_copy(self: Any, *args: Any) -> None:
        copies[0] += 1
        copy(self, *args)

    def counted_prepared(self: Any, *args: Any) -> Any:
        copies[0] += 1
        return prepared(self, *args)

    writer.Writer._copy = counted_copy  # type: ignore[method-assign, assignment]
    writer.Writer._prepared = counted_prepared  # type: ignore[method-assign, assignment]
    executes = [0]

    def counted(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        executes[0] += 1
        return execute(sql, params, many, context)

    client = Client(HTTP_HOST="127.0.0.1")
    statements, cpu = [], []
    try:
        for n, (headers, body) in enumerate(batches_sign(*key, batches_build(sender, count))):
            connection.ensure_connection()
            backend = connection.connection.info.backend_pid
            sent = {k: v for k, v in headers.items() if k != "Content-Type"}
            executes[0] = copies[0] = 0
            before = _cpu_seconds([backend]).get(backend, 0.0)
            with connection.execute_wrapper(counted):
                response = client.post(
                    TELEMETRY_PATH, data=body, content_type="application/json", headers=sent
                )
            if response.status_code != 202:
                raise SystemExit(f"statements profile: {response.status_code} {response.content!r}")
            time.sleep(0.05)  # the backend's CPU counter is updated on its next tick
            if n:
                statements.append(executes[0] + copies[0])
                cpu.append(_cpu_seconds([backend]).get(backend, 0.0) - before)
    finally:
        writer.Writer._copy = copy  # type: ignore[method-assign]
        writer.Writer._prepared = prepared  # type: ignore[method-assign]
    return statistics.mean(statements), statistics.mean(cpu) * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--senders", type=int, default=4, help="concurrent senders (max 16)")
    parser.add_argument("--batches", type=int, default=40, help="batches per sender (max 500)")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers")
    parser.add_argument("--threads", type=int, default=1, help="gunicorn threads per worker")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument(
        "--url", default=os.environ.get("BENCH_DATABASE_URL", DB_URL), help="database, recreated"
    )
    parser.add_argument("--smoke", action="store_true", help="tiny size for CI: checks only")
    parser.add_argument(
        "--statements",
        action="store_true",
        help="also count round trips and database CPU per batch, in this process",
    )
    args = parser.parse_args()
    if args.smoke:
        # Past the warm-up's batches, a few timed ones (a short history may build one less).
        args.senders, args.batches, args.workers, args.threads = 1, 3, 1, 1
        args.port = free_port()
    database_use(args.url)
    senders = max(1, min(args.senders, 16))
    per_sender = max(1, min(args.batches, 500)) + WARM_UP_BATCHES - 1

    print(f"creating {DB_NAME} and migrating ...", flush=True)
    database_create()
    keys = tenants_create(senders + (1 if args.statements else 0))
    profile_key = keys.pop() if args.statements else None
    print(f"building {senders} x {per_sender} batches of 100 snapshots ...", flush=True)
    bodies = [batches_build(n, per_sender) for n in range(senders)]
    server = server_start(args.port, args.workers, args.threads)
    try:
        # A few batches per sender first, so that no worker's start-up (its first database
        # connection, the broker transport's import on the first send) is in the figures.
        warm = WARM_UP_BATCHES
        send_all(
            args.port,
            [batches_sign(k, s, b[:warm]) for (k, s), b in zip(keys, bodies, strict=True)],
        )
        signed = [batches_sign(k, s, b[warm:]) for (k, s), b in zip(keys, bodies, strict=True)]
        workers, backends = server_pids(server)
        before = _cpu_seconds(workers), _cpu_seconds(backends), time.process_time()
        load = Path("/proc/loadavg").read_text().split()[0]
        result = send_all(args.port, signed)
        workers, backends = server_pids(server)
        cpu = (
            cpu_used(before[0], _cpu_seconds(workers)),
            cpu_used(before[1], _cpu_seconds(backends)),
            time.process_time() - before[2],
        )
    finally:
        server.stop()
    bound = copy_bound()
    profile = statements_profile(profile_key, senders) if profile_key else None

    latencies = result["latencies"]
    snapshots = result["accepted"]
    if not latencies:
        print("FAIL: no batch was sent past the warm-up")
        return 1
    rate = snapshots / result["seconds"]
    p50 = statistics.median(latencies) * 1000
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000
    rows_per_snapshot = bound["rows"] / max(bound["snapshots"], 1)
    copy_rate = bound["snapshots"] / bound["seconds"]
    print(f"batches sent         {len(latencies)} ({len(result['failures'])} failed)")
    print(f"snapshots accepted   {snapshots} in {result['seconds']:.1f} s")
    print(f"ingest rate          {rate:,.0f} snapshots/s   (budget >= 5,000)")
    print(f"batch latency        p50 {p50:.0f} ms, p99 {p99:.0f} ms   (budget p99 < 250 ms)")
    print(
        f"raw COPY bound       {copy_rate:,.0f} snapshots/s "
        f"({bound['rows']:,} rows, {rows_per_snapshot:.0f} rows per snapshot, "
        f"{bound['rows'] / bound['seconds']:,.0f} rows/s)"
    )
    print(f"ratio to the bound   {rate / copy_rate:.2f}   (budget >= 0.5)")
    batches = max(len(latencies), 1)
    print(
        f"CPU per batch        gunicorn {cpu[0] / batches * 1000:.1f} ms, "
        f"postgres {cpu[1] / batches * 1000:.1f} ms, sender {cpu[2] / batches * 1000:.1f} ms"
        f"   (loadavg {load} at the start)"
    )
    if profile is not None:
        print(
            f"per batch, in process {profile[0]:.0f} round trips (statements, prepared ones and "
            "COPYs), "
            f"postgres CPU {profile[1]:.1f} ms"
        )
    if result["failures"]:
        print("failures:", result["failures"][:3])
    expected = sum(len(b) for b in signed) * SNAPSHOTS_PER_BATCH
    if result["failures"] or snapshots != expected:
        print(f"FAIL: {snapshots} of {expected} snapshots accepted")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
