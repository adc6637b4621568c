"""One poll of one printer: the SNMP reads, subtree by subtree, then the pure parser."""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from inkmeter_collector import mib, printer, vendors
from inkmeter_collector.mib import SnmpValue
from inkmeter_collector.snmp import SnmpClient, SnmpError, Target

SCALARS = (
    mib.SYS_DESCR,
    mib.SYS_OBJECT_ID,
    mib.SYS_UPTIME,
    mib.SYS_NAME,
    f"{mib.HR_DEVICE_TYPE}.1",
    f"{mib.HR_DEVICE_DESCR}.1",
    f"{mib.HR_DEVICE_STATUS}.1",
    f"{mib.HR_PRINTER_STATUS}.1",
    f"{mib.HR_PRINTER_ERROR_STATE}.1",
    f"{mib.PRT_GENERAL_SERIAL}.1",
)


def _table(table: str, columns: tuple[int, ...], key: int, repetitions: int) -> Table:
    return Table(tuple(mib.column(table, c) for c in columns), mib.column(table, key), repetitions)


@dataclass(frozen=True)
class Table:
    columns: tuple[str, ...]
    # A column every row fills in: one GETNEXT on it tells whether the table is there at all.
    key: str
    # GETBULK repetitions: a guess of the table's usual length, so that a walk rarely reads
    # rows past its end.
    repetitions: int


TABLES = (
    _table(mib.PRT_SUPPLIES, mib.SUPPLY_COLUMNS, mib.SUP_LEVEL, 8),
    Table((mib.PRT_COLORANT_VALUE,), mib.PRT_COLORANT_VALUE, 4),
    _table(mib.PRT_MARKER, mib.MARKER_COLUMNS, mib.MARKER_LIFE_COUNT, 1),
    _table(mib.PRT_ALERT, mib.ALERT_COLUMNS, mib.ALERT_SEVERITY, 2),
    _table(mib.PRT_INPUT, mib.INPUT_COLUMNS, mib.INPUT_MAX_CAPACITY, 4),
    Table((mib.IF_PHYS_ADDRESS,), mib.IF_PHYS_ADDRESS, 2),
)


@dataclass(frozen=True)
class PollResult:
    address: str
    ip: str | None
    readings: dict[str, SnmpValue]
    reading: printer.PrinterReading
    collected_at: datetime
    snapshot_id: str
    duration_s: float
    snmp_bytes: int

    def snapshot(self) -> dict[str, Any]:
        return printer.to_snapshot(
            self.reading, snapshot_id=self.snapshot_id, collected_at=self.collected_at, ip=self.ip
        )


async def read_printer(client: SnmpClient, target: Target) -> dict[str, SnmpValue]:
    readings = await client.get(target, SCALARS)
    if not readings:
        raise SnmpError(f"{target.host}: no answer to the system group")
    sys_object_id = readings.get(mib.SYS_OBJECT_ID)
    enterprise = vendors.enterprise_of(sys_object_id if isinstance(sys_object_id, str) else None)
    vendor = vendors.VENDORS.get(enterprise) if enterprise is not None else None
    present = await client.first_rows(target, [table.key for table in TABLES])
    jobs = [
        client.walk(target, table.columns, repetitions=table.repetitions)
        for table in TABLES
        if table.key in present
    ]
    if vendor and vendor.oids():
        jobs.append(client.get(target, vendor.oids()))
    for part in await asyncio.gather(*jobs):
        readings.update(part)
    return readings


async def poll(
    client: SnmpClient,
    target: Target,
    *,
    serial_override: str | None = None,
    installation: str | None = None,
) -> PollResult:
    """`installation` (the collector's id) gives a printer without serial or MAC an identity
    derived from it and the address polled (printer.derived_serial)."""
    ip = await client.resolve(target)
    # Count against the resolved address: the transport only sees that.
    resolved = Target(host=ip, port=target.port, credentials=target.credentials)
    before = client.traffic_bytes(ip, target.port)
    started = time.perf_counter()
    collected_at = datetime.now(timezone.utc)
    readings = await read_printer(client, resolved)
    duration = time.perf_counter() - started
    return PollResult(
        address=target.host,
        ip=ip,
        readings=readings,
        reading=printer.parse_printer(
            readings,
            serial_override=serial_override,
            where=f"{installation} {target.host}:{target.port}" if installation else None,
        ),
        collected_at=collected_at,
        snapshot_id=str(uuid.uuid4()),
        duration_s=duration,
        snmp_bytes=client.traffic_bytes(ip, target.port) - before,
    )
