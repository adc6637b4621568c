"""Follow-up benchmark (issue 12, point 1): does one worker keep up with the work that follows
telemetry (batch follow-ups, supply evaluations and forecasts, alerts, the beat's sweeps)?

On a throwaway stack (benchmarks/stack.py: its own PostgreSQL with row-level security and
partitions, Redis, gunicorn, one Celery worker and beat), a simulated fleet of large-format
printers (8 supplies, 12 counters each) of several customers, one collector each, sends signed
gzip batches through the real telemetry endpoint at a steady rate; each round of the fleet is
an hour of the printers' time, so levels fall, cross days and get replaced as they would.
After a warm-up round (devices created, first evaluations), it measures for the given time:

- worker CPU per snapshot: user + system time of the worker's processes (from /proc) from the
  start of the window until the window's follow-ups are done, over the snapshots sent in it;
  this figure does not depend on what else the shared machine runs;
- queue depth: the broker's queued messages, sampled every second (max);
- follow-up lag: per batch, from its acknowledgment until every supply of one of its printers
  (a tracer) has been evaluated up to the batch's readings (sampled every second, p50/p99);
- the load average at the start and at the end.

    .venv/bin/python benchmarks/followups.py [--rate 1000] [--seconds 300] [--devices 10000]
    .venv/bin/python benchmarks/followups.py --smoke    # a few seconds; non-zero on failure

Budgets (issue 12): worker CPU < 2 ms per snapshot; at 1,000 snapshots/s for 5 minutes with
one worker, queue depth < 100 and follow-up lag p99 < 60 s. The full run exits non-zero when a
budget is missed; the smoke run only when the pipeline fails (a refused batch, follow-ups that
never finish).
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import os
import queue
import random
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.stack import Stack  # noqa: E402 - needs ROOT on the path
from devices import simulator  # noqa: E402

BATCH_SIZE = 100
QUEUES = ("ingest", "email", "default", "billing", "pdf")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
BUDGET_CPU_MS = 2.0
BUDGET_QUEUE = 100
BUDGET_LAG_P99_S = 60.0

SEED = """
import json
from accounts.models import Customer, Reseller, Site
from devices import services
from portal import rls
from portal.tenancy import TenantContext

with rls.system("the benchmark creates its reseller"):
    reseller = Reseller.objects.create(
        name="Bench", slug="bench", support_email="support@bench.test"
    )
ctx = TenantContext.system(reseller=reseller)
keys = []
with rls.tenant(reseller.pk):
    for n in range(CUSTOMERS):
        customer = Customer.unscoped.create(reseller=reseller, name=f"Customer {n}")
        site = Site.unscoped.create(
            reseller=reseller, customer=customer, name="HQ", contact_email=f"office{n}@bench.test"
        )
        credential, secret = services.credential_create(ctx=ctx, kind="collector", site_id=site.pk)
        keys.append([credential.key_id, secret])
print(json.dumps(keys))
"""


def loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / CLOCK_TICKS


@dataclass
class Batch:
    customer: int
    body: bytes
    tracer: str  # serial of one printer of the batch
    collected_at: datetime
    acked_at: float = 0.0
    done_at: float = 0.0


@dataclass
class Fleet:
    """Customers of `per_customer` printers; each round is one more hour of their use."""

    customers: int
    per_customer: int
    start: datetime
    printers: list[list[simulator.Printer]] = field(default_factory=list)

    def __post_init__(self) -> None:
        model = simulator.MODELS[3]  # the DesignJet: 8 supplies, 12 counters
        for c in range(self.customers):
            self.printers.append(
                [
                    simulator.Printer(
                        serial=f"F{c:03d}{n:05d}",
                        model=model,
                        ip=f"10.{c % 250}.{n // 250}.{n % 250}",
                        rng=random.Random(c * 100_000 + n),
                    )
                    for n in range(self.per_customer)
                ]
            )

    def round(self, n: int) -> list[Batch]:
        at = self.start + timedelta(hours=n)
        batches = []
        for c, printers in enumerate(self.printers):
            snaps = []
            for printer in printers:
                printer.advance(at - timedelta(hours=1), at)
                snap = printer.snapshot(at)
                snap.pop("media_sources", None)
                snaps.append(snap)
            for i in range(0, len(snaps), BATCH_SIZE):
                chunk = snaps[i : i + BATCH_SIZE]
                tracer = chunk[0]["device"]["serial"]
                batches.append(Batch(c, simulator.encode_batch(chunk), tracer, at))
        return batches


class Sender:
    """Threads that post batches at a steady rate (snapshots per second)."""

    def __init__(self, port: int, keys: list[list[str]], threads: int) -> None:
        self.port, self.keys, self.threads = port, keys, threads
        self.failures: list[str] = []
        self.accepted = 0
        self.lock = threading.Lock()

    def send(self, batches: list[Batch], rate: float) -> float:
        work: queue.Queue[tuple[float, Batch] | None] = queue.Queue()
        started = time.monotonic()
        due = started
        for batch in batches:
            work.put((due, batch))
            due += BATCH_SIZE / rate
        for _ in range(self.threads):
            work.put(None)
        threads = [threading.Thread(target=self._run, args=(work,)) for _ in range(self.threads)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return time.monotonic() - started

    def _run(self, work: queue.Queue[tuple[float, Batch] | None]) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        while (item := work.get()) is not None:
            due, batch = item
            time.sleep(max(0.0, due - time.monotonic()))
            key_id, secret = self.keys[batch.customer]
            headers = simulator.signed_headers(
                key_id=key_id,
                secret=secret,
                method="POST",
                path=simulator.TELEMETRY_PATH,
                body=batch.body,
            )
            headers |= {"Content-Type": "application/json", "Content-Encoding": "gzip"}
            try:
                conn.request("POST", simulator.TELEMETRY_PATH, body=batch.body, headers=headers)
                response = conn.getresponse()
                payload = response.read()
                if response.will_close:
                    conn.close()
            except (OSError, http.client.HTTPException) as error:
                conn.close()
                with self.lock:
                    self.failures.append(f"{type(error).__name__}: {error}")
                continue
            batch.acked_at = time.monotonic()
            with self.lock:
                if response.status == 202:
                    self.accepted += json.loads(payload)["accepted"]
                else:
                    self.failures.append(f"{response.status} {payload[:200]!r}")
        conn.close()


class Watcher:
    """Samples the broker's queues and the tracers' evaluations every second."""

    def __init__(self, stack: Stack) -> None:
        import psycopg
        import redis

        self.redis = redis.Redis.from_url(stack.redis.url)
        self.db = psycopg.connect(stack.postgres.url, autocommit=True)  # the owner: no wall
        self.depths: list[int] = []
        self.pending: list[Batch] = []
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.ids: dict[str, int] = {}

    def depth(self) -> int:
        return sum(int(self.redis.llen(q)) for q in QUEUES)

    def track(self, batches: list[Batch]) -> None:
        with self.lock:
            self.pending += batches

    def sample(self) -> None:
        self.depths.append(self.depth())
        with self.lock:
            waiting = [b for b in self.pending if b.acked_at and not b.done_at]
        if not waiting:
            return
        missing = [b.tracer for b in waiting if b.tracer not in self.ids]
        if missing:
            rows = self.db.execute(
                "SELECT serial, id FROM devices_device WHERE serial = ANY(%s)", [missing]
            ).fetchall()
            self.ids.update(dict(rows))
        ids = [self.ids[b.tracer] for b in waiting if b.tracer in self.ids]
        evaluated: dict[int, datetime] = dict(
            self.db.execute(
                "SELECT s.device_id, CASE WHEN count(f.supply_id) = count(*) "
                "THEN min(f.evaluated_observed_at) END "
                "FROM devices_supply s LEFT JOIN orders_supplyforecast f ON f.supply_id = s.id "
                "WHERE s.device_id = ANY(%s) GROUP BY s.device_id",
                [ids],
            ).fetchall()
        )
        moment = time.monotonic()
        for batch in waiting:
            upto = evaluated.get(self.ids.get(batch.tracer, -1))
            if upto is not None and upto >= batch.collected_at:
                batch.done_at = moment

    def _run(self) -> None:
        while not self.stop.wait(1.0):
            try:
                self.sample()
            except Exception as error:  # the run fails by its timeout, with the reason shown
                print(f"watcher: {type(error).__name__}: {error}", file=sys.stderr, flush=True)

    def all_done(self, batches: list[Batch]) -> bool:
        return all(b.done_at for b in batches)


def wait_done(watcher: Watcher, batches: list[Batch], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if watcher.all_done(batches) and watcher.depth() == 0:
            return True
        time.sleep(0.5)
    return False


def percentile(values: list[float], p: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=1000.0, help="snapshots per second")
    parser.add_argument("--seconds", type=float, default=300.0, help="measured time")
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--customers", type=int, default=50)
    parser.add_argument("--senders", type=int, default=4)
    parser.add_argument("--web-workers", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=2, help="of the one worker")
    parser.add_argument("--smoke", action="store_true", help="a tiny run that checks it works")
    args = parser.parse_args()
    if args.smoke:
        args.rate, args.seconds, args.devices, args.customers = 200.0, 5.0, 400, 4
    per_customer = max(1, args.devices // args.customers)
    devices = per_customer * args.customers
    rounds = max(1, math.ceil(args.rate * args.seconds / devices))
    print(
        f"followups: {devices} printers of {args.customers} customers, 8 supplies each, "
        f"batches of {BATCH_SIZE}; {args.rate:.0f} snapshots/s for {args.seconds:.0f} s "
        f"({rounds} rounds after a warm-up round); one worker, --concurrency={args.concurrency}",
        flush=True,
    )
    start = datetime.now(tz=UTC).replace(minute=0, second=0, microsecond=0) - timedelta(
        hours=rounds + 1
    )
    fleet = Fleet(args.customers, per_customer, start)
    generated = time.monotonic()
    warm = fleet.round(0)
    measured = [b for n in range(1, rounds + 1) for b in fleet.round(n)]
    limit = int(args.rate * args.seconds / BATCH_SIZE)
    measured = measured[: max(1, limit)]
    print(
        f"built {len(warm) + len(measured)} batches in {time.monotonic() - generated:.0f} s "
        f"({sum(len(b.body) for b in measured) / len(measured) / 1024:.0f} KB gzip each)",
        flush=True,
    )
    workdir = Path(tempfile.mkdtemp(prefix="inkmeter-followups-"))
    with Stack(
        workdir,
        web_workers=args.web_workers,
        celery_concurrency=args.concurrency,
        beat=True,
        extra_env={"CONN_MAX_AGE": "600"},
    ) as stack:
        seeded = stack.manage("shell", "-c", SEED.replace("CUSTOMERS", str(args.customers)))
        keys = json.loads(seeded.stdout.strip().splitlines()[-1])  # after anything logged
        sender = Sender(stack.web.port, keys, args.senders)
        watcher = Watcher(stack)
        watcher.thread.start()
        watcher.track(warm)
        took = sender.send(warm, args.rate)
        print(f"warm-up: {len(warm)} batches in {took:.1f} s", flush=True)
        if not wait_done(watcher, warm, timeout=300 if args.smoke else 900):
            print("FAIL: the warm-up's follow-ups did not finish", file=sys.stderr)
            return 1
        load_start = loadavg()
        watcher.depths.clear()
        accepted_before = sender.accepted
        cpu_before = cpu_seconds(stack.worker.pids())
        web_before = cpu_seconds(stack.web.pids())
        watcher.track(measured)
        sent_s = sender.send(measured, args.rate)
        snapshots = sender.accepted - accepted_before
        finished = wait_done(watcher, measured, timeout=max(180.0, args.seconds))
        drained_s = time.monotonic() - max(b.acked_at for b in measured)
        worker_cpu = cpu_seconds(stack.worker.pids()) - cpu_before
        web_cpu = cpu_seconds(stack.web.pids()) - web_before
        load_end = loadavg()
        watcher.stop.set()
        watcher.thread.join(timeout=30)
        lags = [b.done_at - b.acked_at for b in measured if b.done_at and b.acked_at]
        depth_max = max(watcher.depths, default=0)
        counts = watcher.db.execute(
            "SELECT (SELECT count(*) FROM orders_supplyforecast), "
            "(SELECT count(*) FROM orders_supplylevelday), "
            "(SELECT count(*) FROM orders_supplyalert), "
            "(SELECT count(*) FROM orders_cartridgereplacement), "
            "(SELECT count(*) FROM orders_emaillog)"
        ).fetchone()
    cpu_ms = worker_cpu / max(snapshots, 1) * 1000
    p50, p99 = percentile(lags, 50), percentile(lags, 99)
    rate = snapshots / sent_s if sent_s else 0.0
    print(f"snapshots accepted in the window: {snapshots} in {sent_s:.1f} s ({rate:.0f}/s)")
    print(
        f"worker CPU per snapshot: {cpu_ms:.3f} ms (budget < {BUDGET_CPU_MS} ms); "
        f"{worker_cpu:.1f} s in all; web CPU per snapshot {web_cpu / max(snapshots, 1) * 1000:.3f}"
        " ms"
    )
    print(f"queue depth max: {depth_max} (budget < {BUDGET_QUEUE})")
    print(
        f"follow-up lag: p50 {p50:.1f} s, p99 {p99:.1f} s (budget p99 < {BUDGET_LAG_P99_S:.0f} s)"
        f", {len(lags)} batches; last follow-up {drained_s:.1f} s after the last batch"
    )
    print(
        "rows: forecasts {}, daily points {}, supply alerts {}, replacements {}, emails {}".format(
            *(counts or ())
        )
    )
    print(
        f"load average: {load_start} at the start, {load_end} at the end ({os.cpu_count()} cores)"
    )
    failed = sender.failures or not finished or snapshots == 0
    if sender.failures:
        print(f"FAIL: {len(sender.failures)} batches refused: {sender.failures[:3]}")
    if not finished:
        print("FAIL: follow-ups of the window did not finish")
    if failed:
        return 1
    if args.smoke:
        print("smoke: OK")
        return 0
    missed = [
        name
        for name, ok in (
            ("worker CPU", cpu_ms < BUDGET_CPU_MS),
            ("queue depth", depth_max < BUDGET_QUEUE),
            ("lag p99", p99 < BUDGET_LAG_P99_S),
        )
        if not ok
    ]
    print("budgets: " + (f"MISSED {', '.join(missed)}" if missed else "all met"))
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
