"""Rows derived from the telemetry and kept beside it, so that a portal page reads a few rows per
page instead of the readings, or every supply and alert of the fleet (issue 12, point 3):

- `DevicePageDay` and `CustomerPageDay`, pages printed per day by each device and each
  customer: ingestion folds each batch's page-counter readings into them (`page_days_fold`,
  then `customer_page_days_add` last in its transaction), and `page_days_rebuild` computes
  them from the readings (after the migration that added them, and for tests);
- `DeviceState.lowest_supply_percent` and `.open_alert_count`, the device list's per-row
  figures: ingestion writes them with the state row, from the latest report; here they are
  computed from the stored supplies and alerts (`device_figures_refresh`, for the migration
  that added them and for test data written without ingestion).

The daily rows depend only on which readings are stored, not on the order they arrived in: a
late, repeated or shuffled batch leaves the rows that one ordered delivery would, as the rebuild
computes them. Each statement here is set-based: a batch costs the same few queries at one
printer or a hundred.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import connection
from django.db.models import OuterRef, Subquery

from devices.models import DevicePageDay
from devices.writer import Writer
from portal import rls

# The counter whose growth is the pages a printer printed (protocol/telemetry-v1.md), without
# media type or colour.
PAGE_COUNTER = "impressions.total"
# A rebuild from a day on looks this far further back for each device's previous reading:
# a device silent for longer before that day counts nothing on its first day back.
REBUILD_LOOKBACK = timedelta(days=31)
# Devices per statement of a rebuild, so that each one stays bounded on a big installation.
REBUILD_CHUNK = 20_000

DAY_COLUMNS = ("reseller_id", "device_id", "day", "counter", "counter_at", "pages")


@dataclass(frozen=True)
class PageReading:
    device_id: int
    at: datetime
    value: Decimal


@dataclass(frozen=True)
class _Day:
    counter: Decimal
    at: datetime
    pages: Decimal | None  # None: not computed yet (a day new in this fold)


# --- Pages per day ----------------------------------------------------------------------------


def page_days_fold(
    *, w: Writer, reseller_id: int, readings: Iterable[PageReading]
) -> dict[date, Decimal]:
    """Fold page-counter readings into their devices' DevicePageDay rows and return how the
    pages of each day changed (summed over the devices, for `customer_page_days_add`).

    The caller holds each device's lock (ingestion's DeviceState rows), so that two batches
    of one device do not fold at once. A day's row is its latest reading; a reading of an
    earlier day than the device's newest also recomputes the days after it."""
    latest: dict[tuple[int, date], tuple[datetime, Decimal]] = {}
    for r in readings:
        key = (r.device_id, r.at.astimezone(UTC).date())
        if key not in latest or (r.at, r.value) > latest[key]:
            latest[key] = (r.at, r.value)
    if not latest:
        return {}
    by_device: dict[int, dict[date, tuple[datetime, Decimal]]] = defaultdict(dict)
    for (device_id, day), reading in latest.items():
        by_device[device_id][day] = reading
    first_touched = {device_id: min(days) for device_id, days in by_device.items()}
    stored = _stored_days(first_touched)
    writes: list[tuple[Any, ...]] = []
    change: dict[date, Decimal] = defaultdict(Decimal)
    for device_id in sorted(by_device):
        days = stored.get(device_id, {})
        merged = dict(days)
        for day, (at, value) in by_device[device_id].items():
            old = merged.get(day)
            if old is None or (at, value) > (old.at, old.counter):
                merged[day] = _Day(value, at, old.pages if old is not None else None)
        first = first_touched[device_id]
        before = [day for day in merged if day < first]
        previous = merged[max(before)].counter if before else None
        for day in sorted(day for day in merged if day >= first):
            row = merged[day]
            pages = max(row.counter - previous, Decimal(0)) if previous is not None else Decimal(0)
            stored_day = days.get(day)
            if stored_day is None or (stored_day.counter, stored_day.at, stored_day.pages) != (
                row.counter,
                row.at,
                pages,
            ):
                writes.append((reseller_id, device_id, day, row.counter, row.at, pages))
                change[day] += pages - (stored_day.pages or 0 if stored_day is not None else 0)
            previous = row.counter
    w.insert(
        "devices_devicepageday",
        DAY_COLUMNS,
        writes,
        conflict="ON CONFLICT (device_id, day) DO UPDATE SET counter = EXCLUDED.counter, "
        "counter_at = EXCLUDED.counter_at, pages = EXCLUDED.pages",
    )
    return {day: pages for day, pages in change.items() if pages}


def page_days_fold_sql(stage: str) -> str:
    """`page_days_fold` as one statement, for PostgreSQL: the page-counter readings are read
    from the batch's staged counter readings (`stage`, the columns of CounterReading), the
    days they touch are written, and the statement returns (day, change of pages) for each day
    whose pages changed. One parameter: the reseller of the rows written.

    The same rule as the Python fold: a day's row is its latest reading; the pages of a day are
    the growth since the device's previous day with a reading (0 after a drop, or without one);
    from each device's earliest touched day on, every stored day is recomputed and the changed
    ones written, in device and day order."""
    day = _day_of("collected_at")
    return (
        # The batch's latest reading per device and day, and the device's earliest day in it.
        "WITH l AS (SELECT DISTINCT ON (device_id, day) device_id, day, value AS counter, "  # noqa: S608
        f"collected_at AS at FROM (SELECT device_id, {day} AS day, value, collected_at "
        f"FROM {stage} WHERE name = '{PAGE_COUNTER}' AND media_type = '' AND color = '') AS t "
        "ORDER BY device_id, day, collected_at DESC, value DESC), "
        "r AS (SELECT l.*, MIN(day) OVER (PARTITION BY device_id) AS first FROM l), "
        "f AS (SELECT DISTINCT device_id, first FROM r), "
        # Each device's stored days from its earliest touched one, and the last before it.
        "s AS (SELECT d.device_id, d.day, d.counter, d.counter_at, d.pages, f.first FROM f "
        "JOIN devices_devicepageday d ON d.device_id = f.device_id AND d.day >= f.first "
        "UNION ALL SELECT p.device_id, p.day, p.counter, p.counter_at, p.pages, f.first FROM f "
        "CROSS JOIN LATERAL (SELECT d.device_id, d.day, d.counter, d.counter_at, d.pages "
        "FROM devices_devicepageday d WHERE d.device_id = f.device_id AND d.day < f.first "
        "ORDER BY d.day DESC LIMIT 1) AS p), "
        # A day takes the batch's reading when it is later than the stored one.
        "m AS (SELECT COALESCE(s.device_id, r.device_id) AS device_id, "
        "COALESCE(s.day, r.day) AS day, COALESCE(s.first, r.first) AS first, "
        "s.counter AS old_counter, s.counter_at AS old_at, s.pages AS old_pages, "
        "(r.day IS NOT NULL AND (s.day IS NULL OR (r.at, r.counter) > (s.counter_at, s.counter))) "
        "AS taken, r.counter AS new_counter, r.at AS new_at "
        "FROM s FULL JOIN r ON r.device_id = s.device_id AND r.day = s.day), "
        "c AS (SELECT device_id, day, first, old_counter, old_at, old_pages, "
        "CASE WHEN taken THEN new_counter ELSE old_counter END AS counter, "
        "CASE WHEN taken THEN new_at ELSE old_at END AS at FROM m), "
        # GREATEST skips the NULL of a device's first day: it counts 0.
        "p AS (SELECT c.*, GREATEST(counter - LAG(counter) OVER (PARTITION BY device_id "
        "ORDER BY day), 0) AS pages FROM c), "
        "w AS (SELECT * FROM p WHERE day >= first AND (old_counter IS NULL OR "
        "(old_counter, old_at, old_pages) IS DISTINCT FROM (counter, at, pages))), "
        f"written AS (INSERT INTO devices_devicepageday ({', '.join(DAY_COLUMNS)}) "
        "SELECT %s, device_id, day, counter, at, pages FROM w ORDER BY device_id, day "
        "ON CONFLICT (device_id, day) DO UPDATE SET counter = EXCLUDED.counter, "
        "counter_at = EXCLUDED.counter_at, pages = EXCLUDED.pages) "
        "SELECT day, SUM(pages - COALESCE(old_pages, 0)) FROM w GROUP BY day "
        "HAVING SUM(pages - COALESCE(old_pages, 0)) <> 0"
    )


def _stored_days(first_touched: dict[int, date]) -> dict[int, dict[date, _Day]]:
    """The stored days of these devices from the day before the earliest one touched, plus,
    for a device without a stored day before its first touched one in that window, its last
    stored day before (a new printer has none; one silent for days has one further back).
    One query for printers that report daily, two otherwise."""
    since = min(first_touched.values()) - timedelta(days=1)
    rows = list(
        DevicePageDay.unscoped.filter(device_id__in=sorted(first_touched), day__gte=since)
        .order_by()
        .values_list("device_id", "day", "counter", "counter_at", "pages")
    )
    stored: dict[int, dict[date, _Day]] = defaultdict(dict)
    for device_id, day, counter, at, pages in rows:
        stored[device_id][day] = _Day(counter, at, pages)
    missing = [
        device_id
        for device_id, first in sorted(first_touched.items())
        if not any(day < first for day in stored.get(device_id, ()))
    ]
    if missing:
        last_before = (
            DevicePageDay.unscoped.filter(device_id=OuterRef("device_id"), day__lt=since)
            .order_by("-day")
            .values("day")[:1]
        )
        earlier = (
            DevicePageDay.unscoped.filter(device_id__in=missing, day__lt=since)
            .filter(day=Subquery(last_before))
            .order_by()
            .values_list("device_id", "day", "counter", "counter_at", "pages")
        )
        for device_id, day, counter, at, pages in earlier:
            stored[device_id][day] = _Day(counter, at, pages)
    return stored


def customer_page_days_add(
    *, w: Writer, reseller_id: int, customer_id: int, change: dict[date, Decimal]
) -> None:
    """Add `page_days_fold`'s change to the customer's pages per day. An addition commutes, so
    concurrent batches of one customer need no order; each holds the customer's rows until it
    commits, so ingestion calls this last, and in day order (two batches lock alike)."""
    if not change:
        return
    w.insert(
        "devices_customerpageday",
        ("reseller_id", "customer_id", "day", "pages"),
        [(reseller_id, customer_id, day, change[day]) for day in sorted(change)],
        conflict="ON CONFLICT (customer_id, day) DO UPDATE SET "
        "pages = devices_customerpageday.pages + EXCLUDED.pages",
    )


def page_days_rebuild(*, since: date | None = None) -> int:
    """Compute DevicePageDay and CustomerPageDay from the page-counter readings, from `since`
    on (every day when None), for every tenant; returns the device days written. Days of a
    printer without a reading in the REBUILD_LOOKBACK before `since` start from nothing.

    System work (the migration that added the tables, tests): each chunk of devices is its own
    transaction when called outside one."""
    with rls.system("the devices of every tenant"), connection.cursor() as cursor:
        cursor.execute("SELECT MIN(id), MAX(id) FROM devices_device")
        bounds = cursor.fetchone()
    written = 0
    if bounds and bounds[0] is not None:
        for low in range(bounds[0], bounds[1] + 1, REBUILD_CHUNK):
            with rls.system("rebuilds every tenant's page rollups from its readings"):
                written += _device_days_rebuild(since, low, low + REBUILD_CHUNK)
    with rls.system("rebuilds every tenant's page rollups from its readings"):
        _customer_days_rebuild(since)
    return written


def _day_of(column: str) -> str:
    if connection.vendor == "postgresql":
        return f"(({column}) AT TIME ZONE 'UTC')::date"
    return f"date({column})"  # SQLite keeps datetimes as UTC text


def _device_days_rebuild(since: date | None, low: int, high: int) -> int:
    day = _day_of("collected_at")
    ops = connection.ops
    window = "device_id >= %s AND device_id < %s"
    params: list[Any] = [low, high]
    reading_window = window
    readings: list[Any] = [low, high]
    if since is not None:
        window += " AND day >= %s"
        params.append(ops.adapt_datefield_value(since))
        reading_window += " AND collected_at >= %s"
        start = datetime(since.year, since.month, since.day, tzinfo=UTC) - REBUILD_LOOKBACK
        readings.append(ops.adapt_datetimefield_value(start))
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM devices_devicepageday WHERE {window}", params)  # noqa: S608
        cursor.execute(
            f"INSERT INTO devices_devicepageday ({', '.join(DAY_COLUMNS)}) "  # noqa: S608
            "SELECT reseller_id, device_id, day, value, collected_at, "
            "CASE WHEN previous IS NULL OR value < previous THEN 0 ELSE value - previous END "
            "FROM (SELECT reseller_id, device_id, day, value, collected_at, "
            "LAG(value) OVER (PARTITION BY device_id ORDER BY day) AS previous "
            "FROM (SELECT reseller_id, device_id, value, collected_at, "
            f"{day} AS day, ROW_NUMBER() OVER (PARTITION BY device_id, {day} "
            "ORDER BY collected_at DESC, value DESC) AS position "
            "FROM devices_counterreading "
            f"WHERE name = %s AND media_type = '' AND color = '' AND {reading_window}"
            ") AS readings WHERE position = 1) AS days "
            f"WHERE {window}",
            [PAGE_COUNTER, *readings, *params],
        )
        return max(cursor.rowcount, 0)


def _customer_days_rebuild(since: date | None) -> None:
    after = " WHERE p.day >= %s" if since is not None else ""
    params = [connection.ops.adapt_datefield_value(since)] if since is not None else []
    with connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM devices_customerpageday"  # noqa: S608 - a fixed clause
            + (" WHERE day >= %s" if since is not None else ""),
            params,
        )
        cursor.execute(
            "INSERT INTO devices_customerpageday (reseller_id, customer_id, day, pages) "
            "SELECT p.reseller_id, d.customer_id, p.day, SUM(p.pages) "
            "FROM devices_devicepageday p JOIN devices_device d ON d.id = p.device_id"
            + after
            + " GROUP BY p.reseller_id, d.customer_id, p.day",
            params,
        )


# --- The device list's per-row figures ----------------------------------------------------------

_FIGURES = (
    "UPDATE devices_devicestate SET "
    "lowest_supply_percent = (SELECT MIN(s.percent) FROM devices_supply s "
    "WHERE s.device_id = devices_devicestate.device_id), "
    "open_alert_count = (SELECT COUNT(*) FROM devices_alert a "
    "WHERE a.device_id = devices_devicestate.device_id AND a.cleared_at IS NULL) "
)
_FIGURES_CHUNK = 1000


def device_figures_refresh(*, device_ids: Sequence[int]) -> None:
    """Compute the lowest supply level and the open alerts of these devices' state rows from
    their stored supplies and alerts, in the caller's transaction and scope."""
    ids = sorted(set(device_ids))
    with connection.cursor() as cursor:
        for start in range(0, len(ids), _FIGURES_CHUNK):
            chunk = ids[start : start + _FIGURES_CHUNK]
            placeholders = ", ".join(["%s"] * len(chunk))
            cursor.execute(_FIGURES + f"WHERE device_id IN ({placeholders})", chunk)


def device_figures_rebuild() -> None:
    """Recompute every device's figures, a chunk of devices per transaction (the migration that
    added them)."""
    with rls.system("the devices of every tenant"), connection.cursor() as cursor:
        cursor.execute("SELECT MIN(device_id), MAX(device_id) FROM devices_devicestate")
        bounds = cursor.fetchone()
    if not bounds or bounds[0] is None:
        return
    for low in range(bounds[0], bounds[1] + 1, REBUILD_CHUNK):
        with rls.system("recomputes every tenant's device figures"), connection.cursor() as c:
            c.execute(
                _FIGURES + "WHERE device_id >= %s AND device_id < %s", [low, low + REBUILD_CHUNK]
            )
