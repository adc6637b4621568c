"""Two resellers with realistic data for the API fuzzer, built through the services and the real
telemetry ingestion, and an API token of each role that tokens may hold.

Every text a reseller owns contains its marker ("ZZ-A-1f2e3d4c"), and every id, key and number
that names one of its objects is recorded, so the fuzzer can ask for another tenant's objects
and can tell if an answer shows them.
"""

from __future__ import annotations

import secrets
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from django.utils.timezone import now

from accounts import services as accounts
from accounts.models import Reseller, User
from billing import services as billing
from billing import statement_services
from billing.pricing import period_before, period_containing
from devices import services as devices
from devices.models import Device, Supply
from devices.simulator import MODELS, batches, encode_batch, fleet_build, history, in_process_sender
from orders import catalog_services
from orders import services as orders
from portal.tenancy import CUSTOMER_ROLES, Role, TenantContext
from tests.factories import MembershipFactory, ResellerFactory, UserFactory


@dataclass
class TenantWorld:
    """One reseller as the fuzzer sees it."""

    marker: str
    reseller: Reseller
    admin: User
    # Raw API tokens by role.
    tokens: dict[Role, str] = field(default_factory=dict)
    # Ids of the reseller's objects by the path parameter or body field that names them.
    ids: dict[str, set[int]] = field(default_factory=lambda: defaultdict(set))
    # Strings that only this reseller's objects contain (keys, serials, numbers): no answer to
    # another reseller may contain one of them, nor the marker.
    secrets: set[str] = field(default_factory=set)

    def ctx(self) -> TenantContext:
        return TenantContext(reseller=self.reseller, role=Role.RESELLER_ADMIN, user=self.admin)

    def leaks_in(self, text: str) -> list[str]:
        """This reseller's marker and secrets that `text` contains."""
        folded = text.casefold()
        return [s for s in (self.marker, *self.secrets) if s.casefold() in folded]


def tenant_world_build(letter: str, *, token_roles: Iterable[Role]) -> TenantWorld:
    marker = f"ZZ-{letter}-{secrets.token_hex(4)}"
    slug = marker.lower()
    reseller = ResellerFactory(name=f"{marker} Printing", slug=slug)
    admin = MembershipFactory(
        reseller=reseller,
        role=Role.RESELLER_ADMIN,
        user=UserFactory(email=f"admin@{slug}.test", full_name=f"{marker} Admin"),
    ).user
    world = TenantWorld(marker=marker, reseller=reseller, admin=admin)
    _customers(world)
    _fleet(world)
    _billing(world)
    _orders(world)
    _tokens(world, token_roles)
    return world


def _customers(world: TenantWorld) -> None:
    m, ctx = world.marker, world.ctx()
    for n in (1, 2):
        customer = accounts.customer_create(
            ctx=ctx,
            name=f"{m} Customer {n}",
            account_number=f"{m}-ACC-{n}",
            billing_email=f"billing{n}@{m.lower()}.test",
            billing_address=f"{m} Street {n}\n20095 Hamburg",
            notes=f"{m} notes",
        )
        world.ids["customer_id"].add(customer.pk)
        site = accounts.site_create(
            ctx=ctx,
            customer_id=customer.pk,
            name=f"{m} Site {n}",
            address_line1=f"{m} Road {n}",
            city="Hamburg",
            country="DE",
            contact_name=f"{m} Contact",
            contact_email=f"contact{n}@{m.lower()}.test",
        )
        world.ids["site_id"].add(site.pk)
        world.ids["site"].add(site.pk)


def _fleet(world: TenantWorld) -> None:
    """Printers with a quarter of hourly-ish history, sent through the real ingestion by one
    collector per site, plus a direct-connect credential."""
    ctx, end = world.ctx(), now()
    for n, site_id in enumerate(sorted(world.ids["site_id"])):
        credential, secret = devices.credential_create(
            ctx=ctx, kind="collector", name=f"{world.marker} collector {n}", site_id=site_id
        )
        world.ids["credential_id"].add(credential.pk)
        world.secrets.add(credential.key_id)
        fleet = fleet_build(devices=2, seed=n, prefix=f"{world.marker}-{n}-")
        send = in_process_sender(key_id=credential.key_id, secret=secret)
        snapshots = history(fleet, days=75, interval_minutes=12 * 60, end=end)
        for chunk in batches(snapshots, 100):
            status, answer = send(encode_batch(chunk))
            assert status == 202, answer
            assert not answer["rejected"], answer
    direct, _ = devices.credential_create(
        ctx=ctx,
        kind="direct",
        name=f"{world.marker} direct printer",
        site_id=min(world.ids["site_id"]),
        serial=f"{world.marker}-DIRECT",
    )
    world.ids["credential_id"].add(direct.pk)
    world.secrets.add(direct.key_id)
    for device in Device.objects.for_tenant(ctx):
        world.ids["device"].add(device.pk)
        world.ids["device_id"].add(device.pk)
        world.secrets.add(device.serial)
    world.ids["supply"].update(Supply.objects.for_tenant(ctx).values_list("pk", flat=True))


def _billing(world: TenantWorld) -> None:
    """A plan and one contract per customer with its printers; the month before last is a
    final statement, last month a draft."""
    ctx, today = world.ctx(), now().date()
    current, _ = period_containing(today, 1)
    last, _ = period_before(current, 1)
    before_last, _ = period_before(last, 1)
    plan = billing.plan_create(
        ctx=ctx,
        name=f"{world.marker} Plan",
        currency="EUR",
        description=f"{world.marker} pay per page",
        terms=billing.plan_terms_demo(before_last),
    )
    world.ids["plan_id"].add(plan.pk)
    for n, customer_id in enumerate(sorted(world.ids["customer_id"])):
        contract = billing.contract_create(
            ctx=ctx,
            customer_id=customer_id,
            plan_id=plan.pk,
            reference=f"{world.marker}-CONTRACT-{n}",
            purchase_order=f"{world.marker}-PO-{n}",
            starts_on=before_last,
        )
        world.ids["contract_id"].add(contract.pk)
        for device in Device.objects.for_tenant(ctx).filter(customer_id=customer_id):
            billing.contract_device_add(
                ctx=ctx, contract_id=contract.pk, device_id=device.pk, joined_on=before_last
            )
        final = statement_services.statement_compute(
            ctx=ctx, contract_id=contract.pk, period_start=before_last
        )
        final = statement_services.statement_finalise(ctx=ctx, statement_id=final.pk, by=None)
        draft = statement_services.statement_compute(
            ctx=ctx, contract_id=contract.pk, period_start=last
        )
        world.ids["statement_id"].update({final.pk, draft.pk})


def _orders(world: TenantWorld) -> None:
    """A catalog for the simulated models, a submitted order and a shipped one."""
    ctx, m = world.ctx(), world.marker
    products = []
    for n, model in enumerate(MODELS[:2]):
        product = catalog_services.product_create(
            ctx=ctx,
            sku=f"{m}-SKU-{n}",
            part_number=f"{m}-PN-{n}",
            name=f"{m} toner {n}",
            kind="toner",
            color="black",
            rated_yield=10000,
            compatible_models=[model.name],
            price=Decimal("89.90"),
            currency="EUR",
        )
        products.append(product)
        world.ids["product"].add(product.pk)
    for n, site_id in enumerate(sorted(world.ids["site_id"])):
        order = orders.order_create(
            ctx=ctx,
            site_id=site_id,
            lines=[orders.LineIn(product_id=products[n].pk, quantity=2, supply_id=None)],
            note=f"{m} order {n}",
            submit=True,
        )
        world.ids["order_id"].add(order.pk)
        world.secrets.add(order.number)
    shipped = min(world.ids["order_id"])
    for step in ("accepted", "shipped"):
        orders.order_transition(
            ctx=ctx,
            order_id=shipped,
            to=step,
            note=f"{m} {step}",
            carrier=f"{m} Parcel",
            tracking_number=f"{m}-TRACK",
        )


def _tokens(world: TenantWorld, roles: Iterable[Role]) -> None:
    customer_id = min(world.ids["customer_id"])
    for role in sorted(roles):
        _, raw = accounts.api_token_create(
            ctx=world.ctx(),
            name=f"{world.marker} {role}",
            role=role,
            customer_id=customer_id if role in CUSTOMER_ROLES else None,
        )
        world.tokens[Role(role)] = raw
        world.secrets.add(raw.split("_")[1])
