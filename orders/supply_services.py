"""The work that follows telemetry: match supplies to products, detect cartridge replacements,
forecast days to empty, raise low-supply alerts and email them once, and act on the reorder
policy.

Everything here is re-derivable from stored readings: `supplies_evaluate` may run twice, or
late, or from the beat sweep after a lost task, and reaches the same state (replacements and
open alerts are unique in the database; the alert email is claimed by a conditional UPDATE).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.urls import reverse
from django.utils.timezone import now

from accounts.models import Reseller
from devices.models import Alert, CounterReading, Device, Supply, SupplyReading
from orders import catalog_services, email_services, services
from orders import forecast as fc
from orders.models import (
    CartridgeReplacement,
    EmailLog,
    Order,
    OrderLine,
    Product,
    ReorderPolicy,
    SupplyAlert,
    SupplyForecast,
    SupplyProductMapping,
)
from orders.roles import ORDERING_ROLES, require
from portal.errors import ConflictError, NotFoundError
from portal.tenancy import TenantContext

log = logging.getLogger(__name__)

# Without a known replacement, this much history is enough to find the current cartridge.
HISTORY = timedelta(days=180)
PAGE_COUNTER = "impressions.total"
# Supplies per sweep run; the rest waits for the next run.
SWEEP_DEVICES = 500


# --- Matching ----------------------------------------------------------------------------------


def supply_product_match(
    *, supply: Supply, device_model: str, products: list[Product], mappings: dict[tuple, int]
) -> tuple[Product | None, str]:
    """Part number first, then a remembered mapping, then model and colour (only when exactly
    one product fits: a guess between two would order the wrong cartridge)."""
    by_pk = {p.pk: p for p in products}
    part = supply.part_number.strip().lower()
    if part:
        hits = [p for p in products if p.part_number.strip().lower() == part]
        if len(hits) == 1:
            return hits[0], SupplyForecast.Match.PART_NUMBER
    mapped = mappings.get((supply.part_number, device_model, supply.kind, supply.color))
    if mapped in by_pk:
        return by_pk[mapped], SupplyForecast.Match.MAPPING
    fits = [
        p
        for p in products
        if device_model
        and device_model in p.compatible_models
        and p.color == supply.color
        and (not supply.kind or p.kind == supply.kind)
    ]
    if len(fits) == 1:
        return fits[0], SupplyForecast.Match.MODEL_COLOR
    return None, SupplyForecast.Match.NONE


def _critical_for(supply: Supply, alerts: list[Alert]) -> bool:
    """A printer's open critical alert names this supply (by kind and colour or key)."""
    for alert in alerts:
        text = f"{alert.code} {alert.description}".lower()
        names_kind = (supply.kind and supply.kind in text) or "supply" in text
        names_this = supply.supply_key.lower() in text or (supply.color and supply.color in text)
        if names_kind and names_this:
            return True
    return False


# --- Evaluation --------------------------------------------------------------------------------


def supplies_evaluate(*, device_ids: list[int]) -> int:
    """Evaluate every supply of these devices; returns the number of supplies evaluated."""
    count = 0
    for device_id in sorted(set(device_ids)):
        count += _device_evaluate(device_id)
    return count


def _device_evaluate(device_id: int) -> int:
    # System code (a task or a sweep): the device names its own tenant.
    device = Device.unscoped.select_related("reseller", "site").filter(pk=device_id).first()
    if device is None:
        return 0
    ctx = TenantContext.system(reseller=device.reseller)
    supplies = list(Supply.unscoped.filter(device_id=device_id).order_by("supply_key"))
    forecasts = {f.supply_id: f for f in SupplyForecast.unscoped.filter(supply__in=supplies)}
    products = list(Product.unscoped.filter(reseller_id=device.reseller_id, is_active=True))
    mappings = {
        (m.part_number, m.device_model, m.kind, m.color): m.product_id
        for m in SupplyProductMapping.unscoped.filter(
            reseller_id=device.reseller_id, device_model=device.model
        )
    }
    criticals = list(
        Alert.unscoped.filter(
            device_id=device_id, cleared_at=None, severity=Alert.Severity.CRITICAL
        )
    )
    policy = catalog_services.policy_effective(
        ctx=ctx, customer_id=device.customer_id, device_id=device.pk
    )
    for supply in supplies:
        with transaction.atomic():
            _supply_evaluate(
                ctx,
                device,
                supply,
                forecasts.get(supply.pk),
                products,
                mappings,
                criticals,
                policy,
            )
    return len(supplies)


def _supply_evaluate(
    ctx: TenantContext,
    device: Device,
    supply: Supply,
    previous: SupplyForecast | None,
    products: list[Product],
    mappings: dict[tuple, int],
    criticals: list[Alert],
    policy: catalog_services.EffectivePolicy,
) -> None:
    moment = now()
    since = previous.cartridge_since if previous and previous.cartridge_since else None
    readings = _readings(device.pk, supply.supply_key, since or moment - HISTORY, previous)
    product, match = supply_product_match(
        supply=supply, device_model=device.model, products=products, mappings=mappings
    )
    cartridge_since = since
    pages_at_install = previous.pages_at_install if previous else None
    for replacement in fc.replacements(readings):
        if since is not None and replacement.at <= since:
            continue
        pages = _pages_at(device.pk, replacement.at)
        _replacement_record(ctx, device, supply, replacement, pages_at_install, pages, product)
        cartridge_since, pages_at_install = replacement.at, pages
    current = [r for r in readings if cartridge_since is None or r.at >= cartridge_since]
    # Days from the supply's latest reading, not from now: history that arrives late (a collector
    # back online, a backfill) must not read as long overdue. Silence is the offline sweep's job.
    result = fc.forecast(current, at=max(supply.observed_at, current[-1].at) if current else moment)
    SupplyForecast.unscoped.update_or_create(
        supply=supply,
        defaults={
            "reseller_id": device.reseller_id,
            "customer_id": device.customer_id,
            "product": product,
            "match": match,
            "method": result.method,
            "is_coarse": result.is_coarse,
            "days_to_empty": result.days_to_empty,
            "slope_per_day": result.slope_per_day,
            "readings_used": result.readings_used,
            "cartridge_since": cartridge_since,
            "pages_at_install": pages_at_install,
            "evaluated_observed_at": supply.observed_at,
            "computed_at": moment,
        },
    )
    reason = _reorder_reason(supply, result, criticals, policy)
    if reason is not None:
        _alert_raise(ctx, device, supply, result, reason, product, policy)


def _readings(
    device_id: int, supply_key: str, since: datetime, previous: SupplyForecast | None
) -> list[fc.Reading]:
    """The current cartridge's readings that the evaluation needs: the newest ones (enough for
    the forecast and for a jump's baseline), or all of them when more arrived since the last
    evaluation than that, so no replacement goes unseen."""
    rows = SupplyReading.unscoped.filter(
        device_id=device_id, supply_key=supply_key, collected_at__gte=since
    ).values_list("collected_at", "percent", "serial")
    newest = list(rows.order_by("-collected_at")[: fc.MAX_READINGS + fc.JUMP_BASE])
    covers_new = (
        previous is not None
        and len(newest) > fc.JUMP_BASE
        and newest[-fc.JUMP_BASE][0] <= previous.evaluated_observed_at
    )
    if covers_new or len(newest) < fc.MAX_READINGS + fc.JUMP_BASE:
        picked = reversed(newest)
    else:
        picked = iter(rows.order_by("collected_at"))
    return [fc.Reading(at, percent, serial) for at, percent, serial in picked]


def _reorder_reason(
    supply: Supply,
    result: fc.Forecast,
    criticals: list[Alert],
    policy: catalog_services.EffectivePolicy,
) -> str | None:
    if _critical_for(supply, criticals):
        return SupplyAlert.Reason.CRITICAL
    if supply.percent is not None and supply.percent <= policy.threshold_percent:
        return SupplyAlert.Reason.REORDER_POINT
    if result.days_to_empty is not None and result.days_to_empty <= policy.lead_time_days:
        return SupplyAlert.Reason.REORDER_POINT
    return None


def _pages_at(device_id: int, moment: datetime) -> Decimal | None:
    value = (
        CounterReading.unscoped.filter(
            device_id=device_id, name=PAGE_COUNTER, collected_at__lte=moment
        )
        .order_by("-collected_at")
        .values_list("value", flat=True)
        .first()
    )
    return value


def _replacement_record(
    ctx: TenantContext,
    device: Device,
    supply: Supply,
    replacement: fc.Replacement,
    pages_at_install: Decimal | None,
    pages_at_removal: Decimal | None,
    product: Product | None,
) -> None:
    yielded = (
        pages_at_removal - pages_at_install
        if pages_at_install is not None and pages_at_removal is not None
        else None
    )
    try:
        with transaction.atomic():
            _, created = CartridgeReplacement.unscoped.get_or_create(
                supply=supply,
                detected_at=replacement.at,
                defaults={
                    "reseller_id": device.reseller_id,
                    "device": device,
                    "customer_id": device.customer_id,
                    "old_serial": replacement.old_serial,
                    "new_serial": replacement.new_serial,
                    "old_percent": replacement.old_percent,
                    "new_percent": replacement.new_percent,
                    "pages_at_install": pages_at_install,
                    "pages_at_removal": pages_at_removal,
                    "pages_yielded": yielded,
                    # Pages are compared with pages; an ink's rating in ml is not a page yield.
                    "rated_yield": (
                        product.rated_yield
                        if product and product.yield_unit == Product.YieldUnit.PAGES
                        else None
                    ),
                    "product": product,
                    "is_genuine": supply.is_genuine,
                },
            )
    except IntegrityError:
        return  # a concurrent evaluation recorded it
    if not created:
        return
    SupplyAlert.unscoped.filter(supply=supply).exclude(status=SupplyAlert.Status.CLOSED).update(
        status=SupplyAlert.Status.CLOSED, closed_at=now(), closed_reason="cartridge replaced"
    )
    services.order_lines_close_for_supply(ctx=ctx, supply_id=supply.pk)


def _alert_raise(
    ctx: TenantContext,
    device: Device,
    supply: Supply,
    result: fc.Forecast,
    reason: str,
    product: Product | None,
    policy: catalog_services.EffectivePolicy,
) -> None:
    if SupplyAlert.unscoped.filter(supply=supply).exclude(status="closed").exists():
        return
    try:
        with transaction.atomic():
            alert = SupplyAlert.unscoped.create(
                reseller_id=device.reseller_id,
                supply=supply,
                device=device,
                customer_id=device.customer_id,
                reason=reason,
                percent=supply.percent,
                days_to_empty=result.days_to_empty,
            )
    except IntegrityError:
        return  # another evaluation raised it first: one open alert per supply
    alert_id = alert.pk
    transaction.on_commit(lambda: _alert_enqueue(alert_id))
    if policy.mode != ReorderPolicy.Mode.ALERT and product is not None:
        _order_automatic(ctx, device, supply, product, policy)


def _order_automatic(
    ctx: TenantContext,
    device: Device,
    supply: Supply,
    product: Product,
    policy: catalog_services.EffectivePolicy,
) -> None:
    if OrderLine.unscoped.filter(supply=supply, is_open=True).exists():
        return
    try:
        with transaction.atomic():
            services.order_create(
                ctx=ctx,
                site_id=device.site_id,
                lines=[services.LineIn(product_id=product.pk, supply_id=supply.pk)],
                source=Order.Source.AUTOMATIC,
                note=f"Reorder policy: {supply.description or supply.supply_key} on {device}.",
                submit=policy.mode == ReorderPolicy.Mode.SUBMIT,
            )
    except ConflictError:
        return  # someone ordered it meanwhile


def _alert_enqueue(alert_id: int) -> None:
    from orders.tasks import supply_alert_notify_task

    try:
        supply_alert_notify_task.apply_async(kwargs={"alert_id": alert_id}, retry=False)
    except Exception:  # the sweep notifies it later
        log.warning("supply alert %s left to the sweep", alert_id, exc_info=True)


def supply_alert_notify(*, alert_id: int) -> bool:
    """Email the customer's supply contacts and the reseller's support inbox, once: the
    conditional UPDATE armed -> sent is the claim, in the transaction that logs the emails."""
    with transaction.atomic():
        # System code: the alert names its tenant; the claim is on its primary key.
        claimed = SupplyAlert.unscoped.filter(pk=alert_id, status=SupplyAlert.Status.ARMED).update(
            status=SupplyAlert.Status.SENT, sent_at=now()
        )
        if claimed != 1:
            return False
        alert = SupplyAlert.unscoped.select_related(
            "supply", "device", "device__site", "customer", "reseller"
        ).get(pk=alert_id)
        forecast = SupplyForecast.unscoped.filter(supply_id=alert.supply_id).first()
        kind = (
            EmailLog.Kind.PRINTER_CRITICAL
            if alert.reason == SupplyAlert.Reason.CRITICAL
            else EmailLog.Kind.SUPPLY_LOW
        )
        site = alert.device.site
        recipients = [site.contact_email] if site.contact_email else []
        recipients += email_services.customer_recipients(
            reseller_id=alert.reseller_id, customer_id=alert.customer_id, kind=kind
        )
        reseller: Reseller = alert.reseller
        if reseller.support_email:
            recipients.append(reseller.support_email)
        supply = alert.supply
        label = supply.description or supply.color or supply.supply_key
        context = {
            "alert": alert,
            "supply": supply,
            "device": alert.device,
            "site": site,
            "customer": alert.customer,
            "reseller": reseller,
            "forecast": forecast,
            "url": settings.SITE_URL + reverse("order-create") + f"?supply_id={supply.pk}",
        }
        email_services.emails_queue(
            reseller_id=alert.reseller_id,
            customer_id=alert.customer_id,
            recipients=recipients,
            kind=kind,
            template="orders/email/supply_alert.txt",
            context=context,
            subject=f"[Inkmeter] {label} low on {alert.device} ({site.name})",
            supply_alert=alert,
        )
    return True


def supply_alert_rearm(*, ctx: TenantContext, alert_id: int) -> SupplyAlert:
    """Close a sent alert so that the next evaluation at the reorder point emails again."""
    require(ctx, ORDERING_ROLES, "re-arm alerts")
    with transaction.atomic():
        alert = SupplyAlert.objects.for_tenant(ctx).select_for_update().filter(pk=alert_id).first()
        if alert is None:
            raise NotFoundError("No such alert.")
        if alert.status != SupplyAlert.Status.SENT:
            raise ConflictError(
                f"This alert is {alert.get_status_display().lower()}; only a sent alert can be "
                "re-armed.",
                code="alert_not_sent",
            )
        alert.status = SupplyAlert.Status.CLOSED
        alert.closed_at = now()
        alert.closed_reason = f"re-armed by {ctx.user.email if ctx.user else ctx.role}"
        alert.save(update_fields=["status", "closed_at", "closed_reason"])
        # The supply is due a fresh look: its evaluation date goes back so the sweep takes it.
        SupplyForecast.objects.for_tenant(ctx).filter(supply_id=alert.supply_id).update(
            evaluated_observed_at=F("evaluated_observed_at") - timedelta(seconds=1)
        )
        device_id = alert.device_id
        transaction.on_commit(lambda: supplies_evaluate_enqueue(device_ids=[device_id]))
    return alert


# --- Triggers ---------------------------------------------------------------------------------


def supplies_pending(*, customer_id: int | None = None, limit: int = SWEEP_DEVICES) -> list[int]:
    """Devices with a supply whose latest reading is newer than its last evaluation."""
    # Across tenants (the sweep) or for one customer (after a batch): system code.
    qs = Supply.unscoped.filter(
        Q(forecast__isnull=True) | Q(observed_at__gt=F("forecast__evaluated_observed_at"))
    )
    if customer_id is not None:
        qs = qs.filter(device__customer_id=customer_id)
    ids = qs.order_by("device_id").values_list("device_id", flat=True).distinct()
    return list(ids[:limit])


def supplies_evaluate_pending(*, customer_id: int | None = None) -> int:
    return supplies_evaluate(device_ids=supplies_pending(customer_id=customer_id))


def supplies_evaluate_enqueue(
    *, device_ids: list[int] | None = None, customer_id: int | None = None
) -> None:
    """Schedule an evaluation once the caller commits; a lost task costs only latency, since
    the beat sweep finds the same supplies."""

    def enqueue() -> None:
        from orders.tasks import supplies_evaluate_pending_task, supplies_evaluate_task

        try:
            if device_ids is not None:
                supplies_evaluate_task.apply_async(kwargs={"device_ids": device_ids}, retry=False)
            else:
                supplies_evaluate_pending_task.apply_async(
                    kwargs={"customer_id": customer_id}, retry=False
                )
        except Exception:  # left to supplies_evaluate_sweep
            log.warning("supply evaluation left to the sweep", exc_info=True)

    transaction.on_commit(enqueue)


def supply_alerts_notify_sweep(*, older_than_seconds: int = 120, limit: int = 500) -> int:
    """Armed alerts whose notification task was lost."""
    cutoff = now() - timedelta(seconds=older_than_seconds)
    pending = list(
        SupplyAlert.unscoped.filter(status=SupplyAlert.Status.ARMED, created_at__lte=cutoff)
        .order_by("pk")
        .values_list("pk", flat=True)[:limit]
    )
    return sum(supply_alert_notify(alert_id=pk) for pk in pending)
