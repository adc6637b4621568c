"""Reads of devices data; each takes the tenant context first."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import cast

from django.db.models import Count, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.utils.timezone import now

from accounts.models import Site
from devices.models import (
    AuthFailure,
    Credential,
    Device,
    DeviceNote,
    Snapshot,
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
