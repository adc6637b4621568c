"""Writes of the catalog, the remembered supply mappings, reorder policies and email
preferences, with the rules around them."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils.timezone import now
from django.utils.translation import gettext as _

from accounts.models import Customer
from accounts.services import audit_record
from devices.models import Supply
from orders.models import (
    EmailLog,
    NotificationPreference,
    Product,
    ReorderPolicy,
    SupplyForecast,
    SupplyProductMapping,
)
from orders.roles import CATALOG_ROLES, SUPPORT_ROLES, actor, require
from portal import money
from portal.errors import ConflictError, DomainError, NotFoundError, PermissionDeniedError
from portal.tenancy import Role, TenantContext

# --- Catalog --------------------------------------------------------------------------------

PRODUCT_FIELDS = (
    "sku",
    "part_number",
    "name",
    "kind",
    "color",
    "rated_yield",
    "yield_unit",
    "compatible_models",
    "price",
    "currency",
    "is_active",
)


def _product_clean(fields: dict[str, Any]) -> dict[str, Any]:
    unknown = set(fields) - set(PRODUCT_FIELDS)
    if unknown:
        raise DomainError(_("Unknown fields: %(join)s.") % {"join": ", ".join(sorted(unknown))})
    errors: dict[str, list[str]] = {}
    for key in ("sku", "part_number", "name", "color"):
        if key in fields:
            fields[key] = " ".join(str(fields[key]).split())
    if "color" in fields:
        fields["color"] = fields["color"].lower()
    if "sku" in fields and not fields["sku"]:
        errors["sku"] = [_("This field is required.")]
    if "name" in fields and not fields["name"]:
        errors["name"] = [_("This field is required.")]
    if "price" in fields and (not isinstance(fields["price"], Decimal) or fields["price"] < 0):
        errors["price"] = [_("A price is a positive decimal amount.")]
    if "currency" in fields:
        fields["currency"] = str(fields["currency"]).upper()
        if fields["currency"] not in money.CURRENCIES:
            errors["currency"] = [_("One of %(join)s.") % {"join": ", ".join(money.CURRENCIES)}]
        elif "price" in fields and not errors.get("price"):
            fields["price"] = money.round_money(fields["price"], fields["currency"])
    if "compatible_models" in fields:
        models = fields["compatible_models"]
        if isinstance(models, str):
            models = models.splitlines()
        fields["compatible_models"] = sorted({" ".join(m.split()) for m in models if m.strip()})
    if "kind" in fields and fields["kind"] not in Product.Kind.values:
        errors["kind"] = [_("Not a supply kind.")]
    if errors:
        raise DomainError(_("The product is not valid."), fields=errors)
    return fields


def product_create(*, ctx: TenantContext, **fields: Any) -> Product:
    require(ctx, CATALOG_ROLES, _("change the catalog"))
    fields = _product_clean(fields)
    if "sku" not in fields or "name" not in fields or "price" not in fields:
        raise DomainError(_("A product needs a SKU, a name and a price."))
    with transaction.atomic():
        if Product.objects.for_tenant(ctx).filter(sku__iexact=fields["sku"]).exists():
            raise ConflictError(
                _("A product with SKU %(fields)s exists already.")
                % {"fields": repr(fields["sku"])},
                code="sku_taken",
                fields={"sku": [_("Already in the catalog.")]},
            )
        product = Product.objects.for_tenant(ctx).create(reseller_id=ctx.reseller_id, **fields)
        audit_record(ctx=ctx, action="product.create", obj=product, detail={"sku": product.sku})
    return product


def product_update(*, ctx: TenantContext, product_id: int, **fields: Any) -> Product:
    require(ctx, CATALOG_ROLES, _("change the catalog"))
    fields = _product_clean(fields)
    with transaction.atomic():
        product = Product.objects.for_tenant(ctx).select_for_update().filter(pk=product_id).first()
        if product is None:
            raise NotFoundError(_("No such product."))
        if "sku" in fields and (
            Product.objects.for_tenant(ctx)
            .filter(sku__iexact=fields["sku"])
            .exclude(pk=product.pk)
            .exists()
        ):
            raise ConflictError(
                _("A product with SKU %(fields)s exists already.")
                % {"fields": repr(fields["sku"])},
                code="sku_taken",
                fields={"sku": [_("Already in the catalog.")]},
            )
        if "price" in fields and "currency" not in fields:
            fields["price"] = money.round_money(fields["price"], product.currency)
        for key, value in fields.items():
            setattr(product, key, value)
        product.save(update_fields=list(fields))
        audit_record(ctx=ctx, action="product.update", obj=product, detail={"sku": product.sku})
    return product


def mapping_remember(
    *, ctx: TenantContext, supply_id: int, product_id: int
) -> SupplyProductMapping:
    """Map an unmatched supply to a product; every supply with the same signature (part
    number, device model, kind, colour) uses the answer from now on."""
    require(ctx, SUPPORT_ROLES, _("map supplies to products"))
    supply = Supply.objects.for_tenant(ctx).select_related("device").filter(pk=supply_id).first()
    product = Product.objects.for_tenant(ctx).filter(pk=product_id, is_active=True).first()
    if supply is None:
        raise NotFoundError(_("No such supply."))
    if product is None:
        raise NotFoundError(_("No such product in the catalog."))
    with transaction.atomic():
        mapping, _created = SupplyProductMapping.objects.for_tenant(ctx).update_or_create(
            reseller_id=ctx.reseller_id,
            part_number=supply.part_number,
            device_model=supply.device.model,
            kind=supply.kind,
            color=supply.color,
            defaults={"product": product, "created_by": actor(ctx), "created_at": now()},
        )
        # Supplies of this signature are matched again at their next evaluation; the ones
        # unmatched so far get the product now so the list of unmatched supplies shrinks.
        SupplyForecast.objects.for_tenant(ctx).filter(
            supply__part_number=supply.part_number,
            supply__device__model=supply.device.model,
            supply__kind=supply.kind,
            supply__color=supply.color,
            product__isnull=True,
        ).update(product=product, match=SupplyForecast.Match.MAPPING)
        audit_record(
            ctx=ctx,
            action="mapping.remember",
            obj=mapping,
            detail={"part_number": supply.part_number, "sku": product.sku},
        )
    return mapping


# --- Reorder policies -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EffectivePolicy:
    threshold_percent: int
    lead_time_days: int
    mode: str
    requires_approval: bool
    policy_id: int | None  # the row that applies (None: the defaults)


DEFAULT_POLICY = EffectivePolicy(
    threshold_percent=ReorderPolicy.DEFAULT_THRESHOLD,
    lead_time_days=ReorderPolicy.DEFAULT_LEAD_TIME_DAYS,
    mode=ReorderPolicy.Mode.ALERT,
    requires_approval=False,
    policy_id=None,
)


def policy_effective(
    *, ctx: TenantContext, customer_id: int, device_id: int | None = None
) -> EffectivePolicy:
    """The device's override, else the customer's policy, else the defaults; approval is
    always the customer's setting."""
    ids = [device_id] if device_id is not None else []
    return policies_effective(ctx=ctx, customer_id=customer_id, device_ids=ids).get(
        device_id, DEFAULT_POLICY
    )


def policies_effective(
    *, ctx: TenantContext, customer_id: int, device_ids: list[int]
) -> dict[int | None, EffectivePolicy]:
    """`policy_effective` of each device in one query, and of the customer under None."""
    rows = {
        p.device_id: p
        for p in ReorderPolicy.objects.for_tenant(ctx).filter(
            Q(device__isnull=True) | Q(device_id__in=device_ids), customer_id=customer_id
        )
    }
    customer_row = rows.get(None)

    def effective(row: ReorderPolicy | None) -> EffectivePolicy:
        if row is None:
            return DEFAULT_POLICY
        return EffectivePolicy(
            threshold_percent=row.threshold_percent,
            lead_time_days=row.lead_time_days,
            mode=row.mode,
            requires_approval=customer_row.requires_approval if customer_row else False,
            policy_id=row.pk,
        )

    policies: dict[int | None, EffectivePolicy] = {None: effective(customer_row)}
    for device_id in device_ids:
        policies[device_id] = effective(rows.get(device_id) or customer_row)
    return policies


def policy_set(
    *,
    ctx: TenantContext,
    customer_id: int,
    device_id: int | None = None,
    threshold_percent: int,
    lead_time_days: int,
    mode: str,
    requires_approval: bool = False,
) -> ReorderPolicy:
    """Create or change the customer's policy, or a device's override."""
    if ctx.is_customer:
        require(ctx, {Role.CUSTOMER_ADMIN}, "change reorder policies")
    else:
        require(ctx, SUPPORT_ROLES, _("change reorder policies"))
    errors: dict[str, list[str]] = {}
    if not 0 <= threshold_percent <= 100:
        errors["threshold_percent"] = [_("Between 0 and 100.")]
    if not 0 <= lead_time_days <= 365:
        errors["lead_time_days"] = [_("Between 0 and 365 days.")]
    if mode not in ReorderPolicy.Mode.values:
        errors["mode"] = [_("Alert, draft or submit.")]
    if errors:
        raise DomainError(_("The policy is not valid."), fields=errors)
    customer = Customer.objects.for_tenant(ctx).filter(pk=customer_id).first()
    if customer is None:
        raise NotFoundError(_("No such customer."))
    if device_id is not None:
        from devices.models import Device

        if not Device.objects.for_tenant(ctx).filter(pk=device_id, customer=customer).exists():
            raise NotFoundError(_("No such device."))
    with transaction.atomic():
        policy, _created = ReorderPolicy.objects.for_tenant(ctx).update_or_create(
            reseller_id=ctx.reseller_id,
            customer=customer,
            device_id=device_id,
            defaults={
                "threshold_percent": threshold_percent,
                "lead_time_days": lead_time_days,
                "mode": mode,
                "requires_approval": requires_approval if device_id is None else False,
                "updated_at": now(),
            },
        )
        audit_record(
            ctx=ctx,
            action="policy.set",
            obj=policy,
            detail={
                "device_id": device_id,
                "threshold_percent": threshold_percent,
                "lead_time_days": lead_time_days,
                "mode": mode,
            },
        )
    return policy


def policy_delete(*, ctx: TenantContext, policy_id: int) -> None:
    """Remove a device override (the customer policy applies again)."""
    require(ctx, SUPPORT_ROLES | {Role.CUSTOMER_ADMIN}, "change reorder policies")
    with transaction.atomic():
        policy = ReorderPolicy.objects.for_tenant(ctx).filter(pk=policy_id).first()
        if policy is None:
            raise NotFoundError(_("No such policy."))
        if policy.device_id is None:
            raise DomainError(
                _("The customer policy stays; change its values instead."), code="policy_required"
            )
        audit_record(ctx=ctx, action="policy.delete", obj=policy)
        policy.delete()


# --- Notification preferences -----------------------------------------------------------------


def preference_set(*, ctx: TenantContext, kind: str, is_enabled: bool) -> NotificationPreference:
    if ctx.user is None or not ctx.user.pk:
        raise PermissionDeniedError(_("Only a signed-in user has preferences."))
    if kind not in EmailLog.NOTIFICATION_KINDS:
        raise DomainError(_("No such kind of email."), fields={"kind": [_("Unknown kind.")]})
    preference, _created = NotificationPreference.objects.for_tenant(ctx).update_or_create(
        reseller_id=ctx.reseller_id,
        user=ctx.user,
        kind=kind,
        defaults={"is_enabled": is_enabled},
    )
    return preference


def preferences_set(*, ctx: TenantContext, choices: dict[str, bool]) -> None:
    with transaction.atomic():
        for kind, is_enabled in sorted(choices.items()):
            preference_set(ctx=ctx, kind=kind, is_enabled=bool(is_enabled))
