"""Rows and bytes per table of an Inkmeter database, and per stored snapshot (docs/scale.md).

Fill a database through the real ingest endpoint first (`manage.py simulate_fleet --url ...`
against a server on it), then run this against it. Bytes are `pg_total_relation_size`: heap,
TOAST and every index, summed over the partitions of a partitioned table; the table is
VACUUM ANALYZEd first, so the figures are what autovacuum leaves in steady state.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/inkmeter_docs \\
        .venv/bin/python benchmarks/table_sizes.py [--top 20]

--smoke (CI, after `benchmarks/ingest.py --smoke` filled the database): the same report, and a
non-zero exit when a telemetry table is missing or holds no snapshot.
"""

from __future__ import annotations

import argparse
import os

import psycopg

TELEMETRY = (
    "devices_telemetrybatch",
    "devices_snapshot",
    "devices_counterreading",
    "devices_supplyreading",
)

SIZES = """
SELECT c.relname,
       coalesce(sum(pg_total_relation_size(p.oid)), pg_total_relation_size(c.oid))::bigint,
       coalesce(sum(pg_relation_size(p.oid)), pg_relation_size(c.oid))::bigint
FROM pg_class c
LEFT JOIN pg_inherits i ON i.inhparent = c.oid
LEFT JOIN pg_class p ON p.oid = i.inhrelid
WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p') AND NOT c.relispartition
GROUP BY c.oid, c.relname
"""


def _count(conn: psycopg.Connection[tuple[int]], table: str) -> int:
    row = conn.execute(f'SELECT count(*) FROM "{table}"').fetchone()  # noqa: S608 - catalog name
    return int(row[0]) if row else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--top", type=int, default=20, help="How many of the largest tables.")
    parser.add_argument("--smoke", action="store_true", help="CI: fail on an empty report")
    args = parser.parse_args()
    with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
        sizes = {name: (total, heap) for name, total, heap in conn.execute(SIZES).fetchall()}
        largest = sorted(sizes, key=lambda name: -sizes[name][0])[: args.top]
        rows = {name: _count(conn, name) for name in set(largest) | set(TELEMETRY)}
    snapshots = rows["devices_snapshot"] or 1
    print(f"{'table':34} {'rows':>10} {'MiB':>8} {'B/row':>7} {'heap B/row':>10} {'rows/snap':>9}")
    for name in largest:
        total, heap = sizes[name]
        count = rows[name] or 1
        print(
            f"{name:34} {rows[name]:>10,} {total / 2**20:>8.1f} {total / count:>7.0f} "
            f"{heap / count:>10.0f} {rows[name] / snapshots:>9.2f}"
        )
    telemetry = sum(sizes[name][0] for name in TELEMETRY)
    everything = sum(total for total, _ in sizes.values())
    print(f"\nsnapshots: {rows['devices_snapshot']:,}")
    print(f"telemetry tables, bytes per snapshot: {telemetry / snapshots:,.0f}")
    print(f"whole database, bytes per snapshot:   {everything / snapshots:,.0f}")
    if args.smoke:
        missing = [name for name in TELEMETRY if name not in sizes or not rows[name]]
        if missing:
            print(f"FAIL: empty or missing: {', '.join(missing)}")
            return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
