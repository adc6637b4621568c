"""Resellers, their customers and sites, users and the memberships that give them roles."""

from __future__ import annotations

import secrets
from typing import Any, ClassVar

from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import PermissionsMixin
from django.db import models
from django.db.models import Q
from django.utils.timezone import now

from portal.tenancy import CUSTOMER_ROLES, MEMBERSHIP_ROLES, RESELLER_ROLES, Role, TenantModel

# In the enum's order: a set's order changes between runs and would churn migrations.
MEMBERSHIP_ROLE_CHOICES = [(r.value, r.label) for r in Role if r in MEMBERSHIP_ROLES]


def reseller_logo_path(instance: Reseller, filename: str) -> str:
    # A fresh random name per upload: a cached old logo is never shown for a new one.
    extension = filename.rsplit(".", 1)[-1].lower()
    return f"resellers/{instance.pk}/logo-{secrets.token_hex(8)}.{extension}"


class Reseller(models.Model):
    """A tenant: a printer reseller and everything it owns."""

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=64, unique=True)
    legal_name = models.CharField(max_length=255, blank=True)
    address = models.TextField(blank=True)
    support_email = models.EmailField(blank=True)
    vat_number = models.CharField(max_length=64, blank=True)
    # Printed on statements. Only PNG or JPEG (checked by reseller_update): no SVG, which can
    # carry script.
    logo = models.FileField(upload_to=reseller_logo_path, blank=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Customer(TenantModel):
    """A reseller's client company, which has sites with printers."""

    tenant_customer_field: ClassVar[str | None] = "pk"

    name = models.CharField(max_length=200)
    account_number = models.CharField(max_length=64, blank=True)
    billing_email = models.EmailField(blank=True)
    # Printed on statements; sites keep their own (delivery) addresses.
    billing_address = models.TextField(blank=True)
    # The language (a code of settings.LANGUAGES) of what the customer receives without being
    # anyone's account: the statement PDF, the email to `billing_email` and those to its sites'
    # contacts. Blank: the installation's LANGUAGE_CODE. A database default too, for the
    # benchmarks' raw INSERTs of customers.
    language = models.CharField(max_length=8, blank=True, default="", db_default="")
    notes = models.TextField(blank=True)
    created_at = models.DateTimeField(default=now)

    class Meta:
        ordering = ["name"]
        constraints = [
            # customer_create refuses duplicates; create_credential finds customers by name.
            models.UniqueConstraint(
                fields=["reseller", "name"], name="accounts_customer_name_once"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Site(TenantModel):
    """A customer's location: where printers stand and where supplies are shipped."""

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="sites")
    name = models.CharField(max_length=200)
    address_line1 = models.CharField("address", max_length=255, blank=True)
    address_line2 = models.CharField("address (line 2)", max_length=255, blank=True)
    postal_code = models.CharField(max_length=32, blank=True)
    city = models.CharField(max_length=128, blank=True)
    country = models.CharField(max_length=2, blank=True, help_text="ISO 3166 code, e.g. DE")
    contact_name = models.CharField(max_length=200, blank=True)
    contact_email = models.EmailField(blank=True)
    contact_phone = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(default=now)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["customer", "name"], name="accounts_site_name_once"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def address_lines(self) -> list[str]:
        city = " ".join(p for p in (self.postal_code, self.city) if p)
        return [p for p in (self.address_line1, self.address_line2, city, self.country) if p]


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def create_user(self, email: str, password: str | None = None, **extra: Any) -> User:
        if not email:
            raise ValueError("users need an email address")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_superuser(self, email: str, password: str | None = None, **extra: Any) -> User:
        extra.update(is_staff=True, is_superuser=True)
        return self.create_user(email, password, **extra)


class User(AbstractBaseUser, PermissionsMixin):
    """A person; the email address is the login. Roles come from memberships."""

    email = models.EmailField(unique=True)
    full_name = models.CharField(max_length=200, blank=True)
    is_active = models.BooleanField(default=True)
    # Platform operators are staff superusers; nobody else is staff.
    is_staff = models.BooleanField(default=False)
    date_joined = models.DateTimeField(default=now)
    # How the portal writes numbers, dates and times for this person (portal/formatting.py):
    # an IANA zone name and a locale code; blank takes the installation's TIME_ZONE, and the
    # browser's languages (else DEFAULT_LOCALE).
    time_zone = models.CharField(max_length=64, blank=True, default="")
    locale = models.CharField(max_length=16, blank=True, default="")
    # The language of pages and emails (a code of settings.LANGUAGES), apart from `locale`:
    # someone may read English and still want 1.234,50 €. Blank: the language of `locale` if
    # the portal has it, else the browser's (portal/i18n.py).
    language = models.CharField(max_length=8, blank=True, default="")

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: ClassVar[list[str]] = []

    class Meta:
        ordering = ["email"]

    def __str__(self) -> str:
        return self.full_name or self.email

    @property
    def display_name(self) -> str:
        return self.full_name or self.email


class Membership(TenantModel):
    """A user's role in a reseller, or in one of its customers."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, null=True, blank=True, related_name="memberships"
    )
    role = models.CharField(max_length=32, choices=Role.choices)
    created_at = models.DateTimeField(default=now)

    class Meta:
        ordering = ["user__email"]
        constraints = [
            # One role per user per tenant; a second invitation changes the role instead.
            models.UniqueConstraint(
                fields=["user", "reseller"],
                condition=Q(customer__isnull=True),
                name="accounts_membership_reseller_once",
            ),
            models.UniqueConstraint(
                fields=["user", "customer"],
                condition=Q(customer__isnull=False),
                name="accounts_membership_customer_once",
            ),
            # Reseller roles have no customer; customer roles always have one.
            models.CheckConstraint(
                condition=(
                    Q(role__in=sorted(RESELLER_ROLES), customer__isnull=True)
                    | Q(role__in=sorted(CUSTOMER_ROLES), customer__isnull=False)
                ),
                name="accounts_membership_role_matches_scope",
            ),
        ]

    def __str__(self) -> str:
        where = self.customer.name if self.customer_id and self.customer else self.reseller.name
        return f"{self.user.email}: {self.get_role_display()} at {where}"


class Invitation(TenantModel):
    """An emailed, expiring offer of a membership. Only a hash of its token is stored."""

    email = models.EmailField()
    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, null=True, blank=True, related_name="invitations"
    )
    role = models.CharField(max_length=32, choices=MEMBERSHIP_ROLE_CHOICES)
    token_hash = models.CharField(max_length=64, unique=True)  # invitation_accept looks it up
    # The token is an HMAC of this nonce under SECRET_KEY: the sender of the email derives the
    # link again (a retry too), and neither a dump nor the email log gives it away.
    token_nonce = models.CharField(max_length=64, blank=True, default="")
    invited_by = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(default=now)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(
        User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            # invitation_list shows a reseller's pending invitations newest first.
            models.Index(fields=["reseller", "-created_at"], name="accounts_invitation_recent"),
        ]

    def __str__(self) -> str:
        return f"Invitation of {self.email} as {self.get_role_display()}"

    @property
    def status(self) -> str:
        if self.accepted_at:
            return "accepted"
        if self.revoked_at:
            return "revoked"
        if self.expires_at <= now():
            return "expired"
        return "pending"


class AuditEvent(TenantModel):
    """Append-only record of who did what in a tenant, written in the same transaction."""

    customer = models.ForeignKey(
        Customer, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    actor = models.ForeignKey(
        User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # Kept beside the foreign key so the trail survives the user's deletion.
    actor_email = models.CharField(max_length=254, blank=True)
    actor_role = models.CharField(max_length=32, blank=True)
    action = models.CharField(max_length=64)
    object_type = models.CharField(max_length=64, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    detail = models.JSONField(default=dict, blank=True)
    path = models.CharField(max_length=512, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    created_at = models.DateTimeField(default=now, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # audit_list pages through a reseller's trail newest first.
            models.Index(fields=["reseller", "-created_at"], name="accounts_audit_recent"),
        ]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.actor_email} {self.action}"


class ApiToken(TenantModel):
    """A revocable integration token scoped to one tenant and role; the secret is hashed."""

    name = models.CharField(max_length=100)
    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    role = models.CharField(max_length=32, choices=MEMBERSHIP_ROLE_CHOICES)
    key = models.CharField(max_length=16, unique=True)  # api_token_authenticate looks it up
    secret_hash = models.CharField(max_length=64)
    created_by = models.ForeignKey(User, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(default=now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} (ink_{self.key}_…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None
