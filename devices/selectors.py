"""Reads of devices data; each takes the tenant context first."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from django.db import connection
from django.db.models import Count, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.utils.timezone import now

from accounts.models import Site
from devices.models import (
    Alert,
    AuthFailure,
    CounterReading,
    Credential,
    Device,
    DeviceNote,
    Snapshot,
    Supply,
    TelemetryPolicy,
)
from portal.errors import NotFoundError
from portal.tenancy import TenantContext


def credential_list(*, ctx: TenantContext) -> QuerySet[Credential]:
    return (
        Credential.objects.for_tenant(ctx)
        .select_related("customer", "site", "device")
        .order_by("customer__name", "kind", "name", "pk")
    )


def credential_get(*, ctx: TenantContext, credential_id: int) -> Credential:
    credential = credential_list(ctx=ctx).filter(pk=credential_id).first()
    if credential is None:
        raise NotFoundError("No such credential.")
    return credential


def auth_failure_list(*, ctx: TenantContext, credential_id: int) -> QuerySet[AuthFailure]:
    return AuthFailure.objects.for_tenant(ctx).filter(credential_id=credential_id)


def site_choices(*, ctx: TenantContext) -> QuerySet[Site]:
    return (
        Site.objects.for_tenant(ctx).select_related("customer").order_by("customer__name", "name")
    )


def telemetry_policy_get(*, ctx: TenantContext, customer_id: int) -> TelemetryPolicy | None:
    return TelemetryPolicy.objects.for_tenant(ctx).filter(customer_id=customer_id).first()


@dataclass(frozen=True)
class IdentityChange:
    field: str
    old: str
    new: str
    at: datetime


IDENTITY_FIELDS = ("firmware", "ip", "hostname", "mac")


def device_identity_history(*, ctx: TenantContext, device_id: int) -> list[IdentityChange]:
    """Firmware, IP, hostname and MAC changes in collected_at order, derived from the stored
    snapshots, so a late snapshot lands in its place in the history."""
    rows = (
        Snapshot.objects.for_tenant(ctx)
        .filter(device_id=device_id)
        .order_by("collected_at", "snapshot_id")
        .values_list("collected_at", *IDENTITY_FIELDS)
    )
    changes: list[IdentityChange] = []
    previous: dict[str, str] = {}
    for collected_at, *values in rows.iterator(chunk_size=2000):
        for name, value in zip(IDENTITY_FIELDS, values, strict=True):
            if not value:
                continue  # not reported is not a change
            old = previous.get(name)
            if old is not None and old != value:
                changes.append(IdentityChange(name, old, value, collected_at))
            previous[name] = value
    return changes


@dataclass(frozen=True)
class CollectorHealth:
    credential: Credential
    # "ok", "late" (past its silence threshold, the sweep has not marked it yet), "silent"
    # (marked, the reseller was told) or "never" (has not reported yet).
    status: str
    silence_minutes: int
    devices: int


def collector_health_list(*, ctx: TenantContext) -> list[CollectorHealth]:
    """The active collectors with what they last said about themselves, silent ones first."""
    from devices.services import collector_silence_minutes

    in_service = (
        Device.objects.for_tenant(ctx)
        .filter(site_id=OuterRef("site_id"), retired_at__isnull=True)
        .order_by()
        .values("site_id")
        .annotate(n=Count("pk"))
        .values("n")
    )
    credentials = (
        Credential.objects.for_tenant(ctx)
        .filter(kind=Credential.Kind.COLLECTOR, revoked_at__isnull=True)
        .select_related("customer", "site")
        .annotate(devices=Coalesce(Subquery(in_service), 0))
        .order_by("customer__name", "name", "pk")
    )
    moment = now()
    rows = []
    for credential in cast("QuerySet[Credential]", credentials):
        minutes = collector_silence_minutes(credential)
        if credential.last_seen_at is None:
            status = "never"
        elif credential.silent_since is not None:
            status = "silent"
        elif (moment - credential.last_seen_at).total_seconds() > minutes * 60:
            status = "late"
        else:
            status = "ok"
        devices: int = getattr(credential, "devices", 0)  # the annotation above
        rows.append(CollectorHealth(credential, status, minutes, devices))
    order = {"silent": 0, "late": 1, "never": 2, "ok": 3}
    return sorted(rows, key=lambda row: order[row.status])


def collector_silent_count(*, ctx: TenantContext) -> int:
    """Collectors the silence sweep has marked, for the alert list's warning."""
    return (
        Credential.objects.for_tenant(ctx)
        .filter(Q(silent_since__isnull=False), kind=Credential.Kind.COLLECTOR, revoked_at=None)
        .count()
    )


def device_note_list(*, ctx: TenantContext, device_id: int) -> QuerySet[DeviceNote]:
    return DeviceNote.objects.for_tenant(ctx).filter(device_id=device_id).select_related("author")


# --- Integration API (devices/api.py): lists that clients sync by cursor ----------------------
# Each returns its rows filtered and unordered: portal.api.KeysetPagination orders them by
# their key and reads one page after the cursor.


@dataclass(frozen=True, kw_only=True)
class DeviceSyncFilter:
    customer_id: int | None = None
    site_id: int | None = None
    status: str = ""
    lifecycle: str = "all"
    updated_since: datetime | None = None


def device_sync_list(*, ctx: TenantContext, f: DeviceSyncFilter) -> QuerySet[Device]:
    """Devices as the fleet list filters them (status as it shows it), retired ones included
    unless asked otherwise. `updated_since`: the registry row changed (Device.updated_at), or
    the device reported (its status, counters and supplies may have moved), or went offline."""
    from devices.fleet_selectors import DeviceFilter, device_list

    rows = device_list(
        ctx=ctx,
        f=DeviceFilter(
            lifecycle=f.lifecycle, customer_id=f.customer_id, site_id=f.site_id, status=f.status
        ),
    ).rows
    if f.updated_since is not None:
        t = f.updated_since
        rows = rows.filter(
            Q(updated_at__gte=t) | Q(state__last_seen_at__gte=t) | Q(state__offline_since__gte=t)
        )
    return rows


def device_sync_load(*, ctx: TenantContext) -> Callable[[QuerySet[Device]], QuerySet[Device]]:
    """A page of devices with their state and open alerts (not snoozed), as the fleet counts."""
    from devices.fleet_selectors import alert_is_open

    def load(page: QuerySet[Device]) -> QuerySet[Device]:
        # The alert belongs to the device, hence to the scope already applied to it.
        open_alerts = (
            Alert.unscoped.filter(alert_is_open(now()), device_id=OuterRef("pk"))
            .order_by()
            .values("device_id")
            .annotate(n=Count("pk"))
            .values("n")
        )
        return page.select_related("state").annotate(open_alerts=Coalesce(Subquery(open_alerts), 0))

    return load


def supply_sync_list(
    *,
    ctx: TenantContext,
    device_id: int | None = None,
    customer_id: int | None = None,
    below_percent: float | None = None,
    updated_since: datetime | None = None,
) -> QuerySet[Supply]:
    """Current supply states of the devices in service. A supply row changes only when its
    device reports it (ingestion), which sets `observed_at`: that is its `updated_since`."""
    rows = Supply.objects.for_tenant(ctx).filter(device__retired_at__isnull=True)
    if device_id is not None:
        rows = rows.filter(device_id=device_id)
    if customer_id is not None:
        rows = rows.filter(device__customer_id=customer_id)
    if below_percent is not None:
        rows = rows.filter(percent__lt=below_percent)
    if updated_since is not None:
        rows = rows.filter(observed_at__gte=updated_since)
    return rows.select_related("device")


def alert_sync_list(
    *,
    ctx: TenantContext,
    is_open: bool | None = None,
    device_id: int | None = None,
    code: str = "",
    severity: str = "",
    updated_since: datetime | None = None,
) -> QuerySet[Alert]:
    """Alert episodes, open (not cleared, snoozed or not) or cleared. `updated_since` reads the
    times an alert keeps: first and last reported, cleared, acknowledged. A snooze keeps only
    its end, so snoozing alone does not make an alert updated."""
    rows = Alert.objects.for_tenant(ctx)
    if is_open is not None:
        rows = rows.filter(cleared_at__isnull=is_open)
    if device_id is not None:
        rows = rows.filter(device_id=device_id)
    if code:
        rows = rows.filter(code=code)
    if severity:
        rows = rows.filter(severity=severity)
    if updated_since is not None:
        t = updated_since
        rows = rows.filter(
            Q(first_seen_at__gte=t)
            | Q(last_seen_at__gte=t)
            | Q(cleared_at__gte=t)
            | Q(acknowledged_at__gte=t)
        )
    return rows.select_related("device")


# Key of the meter-read history: devices_snapshot_by_reseller (fleet) and
# devices_snapshot_by_time (one device) serve it.
METER_READ_KEYS = ("collected_at", "id")


def meter_read_list(
    *, ctx: TenantContext, device_id: int | None = None, since: datetime | None = None
) -> QuerySet[Snapshot]:
    """Meter reads: each stored snapshot is one read of a device's counters at collected_at
    (append-only). Their counters come with meter_read_counters, for a page at a time."""
    rows = Snapshot.objects.for_tenant(ctx)
    if device_id is not None:
        rows = rows.filter(device_id=device_id)
    if since is not None:
        rows = rows.filter(collected_at__gte=since)
    return rows.select_related("device")


def meter_read_counters(
    *, ctx: TenantContext, reads: Sequence[Snapshot]
) -> dict[tuple[int, datetime], list[CounterReading]]:
    """The counter readings of a page of meter reads, by (device id, collected_at), in one
    query. The reads come from a tenant-scoped query, so their devices are the caller's.

    On PostgreSQL each read is one probe of the counter series index in the month partition of
    its time (a nested loop over the reads, pruned per read at run time): an OR of the reads'
    conditions was planned as one bitmap scan of every partition, five times slower. The probe
    still reads the device's index entries of that month to match collected_at (the index
    leads with the counter's name): about 0.7 ms a read at three counters, measured."""
    if not reads:
        return {}
    if connection.vendor == "postgresql":
        return _meter_read_counters_probed(ctx=ctx, reads=reads)
    times: dict[int, set[datetime]] = defaultdict(set)
    for read in reads:
        times[read.device_id].add(read.collected_at)
    which = Q()
    for device_id, moments in times.items():
        which |= Q(device_id=device_id, collected_at__in=sorted(moments))
    rows = (
        CounterReading.objects.for_tenant(ctx)
        .filter(which)
        .order_by("device_id", "collected_at", "name", "media_type", "color", "unit")
    )
    found: dict[tuple[int, datetime], list[CounterReading]] = defaultdict(list)
    for reading in rows:
        found[(reading.device_id, reading.collected_at)].append(reading)
    return dict(found)


def _meter_read_counters_probed(
    *, ctx: TenantContext, reads: Sequence[Snapshot]
) -> dict[tuple[int, datetime], list[CounterReading]]:
    pairs = sorted({(read.device_id, read.collected_at) for read in reads})
    sql = """
        SELECT r.id, p.device_id, p.collected_at, r.name, r.media_type, r.color, r.unit, r.value
        FROM unnest(%s::bigint[], %s::timestamptz[]) AS p(device_id, collected_at)
        JOIN LATERAL (
            SELECT id, name, media_type, color, unit, value FROM devices_counterreading
            WHERE reseller_id = %s AND device_id = p.device_id AND collected_at = p.collected_at
        ) AS r ON true
        ORDER BY p.device_id, p.collected_at, r.name, r.media_type, r.color, r.unit
    """
    params: list[Any] = [[d for d, _ in pairs], [t for _, t in pairs], ctx.reseller_id]
    found: dict[tuple[int, datetime], list[CounterReading]] = defaultdict(list)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        for pk, device_id, collected_at, name, media_type, color, unit, value in cursor:
            found[(device_id, collected_at)].append(
                CounterReading(
                    pk=pk,
                    reseller_id=ctx.reseller_id,
                    device_id=device_id,
                    collected_at=collected_at,
                    name=name,
                    media_type=media_type,
                    color=color,
                    unit=unit,
                    value=value,
                )
            )
    return dict(found)
