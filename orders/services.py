"""Every write of the orders app that a person asks for: catalog, mappings, policies,
preferences, orders and their transitions, and the emails they send.

The work that follows telemetry (forecasts, replacements, low-supply alerts) is in
orders/supply_services.py.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.template.loader import render_to_string
from django.utils.timezone import now

from accounts.models import Customer, Membership, Site, User
from accounts.services import audit_record
from devices.models import Supply
from orders.models import (
    LINE_CLOSING_STATUSES,
    ORDER_TRANSITIONS,
    EmailLog,
    NotificationPreference,
    Order,
    OrderEvent,
    OrderLine,
    Product,
    ReorderPolicy,
    SupplyAlert,
    SupplyForecast,
    SupplyProductMapping,
)
from portal import money
from portal.errors import ConflictError, DomainError, NotFoundError, PermissionDeniedError
from portal.tenancy import CUSTOMER_ROLES, Role, TenantContext

S = Order.Status
CATALOG_ROLES = frozenset({Role.OPERATOR, Role.RESELLER_ADMIN, Role.SYSTEM})
SUPPORT_ROLES = frozenset({Role.OPERATOR, Role.RESELLER_ADMIN, Role.RESELLER_SUPPORT, Role.SYSTEM})
ORDERING_ROLES = SUPPORT_ROLES | CUSTOMER_ROLES
APPROVER_ROLES = frozenset({Role.CUSTOMER_ADMIN, Role.RESELLER_ADMIN, Role.OPERATOR})
# Who may take each step of ORDER_TRANSITIONS.
TRANSITION_ROLES: dict[Order.Status, frozenset[Role]] = {
    S.PENDING_APPROVAL: ORDERING_ROLES,
    S.SUBMITTED: ORDERING_ROLES,
    S.REJECTED: APPROVER_ROLES,
    S.ACCEPTED: SUPPORT_ROLES,
    S.SHIPPED: SUPPORT_ROLES,
    S.DELIVERED: SUPPORT_ROLES,
    S.CANCELLED: ORDERING_ROLES,
}
# Customers may cancel until the reseller accepts; after that only the reseller can.
CUSTOMER_CANCELLABLE = frozenset({S.DRAFT, S.PENDING_APPROVAL, S.SUBMITTED})
# Whose orders wait for a customer admin when the customer's policy asks for approval: buyers,
# and orders the reorder policy places on its own.
UNTRUSTED_SUBMITTERS = frozenset({Role.CUSTOMER_BUYER, Role.SYSTEM})
# The steps a customer hears about by email.
CUSTOMER_NOTIFIED = frozenset(
    {S.PENDING_APPROVAL, S.SUBMITTED, S.ACCEPTED, S.SHIPPED, S.DELIVERED, S.CANCELLED, S.REJECTED}
)


def _require(ctx: TenantContext, roles: Iterable[Role], what: str) -> None:
    if ctx.role not in roles:
        raise PermissionDeniedError(f"Your role does not allow you to {what}.")


def _actor(ctx: TenantContext) -> User | None:
    return ctx.user if ctx.user is not None and ctx.user.pk else None


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
        raise DomainError(f"Unknown fields: {', '.join(sorted(unknown))}.")
    errors: dict[str, list[str]] = {}
    for key in ("sku", "part_number", "name", "color"):
        if key in fields:
            fields[key] = " ".join(str(fields[key]).split())
    if "color" in fields:
        fields["color"] = fields["color"].lower()
    if "sku" in fields and not fields["sku"]:
        errors["sku"] = ["This field is required."]
    if "name" in fields and not fields["name"]:
        errors["name"] = ["This field is required."]
    if "price" in fields and (not isinstance(fields["price"], Decimal) or fields["price"] < 0):
        errors["price"] = ["A price is a positive decimal amount."]
    if "currency" in fields:
        fields["currency"] = str(fields["currency"]).upper()
        if fields["currency"] not in money.CURRENCIES:
            errors["currency"] = [f"One of {', '.join(money.CURRENCIES)}."]
        elif "price" in fields and not errors.get("price"):
            fields["price"] = money.round_money(fields["price"], fields["currency"])
    if "compatible_models" in fields:
        models = fields["compatible_models"]
        if isinstance(models, str):
            models = models.splitlines()
        fields["compatible_models"] = sorted({" ".join(m.split()) for m in models if m.strip()})
    if "kind" in fields and fields["kind"] not in Product.Kind.values:
        errors["kind"] = ["Not a supply kind."]
    if errors:
        raise DomainError("The product is not valid.", fields=errors)
    return fields


def product_create(*, ctx: TenantContext, **fields: Any) -> Product:
    _require(ctx, CATALOG_ROLES, "change the catalog")
    fields = _product_clean(fields)
    if "sku" not in fields or "name" not in fields or "price" not in fields:
        raise DomainError("A product needs a SKU, a name and a price.")
    with transaction.atomic():
        if Product.objects.for_tenant(ctx).filter(sku__iexact=fields["sku"]).exists():
            raise ConflictError(
                f"A product with SKU {fields['sku']!r} exists already.",
                code="sku_taken",
                fields={"sku": ["Already in the catalog."]},
            )
        product = Product.objects.for_tenant(ctx).create(reseller_id=ctx.reseller_id, **fields)
        audit_record(ctx=ctx, action="product.create", obj=product, detail={"sku": product.sku})
    return product


def product_update(*, ctx: TenantContext, product_id: int, **fields: Any) -> Product:
    _require(ctx, CATALOG_ROLES, "change the catalog")
    fields = _product_clean(fields)
    with transaction.atomic():
        product = Product.objects.for_tenant(ctx).select_for_update().filter(pk=product_id).first()
        if product is None:
            raise NotFoundError("No such product.")
        if "sku" in fields and (
            Product.objects.for_tenant(ctx)
            .filter(sku__iexact=fields["sku"])
            .exclude(pk=product.pk)
            .exists()
        ):
            raise ConflictError(
                f"A product with SKU {fields['sku']!r} exists already.",
                code="sku_taken",
                fields={"sku": ["Already in the catalog."]},
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
    _require(ctx, SUPPORT_ROLES, "map supplies to products")
    supply = Supply.objects.for_tenant(ctx).select_related("device").filter(pk=supply_id).first()
    product = Product.objects.for_tenant(ctx).filter(pk=product_id, is_active=True).first()
    if supply is None:
        raise NotFoundError("No such supply.")
    if product is None:
        raise NotFoundError("No such product in the catalog.")
    with transaction.atomic():
        mapping, _ = SupplyProductMapping.objects.for_tenant(ctx).update_or_create(
            reseller_id=ctx.reseller_id,
            part_number=supply.part_number,
            device_model=supply.device.model,
            kind=supply.kind,
            color=supply.color,
            defaults={"product": product, "created_by": _actor(ctx), "created_at": now()},
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
    rows = {
        p.device_id: p
        for p in ReorderPolicy.objects.for_tenant(ctx).filter(
            Q(device__isnull=True) | Q(device_id=device_id), customer_id=customer_id
        )
    }
    customer_row = rows.get(None)
    row = rows.get(device_id) if device_id is not None else None
    row = row or customer_row
    if row is None:
        return DEFAULT_POLICY
    return EffectivePolicy(
        threshold_percent=row.threshold_percent,
        lead_time_days=row.lead_time_days,
        mode=row.mode,
        requires_approval=customer_row.requires_approval if customer_row else False,
        policy_id=row.pk,
    )


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
        _require(ctx, {Role.CUSTOMER_ADMIN}, "change reorder policies")
    else:
        _require(ctx, SUPPORT_ROLES, "change reorder policies")
    errors: dict[str, list[str]] = {}
    if not 0 <= threshold_percent <= 100:
        errors["threshold_percent"] = ["Between 0 and 100."]
    if not 0 <= lead_time_days <= 365:
        errors["lead_time_days"] = ["Between 0 and 365 days."]
    if mode not in ReorderPolicy.Mode.values:
        errors["mode"] = ["Alert, draft or submit."]
    if errors:
        raise DomainError("The policy is not valid.", fields=errors)
    customer = Customer.objects.for_tenant(ctx).filter(pk=customer_id).first()
    if customer is None:
        raise NotFoundError("No such customer.")
    if device_id is not None:
        from devices.models import Device

        if not Device.objects.for_tenant(ctx).filter(pk=device_id, customer=customer).exists():
            raise NotFoundError("No such device.")
    with transaction.atomic():
        policy, _ = ReorderPolicy.objects.for_tenant(ctx).update_or_create(
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
    _require(ctx, SUPPORT_ROLES | {Role.CUSTOMER_ADMIN}, "change reorder policies")
    with transaction.atomic():
        policy = ReorderPolicy.objects.for_tenant(ctx).filter(pk=policy_id).first()
        if policy is None:
            raise NotFoundError("No such policy.")
        if policy.device_id is None:
            raise DomainError(
                "The customer policy stays; change its values instead.", code="policy_required"
            )
        audit_record(ctx=ctx, action="policy.delete", obj=policy)
        policy.delete()


# --- Notification preferences -----------------------------------------------------------------


def preference_set(*, ctx: TenantContext, kind: str, is_enabled: bool) -> NotificationPreference:
    if ctx.user is None or not ctx.user.pk:
        raise PermissionDeniedError("Only a signed-in user has preferences.")
    if kind not in EmailLog.Kind.values:
        raise DomainError("No such kind of email.", fields={"kind": ["Unknown kind."]})
    preference, _ = NotificationPreference.objects.for_tenant(ctx).update_or_create(
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


def _opted_out(reseller_id: int, kind: str) -> set[int]:
    # Read inside services for a task's recipients: the reseller is the task's own tenant.
    return set(
        NotificationPreference.unscoped.filter(
            reseller_id=reseller_id, kind=kind, is_enabled=False
        ).values_list("user_id", flat=True)
    )


def customer_recipients(
    *, reseller_id: int, customer_id: int, kind: str, roles: Iterable[str] | None = None
) -> list[str]:
    """The customer's users who receive `kind` (everyone unless they opted out)."""
    roles = list(roles or CUSTOMER_ROLES)
    # System code for a task's tenant: memberships of one customer of the reseller.
    users = Membership.unscoped.filter(
        reseller_id=reseller_id, customer_id=customer_id, role__in=roles, user__is_active=True
    ).values_list("user_id", "user__email")
    out = _opted_out(reseller_id, kind)
    return [email for user_id, email in users if user_id not in out]


# --- Email ------------------------------------------------------------------------------------


def emails_queue(
    *,
    reseller_id: int,
    customer_id: int | None,
    recipients: Sequence[str],
    kind: str,
    template: str,
    context: dict[str, Any],
    subject: str,
    order: Order | None = None,
    supply_alert: SupplyAlert | None = None,
) -> list[EmailLog]:
    """Log one email per recipient and send them once the caller's transaction commits."""
    body = render_to_string(template, context)
    unique = list(dict.fromkeys(r.strip().lower() for r in recipients if r and r.strip()))
    # Written by services for their own tenant (a request's or a task's).
    emails = EmailLog.unscoped.bulk_create(
        [
            EmailLog(
                reseller_id=reseller_id,
                customer_id=customer_id,
                recipient=recipient,
                subject=subject[:255],
                body=body,
                kind=kind,
                order=order,
                supply_alert=supply_alert,
            )
            for recipient in unique
        ]
    )
    ids = [e.pk for e in emails]
    if ids:
        transaction.on_commit(lambda: _emails_enqueue(ids))
    return emails


def _emails_enqueue(email_ids: list[int]) -> None:
    from orders.tasks import emails_send_task

    try:
        emails_send_task.apply_async(kwargs={"email_ids": email_ids}, retry=False)
    except Exception:  # the broker is down: emails_send_sweep sends them later
        import logging

        logging.getLogger(__name__).warning("emails %s left to the sweep", email_ids)


def emails_send(*, email_ids: list[int]) -> int:
    """Send logged emails, each once: a conditional UPDATE claims it before the SMTP call."""
    sent = 0
    for email_id in sorted(email_ids):
        # System code: the claim names the row; there is no tenant to scope by in a task.
        claimed = EmailLog.unscoped.filter(pk=email_id, status=EmailLog.Status.PENDING).update(
            status=EmailLog.Status.SENT, sent_at=now()
        )
        if claimed != 1:
            continue
        email = EmailLog.unscoped.get(pk=email_id)
        try:
            send_mail(
                subject=email.subject,
                message=email.body,
                from_email=None,
                recipient_list=[email.recipient],
            )
        except Exception as exc:  # logged on the row, shown in the portal
            EmailLog.unscoped.filter(pk=email_id).update(
                status=EmailLog.Status.FAILED, error=f"{type(exc).__name__}: {exc}"[:500]
            )
            continue
        sent += 1
    return sent


def emails_send_sweep(*, older_than_seconds: int = 120, limit: int = 500) -> int:
    """Emails logged but never sent (their task was lost)."""
    cutoff = now() - timedelta(seconds=older_than_seconds)
    pending = list(
        EmailLog.unscoped.filter(status=EmailLog.Status.PENDING, created_at__lte=cutoff)
        .order_by("pk")
        .values_list("pk", flat=True)[:limit]
    )
    return emails_send(email_ids=pending)


# --- Orders -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LineIn:
    product_id: int
    quantity: int = 1
    supply_id: int | None = None


def order_create(
    *,
    ctx: TenantContext,
    site_id: int,
    lines: Sequence[LineIn],
    source: str = Order.Source.CATALOG,
    note: str = "",
    submit: bool = False,
) -> Order:
    """A new order (a draft, or submitted at once). A supply already on an open order is
    refused: the database holds one open line per supply, whoever orders it."""
    _require(ctx, ORDERING_ROLES, "place orders")
    if not lines:
        raise DomainError("An order needs at least one product.", code="order_empty")
    site = Site.objects.for_tenant(ctx).select_related("customer").filter(pk=site_id).first()
    if site is None:
        raise NotFoundError("No such site.")
    product_ids = {line.product_id for line in lines}
    products = {
        p.pk: p for p in Product.objects.for_tenant(ctx).filter(pk__in=product_ids, is_active=True)
    }
    if set(products) != product_ids:
        raise NotFoundError("A product is not in the catalog.")
    currencies = {p.currency for p in products.values()}
    if len(currencies) != 1:
        raise DomainError("One order, one currency: order these products separately.")
    supply_ids = {line.supply_id for line in lines if line.supply_id is not None}
    supplies = set(
        Supply.objects.for_tenant(ctx)
        .filter(pk__in=supply_ids, device__customer_id=site.customer_id)
        .values_list("pk", flat=True)
    )
    if supplies != supply_ids:
        raise NotFoundError("A supply is not one of this customer's.")
    for line in lines:
        if line.quantity < 1 or line.quantity > 999:
            raise DomainError(
                "Quantities are between 1 and 999.", fields={"quantity": ["1 to 999."]}
            )
    currency = currencies.pop()
    with transaction.atomic():
        moment = now()
        order = Order.objects.for_tenant(ctx).create(
            reseller_id=ctx.reseller_id,
            customer_id=site.customer_id,
            site=site,
            source=source,
            currency=currency,
            note=note.strip(),
            placed_by=_actor(ctx),
            created_at=moment,
            updated_at=moment,
        )
        for line in lines:
            product = products[line.product_id]
            try:
                with transaction.atomic():
                    OrderLine.objects.for_tenant(ctx).create(
                        reseller_id=ctx.reseller_id,
                        order=order,
                        product=product,
                        supply_id=line.supply_id,
                        quantity=line.quantity,
                        unit_price=product.price,
                        line_total=money.round_money(product.price * line.quantity, currency),
                    )
            except IntegrityError as exc:
                raise _replenishment_taken(ctx, line.supply_id) from exc
        _event(ctx, order, "", S.DRAFT, "")
        audit_record(ctx=ctx, action="order.create", obj=order, detail={"lines": len(lines)})
    if submit:
        order = order_submit(ctx=ctx, order_id=order.pk)
    return order


def _replenishment_taken(ctx: TenantContext, supply_id: int | None) -> ConflictError:
    # System read: the other order may be one this user cannot see (another buyer's draft),
    # and only its number is told, never its content.
    existing = (
        OrderLine.unscoped.filter(supply_id=supply_id, is_open=True, reseller_id=ctx.reseller_id)
        .values_list("order_id", flat=True)
        .first()
    )
    number = f"ORD-{existing:06d}" if existing else "another order"
    return ConflictError(
        f"This supply is already being replenished by {number}; nothing was ordered twice.",
        code="replenishment_on_order",
    )


def _event(ctx: TenantContext, order: Order, old: str, new: str, note: str) -> OrderEvent:
    user = _actor(ctx)
    label = user.email if user is not None else f"{ctx.role.label}"
    return OrderEvent.objects.for_tenant(ctx).create(
        reseller_id=ctx.reseller_id,
        order=order,
        from_status=old,
        to_status=new,
        by=user,
        by_label=label,
        note=note[:500],
    )


def order_submit(*, ctx: TenantContext, order_id: int) -> Order:
    """Send a draft to the reseller, or to the customer admin first when approval is on and a
    buyer submits."""
    order = _order_for(ctx, order_id)
    policy = policy_effective(ctx=ctx, customer_id=order.customer_id)
    needs_approval = policy.requires_approval and ctx.role in UNTRUSTED_SUBMITTERS
    target = S.PENDING_APPROVAL if needs_approval else S.SUBMITTED
    return order_transition(ctx=ctx, order_id=order_id, to=target)


def _order_for(ctx: TenantContext, order_id: int) -> Order:
    order = Order.objects.for_tenant(ctx).filter(pk=order_id).first()
    if order is None:
        raise NotFoundError("No such order.")
    return order


def order_transition(
    *,
    ctx: TenantContext,
    order_id: int,
    to: str,
    note: str = "",
    carrier: str = "",
    tracking_number: str = "",
) -> Order:
    """Move an order along ORDER_TRANSITIONS, or refuse with a clear message and change
    nothing. Every move writes an OrderEvent and emails the customer."""
    try:
        target = S(to)
    except ValueError:
        raise DomainError(f"{to!r} is not an order status.", code="status_unknown") from None
    with transaction.atomic():
        order = Order.objects.for_tenant(ctx).select_for_update().filter(pk=order_id).first()
        if order is None:
            raise NotFoundError("No such order.")
        current = S(order.status)
        if target not in ORDER_TRANSITIONS[current]:
            allowed = ", ".join(sorted(s.label for s in ORDER_TRANSITIONS[current])) or "none"
            raise ConflictError(
                f"Order {order.number} is {current.label.lower()}; it cannot become "
                f"{target.label.lower()} (possible next steps: {allowed}).",
                code="transition_not_allowed",
            )
        if ctx.role not in TRANSITION_ROLES[target]:
            raise PermissionDeniedError(f"Your role may not mark an order {target.label.lower()}.")
        if target == S.CANCELLED and ctx.is_customer and current not in CUSTOMER_CANCELLABLE:
            raise PermissionDeniedError(
                f"Order {order.number} is {current.label.lower()}: ask your reseller to cancel."
            )
        if current == S.PENDING_APPROVAL and target == S.SUBMITTED:
            _require(ctx, APPROVER_ROLES, "approve orders")
        if target == S.SUBMITTED and current == S.DRAFT and ctx.role in UNTRUSTED_SUBMITTERS:
            policy = policy_effective(ctx=ctx, customer_id=order.customer_id)
            if policy.requires_approval:
                raise ConflictError(
                    "Orders of your company need a customer admin's approval.",
                    code="approval_required",
                )
        fields = ["status", "updated_at"]
        if target == S.SHIPPED:
            carrier, tracking_number = carrier.strip(), tracking_number.strip()
            if not carrier or not tracking_number:
                raise DomainError(
                    "A shipment needs a carrier and a tracking number.",
                    code="shipment_incomplete",
                    fields={
                        k: ["This field is required."]
                        for k, v in (("carrier", carrier), ("tracking_number", tracking_number))
                        if not v
                    },
                )
            order.carrier, order.tracking_number = carrier[:64], tracking_number[:128]
            fields += ["carrier", "tracking_number"]
        order.status = target
        order.updated_at = now()
        order.save(update_fields=fields)
        if target in LINE_CLOSING_STATUSES:
            OrderLine.objects.for_tenant(ctx).filter(order=order, is_open=True).update(
                is_open=False
            )
        _event(ctx, order, current, target, note)
        audit_record(
            ctx=ctx, action="order.transition", obj=order, detail={"from": current, "to": target}
        )
        _order_notify(order, target, note)
    return order


def _order_notify(order: Order, status: S, note: str) -> None:
    if status not in CUSTOMER_NOTIFIED:
        return
    kind = EmailLog.Kind.ORDER_STATUS
    roles = [Role.CUSTOMER_ADMIN] if status == S.PENDING_APPROVAL else None
    recipients = customer_recipients(
        reseller_id=order.reseller_id, customer_id=order.customer_id, kind=kind, roles=roles
    )
    placer = order.placed_by
    if placer is not None and placer.pk not in _opted_out(order.reseller_id, kind):
        recipients.append(placer.email)
    reseller = order.reseller
    if status == S.SUBMITTED and reseller.support_email:
        recipients.append(reseller.support_email)
    from django.urls import reverse

    context = {
        "order": order,
        "status": status,
        "note": note,
        "reseller": reseller,
        "lines": list(order.lines.select_related("product")),
        "url": settings.SITE_URL + reverse("order-detail", kwargs={"order_id": order.pk}),
    }
    emails_queue(
        reseller_id=order.reseller_id,
        customer_id=order.customer_id,
        recipients=recipients,
        kind=kind,
        template="orders/email/order_status.txt",
        context=context,
        subject=f"[Inkmeter] Order {order.number}: {status.label.lower()}",
        order=order,
    )


def order_lines_close_for_supply(*, ctx: TenantContext, supply_id: int) -> list[int]:
    """A cartridge was replaced: its open lines are done. Shipped orders whose lines are now
    all done are delivered. Returns the ids of the orders delivered."""
    delivered = []
    open_lines = list(
        OrderLine.objects.for_tenant(ctx)
        .filter(supply_id=supply_id, is_open=True, order__status=S.SHIPPED)
        .values_list("pk", "order_id")
    )
    for _, order_id in open_lines:
        order_transition(
            ctx=ctx,
            order_id=order_id,
            to=S.DELIVERED,
            note="The printer reports the new cartridge installed.",
        )
        delivered.append(order_id)
    return delivered


def order_next_steps(*, ctx: TenantContext, order: Order) -> list[Order.Status]:
    """The transitions this user may offer on the order page (order_transition decides)."""
    current = S(order.status)
    steps = []
    for target in sorted(ORDER_TRANSITIONS[current]):
        if ctx.role not in TRANSITION_ROLES[target]:
            continue
        if target == S.CANCELLED and ctx.is_customer and current not in CUSTOMER_CANCELLABLE:
            continue
        is_approval = current == S.PENDING_APPROVAL and target == S.SUBMITTED
        if is_approval and ctx.role not in APPROVER_ROLES:
            continue
        if current == S.DRAFT and target == S.PENDING_APPROVAL:
            continue  # order_submit chooses between approval and submission
        steps.append(S(target))
    return steps


def orders_from_suggestions(
    *, ctx: TenantContext, supply_ids: Sequence[int], submit: bool = False
) -> list[Order]:
    """One order per delivery site for the chosen low supplies, each with its matched product."""
    if not supply_ids:
        raise DomainError("Choose at least one supply.", code="order_empty")
    rows = list(
        SupplyForecast.objects.for_tenant(ctx)
        .filter(supply_id__in=supply_ids, product__isnull=False)
        .values_list("supply_id", "product_id", "supply__device__site_id")
    )
    if len(rows) != len(set(supply_ids)):
        raise NotFoundError("A chosen supply has no catalog product yet.")
    by_site: dict[int, list[LineIn]] = {}
    for supply_id, product_id, site_id in rows:
        by_site.setdefault(site_id, []).append(LineIn(product_id=product_id, supply_id=supply_id))
    with transaction.atomic():
        return [
            order_create(
                ctx=ctx,
                site_id=site_id,
                lines=lines,
                source=Order.Source.SUGGESTED,
                submit=submit,
            )
            for site_id, lines in sorted(by_site.items())
        ]
