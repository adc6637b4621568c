"""The disk outbox: every poll result is written here first and leaves only once acknowledged.

SQLite in WAL mode, one transaction per step, so a kill at any moment leaves either the state
before a step or the one after it:

- `put` stores snapshots (each with the snapshot_id given at poll time), not yet in a batch;
- `seal` groups the oldest loose snapshots into a batch and gives it its batch_id, durably,
  before the first attempt, so every retry of that batch sends the same batch_id;
- `mark_acked` deletes a batch's snapshots once the portal acknowledged it (a kill just before
  that makes the next run resend the batch, which the portal acknowledges again, changing
  nothing);
- `quarantine` keeps a batch the portal refused for good, out of the retry loop.

The outbox is bounded (`max_bytes` of snapshot bodies). Past the bound it first drops refused
(quarantined) batches, then summarises: of the loose snapshots it keeps, per printer and day, only
the last one (counters are cumulative, so the last reading of a day still carries the day's
usage), and only then drops the oldest data. Each of these logs a warning.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS batch (
    batch_id TEXT PRIMARY KEY,
    state TEXT NOT NULL CHECK (state IN ('pending', 'acked', 'quarantined')),
    created_at TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    last_error TEXT,
    acked_at TEXT,
    answer TEXT
);
-- due_batches: pending batches by next attempt
CREATE INDEX IF NOT EXISTS batch_due ON batch (state, next_attempt_at);
CREATE TABLE IF NOT EXISTS snapshot (
    snapshot_id TEXT PRIMARY KEY,
    serial TEXT NOT NULL,
    collected_at TEXT NOT NULL,
    body TEXT NOT NULL,
    batch_id TEXT REFERENCES batch (batch_id)
);
-- seal and the size bound walk loose snapshots oldest first
CREATE INDEX IF NOT EXISTS snapshot_loose ON snapshot (batch_id, collected_at);
CREATE TABLE IF NOT EXISTS device (
    serial TEXT PRIMARY KEY,
    address TEXT NOT NULL,
    port INTEGER NOT NULL,
    credentials TEXT NOT NULL,
    model TEXT,
    last_seen TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS setting (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS warning (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    message TEXT NOT NULL
);
"""


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True)
class Batch:
    batch_id: str
    attempts: int
    snapshots: list[dict[str, Any]]


@dataclass(frozen=True)
class Device:
    serial: str
    address: str
    port: int
    credentials: dict[str, str]
    model: str | None


class Outbox:
    def __init__(self, path: Path, *, max_bytes: int = 200 * 1024 * 1024) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.max_bytes = max_bytes
        # The run loop hands the outbox to a worker thread for uploads, one user at a time.
        self._db = sqlite3.connect(path, isolation_level=None, timeout=30, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # --- snapshots and batches ---------------------------------------------------------------

    def put(self, snapshots: Iterable[dict[str, Any]]) -> int:
        rows = [
            (s["snapshot_id"], s["device"]["serial"], s["collected_at"], json.dumps(s))
            for s in snapshots
        ]
        with self._transaction() as db:
            db.executemany(
                "INSERT OR IGNORE INTO snapshot (snapshot_id, serial, collected_at, body)"
                " VALUES (?, ?, ?, ?)",
                rows,
            )
        self.enforce_limit()
        return len(rows)

    def seal(self, *, max_snapshots: int = 200, now: datetime | None = None) -> list[str]:
        """Group loose snapshots into batches; returns the new batch_ids."""
        created = []
        with self._transaction() as db:
            while True:
                ids = [
                    row[0]
                    for row in db.execute(
                        "SELECT snapshot_id FROM snapshot WHERE batch_id IS NULL"
                        " ORDER BY collected_at, snapshot_id LIMIT ?",
                        (max_snapshots,),
                    )
                ]
                if not ids:
                    break
                batch_id = str(uuid.uuid4())
                moment = _iso(now or utcnow())
                db.execute(
                    "INSERT INTO batch (batch_id, state, created_at, next_attempt_at)"
                    " VALUES (?, 'pending', ?, ?)",
                    (batch_id, moment, moment),
                )
                db.executemany(
                    "UPDATE snapshot SET batch_id = ? WHERE snapshot_id = ?",
                    [(batch_id, snapshot_id) for snapshot_id in ids],
                )
                created.append(batch_id)
        return created

    def due_batches(self, *, now: datetime | None = None) -> list[Batch]:
        rows = self._db.execute(
            "SELECT batch_id, attempts FROM batch WHERE state = 'pending' AND next_attempt_at <= ?"
            " ORDER BY created_at, batch_id",
            (_iso(now or utcnow()),),
        ).fetchall()
        return [Batch(batch_id, attempts, self._bodies(batch_id)) for batch_id, attempts in rows]

    def next_attempt_at(self) -> datetime | None:
        """When the earliest pending batch is due again (None: nothing pending)."""
        row = self._db.execute(
            "SELECT MIN(next_attempt_at) FROM batch WHERE state = 'pending'"
        ).fetchone()
        return datetime.fromisoformat(row[0]) if row and row[0] else None

    def _bodies(self, batch_id: str) -> list[dict[str, Any]]:
        return [
            json.loads(body)
            for (body,) in self._db.execute(
                "SELECT body FROM snapshot WHERE batch_id = ? ORDER BY collected_at, snapshot_id",
                (batch_id,),
            )
        ]

    def mark_acked(
        self, batch_id: str, answer: dict[str, Any], *, now: datetime | None = None
    ) -> None:
        with self._transaction() as db:
            db.execute(
                "UPDATE batch SET state = 'acked', acked_at = ?, answer = ?, last_error = NULL"
                " WHERE batch_id = ?",
                (_iso(now or utcnow()), json.dumps(answer), batch_id),
            )
            db.execute("DELETE FROM snapshot WHERE batch_id = ?", (batch_id,))

    def mark_retry(self, batch_id: str, error: str, next_attempt_at: datetime) -> None:
        with self._transaction() as db:
            db.execute(
                "UPDATE batch SET attempts = attempts + 1, last_error = ?, next_attempt_at = ?"
                " WHERE batch_id = ? AND state = 'pending'",
                (error[:1000], _iso(next_attempt_at), batch_id),
            )

    def quarantine(self, batch_id: str, error: str) -> None:
        with self._transaction() as db:
            db.execute(
                "UPDATE batch SET state = 'quarantined', attempts = attempts + 1, last_error = ?"
                " WHERE batch_id = ?",
                (error[:1000], batch_id),
            )
        self.warn(f"batch {batch_id} quarantined: the portal refused it ({error[:200]})")

    def requeue_quarantined(self, *, now: datetime | None = None) -> int:
        with self._transaction() as db:
            cursor = db.execute(
                "UPDATE batch SET state = 'pending', next_attempt_at = ?"
                " WHERE state = 'quarantined'",
                (_iso(now or utcnow()),),
            )
            return cursor.rowcount

    # --- size bound --------------------------------------------------------------------------

    def size_bytes(self) -> int:
        (size,) = self._db.execute("SELECT COALESCE(SUM(LENGTH(body)), 0) FROM snapshot").fetchone()
        return int(size)

    def enforce_limit(self) -> list[str]:
        """Bring the outbox under `max_bytes`; returns the warnings it logged."""
        warnings: list[str] = []
        if self.size_bytes() <= self.max_bytes:
            return warnings
        with self._transaction() as db:
            for (batch_id,) in db.execute(
                "SELECT batch_id FROM batch WHERE state = 'quarantined' ORDER BY created_at"
            ).fetchall():
                if self.size_bytes() <= self.max_bytes:
                    break
                db.execute("DELETE FROM snapshot WHERE batch_id = ?", (batch_id,))
                warnings.append(f"outbox full: dropped quarantined batch {batch_id}")
        if self.size_bytes() > self.max_bytes:
            with self._transaction() as db:
                cursor = db.execute(
                    "DELETE FROM snapshot WHERE batch_id IS NULL AND snapshot_id NOT IN ("
                    " SELECT snapshot_id FROM ("
                    "  SELECT snapshot_id, ROW_NUMBER() OVER ("
                    "   PARTITION BY serial, substr(collected_at, 1, 10)"
                    "   ORDER BY collected_at DESC, snapshot_id DESC) AS rank"
                    "  FROM snapshot WHERE batch_id IS NULL) WHERE rank = 1)"
                )
                if cursor.rowcount:
                    warnings.append(
                        f"outbox full: summarised {cursor.rowcount} snapshots to the last one"
                        " per printer and day"
                    )
        dropped = 0
        while self.size_bytes() > self.max_bytes:
            with self._transaction() as db:
                oldest = db.execute(
                    "SELECT batch_id FROM batch WHERE state = 'pending' ORDER BY created_at LIMIT 1"
                ).fetchone()
                if oldest:
                    count = db.execute(
                        "DELETE FROM snapshot WHERE batch_id = ?", (oldest[0],)
                    ).rowcount
                    db.execute("DELETE FROM batch WHERE batch_id = ?", (oldest[0],))
                else:
                    row = db.execute(
                        "SELECT snapshot_id FROM snapshot WHERE batch_id IS NULL"
                        " ORDER BY collected_at LIMIT 1"
                    ).fetchone()
                    if row is None:
                        break
                    count = db.execute(
                        "DELETE FROM snapshot WHERE snapshot_id = ?", (row[0],)
                    ).rowcount
                dropped += count
        if dropped:
            warnings.append(f"outbox full: dropped the {dropped} oldest snapshots")
        for message in warnings:
            self.warn(message)
        return warnings

    # --- warnings, settings, devices ---------------------------------------------------------

    def warn(self, message: str) -> None:
        log.warning("%s", message)
        with self._transaction() as db:
            db.execute("INSERT INTO warning (at, message) VALUES (?, ?)", (_iso(utcnow()), message))
            db.execute("DELETE FROM warning WHERE id <= (SELECT MAX(id) FROM warning) - 100")

    def warnings(self, limit: int = 10) -> list[tuple[str, str]]:
        rows = self._db.execute(
            "SELECT at, message FROM warning ORDER BY id DESC LIMIT ?", (limit,)
        ).fetchall()
        return [(at, message) for at, message in rows]

    def get_setting(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM setting WHERE key = ?", (key,)).fetchone()
        return str(row[0]) if row else None

    def set_setting(self, key: str, value: str) -> None:
        with self._transaction() as db:
            db.execute(
                "INSERT INTO setting (key, value) VALUES (?, ?)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    def remember_device(
        self,
        *,
        serial: str,
        address: str,
        port: int,
        credentials: dict[str, str],
        model: str | None,
    ) -> None:
        """Devices are keyed by serial: a printer found at a new address is the same printer."""
        with self._transaction() as db:
            db.execute(
                "DELETE FROM device WHERE address = ? AND port = ? AND serial != ?",
                (address, port, serial),
            )
            db.execute(
                "INSERT INTO device (serial, address, port, credentials, model, last_seen)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (serial) DO UPDATE SET"
                " address = excluded.address, port = excluded.port,"
                " credentials = excluded.credentials, model = excluded.model,"
                " last_seen = excluded.last_seen",
                (serial, address, port, json.dumps(credentials), model, _iso(utcnow())),
            )

    def devices(self) -> list[Device]:
        return [
            Device(serial, address, port, json.loads(credentials), model)
            for serial, address, port, credentials, model in self._db.execute(
                "SELECT serial, address, port, credentials, model FROM device ORDER BY serial"
            )
        ]

    def discovery_done(self, *, now: datetime | None = None) -> None:
        """A network sweep for printers finished (reported to the portal as last_discovery_at)."""
        self.set_setting("last_discovery_at", _iso(now or utcnow()))

    def health(self) -> dict[str, Any]:
        """What the collector says about itself with each batch (protocol: `source`): the
        snapshots not yet acknowledged (loose or in a pending batch; a quarantined batch waits
        for `requeue`, not for the portal) and when discovery last finished."""
        (backlog,) = self._db.execute(
            "SELECT COUNT(*) FROM snapshot s LEFT JOIN batch b USING (batch_id)"
            " WHERE s.batch_id IS NULL OR b.state = 'pending'"
        ).fetchone()
        health: dict[str, Any] = {"outbox_backlog": int(backlog)}
        discovered = self.get_setting("last_discovery_at")
        if discovered:
            health["last_discovery_at"] = discovered
        return health

    def stats(self) -> dict[str, int]:
        counts = dict(
            self._db.execute("SELECT state, COUNT(*) FROM batch GROUP BY state").fetchall()
        )
        (loose,) = self._db.execute(
            "SELECT COUNT(*) FROM snapshot WHERE batch_id IS NULL"
        ).fetchone()
        (queued,) = self._db.execute(
            "SELECT COUNT(*) FROM snapshot s JOIN batch b USING (batch_id)"
            " WHERE b.state = 'pending'"
        ).fetchone()
        return {
            "loose_snapshots": int(loose),
            "queued_snapshots": int(queued),
            "pending_batches": int(counts.get("pending", 0)),
            "acked_batches": int(counts.get("acked", 0)),
            "quarantined_batches": int(counts.get("quarantined", 0)),
            "bytes": self.size_bytes(),
            "max_bytes": self.max_bytes,
            "devices": len(self.devices()),
        }
