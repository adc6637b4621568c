"""Test data factories. Ids and names come from sequences, so every object is distinct."""

from __future__ import annotations

from datetime import timedelta

import factory
from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret
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


class ResellerFactory(DjangoModelFactory):
    class Meta:
        model = Reseller

    name = factory.Sequence(lambda n: f"Reseller {n}")
    slug = factory.Sequence(lambda n: f"reseller-{n}")
    support_email = factory.Sequence(lambda n: f"support{n}@reseller.test")


class CustomerFactory(DjangoModelFactory):
    class Meta:
        model = Customer

    reseller = factory.SubFactory(ResellerFactory)
    name = factory.Sequence(lambda n: f"Customer {n}")


class SiteFactory(DjangoModelFactory):
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


class MembershipFactory(DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    reseller = factory.SubFactory(ResellerFactory)
    customer = factory.LazyAttribute(
        lambda o: CustomerFactory(reseller=o.reseller) if o.role in CUSTOMER_ROLES else None
    )
    role = Role.RESELLER_ADMIN


class InvitationFactory(DjangoModelFactory):
    class Meta:
        model = Invitation

    reseller = factory.SubFactory(ResellerFactory)
    email = factory.Sequence(lambda n: f"invitee{n}@example.test")
    role = Role.RESELLER_SUPPORT
    token_hash = factory.Sequence(lambda n: f"{n:064x}")
    expires_at = factory.LazyFunction(lambda: now() + timedelta(days=7))


class ApiTokenFactory(DjangoModelFactory):
    class Meta:
        model = ApiToken

    reseller = factory.SubFactory(ResellerFactory)
    name = factory.Sequence(lambda n: f"Token {n}")
    role = Role.RESELLER_FINANCE
    key = factory.Sequence(lambda n: f"{n:012x}")
    secret_hash = factory.Sequence(lambda n: f"{n:064x}")
    created_by = factory.SubFactory(UserFactory)


class AuditEventFactory(DjangoModelFactory):
    class Meta:
        model = AuditEvent

    reseller = factory.SubFactory(ResellerFactory)
    action = "customer.create"
    actor_email = "someone@example.test"
