"""Reads of webhooks, always tenant-scoped."""

from __future__ import annotations

from django.db.models import QuerySet

from integrations.models import WebhookDelivery, WebhookEndpoint
from portal.errors import NotFoundError
from portal.tenancy import TenantContext


def webhook_endpoint_list(*, ctx: TenantContext) -> QuerySet[WebhookEndpoint]:
    return WebhookEndpoint.objects.for_tenant(ctx).order_by("created_at", "pk")


def webhook_endpoint_get(*, ctx: TenantContext, endpoint_id: int) -> WebhookEndpoint:
    endpoint = WebhookEndpoint.objects.for_tenant(ctx).filter(pk=endpoint_id).first()
    if endpoint is None:
        raise NotFoundError("No such webhook endpoint.")
    return endpoint


def webhook_delivery_list(
    *, ctx: TenantContext, endpoint_id: int | None = None, status: str = ""
) -> QuerySet[WebhookDelivery]:
    qs = WebhookDelivery.objects.for_tenant(ctx).select_related("endpoint")
    if endpoint_id is not None:
        qs = qs.filter(endpoint_id=endpoint_id)
    if status:
        qs = qs.filter(status=status)
    # Defer the payloads: a page shows 25 rows, not their bodies.
    return qs.defer("payload").order_by("-created_at", "-id")


def webhook_delivery_get(*, ctx: TenantContext, delivery_id: int) -> WebhookDelivery:
    delivery = (
        WebhookDelivery.objects.for_tenant(ctx)
        .select_related("endpoint")
        .filter(pk=delivery_id)
        .first()
    )
    if delivery is None:
        raise NotFoundError("No such delivery.")
    return delivery
