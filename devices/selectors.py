"""Reads of devices data; each takes the tenant context first."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import QuerySet

from accounts.models import Site
from devices.models import AuthFailure, Credential, Snapshot, TelemetryPolicy
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
