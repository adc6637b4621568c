"""Discovery: sweep address ranges with one SNMP request per address and identity, at a
bounded rate, until done, a time limit, or a stop request; poll each printer found."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from inkmeter_collector import printer
from inkmeter_collector.poll import PollResult, poll
from inkmeter_collector.ranges import parse_range
from inkmeter_collector.snmp import Credentials, SnmpClient, SnmpError, Target

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Found:
    target: Target
    result: PollResult


@dataclass
class Progress:
    total: int
    done: int = 0
    found: int = 0
    started: float = 0.0


def default_ranges() -> list[str]:
    """The host's own IPv4 subnet (assumed /24): the address the OS would route out of.

    A UDP socket's connect() only picks the route, it sends nothing.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1: only used to choose a route
            own = probe.getsockname()[0]
        except OSError:
            return []
    if own.startswith("127."):
        return []
    return [str(ipaddress.ip_network(f"{own}/24", strict=False))]


def addresses(ranges: Sequence[str]) -> Iterator[str]:
    """Every address the ranges sweep, once, in order (ranges.AddressRange.swept)."""
    seen: set[str] = set()
    for entry in ranges:
        for host in parse_range(entry).swept():
            text = str(host)
            if text not in seen:
                seen.add(text)
                yield text


def count_addresses(ranges: Sequence[str]) -> int:
    return sum(1 for _ in addresses(ranges))


async def identify(
    client: SnmpClient,
    host: str,
    port: int,
    credentials: Sequence[Credentials],
    *,
    timeout_s: float,
    installation: str | None = None,
) -> Found | None:
    """Ask one address, with each identity in turn until one answers; poll it if a printer."""
    for identity in credentials:
        target = Target(host=host, port=port, credentials=identity)
        try:
            answer = await client.probe(target, timeout_s=timeout_s)
        except SnmpError:
            continue
        if not answer:
            continue
        if not printer.is_printer(answer):
            return None
        try:
            return Found(target, await poll(client, target, installation=installation))
        except SnmpError as error:
            log.warning("%s answers but its poll failed: %s", host, error)
            return None
    return None


async def sweep(
    client: SnmpClient,
    ranges: Sequence[str],
    credentials: Sequence[Credentials],
    *,
    port: int = 161,
    rate_per_s: float = 50.0,
    time_limit_s: float = 900.0,
    timeout_s: float = 1.0,
    concurrency: int = 64,
    stop: asyncio.Event | None = None,
    on_found: Callable[[Found], None] | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    installation: str | None = None,
) -> list[Found]:
    progress = Progress(total=count_addresses(ranges), started=time.monotonic())
    stop = stop or asyncio.Event()
    deadline = progress.started + time_limit_s
    interval = 1.0 / rate_per_s if rate_per_s > 0 else 0.0
    slots = asyncio.Semaphore(concurrency)
    found: list[Found] = []
    tasks: set[asyncio.Task[None]] = set()

    async def one(host: str) -> None:
        try:
            result = await identify(
                client, host, port, credentials, timeout_s=timeout_s, installation=installation
            )
            if result:
                found.append(result)
                progress.found += 1
                if on_found:
                    on_found(result)
        finally:
            progress.done += 1
            slots.release()
            if on_progress:
                on_progress(progress)

    for host in addresses(ranges):
        if stop.is_set() or time.monotonic() >= deadline:
            break
        await slots.acquire()
        task = asyncio.create_task(one(host))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        if interval:
            await asyncio.sleep(interval)
    waiter = asyncio.ensure_future(stop.wait())
    while tasks and not stop.is_set():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        await asyncio.wait({*tasks, waiter}, timeout=remaining, return_when=asyncio.FIRST_COMPLETED)
    waiter.cancel()
    for task in list(tasks):
        task.cancel()
    if tasks:
        await asyncio.gather(*tasks, return_exceptions=True)
    return found
