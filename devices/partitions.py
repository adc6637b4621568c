"""Monthly partitions of the append-only telemetry tables on PostgreSQL (issue #7).

Raw batches are partitioned by the month they were received in, snapshots and counter and supply
readings by the month the device took them in (devices/migrations/0005). Each table has one
partition per month, `<table>_pYYYYMM`, and a DEFAULT partition, `<table>_default`, which takes
a row of any month without a partition (a printer whose clock is years off, a late reading of a
detached month): ingestion never refuses a row for its date.

- `partitions_ensure` (a daily beat task, and after every migrate) adds this month's partition
  and MONTHS_AHEAD more before their first rows arrive, and a partition for every month that has
  rows in DEFAULT, moving those rows into it.
- `partitions_detach` takes the months before a given one out of every table, refusing months
  that billing still reads, and optionally archives them with pg_dump and drops them.
- `partition_list` shows them with their rows and sizes.

Partitions are attached with ATTACH PARTITION, which does not block reads or writes of the table
(CREATE TABLE ... PARTITION OF would lock it exclusively). A month is detached with a plain
DETACH PARTITION under a short lock_timeout, retried: PostgreSQL refuses DETACH ... CONCURRENTLY
on a table that has a DEFAULT partition, and the DEFAULT partition is what keeps rows of
unexpected months. The exclusive lock of a plain detach is held for a catalog change only;
the timeout keeps ingestion from queueing behind it while a long query holds the table.

Everything here is DDL on tables that the application role does not own: callers run it as the
owner (`rls.owner()`), and rows of every tenant are read or moved in the `rls.system` scope.
SQLite has no partitions; there every function does nothing.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from django.db import OperationalError, connection
from django.utils.timezone import now

from portal import rls
from portal.errors import ConflictError, DomainError

log = logging.getLogger(__name__)

# Table -> partition key, in the order months are detached: readings before the snapshots and
# batches that brought them, so that no query ever sees a reading without its snapshot.
PARTITIONED = {
    "devices_counterreading": "collected_at",
    "devices_supplyreading": "collected_at",
    "devices_snapshot": "collected_at",
    "devices_telemetrybatch": "received_at",
}
MONTHS_AHEAD = 3
# How long DDL waits for a lock before it gives up and tries again: the requests queued behind
# a waiting ALTER TABLE wait as long.
LOCK_TIMEOUT_MS = 2000
LOCK_ATTEMPTS = 5
_MONTH_NAME = re.compile(r"_p(\d{4})(\d{2})$")


class PartitionsUnavailable(DomainError):
    code = "partitions_unavailable"


class PartitionsBusy(ConflictError):
    code = "partitions_busy"


class DetachRefused(ConflictError):
    code = "detach_refused"


@dataclass(frozen=True)
class Partition:
    table: str
    name: str
    month: date | None  # None: the DEFAULT partition
    rows: int | None  # None: not counted and never analysed
    size_bytes: int
    is_attached: bool  # False: detached, waiting for the operator to archive it


@dataclass(frozen=True)
class Detached:
    tables: list[str]  # detached by this run
    archives: list[Path]  # written by this run (their tables dropped)
    kept: list[str]  # detached and left in the database for the operator


def is_supported() -> bool:
    """PostgreSQL, with the tables partitioned (devices migration 0005 applied)."""
    if connection.vendor != "postgresql":
        return False
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relkind FROM pg_class WHERE oid = to_regclass(%s)",
            ["devices_counterreading"],
        )
        row = cursor.fetchone()
    return row is not None and row[0] == "p"


def month_start(moment: date | datetime) -> date:
    return date(moment.year, moment.month, 1)


def month_add(month: date, months: int) -> date:
    index = month.year * 12 + month.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def partition_name(table: str, month: date) -> str:
    return f"{table}_p{month:%Y%m}"


def _bounds(month: date) -> tuple[str, str]:
    """FROM and TO of a month's partition, as SQL."""
    lo = f"'{month.isoformat()} 00:00:00+00'"
    if (month.year, month.month) == (9999, 12):
        return lo, "MAXVALUE"  # a row can be dated that late, a bound not a month later
    return lo, f"'{month_add(month, 1).isoformat()} 00:00:00+00'"


def _q(name: str) -> str:
    return str(connection.ops.quote_name(name))


# --- Reading the catalog ---------------------------------------------------------------------


def _month_of(name: str) -> date | None:
    match = _MONTH_NAME.search(name)
    return date(int(match[1]), int(match[2]), 1) if match else None


def _attached(table: str) -> dict[str, tuple[int, int]]:
    """Partition name -> (estimated rows, bytes) of the table's partitions."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, c.reltuples::bigint, pg_total_relation_size(c.oid) "
            "FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = %s::regclass ORDER BY c.relname",
            [table],
        )
        return {name: (rows, size) for name, rows, size in cursor.fetchall()}


def _detached(table: str) -> dict[str, tuple[int, int]]:
    """Month tables of `table` that are no longer partitions of it (detached, not archived)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, c.reltuples::bigint, pg_total_relation_size(c.oid) "
            "FROM pg_class c WHERE c.relkind = 'r' AND NOT c.relispartition "
            "AND c.relnamespace = current_schema()::regnamespace "
            "AND c.relname ~ %s ORDER BY c.relname",
            [f"^{table}_p[0-9]{{6}}$"],
        )
        return {name: (rows, size) for name, rows, size in cursor.fetchall()}


def _count(name: str) -> int:
    with rls.system("partition maintenance counts every tenant's rows"), connection.cursor() as c:
        c.execute(f"SELECT count(*) FROM {_q(name)}")  # noqa: S608 - a catalog name, quoted
        row = c.fetchone()
    return int(row[0]) if row else 0


def partition_list(*, exact: bool = False) -> list[Partition]:
    """Every partition of the partitioned tables, and the month tables detached from them.
    Row counts are the planner's estimates unless `exact` (a count(*) of each)."""
    if not is_supported():
        return []
    result = []
    for table in PARTITIONED:
        for attached, found in ((True, _attached(table)), (False, _detached(table))):
            for name, (estimate, size) in found.items():
                rows: int | None = _count(name) if exact else (estimate if estimate >= 0 else None)
                month = None if name == f"{table}_default" else _month_of(name)
                result.append(Partition(table, name, month, rows, size, attached))
    return result


# --- Maintenance ------------------------------------------------------------------------------


@contextmanager
def _maintenance() -> Iterator[None]:
    """One maintenance run at a time (the beat task, a migrate, an operator's command)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(hashtextextended('devices.partitions', 0))")
        row = cursor.fetchone()
    if not (row and row[0]):
        raise PartitionsBusy("Another partition maintenance is running; try again later.")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(hashtextextended('devices.partitions', 0))")


def _lock_timeout_retried(what: str, step: Any) -> None:
    """Run `step(cursor)` in a transaction whose locks wait at most LOCK_TIMEOUT_MS, a few
    times: a long query on the table makes it give up, not hold every later request up."""
    for attempt in range(1, LOCK_ATTEMPTS + 1):
        try:
            with (
                rls.system("partition maintenance moves rows of every tenant"),
                connection.cursor() as cursor,
            ):
                cursor.execute(f"SET LOCAL lock_timeout = {LOCK_TIMEOUT_MS}")
                step(cursor)
            return
        except OperationalError as error:
            if getattr(error.__cause__, "sqlstate", None) != "55P03" or attempt == LOCK_ATTEMPTS:
                raise
            log.warning("%s: lock not available (attempt %s); retrying", what, attempt)
            time.sleep(attempt)


def _default_months(table: str, key: str) -> set[date]:
    with rls.system("partition maintenance reads every tenant's rows"), connection.cursor() as c:
        c.execute(
            f"SELECT DISTINCT date_trunc('month', {_q(key)} AT TIME ZONE 'UTC') "  # noqa: S608
            f"FROM {_q(table + '_default')}"
        )
        return {row[0].date() for row in c.fetchall()}


def _columns(table: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 "
            "AND NOT attisdropped ORDER BY attnum",
            [table],
        )
        return ", ".join(_q(row[0]) for row in cursor.fetchall())


def _partition_add(table: str, key: str, month: date, *, has_rows: bool) -> str:
    """A new month partition, filled with that month's rows from DEFAULT, in one transaction."""
    name = partition_name(table, month)
    lo, hi = _bounds(month)
    columns = _columns(table)
    default = _q(f"{table}_default")

    def step(cursor: Any) -> None:
        cursor.execute(
            f"CREATE TABLE {_q(name)} (LIKE {_q(table)} INCLUDING DEFAULTS "
            "INCLUDING CONSTRAINTS INCLUDING STORAGE)"
        )
        # ATTACH scans DEFAULT under this lock anyway; taken first, no insert can slip a row
        # of the month into DEFAULT between the move and the attach.
        cursor.execute(f"LOCK TABLE {default} IN ACCESS EXCLUSIVE MODE")
        if has_rows:
            until = f"AND {_q(key)} < {hi}" if hi != "MAXVALUE" else ""
            month_rows = f"{_q(key)} >= {lo} {until}"
            moved = f"DELETE FROM {default} WHERE {month_rows} RETURNING {columns}"  # noqa: S608
            cursor.execute(
                f"WITH moved AS ({moved}) INSERT INTO {_q(name)} ({columns}) "  # noqa: S608
                f"SELECT {columns} FROM moved"
            )
        cursor.execute(
            f"ALTER TABLE {_q(table)} ATTACH PARTITION {_q(name)} FOR VALUES FROM ({lo}) TO ({hi})"
        )

    _lock_timeout_retried(f"add {name}", step)
    return name


def partitions_ensure(*, today: date | None = None, ahead: int = MONTHS_AHEAD) -> list[str]:
    """Add the partitions of this month and `ahead` more, and of every month with rows in
    DEFAULT (moving the rows). Returns the partitions added; running it again adds none."""
    if not is_supported():
        return []
    this_month = month_start(today or now())
    upcoming = {month_add(this_month, n) for n in range(ahead + 1)}
    added = []
    with _maintenance():
        for table, key in PARTITIONED.items():
            if f"{table}_default" not in _attached(table):
                _lock_timeout_retried(
                    f"add {table}_default",
                    lambda c, t=table: c.execute(
                        f"CREATE TABLE {_q(t + '_default')} PARTITION OF {_q(t)} DEFAULT"
                    ),
                )
            existing = {_month_of(name) for name in _attached(table)}
            taken = {_month_of(name) for name in _detached(table)}
            stray = _default_months(table, key)
            for month in sorted((upcoming | stray) - existing):
                if month in taken:
                    # Rows of a detached month stay in DEFAULT until the operator archives the
                    # detached table (or attaches it back); nothing is lost meanwhile.
                    log.warning(
                        "%s holds rows of %s, whose detached partition is not archived yet",
                        f"{table}_default",
                        f"{month:%Y-%m}",
                    )
                    continue
                added.append(_partition_add(table, key, month, has_rows=month in stray))
    if added:
        log.info("partitions added: %s", ", ".join(added))
    return added


def _detach(table: str, name: str) -> None:
    def step(cursor: Any) -> None:
        cursor.execute(f"ALTER TABLE {_q(table)} DETACH PARTITION {_q(name)}")
        # An archived month keeps no foreign keys: they would stop a device or credential
        # from being deleted, for rows that no query of the portal reads any more.
        cursor.execute(
            "SELECT conname FROM pg_constraint WHERE conrelid = %s::regclass AND contype = 'f'",
            [name],
        )
        for (constraint,) in cursor.fetchall():
            cursor.execute(f"ALTER TABLE {_q(name)} DROP CONSTRAINT {_q(constraint)}")

    _lock_timeout_retried(f"detach {name}", step)


def _billing_allows(cut: date, today: date) -> None:
    from billing.usage_selectors import readings_needed_from

    with rls.system("billing's open periods of every reseller"):
        needed = readings_needed_from(today=today)
    if needed is None:
        return
    moment, reason = needed
    if datetime(cut.year, cut.month, 1, tzinfo=UTC) > moment:
        earliest_safe = month_start(moment)
        raise DetachRefused(
            f"Refusing to detach the months before {cut:%Y-%m}: billing still reads readings "
            f"from {moment:%Y-%m-%d} on ({reason}). Finalise the statement first, or detach "
            f"only the months before {earliest_safe:%Y-%m}."
        )


def _archive_preflight(names: list[str]) -> None:
    """pg_dump reads the detached tables as this role: row-level security forced on them would
    make it fail half-way, after the detach. Say so before anything changes."""
    if shutil.which("pg_dump") is None or shutil.which("pg_restore") is None:
        raise PartitionsUnavailable("--archive-dir needs pg_dump and pg_restore on the PATH.")
    if not names:
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user")
        row = cursor.fetchone()
        if row and row[0]:
            return
        cursor.execute(
            "SELECT relname FROM pg_class WHERE relname = ANY(%s) AND relforcerowsecurity "
            "AND relnamespace = current_schema()::regnamespace",
            [names],
        )
        forced = [r[0] for r in cursor.fetchall()]
    if forced:
        raise PartitionsUnavailable(
            f"Row-level security is forced on {', '.join(forced)}: pg_dump as this role would "
            "be refused. Archive as a role with BYPASSRLS (or a superuser)."
        )


def _run(command: list[Any], env: dict[str, str]) -> str:
    """Run a PostgreSQL client program; its error output becomes the error's message."""
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)  # noqa: S603
    if done.returncode != 0:
        raise PartitionsUnavailable(f"{command[0]} failed: {done.stderr.strip()}")
    return done.stdout


def _archive(month: date, names: list[str], directory: Path) -> Path:
    """pg_dump the month's detached tables into one custom-format file, check that the file
    lists every table's data, then drop the tables."""
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / f"inkmeter-{month:%Y-%m}.dump"
    again = 1
    while target.exists():  # a month archived before (late rows, detached again): keep both
        again += 1
        target = directory / f"inkmeter-{month:%Y-%m}.{again}.dump"
    partial = target.with_name(target.name + ".partial")
    settings = connection.settings_dict
    env = os.environ | {
        "PGDATABASE": str(settings["NAME"]),
        "PGHOST": str(settings.get("HOST") or ""),
        "PGPORT": str(settings.get("PORT") or ""),
        "PGUSER": str(settings.get("USER") or ""),
        "PGPASSWORD": str(settings.get("PASSWORD") or ""),
    }
    env = {k: v for k, v in env.items() if v or not k.startswith("PG")}
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_schema()")
        row = cursor.fetchone()
    schema = row[0] if row else "public"
    tables = [f"--table={schema}.{name}" for name in names]
    # --no-privileges: the archive restores under any role, whether or not the app role exists.
    _run(
        ["pg_dump", "--format=custom", "--no-owner", "--no-privileges", *tables, "-f", partial], env
    )
    listing = _run(["pg_restore", "--list", str(partial)], env)
    missing = [n for n in names if not re.search(rf"TABLE DATA {schema} {n}(\s|$)", listing, re.M)]
    if missing:
        raise PartitionsUnavailable(f"{partial} lacks the data of {', '.join(missing)}; kept.")
    partial.replace(target)
    with connection.cursor() as cursor:
        for name in names:
            cursor.execute(f"DROP TABLE {_q(name)}")
    return target


def partitions_detach(
    *, before: date, archive_dir: Path | None = None, today: date | None = None
) -> Detached:
    """Take every month before `before` out of the partitioned tables: queries no longer see
    it. With `archive_dir`, each month (with any left detached by an earlier run) is written to
    `inkmeter-YYYY-MM.dump` there and dropped; without, the tables stay for the operator.

    Refused, before anything changes, for the current month or later and for months that
    billing still reads (an open statement or period, with its lookback)."""
    if not is_supported():
        raise PartitionsUnavailable("This database has no partitioned tables (PostgreSQL only).")
    cut = month_start(before)
    today = today or now().date()
    if cut > month_start(today):
        raise DetachRefused(
            f"Refusing to detach {month_start(today):%Y-%m} or later: ingestion writes there."
        )
    _billing_allows(cut, today)
    with _maintenance():
        leaving = {
            table: sorted(n for n in _attached(table) if (_month_of(n) or cut) < cut)
            for table in PARTITIONED
        }
        earlier = [n for t in PARTITIONED for n in _detached(t) if (_month_of(n) or cut) < cut]
        if archive_dir is not None:
            _archive_preflight([n for names in leaving.values() for n in names] + earlier)
        detached = []
        for table, names in leaving.items():
            for name in names:
                _detach(table, name)
                detached.append(name)
        if archive_dir is None:
            return Detached(detached, [], sorted(earlier + detached))
        by_month: dict[date, list[str]] = defaultdict(list)
        for name in detached + earlier:
            by_month[_month_of(name) or cut].append(name)
        archives = [_archive(m, sorted(by_month[m]), archive_dir) for m in sorted(by_month)]
    return Detached(detached, archives, [])


def partitions_after_migrate(**kwargs: Any) -> None:
    """`post_migrate`: the partitions a migrate may have created the tables without (runs as
    the owner, inside `migrate`)."""
    if connection.vendor != "postgresql" or not is_supported():
        return
    try:
        partitions_ensure()
    except PartitionsBusy:
        log.warning("partition maintenance already running; ensure skipped after migrate")
