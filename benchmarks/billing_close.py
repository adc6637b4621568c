"""Benchmark: close a month for 100,000 devices, then stream the usage CSV for the ERP.

Budgets (DESIGN.md): the close < 60 s with set-based SQL; the usage CSV streamed < 5 s for
100,000 lines with flat memory.

    .venv/bin/python benchmarks/billing_close.py [--devices 100000] [--contracts 1000] [--keep]
    .venv/bin/python benchmarks/billing_close.py --smoke   # 200 devices: seconds, for CI

It uses its own PostgreSQL database (default
postgres://postgres@127.0.0.1:5432/inkmeter_bench_billing), recreated unless --keep is given,
writes the fleet with COPY (devices, memberships and two counters read every three days with
a carry-in reading before the period, some resets, some silent printers, some devices that
leave and rejoin), then times `statements_close` as the nightly beat task runs it and the
streamed export, and prints the figures.

Row-level security stays on, as in production: the fleet is written in the reseller's scope
through the ingest writer (COPY into a temporary twin, then one INSERT ... SELECT, since
PostgreSQL refuses COPY FROM into a table under a policy), the close runs in the system scope
of its task and the export in the reseller's scope. Any error or wrong count exits non-zero;
at full size so does a figure over its budget.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import threading
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/inkmeter_bench_billing"
PERIOD = date(2026, 2, 1)
AS_OF = date(2026, 3, 1)


def rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def recreate_database(url: str) -> None:
    import psycopg

    base, name = url.rsplit("/", 1)
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def setup_django(url: str) -> None:
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)


def build_fleet(devices: int, contracts: int) -> dict[str, float]:
    from accounts.models import Reseller
    from billing import services
    from billing.models import Contract
    from devices.writer import Writer
    from portal import rls
    from portal.tenancy import TenantContext

    timings: dict[str, float] = {}
    started = time.perf_counter()
    with rls.owner():
        # The readings' months get their partitions first, as the daily maintenance gives
        # them in production, rather than all landing in the DEFAULT partition.
        from devices import partitions

        partitions.partitions_ensure(today=date(2026, 1, 1), ahead=2)
    with rls.system("the benchmark creates its reseller"):
        reseller = Reseller.objects.create(name="Bench Printing", slug="bench-billing")
    ctx = TenantContext.system(reseller=reseller)
    per_contract = max(1, devices // contracts)
    now = datetime.now(UTC)
    with rls.tenant(reseller.pk):
        plan = services.plan_create(
            ctx=ctx,
            name="Bench plan",
            currency="EUR",
            terms=services.plan_terms_demo(date(2025, 1, 1)),
        )
        writer = Writer()
        writer.append(
            "accounts_customer",
            ("reseller_id", "name", "account_number", "billing_email", "billing_address", "notes",
             "created_at"),
            ((reseller.pk, f"Customer {c:05d}", f"K{c:05d}", "", "", "", now)
             for c in range(contracts)),
        )  # fmt: skip
        writer.execute(
            "INSERT INTO accounts_site (reseller_id, customer_id, name, address_line1,"
            " address_line2, postal_code, city, country, contact_name, contact_email,"
            " contact_phone, created_at)"
            " SELECT reseller_id, id, 'HQ', '', '', '', '', '', '', '', '', now()"
            " FROM accounts_customer WHERE reseller_id = %s ORDER BY id",
            (reseller.pk,),
        )
        sites = writer.execute(
            "SELECT c.id, s.id FROM accounts_customer c JOIN accounts_site s"
            " ON s.customer_id = c.id WHERE c.reseller_id = %s ORDER BY c.id",
            (reseller.pk,),
        )
        writer.append(
            "devices_device",
            ("reseller_id", "customer_id", "site_id", "serial", "manufacturer", "model",
             "product_number", "name", "report_interval_minutes", "created_at"),
            ((reseller.pk, *sites[min(index // per_contract, contracts - 1)], f"SN{index:07d}",
              "HP", "M555", "", "", 60, now) for index in range(devices)),
        )  # fmt: skip
        timings["customers, sites, devices (COPY)"] = time.perf_counter() - started

        started = time.perf_counter()
        Contract.unscoped.bulk_create(
            Contract(
                reseller=reseller,
                customer_id=customer_id,
                plan=plan,
                reference=f"C{c:05d}",
                purchase_order=f"PO{c:05d}",
                starts_on=date(2026, 1, 1),
            )
            for c, (customer_id, _) in enumerate(sites)
        )
        # Every device from 1 January; one in fifty joins mid-February, one in fifty leaves,
        # and one in fifty leaves on 8 February and rejoins on the 16th (two windows).
        writer.execute(
            "INSERT INTO billing_contractdevice (reseller_id, contract_id, device_id,"
            " joined_on, left_on)"
            " SELECT d.reseller_id, k.id, d.id, w.joined_on, w.left_on"
            " FROM devices_device d JOIN billing_contract k ON k.customer_id = d.customer_id"
            " CROSS JOIN LATERAL (VALUES"
            "   (CASE WHEN d.id %% 50 = 1 THEN date '2026-02-12' ELSE date '2026-01-01' END,"
            "    CASE WHEN d.id %% 50 = 2 THEN date '2026-02-20'"
            "         WHEN d.id %% 50 = 3 THEN date '2026-02-08' END),"
            "   (CASE WHEN d.id %% 50 = 3 THEN date '2026-02-16' END, NULL::date)"
            " ) AS w(joined_on, left_on)"
            " WHERE d.reseller_id = %s AND w.joined_on IS NOT NULL",
            (reseller.pk,),
        )
        device_ids = [
            row[0]
            for row in writer.execute(
                "SELECT id FROM devices_device WHERE reseller_id = %s ORDER BY id",
                (reseller.pk,),
            )
        ]
        timings["contracts and memberships"] = time.perf_counter() - started

        started = time.perf_counter()
        rows = 0
        base = datetime(2026, 1, 28, 6, tzinfo=UTC)
        columns = ("reseller_id", "device_id", "collected_at", "name", "media_type", "color",
                   "unit", "value")  # fmt: skip
        # In chunks of devices: one COPY text buffer per chunk keeps memory flat.
        for first in range(0, len(device_ids), 5000):
            chunk: list[tuple[object, ...]] = []
            for device_id in device_ids[first : first + 5000]:
                if device_id % 97 == 0:
                    continue  # silent printers: estimated from nothing, flagged
                mono, colour = 10_000 + device_id % 5000, 2_000 + device_id % 900
                for step in range(12):  # 28 Jan (carry-in) then every 3 days to 2 March
                    at = base + timedelta(days=3 * step, minutes=device_id % 600)
                    mono += 120 + (device_id * 7 + step * 13) % 400
                    colour += (device_id * 3 + step * 5) % 90
                    if device_id % 101 == 0 and step == 6:
                        mono = 25  # a reset: flagged, never negative
                    chunk.append((reseller.pk, device_id, at, "impressions.mono", "", "", "", mono))
                    chunk.append(
                        (reseller.pk, device_id, at, "impressions.color", "", "", "", colour)
                    )
            writer.append("devices_counterreading", columns, chunk)
            rows += len(chunk)
        writer.close()
    with rls.owner():
        # Only the tables' owner may analyse them; the close's plans depend on the statistics.
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    timings[f"{rows:,} counter readings (COPY)"] = time.perf_counter() - started
    return timings


class Phases:
    """Where the time of a timed step goes, so that a figure taken on a busy machine still says
    something: the wall time of the SQL statements summed over every connection the step opens
    (its batches run side by side on connections of their own; a COPY sent on the driver's own
    cursor, as the usage export's, is not counted there), the CPU time of PostgreSQL's
    backends serving them (sampled from /proc, Linux, as the connections come and go) and the
    CPU time of this Python process. Under load the wall time grows; the CPU times much less."""

    def __init__(self) -> None:
        self.sql = 0.0
        self.statements = 0
        self._backends: dict[int, tuple[float, float]] = {}  # pid: (first, last) CPU seconds
        self._lock = threading.Lock()
        self._running = False

    def _wrapper(self, execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            with self._lock:
                self.sql += time.perf_counter() - started
                self.statements += 1

    def _connected(self, sender: Any, connection: Any, **kwargs: Any) -> None:
        connection.execute_wrappers.append(self._wrapper)
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            pid = cursor.fetchone()[0]
        cpu = _cpu_seconds(pid)
        if cpu is not None:
            with self._lock:
                self._backends[pid] = (cpu, cpu)

    def _sample(self) -> None:
        while self._running:
            self._sample_once()
            time.sleep(0.1)

    def _sample_once(self) -> None:
        with self._lock:
            pids = list(self._backends)
        for pid in pids:
            cpu = _cpu_seconds(pid)
            if cpu is not None:
                with self._lock:
                    self._backends[pid] = (self._backends[pid][0], cpu)

    @property
    def postgres_cpu(self) -> float:
        return sum(last - first for first, last in self._backends.values())

    def __enter__(self) -> Phases:
        from django.db import connections
        from django.db.backends.signals import connection_created

        # A fresh connection for the step, so that the wrapper and the sampler see it.
        connections.close_all()
        connection_created.connect(self._connected)
        self.python_cpu = time.process_time()
        self._running = True
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()
        return self

    def __exit__(self, *exc: object) -> None:
        from django.db import connections
        from django.db.backends.signals import connection_created

        self.python_cpu = time.process_time() - self.python_cpu
        self._sample_once()
        self._running = False
        self._sampler.join()
        connection_created.disconnect(self._connected)
        connections.close_all()

    def text(self) -> str:
        return (
            f"SQL {self.sql:.2f} s in {self.statements} statements (wall, summed over"
            f" connections), PostgreSQL CPU {self.postgres_cpu:.2f} s, Python CPU"
            f" {self.python_cpu:.2f} s"
        )


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a local process, None if it is gone or not local."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def close_month(batch_size: int) -> tuple[float, int, int, Phases]:
    """The nightly close as its beat task runs it, then its statements and lines counted."""
    from billing import tasks
    from billing.models import Statement, StatementLine
    from portal import rls

    with Phases() as phases:
        started = time.perf_counter()
        computed = tasks.statements_close_task.run(as_of=AS_OF.isoformat())
        elapsed = time.perf_counter() - started
    with rls.system("the benchmark counts what the close wrote"):
        statements = Statement.unscoped.filter(period_start=PERIOD).count()
        lines = StatementLine.unscoped.filter(statement__period_start=PERIOD).count()
    check(computed > 0 and statements == computed, f"{computed} computed, {statements} stored")
    check(lines > 0, "the close wrote no lines")
    return elapsed, computed, lines, phases


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def check(condition: bool, message: str) -> None:
    if not condition:
        print(f"FAILED: {message}", file=sys.stderr)
        sys.exit(1)


def stream_usage_csv(timed_lines: int) -> tuple[float, float, int, int, float, float, Phases]:
    """Consume the ERP export as StreamingHttpResponse would; memory sampled as it goes."""
    from accounts.models import Reseller
    from billing import exports, selectors
    from portal import rls
    from portal.tenancy import TenantContext

    with rls.system("the reseller is found by its slug"):
        reseller = Reseller.objects.get(slug="bench-billing")
    ctx = TenantContext.system(reseller=reseller)
    rows = selectors.usage_export_rows(
        ctx=ctx, f=selectors.UsageExportFilter(month=PERIOD, status="draft")
    )
    # As the portal streams it: after the request, in the reseller's scope again.
    body = rls.stream_in_scope(exports.usage_csv(rows), reseller.pk)
    first_100k = 0.0
    count = size = 0
    rss_start = rss_mb()
    rss_peak = rss_start
    with Phases() as phases:
        started = time.perf_counter()
        for chunk in body:
            size += len(chunk)
            count += 1
            if count == timed_lines + 1:  # the header and the timed lines
                first_100k = time.perf_counter() - started
            if count % 20_000 == 0:
                rss_peak = max(rss_peak, rss_mb())
        total = time.perf_counter() - started
    return first_100k, total, count - 1, size, rss_start, rss_peak, phases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=100_000)
    parser.add_argument("--contracts", type=int, default=1_000)
    parser.add_argument(
        "--smoke", action="store_true", help="200 devices in 10 contracts: checks, no budgets"
    )
    parser.add_argument("--url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL))
    parser.add_argument("--keep", action="store_true", help="reuse the fleet of the last run")
    parser.add_argument("--batch", type=int, default=500, help="contracts per transaction")
    parser.add_argument("--workers", type=int, default=2, help="transactions side by side")
    args = parser.parse_args()
    if args.smoke:
        args.devices, args.contracts = 200, 10
    csv_lines = min(100_000, 0 if args.smoke else args.devices)

    if not args.keep:
        recreate_database(args.url)
    setup_django(args.url)
    from billing import statement_services

    statement_services.CLOSE_WORKERS = args.workers
    print(f"database: {args.url}")
    if not args.keep:
        for what, seconds in build_fleet(args.devices, args.contracts).items():
            print(f"  set-up   {what:<40} {seconds:7.2f} s")

    print(f"load average before the close: {load_average()}")
    elapsed, statements, lines, phases = close_month(args.batch)
    close_ok = args.smoke or elapsed < 60
    print(
        f"close    {args.devices:,} devices, {statements:,} statements, {lines:,} lines:"
        f" {elapsed:.2f} s  (budget 60 s for 100,000)  {'OK' if close_ok else 'OVER BUDGET'}"
    )
    print(f"         {phases.text()}; load average {load_average()}")
    again, _, lines_again, phases = close_month(args.batch)
    check(lines_again == lines, f"the recompute wrote {lines_again} lines, the close {lines}")
    print(f"recompute the same drafts (late readings path): {again:.2f} s")
    print(f"         {phases.text()}; load average {load_average()}")

    first, total, count, size, rss_start, rss_peak, phases = stream_usage_csv(csv_lines)
    check(count == lines, f"the usage CSV has {count} lines, the statements {lines}")
    csv_ok = args.smoke or first < 5
    if csv_lines:
        print(
            f"usage CSV first {csv_lines:,} lines: {first:.2f} s  (budget 5 s for 100,000)"
            f"  {'OK' if csv_ok else 'OVER BUDGET'}"
        )
    print(
        f"usage CSV all {count:,} lines, {size / 2**20:.1f} MiB: {total:.2f} s;"
        f" RSS {rss_start:.0f} MiB before, {rss_peak:.0f} MiB peak while streaming"
    )
    print(f"         {phases.text()}; load average {load_average()}")
    max_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"max RSS of the process (fleet set-up included): {max_rss:.0f} MiB")
    print(f"load average: {load_average()}")
    check(close_ok and csv_ok, "over budget")


if __name__ == "__main__":
    main()
