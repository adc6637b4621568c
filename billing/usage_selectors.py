"""Counter growth per (contract membership, counter) over a window, from the stored readings.

On PostgreSQL one set-based query per batch of memberships does the work: the readings of the
window and the 30 days before it by index range, the last older reading per counter by an index
probe (carry-in), the corrections merged in, LAG over each series for deltas, resets and board
swaps. SQLite, the embedded default, runs the same rules in Python (`billing.pricing`), which
is fine for the demo and the tests and is checked against the SQL on PostgreSQL.

The members come from tenant-scoped contracts (the statement service), so the queries here
read readings by device id without a tenant context of their own.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import connection

from billing.models import Contract, CounterCorrection, Statement
from billing.pricing import (
    LOOKBACK,
    Growth,
    Point,
    midnight,
    period_before,
    period_containing,
    series_growth,
)
from devices.models import CounterReading

CounterKey = tuple[str, str, str]  # (counter name, media_type, color)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Member:
    key: int
    device_id: int
    ws: datetime
    we: datetime


def usage_growth(members: Sequence[Member]) -> dict[tuple[int, CounterKey], Growth]:
    """Growth of every counter of every member over (ws, we]."""
    if not members:
        return {}
    if connection.vendor == "postgresql":
        return _usage_growth_sql(members)
    return _usage_growth_python(members)


# Each series: points of [ws - lookback, we], plus the last point before that (carry-in).
# Counter names are compared in the "C" collation: byte order sorts several times faster than
# a locale's, and the series only need a stable order, not a linguistic one.
_SQL = """
WITH m AS (
    SELECT * FROM unnest(%(keys)s::bigint[], %(devices)s::bigint[],
                         %(ws)s::timestamptz[], %(we)s::timestamptz[]) AS m(mid, device_id, ws, we)
),
pts AS (
    SELECT m.mid, r.name COLLATE "C" AS name, r.media_type COLLATE "C" AS media_type,
           r.color COLLATE "C" AS color, r.collected_at AS at, 0 AS ord, r.value,
           false AS rebase, m.ws, m.we
    FROM m JOIN devices_counterreading r ON r.device_id = m.device_id
     AND r.collected_at >= m.ws - %(lookback)s AND r.collected_at <= m.we
     -- The same bounds as constants, for the whole batch: PostgreSQL prunes the monthly
     -- partitions outside them, instead of hashing every reading ever stored.
     AND r.collected_at >= %(since)s AND r.collected_at <= %(until)s
    UNION ALL
    SELECT m.mid, c.counter COLLATE "C", c.media_type COLLATE "C", c.color COLLATE "C",
           c.effective_at, 0, c.old_value, false, m.ws, m.we
    FROM m JOIN billing_countercorrection c ON c.device_id = m.device_id
     AND c.effective_at >= m.ws - %(lookback)s AND c.effective_at <= m.we
     AND c.kind = 'board_swap' AND c.old_value IS NOT NULL
    UNION ALL
    SELECT m.mid, c.counter COLLATE "C", c.media_type COLLATE "C", c.color COLLATE "C",
           c.effective_at, CASE WHEN c.kind = 'board_swap' THEN 1 ELSE 0 END, c.value,
           c.kind = 'board_swap', m.ws, m.we
    FROM m JOIN billing_countercorrection c ON c.device_id = m.device_id
     AND c.effective_at >= m.ws - %(lookback)s AND c.effective_at <= m.we
),
-- Only a series without a point in [ws - lookback, ws] needs the older carry-in point.
keys AS (
    SELECT mid, name, media_type, color FROM pts
    GROUP BY mid, name, media_type, color HAVING NOT bool_or(at <= ws)
),
carry AS (
    SELECT k.mid, k.name, k.media_type, k.color, b.at, b.ord, b.value, b.rebase, m.ws, m.we
    FROM keys k JOIN m ON m.mid = k.mid
    CROSS JOIN LATERAL (
        SELECT * FROM (
            (SELECT r.collected_at AS at, 0 AS ord, r.value, false AS rebase
             FROM devices_counterreading r
             WHERE r.device_id = m.device_id AND r.name = (k.name COLLATE "default")
               AND r.media_type = (k.media_type COLLATE "default")
               AND r.color = (k.color COLLATE "default")
               AND r.collected_at < m.ws - %(lookback)s
             ORDER BY r.collected_at DESC, r.value DESC LIMIT 1)
            UNION ALL
            (SELECT c.effective_at, CASE WHEN c.kind = 'board_swap' THEN 1 ELSE 0 END,
                    c.value, c.kind = 'board_swap'
             FROM billing_countercorrection c
             WHERE c.device_id = m.device_id AND c.counter = (k.name COLLATE "default")
               AND c.media_type = (k.media_type COLLATE "default")
               AND c.color = (k.color COLLATE "default")
               AND c.effective_at < m.ws - %(lookback)s
             ORDER BY c.effective_at DESC, 2 DESC, c.value DESC LIMIT 1)
        ) candidates ORDER BY at DESC, ord DESC, value DESC LIMIT 1
    ) b
),
series AS (
    SELECT s.*,
           LAG(s.value) OVER w AS prev_value, LAG(s.at) OVER w AS prev_at,
           ROW_NUMBER() OVER w AS n,
           COUNT(*) FILTER (WHERE s.at <= s.ws) OVER whole AS nb,
           COUNT(*) OVER whole AS total
    FROM (SELECT * FROM pts UNION ALL SELECT * FROM carry) s
    WINDOW whole AS (PARTITION BY s.mid, s.name, s.media_type, s.color),
           w AS (whole ORDER BY s.at, s.ord, s.value)
),
deltas AS (
    SELECT *,
           CASE WHEN prev_value IS NULL OR rebase OR value < prev_value THEN 0
                ELSE value - prev_value END AS delta,
           (prev_value IS NOT NULL AND NOT rebase AND value < prev_value) AS dropped,
           -- The base: the last point at or before ws, else the first point of the window;
           -- growth is counted on the points after it.
           GREATEST(nb, 1) AS base_n
    FROM series
)
SELECT mid, name, media_type, color,
    MAX(nb) > 0 AS has_base,
    -- Times as microseconds since the epoch: the driver's timestamptz loader (Django's, in
    -- Python) cost more than the rest of reading the rows.
    (EXTRACT(EPOCH FROM MAX(at) FILTER (WHERE n = base_n)) * 1000000)::bigint AS start_at,
    MAX(value) FILTER (WHERE n = base_n) AS start_value,
    (EXTRACT(EPOCH FROM MAX(at) FILTER (WHERE n = total)) * 1000000)::bigint AS end_at,
    MAX(value) FILTER (WHERE n = total) AS end_value,
    COALESCE(SUM(delta) FILTER (WHERE n > base_n), 0) AS measured,
    COUNT(*) FILTER (WHERE n > base_n AND dropped) AS resets,
    COUNT(*) FILTER (WHERE n > base_n AND rebase) AS swaps,
    COUNT(*) FILTER (WHERE at > ws) AS window_points,
    COALESCE(SUM(delta) FILTER (WHERE at <= ws AND at >= ws - %(lookback)s
                                AND prev_at >= ws - %(lookback)s), 0) AS lookback_growth,
    COALESCE(FLOOR(EXTRACT(EPOCH FROM
        MAX(at) FILTER (WHERE at <= ws AND at >= ws - %(lookback)s)
        - MIN(at) FILTER (WHERE at <= ws AND at >= ws - %(lookback)s))), 0)::bigint
        AS lookback_seconds
FROM deltas
GROUP BY mid, name, media_type, color
"""


def _usage_growth_sql(members: Sequence[Member]) -> dict[tuple[int, CounterKey], Growth]:
    params: dict[str, Any] = {
        "keys": [m.key for m in members],
        "devices": [m.device_id for m in members],
        "ws": [m.ws for m in members],
        "we": [m.we for m in members],
        "lookback": LOOKBACK,
        "since": min(m.ws for m in members) - LOOKBACK,
        "until": max(m.we for m in members),
    }
    result: dict[tuple[int, CounterKey], Growth] = {}
    with connection.cursor() as cursor:
        if connection.in_atomic_block:
            # One big sort per batch: in memory rather than spilled to disk, and no JIT
            # compilation, which costs more than it saves on a query run once per batch.
            cursor.execute("SET LOCAL work_mem = '256MB'")
            cursor.execute("SET LOCAL jit = off")
        cursor.execute(_SQL, params)
        for row in cursor.fetchall():
            mid, name, media_type, color, has_base, start_at, start_value = row[:7]
            end_at, end_value, measured, resets, swaps, window_points = row[7:13]
            lookback_growth, lookback_seconds = row[13:]
            result[(mid, (name, media_type, color))] = Growth(
                start_at=EPOCH + timedelta(microseconds=start_at),
                start_value=Decimal(start_value),
                end_at=EPOCH + timedelta(microseconds=end_at),
                end_value=Decimal(end_value),
                measured=Decimal(measured),
                resets=int(resets),
                swaps=int(swaps),
                window_points=int(window_points),
                has_base=bool(has_base),
                lookback_growth=Decimal(lookback_growth),
                lookback_seconds=int(lookback_seconds),
            )
    return result


def _usage_growth_python(members: Sequence[Member]) -> dict[tuple[int, CounterKey], Growth]:
    result: dict[tuple[int, CounterKey], Growth] = {}
    for member in members:
        since = member.ws - LOOKBACK
        series: dict[CounterKey, list[Point]] = defaultdict(list)
        readings = CounterReading.unscoped.filter(
            device_id=member.device_id, collected_at__gte=since, collected_at__lte=member.we
        ).values_list("name", "media_type", "color", "collected_at", "value")
        for name, media_type, color, at, value in readings:
            series[(name, media_type, color)].append(Point(at, 0, Decimal(value)))
        corrections = list(
            CounterCorrection.unscoped.filter(device_id=member.device_id).values_list(
                "counter", "media_type", "color", "effective_at", "kind", "value", "old_value"
            )
        )
        older: dict[CounterKey, list[Point]] = defaultdict(list)
        for name, media_type, color, at, kind, value, old_value in corrections:
            points = _correction_points(at, kind, Decimal(value), old_value)
            if since <= at <= member.we:
                series[(name, media_type, color)].extend(points)
            elif at < since:
                older[(name, media_type, color)].extend(points)
        for key, points in series.items():
            name, media_type, color = key
            carry = (
                CounterReading.unscoped.filter(
                    device_id=member.device_id,
                    name=name,
                    media_type=media_type,
                    color=color,
                    collected_at__lt=since,
                )
                .order_by("-collected_at", "-value")
                .values_list("collected_at", "value")
                .first()
            )
            candidates = [Point(carry[0], 0, Decimal(carry[1]))] if carry else []
            candidates += older.get(key, [])
            if candidates:
                points.append(max(candidates))
            growth = series_growth(points, member.ws, member.we)
            if growth is not None:
                result[(member.key, key)] = growth
    return result


def _correction_points(
    at: datetime, kind: str, value: Decimal, old_value: Decimal | None
) -> list[Point]:
    if kind == CounterCorrection.Kind.BOARD_SWAP:
        points = [Point(at, 1, value, rebase=True)]
        if old_value is not None:
            points.append(Point(at, 0, Decimal(old_value)))
        return points
    return [Point(at, 0, value)]


def readings_needed_from(*, today: date) -> tuple[datetime, str] | None:
    """The earliest reading time that billing may still read, and why: the window of every
    draft statement and of every contract period not final yet, each with the LOOKBACK before
    it (a period's base and its estimates). Older readings feed only carry-ins of devices that
    were silent for longer than the lookback, and a missing one is flagged on its line.

    Across tenants on purpose: partition maintenance asks it for the whole installation before
    it detaches old months (devices/partitions.py)."""
    starts: list[tuple[date, int, str]] = []  # (start, 0 for a draft: named first on a tie, why)
    draft = (
        Statement.unscoped.filter(status=Statement.Status.DRAFT)
        .select_related("contract")
        .order_by("period_start", "pk")
        .first()
    )
    if draft is not None:
        starts.append(
            (
                draft.period_start,
                0,
                f"the draft {draft.get_kind_display().lower()} of contract "
                f"{draft.contract.reference} for {draft.period_start} to {draft.period_last_day}",
            )
        )
    # A contract's last period ended at most two months ago: only its final matters here.
    finals = set(
        Statement.unscoped.filter(
            kind=Statement.Kind.REGULAR,
            status=Statement.Status.FINAL,
            period_start__gte=today - timedelta(days=62),
        ).values_list("contract_id", "period_start")
    )
    for contract in Contract.unscoped.only("pk", "reference", "anchor_day", "ends_on"):
        current = period_containing(today, contract.anchor_day)[0]
        previous = period_before(current, contract.anchor_day)[0]
        start = current if (contract.pk, previous) in finals else previous
        if contract.ends_on is not None and contract.ends_on <= start:
            continue  # ended before its first period that is not final
        starts.append(
            (start, 1, f"contract {contract.reference}, its period from {start} not final")
        )
    if not starts:
        return None
    start, _, reason = min(starts)
    return midnight(start) - LOOKBACK, f"{reason}, with its {LOOKBACK.days}-day lookback"
