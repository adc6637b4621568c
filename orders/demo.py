"""Demo data of the orders app: a catalog that fits the simulated fleet, a reorder policy, and
an order in every state, made through the services like a real tenant's (so events, audit rows
and emails exist too). Safe to run again: what exists is left alone."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.db import transaction

from accounts import selectors as account_selectors
from accounts.models import Reseller
from orders import catalog_services, selectors, services, supply_services
from orders.models import Order
from portal.tenancy import Role, TenantContext

M611 = "HP LaserJet Enterprise M611"
HL6210 = "Brother HL-L6210DW"
M554 = "HP Color LaserJet Enterprise M554"
T830 = "HP DesignJet T830"

# sku, part number, name, kind, colour, rated yield, unit, models, price
CATALOG: list[tuple[str, str, str, str, str, int, str, list[str], str]] = [
    (
        "HP-147X",
        "W1470X",
        "HP 147X black toner",
        "toner",
        "black",
        25200,
        "pages",
        [M611],
        "279.00",
    ),
    (
        "BR-TN3610",
        "TN3610",
        "Brother TN-3610 black toner",
        "toner",
        "black",
        18000,
        "pages",
        [HL6210],
        "139.00",
    ),
    ("BR-DR3600", "DR3600", "Brother DR-3600 drum", "drum", "", 75000, "pages", [HL6210], "99.00"),
    (
        "HP-212X-K",
        "W2120X",
        "HP 212X black toner",
        "toner",
        "black",
        13000,
        "pages",
        [M554],
        "189.00",
    ),
    (
        "HP-212X-C",
        "W2121X",
        "HP 212X cyan toner",
        "toner",
        "cyan",
        10000,
        "pages",
        [M554],
        "239.00",
    ),
    (
        "HP-212X-Y",
        "W2122X",
        "HP 212X yellow toner",
        "toner",
        "yellow",
        10000,
        "pages",
        [M554],
        "239.00",
    ),
    (
        "HP-212X-M",
        "W2123X",
        "HP 212X magenta toner",
        "toner",
        "magenta",
        10000,
        "pages",
        [M554],
        "239.00",
    ),
    ("HP-712-C", "3ED67A", "HP 712 130-ml cyan ink", "ink", "cyan", 130, "ml", [T830], "89.00"),
    (
        "HP-712-M",
        "3ED68A",
        "HP 712 130-ml magenta ink",
        "ink",
        "magenta",
        130,
        "ml",
        [T830],
        "89.00",
    ),
    ("HP-712-Y", "3ED69A", "HP 712 130-ml yellow ink", "ink", "yellow", 130, "ml", [T830], "89.00"),
    (
        "HP-712-MK",
        "3ED71A",
        "HP 712 80-ml matte black ink",
        "ink",
        "matte black",
        80,
        "ml",
        [T830],
        "69.00",
    ),
]

# The path an order takes to each state, from a draft.
PATHS: dict[str, list[str]] = {
    "draft": [],
    "pending_approval": ["pending_approval"],
    "submitted": ["submitted"],
    "accepted": ["submitted", "accepted"],
    "shipped": ["submitted", "accepted", "shipped"],
    "delivered": ["submitted", "accepted", "shipped", "delivered"],
    "cancelled": ["submitted", "cancelled"],
    "rejected": ["pending_approval", "rejected"],
}


def seed_demo_catalog(ctx: TenantContext, *, currency: str = "EUR") -> int:
    """The demo catalog's products that the reseller lacks; returns how many it created."""
    existing = set(selectors.product_list(ctx=ctx).values_list("sku", flat=True))
    created = 0
    for sku, part, name, kind, color, rated, unit, models, price in CATALOG:
        if sku in existing:
            continue
        catalog_services.product_create(
            ctx=ctx,
            sku=sku,
            part_number=part,
            name=name,
            kind=kind,
            color=color,
            rated_yield=rated,
            yield_unit=unit,
            compatible_models=models,
            price=Decimal(price),
            currency=currency,
        )
        created += 1
    return created


def seed_demo_supplies(reseller: Reseller) -> dict[str, int]:
    """Catalog, a customer policy, an order in every state and a first evaluation of the
    reseller's supplies. Returns what it created, by kind."""
    system = TenantContext.system(reseller=reseller)
    created = {"products": 0, "policies": 0, "orders": 0, "supplies_evaluated": 0}
    with transaction.atomic():
        created["products"] = seed_demo_catalog(system)
        customers = list(account_selectors.customer_list(ctx=system, search=""))
        if not customers:
            return created
        customer = customers[0]
        if not selectors.policy_list(ctx=system, customer_id=customer.pk).exists():
            catalog_services.policy_set(
                ctx=system,
                customer_id=customer.pk,
                threshold_percent=15,
                lead_time_days=7,
                mode="alert",
                requires_approval=True,
            )
            created["policies"] += 1
        if not selectors.order_list(ctx=system).rows.exists():
            created["orders"] = _orders_in_every_state(reseller, customer.pk)
    device_ids = list(selectors.device_choices(ctx=system).values_list("pk", flat=True))
    created["supplies_evaluated"] = supply_services.supplies_evaluate(device_ids=device_ids)
    return created


def _orders_in_every_state(reseller: Reseller, customer_id: int) -> int:
    system = TenantContext.system(reseller=reseller)
    sites = list(selectors.site_choices(ctx=system).filter(customer_id=customer_id))
    products = list(selectors.product_list(ctx=system, is_active=True)[:4])
    if not sites or not products:
        return 0
    people = _people(system, customer_id)
    buyer = people.get(Role.CUSTOMER_BUYER) or people.get(Role.CUSTOMER_ADMIN)
    admin = people.get(Role.CUSTOMER_ADMIN) or buyer
    staff = people.get(Role.RESELLER_SUPPORT) or people.get(Role.RESELLER_ADMIN)
    customer = sites[0].customer

    def as_(role: Role, user: Any) -> TenantContext:
        if user is None:
            return system
        is_customer = role in (Role.CUSTOMER_ADMIN, Role.CUSTOMER_BUYER)
        return TenantContext(
            reseller=reseller, role=role, user=user, customer=customer if is_customer else None
        )

    who = {
        "pending_approval": as_(Role.CUSTOMER_BUYER, buyer),
        "submitted": as_(Role.CUSTOMER_ADMIN, admin),
        "rejected": as_(Role.CUSTOMER_ADMIN, admin),
        "cancelled": as_(Role.CUSTOMER_ADMIN, admin),
    }
    staff_ctx = as_(Role.RESELLER_SUPPORT, staff)
    count = 0
    for i, (state, path) in enumerate(PATHS.items()):
        placer = as_(Role.CUSTOMER_BUYER, buyer)
        order = services.order_create(
            ctx=placer,
            site_id=sites[i % len(sites)].pk,
            lines=[services.LineIn(product_id=products[i % len(products)].pk, quantity=1 + i % 3)],
            note=f"Demo order ({Order.Status(state).label.lower()}).",
        )
        for step in path:
            ctx = who.get(step, staff_ctx)
            extra = (
                {"carrier": "DHL", "tracking_number": f"JD0146000{i:04d}"}
                if step == "shipped"
                else {}
            )
            services.order_transition(ctx=ctx, order_id=order.pk, to=step, **extra)
        count += 1
    return count


def _people(ctx: TenantContext, customer_id: int) -> dict[Role, Any]:
    found: dict[Role, Any] = {}
    for membership in account_selectors.membership_list(ctx=ctx):
        if membership.customer_id not in (None, customer_id):
            continue
        found.setdefault(Role(membership.role), membership.user)
    return found
