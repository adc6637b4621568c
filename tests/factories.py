"""Test data factories. Ids and names come from sequences, so every object is distinct."""

from __future__ import annotations

import time
from datetime import timedelta
from decimal import Decimal
from typing import Any

import factory
from allauth.account.internal.flows.login import (
    _AUTHENTICATION_METHODS_USER_SESSION_KEY,
    AUTHENTICATION_METHODS_SESSION_KEY,
)
from allauth.mfa.models import Authenticator
from allauth.mfa.totp.internal.auth import (
    TOTP,
    format_hotp_value,
    generate_totp_secret,
    hotp_value,
)
from allauth.mfa.utils import decrypt
from django.test import Client
from django.utils.timezone import now
from factory.django import DjangoModelFactory

from accounts.models import (
    ApiToken,
    AuditEvent,
    Customer,
    Invitation,
    Membership,
    Reseller,
    Site,
    User,
)
from portal.tenancy import CUSTOMER_ROLES, Role

PASSWORD = "correct-horse-battery-staple"


class TenantFactory(DjangoModelFactory):
    """Factories write through `unscoped`: test set-up is system code, not a tenant's request."""

    class Meta:
        abstract = True

    @classmethod
    def _get_manager(cls, model_class: Any) -> Any:
        return model_class.unscoped


class ResellerFactory(DjangoModelFactory):
    class Meta:
        model = Reseller

    name = factory.Sequence(lambda n: f"Reseller {n}")
    slug = factory.Sequence(lambda n: f"reseller-{n}")
    support_email = factory.Sequence(lambda n: f"support{n}@reseller.test")


class CustomerFactory(TenantFactory):
    class Meta:
        model = Customer

    reseller = factory.SubFactory(ResellerFactory)
    name = factory.Sequence(lambda n: f"Customer {n}")


class SiteFactory(TenantFactory):
    class Meta:
        model = Site

    customer = factory.SubFactory(CustomerFactory)
    reseller = factory.SelfAttribute("customer.reseller")
    name = factory.Sequence(lambda n: f"Site {n}")
    city = "Hamburg"
    country = "DE"


class UserFactory(DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"user{n}@example.test")
    full_name = factory.Sequence(lambda n: f"User {n}")
    password = factory.django.Password(PASSWORD)

    @factory.post_generation
    def totp(self, create: bool, extracted: bool | None, **kwargs: object) -> None:
        """`UserFactory(totp=True)` gives the user an authenticator app (needed by admins)."""
        if create and extracted:
            TOTP.activate(self, generate_totp_secret())


def totp_code(user: User | None = None, *, secret: str | None = None) -> str:
    """The current code of `user`'s authenticator app (or of a secret being set up)."""
    if secret is None:
        authenticator = Authenticator.objects.get(user=user, type=Authenticator.Type.TOTP)
        secret = decrypt(authenticator.data["secret"])
    return format_hotp_value(hotp_value(secret, int(time.time()) // 30))


def sign_in(client: Client, user: User) -> Client:
    """`client.force_login`, and for a user with an authenticator app also what allauth records
    when they give its code: the session of someone who signed in with password and code."""
    client.force_login(user)
    authenticator = Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).first()
    if authenticator is not None:
        session = client.session
        session[AUTHENTICATION_METHODS_SESSION_KEY] = [
            {"method": "password", "at": time.time(), "email": user.email},
            {"method": "mfa", "at": time.time(), "id": authenticator.pk, "type": "totp"},
        ]
        session[_AUTHENTICATION_METHODS_USER_SESSION_KEY] = str(user.pk)
        session.save()
    return client


class MembershipFactory(TenantFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    reseller = factory.SubFactory(ResellerFactory)
    customer = factory.LazyAttribute(
        lambda o: CustomerFactory(reseller=o.reseller) if o.role in CUSTOMER_ROLES else None
    )
    role = Role.RESELLER_ADMIN


class InvitationFactory(TenantFactory):
    class Meta:
        model = Invitation

    reseller = factory.SubFactory(ResellerFactory)
    email = factory.Sequence(lambda n: f"invitee{n}@example.test")
    role = Role.RESELLER_SUPPORT
    token_hash = factory.Sequence(lambda n: f"{n:064x}")
    expires_at = factory.LazyFunction(lambda: now() + timedelta(days=7))


class ApiTokenFactory(TenantFactory):
    class Meta:
        model = ApiToken

    reseller = factory.SubFactory(ResellerFactory)
    name = factory.Sequence(lambda n: f"Token {n}")
    role = Role.RESELLER_FINANCE
    key = factory.Sequence(lambda n: f"{n:012x}")
    secret_hash = factory.Sequence(lambda n: f"{n:064x}")
    created_by = factory.SubFactory(UserFactory)


class AuditEventFactory(TenantFactory):
    class Meta:
        model = AuditEvent

    reseller = factory.SubFactory(ResellerFactory)
    action = "customer.create"
    actor_email = "someone@example.test"


# --- Devices: the fleet pages' data, written the way ingestion would leave it ----------------


def _uuid(n: int) -> str:
    return f"00000000-0000-4000-8000-{n:012d}"


class DeviceFactory(TenantFactory):
    class Meta:
        model = "devices.Device"

    site = factory.SubFactory(SiteFactory)
    customer = factory.SelfAttribute("site.customer")
    reseller = factory.SelfAttribute("site.reseller")
    serial = factory.Sequence(lambda n: f"SN{n:06d}")
    manufacturer = "HP"
    model = "HP Color LaserJet M555"


class _RefreshesDeviceFigures(TenantFactory):
    """Rows that the device list's figures are computed from (DeviceState.lowest_supply_percent
    and .open_alert_count): ingestion writes the figures with each report; a factory writes no
    report, so it computes them from the stored rows, as the migration that added them did."""

    class Meta:
        abstract = True

    @classmethod
    def _after_postgeneration(cls, instance: Any, create: bool, results: Any = None) -> None:
        super()._after_postgeneration(instance, create, results)
        if create:
            from devices.rollup_services import device_figures_refresh

            device_figures_refresh(device_ids=[instance.device_id])


class DeviceStateFactory(_RefreshesDeviceFigures):
    class Meta:
        model = "devices.DeviceState"

    device = factory.SubFactory(DeviceFactory)
    reseller = factory.SelfAttribute("device.reseller")
    customer = factory.SelfAttribute("device.customer")
    last_seen_at = factory.LazyFunction(lambda: now() - timedelta(minutes=10))
    last_snapshot_id = factory.Sequence(_uuid)
    state = "idle"
    ip = factory.Sequence(lambda n: f"10.0.{n // 250 % 250}.{n % 250 + 1}")
    is_online = True


class SupplyFactory(_RefreshesDeviceFigures):
    class Meta:
        model = "devices.Supply"

    device = factory.SubFactory(DeviceFactory)
    reseller = factory.SelfAttribute("device.reseller")
    supply_key = factory.Sequence(lambda n: f"toner-{n}")
    kind = "toner"
    color = "black"
    description = factory.LazyAttribute(lambda o: f"{o.color.capitalize()} {o.kind}".strip())
    unit = "percent"
    max_capacity = 100.0
    level = factory.SelfAttribute("percent")
    level_state = "ok"
    percent = 60.0
    observed_at = factory.LazyFunction(now)
    observed_snapshot_id = factory.Sequence(_uuid)


class AlertFactory(_RefreshesDeviceFigures):
    class Meta:
        model = "devices.Alert"

    device = factory.SubFactory(DeviceFactory)
    reseller = factory.SelfAttribute("device.reseller")
    code = factory.Sequence(lambda n: f"printer.alert.{n}")
    episode = factory.LazyFunction(now)
    severity = "warning"
    description = "Paper jam"
    first_seen_at = factory.LazyFunction(now)
    last_seen_at = factory.LazyFunction(now)


class JobFactory(TenantFactory):
    class Meta:
        model = "devices.Job"

    device = factory.SubFactory(DeviceFactory)
    reseller = factory.SelfAttribute("device.reseller")
    uuid = factory.Sequence(lambda n: f"job-{n}")
    type = "print"
    name = factory.Sequence(lambda n: f"Report {n}.pdf")
    status = "completed"
    submitted_at = factory.LazyFunction(now)
    pages = 3
    copies = 1
    observed_at = factory.LazyFunction(now)
    observed_snapshot_id = factory.Sequence(_uuid)


class CounterReadingFactory(TenantFactory):
    class Meta:
        model = "devices.CounterReading"

    device = factory.SubFactory(DeviceFactory)
    reseller = factory.SelfAttribute("device.reseller")
    collected_at = factory.LazyFunction(now)
    name = "impressions.total"
    unit = "impressions"
    value = 1000


class SupplyReadingFactory(TenantFactory):
    class Meta:
        model = "devices.SupplyReading"

    device = factory.SubFactory(DeviceFactory)
    reseller = factory.SelfAttribute("device.reseller")
    supply_key = "toner-black"
    collected_at = factory.LazyFunction(now)
    percent = 60.0


def device_for_isolation(*, reseller: Reseller, customer: Customer, site: Site) -> dict[str, Any]:
    """Tenant A's printer with a supply and an open alert, for the isolation matrix."""
    device = DeviceFactory(
        site=site, serial="ZZALPHA-SERIAL-1", name="zzalpha front office", model="ZZALPHA-MODEL"
    )
    DeviceStateFactory(device=device, hostname="zzalpha-printer.local")
    supply = SupplyFactory(device=device, description="zzalpha black toner")
    alert = AlertFactory(device=device, description="zzalpha paper jam")
    return {"device": device, "supply": supply, "alert": alert}


def credential_for_isolation(
    *, reseller: Reseller, customer: Customer, site: Site
) -> dict[str, Any]:
    """Tenant A's collector, for the isolation matrix's credential_id and collector_id routes."""
    from devices import services
    from portal.tenancy import TenantContext

    credential, _ = services.credential_create(
        ctx=TenantContext.system(reseller=reseller),
        kind="collector",
        name="zzalpha front office collector",
        site_id=site.pk,
    )
    return {"credential": credential}


# --- Orders: catalog, policies, alerts, emails and orders ----------------------------------------


class ProductFactory(TenantFactory):
    class Meta:
        model = "orders.Product"

    reseller = factory.SubFactory(ResellerFactory)
    sku = factory.Sequence(lambda n: f"SKU-{n:05d}")
    part_number = factory.Sequence(lambda n: f"PN{n:05d}")
    name = factory.LazyAttribute(lambda o: f"Toner {o.sku}")
    kind = "toner"
    color = "black"
    rated_yield = 10000
    price = factory.LazyFunction(lambda: Decimal("89.90"))
    currency = "EUR"


def orders_for_isolation(*, reseller: Reseller, customer: Customer, site: Site) -> dict[str, Any]:
    """Tenant A's catalog product, policy, order, low-supply alert and email, for the matrix."""
    from orders.models import EmailLog, Order, OrderLine, ReorderPolicy, SupplyAlert

    product = ProductFactory(
        reseller=reseller, sku="ZZALPHA-SKU-1", name="zzalpha toner", part_number="ZZALPHA-PN"
    )
    device = DeviceFactory(site=site, serial="ZZALPHA-SERIAL-ORD", name="zzalpha back office")
    supply = SupplyFactory(device=device, description="zzalpha cyan toner", percent=5.0)
    policy = ReorderPolicy.unscoped.create(reseller=reseller, customer=customer)
    order = Order.unscoped.create(
        reseller=reseller, customer=customer, site=site, currency="EUR", note="zzalpha order"
    )
    OrderLine.unscoped.create(
        reseller=reseller,
        order=order,
        product=product,
        supply=supply,
        unit_price=Decimal("10.00"),
        line_total=Decimal("10.00"),
    )
    alert = SupplyAlert.unscoped.create(
        reseller=reseller,
        supply=supply,
        device=device,
        customer=customer,
        status=SupplyAlert.Status.SENT,
        reason=SupplyAlert.Reason.REORDER_POINT,
    )
    email = EmailLog.unscoped.create(
        reseller=reseller,
        customer=customer,
        recipient="zzalpha-contact@alpha-secret.test",
        subject="zzalpha low toner",
        body="zzalpha",
        kind=EmailLog.Kind.SUPPLY_LOW,
    )
    return {
        "product": product,
        "policy": policy,
        "order": order,
        "supply_alert": alert,
        "email": email,
    }


def integrations_for_isolation(
    *, reseller: Reseller, customer: Customer, site: Site
) -> dict[str, Any]:
    """Tenant A's webhook endpoint and one delivery to it."""
    from integrations.models import Event, WebhookDelivery, WebhookEndpoint

    endpoint = WebhookEndpoint.unscoped.create(
        reseller=reseller,
        url="https://zzalpha-hooks.example/in",
        description="zzalpha ERP",
        secret="whsec_zzalpha-secret",
        events=[Event.ORDER_PLACED],
    )
    delivery = WebhookDelivery.unscoped.create(
        reseller=reseller,
        endpoint=endpoint,
        event=Event.ORDER_PLACED,
        payload={"data": {"note": "zzalpha order"}},
        status=WebhookDelivery.Status.FAILED,
        attempts=1,
        response_excerpt="zzalpha answer",
    )
    return {"webhook_endpoint": endpoint, "webhook_delivery": delivery}


def billing_for_isolation(*, reseller: Reseller, customer: Customer, site: Site) -> dict[str, Any]:
    """Tenant A's price plan, contract with a printer, and a computed draft statement."""
    from datetime import date

    from billing import services, statement_services
    from portal.tenancy import TenantContext

    ctx = TenantContext.system(reseller=reseller)
    device = DeviceFactory(site=site, serial="ZZALPHA-BILLED-1", name="zzalpha billed printer")
    plan = services.plan_create(
        ctx=ctx,
        name="ZZALPHA-PLAN",
        currency="EUR",
        terms=services.plan_terms_demo(date(2025, 1, 1)),
    )
    contract = services.contract_create(
        ctx=ctx,
        customer_id=customer.pk,
        plan_id=plan.pk,
        reference="ZZALPHA-CONTRACT",
        purchase_order="ZZALPHA-PO",
        starts_on=date(2025, 1, 1),
    )
    membership = services.contract_device_add(
        ctx=ctx, contract_id=contract.pk, device_id=device.pk, joined_on=date(2025, 1, 1)
    )
    statement = statement_services.statement_compute(
        ctx=ctx, contract_id=contract.pk, period_start=date(2025, 3, 1)
    )
    return {
        "plan": plan,
        "contract": contract,
        "contract_device": membership,
        "statement": statement,
    }
