"""Orders: placing them (from the catalog, from suggestions, or by the reorder policy), the
one transition map they move through, and the events and emails each step leaves.

The catalog, policies and preferences are in orders/catalog_services.py, emails in
orders/email_services.py, and the work that follows telemetry in orders/supply_services.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils.timezone import now
from django.utils.translation import gettext as _

from accounts.models import Site
from accounts.services import audit_record
from devices.models import Supply
from integrations.models import Event
from integrations.services import webhook_emit
from orders.catalog_services import policy_effective
from orders.email_services import customer_recipients, emails_queue, opted_out
from orders.models import (
    LINE_CLOSING_STATUSES,
    ORDER_TRANSITIONS,
    EmailLog,
    Order,
    OrderEvent,
    OrderLine,
    Product,
    SupplyForecast,
)
from orders.roles import APPROVER_ROLES, ORDERING_ROLES, SUPPORT_ROLES, actor, require
from portal import money
from portal.errors import ConflictError, DomainError, NotFoundError, PermissionDeniedError
from portal.tenancy import Role, TenantContext

S = Order.Status
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
    require(ctx, ORDERING_ROLES, _("place orders"))
    if not lines:
        raise DomainError(_("An order needs at least one product."), code="order_empty")
    site = Site.objects.for_tenant(ctx).select_related("customer").filter(pk=site_id).first()
    if site is None:
        raise NotFoundError(_("No such site."))
    product_ids = {line.product_id for line in lines}
    products = {
        p.pk: p for p in Product.objects.for_tenant(ctx).filter(pk__in=product_ids, is_active=True)
    }
    if set(products) != product_ids:
        raise NotFoundError(_("A product is not in the catalog."))
    currencies = {p.currency for p in products.values()}
    if len(currencies) != 1:
        raise DomainError(_("One order, one currency: order these products separately."))
    supply_ids = {line.supply_id for line in lines if line.supply_id is not None}
    supplies = set(
        Supply.objects.for_tenant(ctx)
        .filter(pk__in=supply_ids, device__customer_id=site.customer_id)
        .values_list("pk", flat=True)
    )
    if supplies != supply_ids:
        raise NotFoundError(_("A supply is not one of this customer's."))
    for line in lines:
        if line.quantity < 1 or line.quantity > 999:
            raise DomainError(
                _("Quantities are between 1 and 999."), fields={"quantity": [_("1 to 999.")]}
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
            placed_by=actor(ctx),
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
        _("This supply is already being replenished by %(number)s; nothing was ordered twice.")
        % {"number": number},
        code="replenishment_on_order",
    )


def _event(ctx: TenantContext, order: Order, old: str, new: str, note: str) -> OrderEvent:
    user = actor(ctx)
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
        raise NotFoundError(_("No such order."))
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
        raise DomainError(
            _("%(to)s is not an order status.") % {"to": repr(to)}, code="status_unknown"
        ) from None
    with transaction.atomic():
        order = Order.objects.for_tenant(ctx).select_for_update().filter(pk=order_id).first()
        if order is None:
            raise NotFoundError(_("No such order."))
        current = S(order.status)
        if target not in ORDER_TRANSITIONS[current]:
            allowed = ", ".join(sorted(str(s.label) for s in ORDER_TRANSITIONS[current])) or _(
                "none"
            )
            raise ConflictError(
                _(
                    "Order %(number)s is %(lower)s; it cannot become %(lower2)s "
                    "(possible next steps: %(allowed)s)."
                )
                % {
                    "number": order.number,
                    "lower": current.label.lower(),
                    "lower2": target.label.lower(),
                    "allowed": allowed,
                },
                code="transition_not_allowed",
            )
        if ctx.role not in TRANSITION_ROLES[target]:
            raise PermissionDeniedError(
                _("Your role may not mark an order %(lower)s.") % {"lower": target.label.lower()}
            )
        if target == S.CANCELLED and ctx.is_customer and current not in CUSTOMER_CANCELLABLE:
            raise PermissionDeniedError(
                _("Order %(number)s is %(lower)s: ask your reseller to cancel.")
                % {"number": order.number, "lower": current.label.lower()}
            )
        if current == S.PENDING_APPROVAL and target == S.SUBMITTED:
            require(ctx, APPROVER_ROLES, _("approve orders"))
        if target == S.SUBMITTED and current == S.DRAFT and ctx.role in UNTRUSTED_SUBMITTERS:
            policy = policy_effective(ctx=ctx, customer_id=order.customer_id)
            if policy.requires_approval:
                raise ConflictError(
                    _("Orders of your company need a customer admin's approval."),
                    code="approval_required",
                )
        fields = ["status", "updated_at"]
        if target == S.SHIPPED:
            carrier, tracking_number = carrier.strip(), tracking_number.strip()
            if not carrier or not tracking_number:
                raise DomainError(
                    _("A shipment needs a carrier and a tracking number."),
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
        if target in WEBHOOK_EVENTS:
            webhook_emit(
                reseller_id=order.reseller_id,
                event=WEBHOOK_EVENTS[target],
                data=lambda: {"order": order_webhook_data(order)},
            )
    return order


# An order is placed when it reaches the reseller (straight away, or once a customer admin
# approved it); each status is reached at most once (ORDER_TRANSITIONS).
WEBHOOK_EVENTS = {S.SUBMITTED: Event.ORDER_PLACED, S.SHIPPED: Event.ORDER_SHIPPED}


def order_webhook_data(order: Order) -> dict[str, Any]:
    lines = order.lines.select_related("product").order_by("pk")
    return {
        "id": order.pk,
        "number": order.number,
        "status": order.status,
        "source": order.source,
        "customer": order.customer_id,
        "site": order.site_id,
        "currency": order.currency,
        "carrier": order.carrier,
        "tracking_number": order.tracking_number,
        "lines": [
            {
                "sku": line.product.sku,
                "name": line.product.name,
                "quantity": line.quantity,
                "unit_price": line.unit_price,
                "line_total": line.line_total,
                "supply": line.supply_id,
            }
            for line in lines
        ],
    }


def _order_notify(order: Order, status: S, note: str) -> None:
    if status not in CUSTOMER_NOTIFIED:
        return
    kind = EmailLog.Kind.ORDER_STATUS
    roles = [Role.CUSTOMER_ADMIN] if status == S.PENDING_APPROVAL else None
    recipients = customer_recipients(
        reseller_id=order.reseller_id, customer_id=order.customer_id, kind=kind, roles=roles
    )
    placer = order.placed_by
    if placer is not None and placer.pk not in opted_out(order.reseller_id, kind):
        recipients.append(placer.email)
    reseller = order.reseller
    if status == S.SUBMITTED and reseller.support_email:
        recipients.append(reseller.support_email)
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
        subject=lambda: (
            _("[Inkmeter] Order %(number)s: %(status)s")
            % {"number": order.number, "status": str(status.label).lower()}
        ),
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
    for _line_id, order_id in open_lines:
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
        raise DomainError(_("Choose at least one supply."), code="order_empty")
    rows = list(
        SupplyForecast.objects.for_tenant(ctx)
        .filter(supply_id__in=supply_ids, product__isnull=False)
        .values_list("supply_id", "product_id", "supply__device__site_id")
    )
    if len(rows) != len(set(supply_ids)):
        raise NotFoundError(_("A chosen supply has no catalog product yet."))
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
