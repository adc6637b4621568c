"""Collector budgets (DESIGN.md), measured on loopback snmpsim only:

- poll one printer: < 1 s and < 8 KB of SNMP traffic (UDP payload, both ways)
- upload: < 1 KB per printer per poll, gzip
- memory while watching 1,000 printers: < 60 MB RSS

Run: python benchmarks/collector.py [--printers 1000]   (needs collector/scripts/snmpsim-venv.sh)
     python benchmarks/collector.py --smoke   # CI: three recordings, a fleet of ten, seconds

--smoke runs every step at a tiny size and exits non-zero when a poll returns no snapshot or a
printer of the fleet is not queued; it prints the figures but checks no budget.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run as a script: the repository's packages, tests included

from inkmeter_collector import cli, config  # noqa: E402
from inkmeter_collector.outbox import Batch, Outbox  # noqa: E402
from inkmeter_collector.poll import poll  # noqa: E402
from inkmeter_collector.snmp import Credentials, SnmpClient, Target  # noqa: E402
from inkmeter_collector.upload import Portal  # noqa: E402

from tests.collector import snmpsim_server  # noqa: E402
from tests.collector.support import PRINTERS, free_udp_port  # noqa: E402

RECORDINGS = PRINTERS / "snmprec"
# 1,000 distinct agents: 50 loopback addresses x 20 ports, each serving all 20 recordings.
FLEET_ENDPOINTS = [(f"127.0.3.{a}", 1200 + p) for a in range(1, 51) for p in range(20)]


def rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def per_printer(communities: list[str], rounds: int, port: int) -> list[dict[str, object]]:
    client = SnmpClient(timeout_s=3, retries=1)
    rows = []
    try:
        for community in communities:
            target = Target("127.0.0.1", port, Credentials(community=community))
            times, sizes, snapshot = [], [], None
            for _ in range(rounds):
                result = await poll(client, target)
                times.append(result.duration_s)
                sizes.append(result.snmp_bytes)
                if result.reading.identity.serial:
                    snapshot = result.snapshot()
            rows.append(
                {
                    "printer": community,
                    "poll_ms": statistics.median(times) * 1000,
                    "max_ms": max(times) * 1000,
                    "snmp_bytes": max(sizes),
                    "snapshot": snapshot,
                }
            )
    finally:
        client.close()
    return rows


def upload_sizes(rows: list[dict[str, object]]) -> tuple[float, int, list[tuple[str, int]]]:
    # Only encodes the bodies the uploader would send; nothing goes over the network.
    portal = Portal(url="http://127.0.0.1:9", key_id="k", secret="bench")  # noqa: S106
    snapshots = [row["snapshot"] for row in rows if row["snapshot"]]
    single = []
    for row in rows:
        if row["snapshot"]:
            batch = Batch(str(uuid.uuid4()), 0, [row["snapshot"]])  # type: ignore[list-item]
            single.append((str(row["printer"]), len(portal.encode(batch, now=_now()))))
    whole = portal.encode(Batch(str(uuid.uuid4()), 0, snapshots), now=_now())  # type: ignore[arg-type]
    portal.close()
    return len(whole) / len(snapshots), len(snapshots), single


def _now() -> datetime:
    return datetime.now(UTC)


async def fleet(count: int, communities: list[str], workdir: Path) -> dict[str, float]:
    printers = tuple(
        config.PrinterEntry(
            address=FLEET_ENDPOINTS[n % len(FLEET_ENDPOINTS)][0],
            port=FLEET_ENDPOINTS[n % len(FLEET_ENDPOINTS)][1],
            community=communities[n % len(communities)],
            serial=f"BENCH-{n:04d}",
        )
        for n in range(count)
    )
    cfg = config.Config(printers=printers, concurrency=16, snmp_timeout_s=5, snmp_retries=1)
    outbox = Outbox(workdir / "fleet.sqlite3")
    client = SnmpClient(timeout_s=5, retries=1)
    before = rss_mb()
    started = time.perf_counter()
    queued = await cli.poll_all(cfg, outbox, client)
    elapsed = time.perf_counter() - started
    batches = outbox.seal(max_snapshots=200)
    after = rss_mb()
    client.close()
    stats = outbox.stats()
    outbox.close()
    return {
        "printers": count,
        "queued": queued,
        "batches": len(batches),
        "devices": stats["devices"],
        "cycle_s": elapsed,
        "rss_before_mb": before,
        "rss_after_mb": after,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "outbox_mb": stats["bytes"] / 1024 / 1024,
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--printers", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--fleet-only", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--smoke", action="store_true", help="tiny size for CI: checks only")
    args = parser.parse_args()
    expected = json.loads((PRINTERS / "expected.json").read_text())
    communities = [entry["community"] for entry in expected.values()]
    if args.smoke:
        # Recordings of printers that report a serial, so that each poll gives a snapshot.
        communities = [e["community"] for e in expected.values() if e.get("serial")][:3]
        args.printers, args.rounds = 10, 1
    if args.fleet_only:  # a fresh process, so that RSS is the collector's alone
        with tempfile.TemporaryDirectory() as workdir:
            figures = asyncio.run(fleet(args.printers, communities, Path(workdir)))
        print(json.dumps(figures))
        return 0
    port = free_udp_port(["127.0.0.1"])  # never another run's simulator
    endpoints = [f"127.0.0.1:{port}", *(f"{a}:{p}" for a, p in FLEET_ENDPOINTS[: args.printers])]
    simulator = snmpsim_server.start(RECORDINGS, endpoints, timeout_s=600)
    try:
        print(f"collector benchmark, snmpsim on loopback, {len(communities)} recordings")
        rows = asyncio.run(per_printer(communities, args.rounds, port))
        print(f"\n{'printer':42} {'poll ms (median/max)':>22} {'SNMP bytes':>11}")
        for row in rows:
            print(
                f"{row['printer']!s:42} {row['poll_ms']:>10.1f} / {row['max_ms']:<9.1f}"
                f" {row['snmp_bytes']:>11}"
            )
        worst_ms = max(float(row["max_ms"]) for row in rows)  # type: ignore[arg-type]
        worst_bytes = max(int(row["snmp_bytes"]) for row in rows)  # type: ignore[call-overload]
        print(f"worst poll: {worst_ms:.1f} ms (budget 1000), {worst_bytes} B (budget 8192)")

        per, count, single = upload_sizes(rows)
        print(f"\nupload, gzip: {per:.0f} B per printer per poll in one batch of {count} printers")
        print("upload, gzip, one printer alone per batch (worst case):")
        for name, size in single:
            print(f"  {name:42} {size:>6} B")
        print(f"budget 1024 B per printer per poll; worst alone: {max(s for _, s in single)} B")

        child = subprocess.run(
            [
                sys.executable,
                __file__,
                "--fleet-only",
                "--printers",
                str(args.printers),
                *(["--smoke"] if args.smoke else []),
            ],
            capture_output=True,
            text=True,
            timeout=1800,
            check=True,
        )
        figures = json.loads(child.stdout.strip().splitlines()[-1])
        print(
            f"\nfleet of {figures['printers']} printers, one poll cycle, 16 at a time"
            " (distinct loopback agents, fresh process):"
        )
        for key, value in figures.items():
            print(f"  {key:15} {value:.1f}" if isinstance(value, float) else f"  {key:15} {value}")
        print("budget: < 60 MB RSS")
    finally:
        simulator.stop()
    if args.smoke:
        failures = [f"{row['printer']}: no snapshot" for row in rows if not row["snapshot"]]
        if figures["queued"] != args.printers:
            failures.append(f"fleet: {figures['queued']} of {args.printers} printers queued")
        if failures:
            print("FAIL: " + "; ".join(failures))
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
