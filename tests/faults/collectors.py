"""Collectors for the fault tests: threads that post signed gzip batches of simulated printers
to a stack's gunicorn and, as the protocol asks (protocol/telemetry-v1.md), send a batch again
with the same batch_id until it is acknowledged; and what the stack's database holds of them.
"""

from __future__ import annotations

import gzip
import http.client
import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import psycopg

from benchmarks.stack import Stack
from devices import simulator

SNAPSHOTS_PER_BATCH = 10
PRINTERS_PER_COLLECTOR = 10
# A reseller of its own (so that tests sharing a stack count only their own rows), with one
# site and collector credential per sender.
SEED = """
import json, uuid
from accounts import services
from accounts.models import User
from devices import services as devices
from portal import rls
from portal.tenancy import TenantContext

with rls.system("an operator creates a reseller, then works in it"):
    operator = User.objects.filter(is_superuser=True).first() or User.objects.create_superuser(
        email="operator@faults.test", password=uuid.uuid4().hex
    )
    reseller = services.reseller_create(by=operator, name=f"Faults {{uuid.uuid4().hex[:8]}}")
with rls.tenant(reseller.pk):
    ctx = TenantContext.system(reseller=reseller)
    customer = services.customer_create(ctx=ctx, name="Faults Customer")
    keys = []
    for n in range({senders}):
        site = services.site_create(ctx=ctx, customer_id=customer.pk, name=f"Site {{n}}")
        credential, secret = devices.credential_create(
            ctx=ctx, kind="collector", site_id=site.pk
        )
        keys.append([credential.key_id, secret])
print(json.dumps({{"reseller_id": reseller.pk, "keys": keys}}))
"""


def credentials_create(stack: Stack, senders: int) -> tuple[int, list[tuple[str, str]]]:
    """A reseller and its collector credentials, made through the services by manage.py."""
    output = stack.manage("shell", "-c", SEED.format(senders=senders)).stdout
    made = json.loads(output.strip().splitlines()[-1])
    return made["reseller_id"], [(key_id, secret) for key_id, secret in made["keys"]]


@dataclass(frozen=True)
class Batch:
    batch_id: str
    body: bytes
    snapshots: int
    counters: int
    supplies: int


def batches_generate(seed: int) -> Iterator[Batch]:
    """Hourly polls of a small fleet, ten snapshots a batch, going back a few weeks (plenty
    for any run here). The seed makes the printers' serials and snapshot ids: a sender's own."""
    fleet = simulator.fleet_build(devices=PRINTERS_PER_COLLECTOR, seed=seed, prefix="FLT")
    end = datetime.now(tz=UTC) - timedelta(hours=1)
    snapshots = simulator.history(fleet, days=30, interval_minutes=60, end=end)
    for chunk in simulator.batches(snapshots, SNAPSHOTS_PER_BATCH):
        body = simulator.encode_batch(chunk)
        yield Batch(
            batch_id=json.loads(gzip.decompress(body))["batch_id"],
            body=body,
            snapshots=len(chunk),
            counters=sum(len(s["counters"]) for s in chunk),
            supplies=sum(len(s["supplies"]) for s in chunk),
        )


@dataclass
class Tally:
    """What the senders did and saw."""

    posts: int = 0
    retries: int = 0
    acked: dict[str, dict[str, Any]] = field(default_factory=dict)
    sent: dict[str, Batch] = field(default_factory=dict)
    errors: Counter[str] = field(default_factory=Counter)
    refused: list[str] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)  # per post, answered or not
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def unacked(self) -> list[str]:
        return sorted(set(self.sent) - set(self.acked))

    def summary(self) -> str:
        errors = ", ".join(f"{kind} x{n}" for kind, n in self.errors.most_common()) or "none"
        seconds = sorted(self.seconds) or [0.0]
        return (
            f"batches sent {len(self.sent)}, acked {len(self.acked)}, "
            f"posts {self.posts}, retried {self.retries}, errors: {errors}; "
            f"post time p50 {seconds[len(seconds) // 2]:.2f} s, max {seconds[-1]:.2f} s"
        )


class Collectors:
    """`senders` threads posting batches, each pausing `interval` seconds between batches, until
    stop() (or the deadline). A connection error or a 5xx is retried with the same body (same
    batch_id, newly signed) after a backoff; any other refusal is kept and ends that sender."""

    def __init__(
        self,
        stack: Stack,
        *,
        senders: int,
        interval: float = 0.0,
        max_batches: int | None = None,
        deadline_s: float = 240,
    ) -> None:
        self.url = urlsplit(stack.web.base_url)
        self.reseller_id, self.keys = credentials_create(stack, senders)
        self.interval = interval
        self.max_batches = max_batches
        self.deadline = time.monotonic() + deadline_s
        self.tally = Tally()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, args=(n, key), name=f"collector-{n}", daemon=True)
            for n, key in enumerate(self.keys)
        ]

    def start(self) -> Collectors:
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        """No new batches; each sender still gets its current batch acknowledged."""
        self._stop.set()

    def join(self) -> Tally:
        for thread in self._threads:
            thread.join(timeout=max(1.0, self.deadline - time.monotonic() + 30))
        return self.tally

    def running(self) -> bool:
        return any(thread.is_alive() for thread in self._threads)

    def acked(self) -> int:
        with self.tally.lock:
            return len(self.tally.acked)

    def _run(self, sender: int, key: tuple[str, str]) -> None:
        # Seeded by reseller too: the snapshot ids of another test's senders are not repeated.
        for count, batch in enumerate(batches_generate(self.reseller_id * 100 + sender)):
            if self._stop.is_set() or (self.max_batches is not None and count >= self.max_batches):
                return
            with self.tally.lock:
                self.tally.sent[batch.batch_id] = batch
            if not self._deliver(key, batch):
                return
            self._stop.wait(self.interval)

    def _deliver(self, key: tuple[str, str], batch: Batch) -> bool:
        backoff = 0.2
        first = True
        while time.monotonic() < self.deadline:
            if not first:
                with self.tally.lock:
                    self.tally.retries += 1
            first = False
            started = time.monotonic()
            status, answer, error = self._post(key, batch.body)
            with self.tally.lock:
                self.tally.posts += 1
                self.tally.seconds.append(time.monotonic() - started)
                if status == 202:
                    self.tally.acked[batch.batch_id] = answer
                    return True
                if error or status >= 500:
                    self.tally.errors[error or str(status)] += 1
                else:
                    self.tally.refused.append(f"{batch.batch_id}: {status} {answer}")
                    return False
            time.sleep(backoff)
            backoff = min(backoff * 2, 2.0)
        return False

    def _post(self, key: tuple[str, str], body: bytes) -> tuple[int, dict[str, Any], str]:
        path = simulator.TELEMETRY_PATH
        headers = simulator.signed_headers(
            key_id=key[0], secret=key[1], method="POST", path=path, body=body
        )
        headers |= {"Content-Type": "application/json", "Content-Encoding": "gzip"}
        conn = http.client.HTTPConnection(self.url.hostname or "", self.url.port, timeout=30)
        try:
            conn.request("POST", path, body=body, headers=headers)
            response = conn.getresponse()
            payload = response.read()
        except (OSError, http.client.HTTPException) as exc:
            return 0, {}, type(exc).__name__
        finally:
            conn.close()
        try:
            answer = json.loads(payload) if payload else {}
        except ValueError:
            answer = {"body": payload[:200].decode(errors="replace")}
        return response.status, answer, ""


# --- What the database holds ----------------------------------------------------------------


@dataclass
class Stored:
    batch_rows: Counter[str]  # batch_id -> rows in devices_telemetrybatch
    snapshots: Counter[str]  # batch_id -> its snapshots
    counter_readings: int
    supply_readings: int
    followup_pending: int

    def summary(self) -> str:
        return (
            f"rows: {sum(self.batch_rows.values())} batches, {sum(self.snapshots.values())} "
            f"snapshots, {self.counter_readings} counter and {self.supply_readings} supply "
            f"readings; follow-ups pending {self.followup_pending}"
        )


def stored(stack: Stack, reseller_id: int) -> Stored:
    """The rows of one reseller, counted as the owner (the superuser of the stack's own
    cluster, whom no row-level policy binds)."""
    with psycopg.connect(stack.postgres.url, connect_timeout=10) as conn:

        def per_batch(sql: str) -> Counter[str]:
            return Counter(dict(conn.execute(sql, [reseller_id]).fetchall()))

        def count(sql: str) -> int:
            row = conn.execute(sql, [reseller_id]).fetchone()
            return int(row[0]) if row else 0

        return Stored(
            batch_rows=per_batch(
                "SELECT batch_id::text, count(*) FROM devices_telemetrybatch "
                "WHERE reseller_id = %s GROUP BY 1"
            ),
            snapshots=per_batch(
                "SELECT b.batch_id::text, count(*) FROM devices_snapshot s "
                "JOIN devices_telemetrybatch b ON b.id = s.batch_id "
                "WHERE s.reseller_id = %s GROUP BY 1"
            ),
            counter_readings=count(
                "SELECT count(*) FROM devices_counterreading WHERE reseller_id = %s"
            ),
            supply_readings=count(
                "SELECT count(*) FROM devices_supplyreading WHERE reseller_id = %s"
            ),
            followup_pending=count(
                "SELECT count(*) FROM devices_telemetrybatch "
                "WHERE reseller_id = %s AND followup_done_at IS NULL"
            ),
        )
