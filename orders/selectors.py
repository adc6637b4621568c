"""Reads of the orders app; each takes the tenant context first and returns its joins done."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, cast

from django.db.models import Count, Exists, F, OuterRef, Q, QuerySet, Sum
from django.db.models.functions import Coalesce

from accounts.models import Customer, Site
from devices.models import Device, Supply
from orders.models import (
    CartridgeReplacement,
    EmailLog,
    NotificationPreference,
    Order,
    OrderLine,
    Product,
    ReorderPolicy,
    SupplyAlert,
    SupplyForecast,
)
from portal.errors import NotFoundError
from portal.pages import Listing
from portal.tenancy import TenantContext

# The suggested list looks a little ahead of the reorder point: supplies below this level or
# emptying within this many days are offered even before their alert.
SUGGEST_PERCENT = 25.0
SUGGEST_DAYS = 14.0
OPEN_STATUSES = (
    Order.Status.DRAFT,
    Order.Status.PENDING_APPROVAL,
    Order.Status.SUBMITTED,
    Order.Status.ACCEPTED,
    Order.Status.SHIPPED,
)
# The reseller's fulfilment queue: orders that wait for the reseller.
QUEUE_STATUSES = (Order.Status.SUBMITTED, Order.Status.ACCEPTED, Order.Status.SHIPPED)


# --- Catalog ----------------------------------------------------------------------------------


def product_list(
    *, ctx: TenantContext, search: str = "", is_active: bool | None = None
) -> QuerySet[Product]:
    qs = Product.objects.for_tenant(ctx)
    if search:
        qs = qs.filter(
            Q(sku__icontains=search) | Q(name__icontains=search) | Q(part_number__icontains=search)
        )
    if is_active is not None:
        qs = qs.filter(is_active=is_active)
    return qs.order_by("sku", "pk")


def product_get(*, ctx: TenantContext, product_id: int) -> Product:
    product = Product.objects.for_tenant(ctx).filter(pk=product_id).first()
    if product is None:
        raise NotFoundError("No such product.")
    return product


def unmatched_supply_list(*, ctx: TenantContext) -> QuerySet[Supply]:
    """Supplies evaluated without a product: the reseller maps them."""
    return (
        Supply.objects.for_tenant(ctx)
        .filter(forecast__isnull=False, forecast__product__isnull=True)
        .exclude(kind__in=["staples", "media"])
        .select_related("device", "device__customer")
        .order_by("device__model", "part_number", "color", "pk")
    )


# --- Supplies ---------------------------------------------------------------------------------


def supply_get(*, ctx: TenantContext, supply_id: int) -> Supply:
    supply = (
        Supply.objects.for_tenant(ctx)
        .select_related("device", "device__site", "device__customer", "forecast__product")
        .filter(pk=supply_id)
        .first()
    )
    if supply is None:
        raise NotFoundError("No such supply.")
    return supply


def _open_line(supply_ref: Any) -> Exists:
    return Exists(OrderLine.unscoped.filter(supply_id=supply_ref, is_open=True))


def suggested_supply_list(
    *, ctx: TenantContext, customer_id: int | None = None
) -> QuerySet[Supply]:
    """Low supplies with a catalog product and no order under way, lowest first."""
    qs = Supply.objects.for_tenant(ctx).filter(forecast__product__isnull=False)
    if customer_id is not None:
        qs = qs.filter(device__customer_id=customer_id)
    open_alert = Exists(
        SupplyAlert.unscoped.filter(supply_id=OuterRef("pk")).exclude(status="closed")
    )
    return cast(
        "QuerySet[Supply]",
        qs.annotate(has_alert=open_alert, on_order=_open_line(OuterRef("pk")))
        .filter(
            Q(has_alert=True)
            | Q(percent__lte=SUGGEST_PERCENT)
            | Q(forecast__days_to_empty__lte=SUGGEST_DAYS)
        )
        .filter(on_order=False)
        .select_related("device", "device__site", "device__customer", "forecast__product")
        .order_by(F("forecast__days_to_empty").asc(nulls_last=True), "percent", "pk"),
    )


def device_forecast_list(*, ctx: TenantContext, device_id: int) -> dict[int, SupplyForecast]:
    """The forecasts of one device's supplies, by supply id (the device page)."""
    return {
        f.supply_id: f
        for f in SupplyForecast.objects.for_tenant(ctx)
        .filter(supply__device_id=device_id)
        .select_related("product")
    }


def replacement_list(
    *, ctx: TenantContext, device_id: int | None = None
) -> QuerySet[CartridgeReplacement]:
    qs = CartridgeReplacement.objects.for_tenant(ctx).select_related(
        "supply", "device", "device__site", "customer", "product"
    )
    if device_id is not None:
        qs = qs.filter(device_id=device_id)
    return qs.order_by("-detected_at", "-pk")


@dataclass(frozen=True)
class LowSupplySummary:
    at_reorder_point: int
    emptying_within_week: int
    orders_waiting: int
    lowest: list[Supply]


# The dashboard's "empty within" tile, and the supply list it links to.
EMPTY_WITHIN_DAYS = 7


def low_supply_summary(*, ctx: TenantContext, limit: int = 5) -> LowSupplySummary:
    """The dashboard widget: supplies at their reorder point and the ones emptying first.

    Each figure is counted by the very selector of the list its tile links to (the supply
    list with a filter), so a tile and its list cannot disagree."""
    from devices.fleet_selectors import SupplyFilter, supply_list

    alerts = supply_list(ctx=ctx, f=SupplyFilter(is_at_reorder_point=True)).count()
    week = supply_list(ctx=ctx, f=SupplyFilter(empties_within_days=EMPTY_WITHIN_DAYS)).count()
    waiting = QUEUE_STATUSES if ctx.is_reseller_wide else (Order.Status.PENDING_APPROVAL,)
    orders = Order.objects.for_tenant(ctx).filter(status__in=waiting).count()
    return LowSupplySummary(alerts, week, orders, _emptying_first(ctx=ctx, limit=limit))


def _emptying_first(*, ctx: TenantContext, limit: int) -> list[Supply]:
    """The supplies that empty first by their forecast, then, if fewer than `limit` have a
    date, the lowest of those whose forecast gives none (not falling, too few readings).

    Read from the forecasts' index by days to empty: sorting every supply of the fleet by its
    forecast (a join of the two) took most of the dashboard's time at 40,000 supplies. A
    supply not evaluated yet (its first follow-up pending) has no forecast and waits for it."""
    forecasts = SupplyForecast.objects.for_tenant(ctx).filter(supply__percent__isnull=False)
    ids = list(
        forecasts.filter(days_to_empty__isnull=False)
        .order_by("days_to_empty", "supply__percent", "supply_id")
        .values_list("supply_id", flat=True)[:limit]
    )
    undated = list(
        forecasts.filter(days_to_empty__isnull=True)
        .order_by("supply__percent", "supply_id")
        .values_list("supply_id", flat=True)[:limit]
    )
    ids = (ids + undated)[:limit]
    found = {
        s.pk: s
        for s in Supply.objects.for_tenant(ctx)
        .filter(pk__in=ids)
        .select_related("device", "device__customer", "forecast")
    }
    return [found[pk] for pk in ids if pk in found]


# --- Policies, emails, preferences ---------------------------------------------------------------


def policy_list(*, ctx: TenantContext, customer_id: int | None = None) -> QuerySet[ReorderPolicy]:
    qs = ReorderPolicy.objects.for_tenant(ctx).select_related("customer", "device")
    if customer_id is not None:
        qs = qs.filter(customer_id=customer_id)
    return qs.order_by("customer__name", F("device_id").asc(nulls_first=True), "pk")


def policy_get(*, ctx: TenantContext, policy_id: int) -> ReorderPolicy:
    policy = ReorderPolicy.objects.for_tenant(ctx).filter(pk=policy_id).first()
    if policy is None:
        raise NotFoundError("No such policy.")
    return policy


def customer_choices(*, ctx: TenantContext) -> QuerySet[Customer]:
    return Customer.objects.for_tenant(ctx).order_by("name", "pk")


def site_choices(*, ctx: TenantContext) -> QuerySet[Site]:
    return (
        Site.objects.for_tenant(ctx).select_related("customer").order_by("customer__name", "name")
    )


def device_choices(*, ctx: TenantContext, customer_id: int | None = None) -> QuerySet[Device]:
    qs = Device.objects.for_tenant(ctx).select_related("customer")
    if customer_id is not None:
        qs = qs.filter(customer_id=customer_id)
    return qs.order_by("customer__name", "serial")


def email_list(
    *, ctx: TenantContext, kind: str = "", order_id: int | None = None
) -> QuerySet[EmailLog]:
    qs = EmailLog.objects.for_tenant(ctx).select_related("customer", "order")
    if kind:
        qs = qs.filter(kind=kind)
    if order_id is not None:
        qs = qs.filter(order_id=order_id)
    return qs.order_by("-created_at", "-pk")


def email_get(*, ctx: TenantContext, email_id: int) -> EmailLog:
    email = EmailLog.objects.for_tenant(ctx).filter(pk=email_id).first()
    if email is None:
        raise NotFoundError("No such email.")
    return email


def preference_map(*, ctx: TenantContext) -> dict[str, bool]:
    """Every kind of email and whether the signed-in user receives it (yes without a row)."""
    chosen = dict(
        NotificationPreference.objects.for_tenant(ctx)
        .filter(user=ctx.user)
        .values_list("kind", "is_enabled")
    )
    return {kind: chosen.get(kind, True) for kind in EmailLog.NOTIFICATION_KINDS}


def supply_alert_list(*, ctx: TenantContext) -> QuerySet[SupplyAlert]:
    return (
        SupplyAlert.objects.for_tenant(ctx)
        .exclude(status="closed")
        .select_related("supply", "device", "device__site", "customer")
        .order_by("-created_at", "-pk")
    )


# --- Orders -----------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class OrderFilter:
    status: str = ""
    search: str = ""
    is_queue: bool = False
    # Changed at or after (the API's `updated_since`); every order service sets updated_at.
    updated_since: datetime | None = None


def order_list(*, ctx: TenantContext, f: OrderFilter | None = None) -> Listing[Order]:
    """Orders newest first; each page's orders with customer, site, who placed it and the sum
    and number of its lines (summed for the page only, not for every order of the list)."""
    f = f or OrderFilter()
    rows = Order.objects.for_tenant(ctx)
    if f.is_queue:
        rows = rows.filter(status__in=QUEUE_STATUSES)
    if f.status:
        rows = rows.filter(status=f.status)
    if f.updated_since is not None:
        rows = rows.filter(updated_at__gte=f.updated_since)
    if f.search:
        term = f.search.upper().removeprefix("ORD-").lstrip("0")
        by_number = Q(pk=int(term)) if term.isdigit() else Q()
        rows = rows.filter(
            by_number
            | Q(customer__name__icontains=f.search)
            | Q(site__name__icontains=f.search)
            | Q(tracking_number__icontains=f.search)
        )

    def load(page: QuerySet[Order]) -> QuerySet[Order]:
        return cast(
            "QuerySet[Order]",
            page.select_related("customer", "site", "placed_by").annotate(
                total=Coalesce(Sum("lines__line_total"), Decimal(0)),
                line_count=Count("lines"),
            ),
        )

    return Listing(rows.order_by("-created_at", "-pk"), load)


def order_get(*, ctx: TenantContext, order_id: int) -> Order:
    order = (
        Order.objects.for_tenant(ctx)
        .select_related("customer", "site", "placed_by")
        .filter(pk=order_id)
        .first()
    )
    if order is None:
        raise NotFoundError("No such order.")
    return order


def order_line_list(*, ctx: TenantContext, order_id: int) -> QuerySet[OrderLine]:
    return (
        OrderLine.objects.for_tenant(ctx)
        .filter(order_id=order_id)
        .select_related("product", "supply", "supply__device")
        .order_by("pk")
    )


def order_event_list(*, ctx: TenantContext, order_id: int) -> QuerySet[Any]:
    from orders.models import OrderEvent

    return OrderEvent.objects.for_tenant(ctx).filter(order_id=order_id).order_by("at", "pk")


# Machine names, never translated: an ERP maps the columns by them, whatever the language of the
# person who downloads the file (values are codes, ISO dates and plain decimals too).
EXPORT_HEADER = [
    "order",
    "created_at",
    "status",
    "customer",
    "site",
    "placed_by",
    "sku",
    "product",
    "quantity",
    "unit_price",
    "line_total",
    "currency",
    "carrier",
    "tracking_number",
]


def order_export_rows(*, ctx: TenantContext, f: OrderFilter | None = None) -> Iterator[list[str]]:
    """One row per order line, streamed from the database in chunks."""
    orders = order_list(ctx=ctx, f=f).rows.values_list("pk", flat=True)
    lines = (
        OrderLine.objects.for_tenant(ctx)
        .filter(order_id__in=orders)
        .order_by("-order__created_at", "-order_id", "pk")
        .values_list(
            "order_id",
            "order__created_at",
            "order__status",
            "order__customer__name",
            "order__site__name",
            "order__placed_by__email",
            "product__sku",
            "product__name",
            "quantity",
            "unit_price",
            "line_total",
            "order__currency",
            "order__carrier",
            "order__tracking_number",
        )
    )
    for row in lines.iterator(chunk_size=2000):
        order_id, created, *rest = row
        yield [
            f"ORD-{order_id:06d}",
            created.isoformat(),
            *("" if v is None else str(v) for v in rest),
        ]
