"""Every write to resellers, customers, sites, users and tokens, and the rules around them."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.files import File
from django.db import transaction
from django.db.models import Model
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import translation
from django.utils.crypto import salted_hmac
from django.utils.functional import Promise
from django.utils.text import slugify
from django.utils.timezone import now
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

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
from orders import email_services
from orders.models import EmailLog
from portal import i18n, rls
from portal.errors import ConflictError, DomainError, NotFoundError, PermissionDeniedError
from portal.tenancy import (
    ADMIN_ROLES,
    CUSTOMER_ROLES,
    MEMBERSHIP_ROLES,
    RESELLER_ROLES,
    Role,
    TenantContext,
)


def _sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _require_admin(ctx: TenantContext) -> None:
    if ctx.role not in ADMIN_ROLES and ctx.role != Role.SYSTEM:
        raise PermissionDeniedError(_("Only a reseller admin may do this."))


# --- Audit --------------------------------------------------------------------------------------


def audit_record(
    *,
    ctx: TenantContext,
    action: str,
    obj: Model | None = None,
    detail: dict[str, Any] | None = None,
    path: str = "",
    ip: str | None = None,
) -> AuditEvent:
    """Append one audit row; call it inside the transaction of the change it records."""
    user = ctx.user
    customer_id = ctx.customer_id
    if customer_id is None and obj is not None:
        customer_id = getattr(obj, "customer_id", None) or (
            obj.pk if isinstance(obj, Customer) else None
        )
    return AuditEvent.unscoped.create(
        reseller_id=ctx.reseller_id,
        customer_id=customer_id,
        actor=user if user is not None and user.pk else None,
        actor_email=user.email if user is not None else "",
        actor_role=ctx.role,
        action=action,
        object_type=obj._meta.model_name or "" if obj is not None else "",
        object_id=str(obj.pk) if obj is not None else "",
        detail=detail or {},
        path=path[:512],
        ip=ip,
    )


def admin_access_record(
    *,
    user: User,
    action: str,
    model: type[Model],
    reseller_ids: set[int],
    detail: dict[str, Any],
    path: str,
    ip: str | None,
) -> list[AuditEvent]:
    """One audit row in each reseller whose rows an operator's admin page showed or changed."""
    return AuditEvent.unscoped.bulk_create(
        AuditEvent(
            reseller_id=reseller_id,
            actor=user,
            actor_email=user.email,
            actor_role=Role.OPERATOR,
            action=action,
            object_type=model._meta.model_name or "",
            object_id=str(detail.get("object_id", "")),
            detail={"model": model._meta.label_lower, **detail},
            path=path[:512],
            ip=ip,
        )
        for reseller_id in sorted(reseller_ids)
    )


# --- Resellers (platform operators) ---------------------------------------------------------


def reseller_create(
    *, by: User, name: str, slug: str = "", support_email: str = "", address: str = ""
) -> Reseller:
    if not by.is_superuser:
        raise PermissionDeniedError(_("Only a platform operator may create resellers."))
    name = name.strip()
    if not name:
        raise DomainError(
            _("A reseller needs a name."), fields={"name": [_("This field is required.")]}
        )
    slug = slugify(slug or name)[:64]
    if not slug:
        raise DomainError(
            _("Give the reseller a slug."), fields={"slug": [_("Letters or digits.")]}
        )
    if Reseller.objects.filter(slug=slug).exists():
        raise ConflictError(
            _("The slug %(slug)s is taken.") % {"slug": repr(slug)},
            code="slug_taken",
            fields={"slug": [_("Already taken.")]},
        )
    with transaction.atomic():
        reseller = Reseller.objects.create(
            name=name, slug=slug, support_email=support_email, address=address
        )
        ctx = TenantContext(reseller=reseller, role=Role.OPERATOR, user=by)
        audit_record(ctx=ctx, action="reseller.create", obj=reseller)
    return reseller


# Logos are printed on statements: small raster images only (SVG can carry script).
LOGO_MAX_BYTES = 512 * 1024
LOGO_SIGNATURES = {b"\x89PNG\r\n\x1a\n": "png", b"\xff\xd8\xff": "jpg"}


def _logo_kind(logo: File[Any]) -> str:
    """'png' or 'jpg' from the file's first bytes (the name and declared type are the sender's
    word); a DomainError on the logo field otherwise."""
    if logo.size is not None and logo.size > LOGO_MAX_BYTES:
        raise DomainError(
            _("The logo is too large."),
            code="logo_too_large",
            fields={
                "logo": [
                    _("At most %(value)s KiB; this file is larger.")
                    % {"value": LOGO_MAX_BYTES // 1024}
                ]
            },
        )
    logo.seek(0)
    head = logo.read(8)
    logo.seek(0)
    for signature, kind in LOGO_SIGNATURES.items():
        if head.startswith(signature):
            return kind
    raise DomainError(
        _("The logo is not a PNG or JPEG image."),
        code="logo_type",
        fields={"logo": [_("Upload a PNG or JPEG image.")]},
    )


def reseller_update(
    *,
    ctx: TenantContext,
    name: str,
    address: str = "",
    support_email: str = "",
    logo: File[Any] | None = None,
    remove_logo: bool = False,
) -> Reseller:
    """A reseller admin edits the name, address, support address and logo of their reseller."""
    _require_admin(ctx)
    name = name.strip()
    if not name:
        raise DomainError(
            _("A reseller needs a name."), fields={"name": [_("This field is required.")]}
        )
    kind = _logo_kind(logo) if logo is not None else None
    with transaction.atomic():
        reseller = Reseller.objects.select_for_update().get(pk=ctx.reseller_id)
        old_logo = reseller.logo.name
        reseller.name = name
        reseller.address = address.strip()
        reseller.support_email = support_email.strip()
        fields = ["name", "address", "support_email"]
        if logo is not None:
            reseller.logo.save(f"logo.{kind}", logo, save=False)
            fields.append("logo")
        elif remove_logo:
            reseller.logo = ""
            fields.append("logo")
        reseller.save(update_fields=fields)
        audit_record(
            ctx=ctx,
            action="reseller.update",
            obj=reseller,
            detail={"name": name, "logo": "replaced" if "logo" in fields else "kept"},
        )
        if "logo" in fields and old_logo:
            storage = reseller.logo.storage
            transaction.on_commit(lambda: storage.delete(old_logo))
    return reseller


# --- Customers and sites --------------------------------------------------------------------


def customer_create(
    *,
    ctx: TenantContext,
    name: str,
    account_number: str = "",
    billing_email: str = "",
    billing_address: str = "",
    language: str = "",
    notes: str = "",
) -> Customer:
    _require_admin(ctx)
    _customer_language_check(language)
    name = name.strip()
    if not name:
        raise DomainError(
            _("A customer needs a name."), fields={"name": [_("This field is required.")]}
        )
    if Customer.objects.for_tenant(ctx).filter(name__iexact=name).exists():
        raise ConflictError(
            _("A customer named %(name)s exists already.") % {"name": repr(name)},
            code="customer_exists",
            fields={"name": [_("A customer with this name exists already.")]},
        )
    with transaction.atomic():
        customer = Customer.objects.for_tenant(ctx).create(
            reseller_id=ctx.reseller_id,
            name=name,
            account_number=account_number.strip(),
            billing_email=billing_email.strip(),
            billing_address=billing_address.strip(),
            language=language,
            notes=notes,
        )
        audit_record(ctx=ctx, action="customer.create", obj=customer, detail={"name": name})
    return customer


def _customer_language_check(language: str) -> None:
    if language and not i18n.language_valid(language):
        message = _("Choose one of the listed languages.")
        raise DomainError(message, code="language_unknown", fields={"language": [message]})


def customer_update(*, ctx: TenantContext, customer_id: int, **fields: Any) -> Customer:
    _require_admin(ctx)
    allowed = {"name", "account_number", "billing_email", "billing_address", "language", "notes"}
    unknown = set(fields) - allowed
    if unknown:
        raise DomainError(_("Unknown fields: %(join)s.") % {"join": ", ".join(sorted(unknown))})
    _customer_language_check(fields.get("language", ""))
    with transaction.atomic():
        customer = _get_for_update(Customer, ctx, customer_id)
        if "name" in fields:
            fields["name"] = fields["name"].strip()
            clash = Customer.objects.for_tenant(ctx).filter(name__iexact=fields["name"])
            if not fields["name"] or clash.exclude(pk=customer.pk).exists():
                raise ConflictError(
                    _("Another customer has this name."),
                    code="customer_exists",
                    fields={"name": [_("A customer with this name exists already.")]},
                )
        for key, value in fields.items():
            setattr(customer, key, value)
        customer.save(update_fields=list(fields))
        audit_record(ctx=ctx, action="customer.update", obj=customer, detail=_jsonable(fields))
    return customer


SITE_FIELDS = (
    "name",
    "address_line1",
    "address_line2",
    "postal_code",
    "city",
    "country",
    "contact_name",
    "contact_email",
    "contact_phone",
)


def site_create(*, ctx: TenantContext, customer_id: int, name: str, **fields: str) -> Site:
    _require_admin(ctx)
    unknown = set(fields) - set(SITE_FIELDS)
    if unknown:
        raise DomainError(_("Unknown fields: %(join)s.") % {"join": ", ".join(sorted(unknown))})
    name = name.strip()
    if not name:
        raise DomainError(
            _("A site needs a name."), fields={"name": [_("This field is required.")]}
        )
    customer = Customer.objects.for_tenant(ctx).filter(pk=customer_id).first()
    if customer is None:
        raise NotFoundError(_("No such customer."))
    if Site.objects.for_tenant(ctx).filter(customer=customer, name__iexact=name).exists():
        raise ConflictError(
            _("%(customer)s already has a site named %(name)s.")
            % {"customer": customer.name, "name": repr(name)},
            code="site_exists",
            fields={"name": [_("This customer already has a site with this name.")]},
        )
    if "country" in fields:
        fields["country"] = fields["country"].strip().upper()
    with transaction.atomic():
        site = Site.objects.for_tenant(ctx).create(
            reseller_id=ctx.reseller_id, customer=customer, name=name, **fields
        )
        audit_record(ctx=ctx, action="site.create", obj=site, detail={"name": name})
    return site


def site_update(*, ctx: TenantContext, site_id: int, **fields: str) -> Site:
    _require_admin(ctx)
    unknown = set(fields) - set(SITE_FIELDS)
    if unknown:
        raise DomainError(_("Unknown fields: %(join)s.") % {"join": ", ".join(sorted(unknown))})
    with transaction.atomic():
        site = _get_for_update(Site, ctx, site_id)
        if "name" in fields:
            fields["name"] = fields["name"].strip()
            clash = Site.objects.for_tenant(ctx).filter(
                customer_id=site.customer_id, name__iexact=fields["name"]
            )
            if not fields["name"] or clash.exclude(pk=site.pk).exists():
                raise ConflictError(
                    _("Another site of this customer has this name."),
                    code="site_exists",
                    fields={"name": [_("This customer already has a site with this name.")]},
                )
        if "country" in fields:
            fields["country"] = fields["country"].strip().upper()
        for key, value in fields.items():
            setattr(site, key, value)
        site.save(update_fields=list(fields))
        audit_record(ctx=ctx, action="site.update", obj=site, detail=_jsonable(fields))
    return site


# --- Invitations and memberships ------------------------------------------------------------


def invitation_create(
    *, ctx: TenantContext, email: str, role: str, customer_id: int | None = None
) -> Invitation:
    """Invite someone by email to a reseller role, or to a role in one customer."""
    _require_admin(ctx)
    email = email.strip().lower()
    if "@" not in email:
        raise DomainError(
            _("Enter a valid email address."), fields={"email": [_("Not an address.")]}
        )
    customer = _role_customer(
        ctx, role, customer_id, missing="Choose the customer this user belongs to."
    )
    if role not in CUSTOMER_ROLES and customer_id is not None:
        raise DomainError(
            _("Reseller roles are not tied to a customer."),
            code="customer_not_allowed",
            fields={"customer": [_("Leave empty for reseller roles.")]},
        )
    existing = Membership.objects.for_tenant(ctx).filter(user__email__iexact=email)
    existing = existing.filter(customer=customer) if customer else existing.filter(customer=None)
    if existing.exists():
        raise ConflictError(
            _("%(email)s is a member already.") % {"email": email},
            code="already_member",
            fields={"email": [_("This person is a member already.")]},
        )
    nonce = secrets.token_urlsafe(32)
    with transaction.atomic():
        # A new invitation replaces any pending one for the same address and tenant.
        Invitation.objects.for_tenant(ctx).filter(
            email=email, customer=customer, accepted_at=None, revoked_at=None
        ).update(revoked_at=now())
        invitation = Invitation.objects.for_tenant(ctx).create(
            reseller_id=ctx.reseller_id,
            customer=customer,
            email=email,
            role=role,
            token_hash=_sha256(_invitation_token(nonce)),
            token_nonce=nonce,
            invited_by=ctx.user,
            expires_at=now() + timedelta(days=settings.INVITATION_TTL_DAYS),
        )
        audit_record(
            ctx=ctx,
            action="invitation.create",
            obj=invitation,
            detail={"email": email, "role": role},
        )
        # Logged and leased like every email, in this transaction and scope; sent on commit.
        email_services.emails_queue(
            reseller_id=ctx.reseller_id,
            customer_id=invitation.customer_id,
            recipients=[invitation.email],
            kind=EmailLog.Kind.INVITATION,
            template=INVITATION_TEMPLATE,
            context=_invitation_email_context(invitation, url=INVITATION_LINK_WITHHELD),
            subject=lambda: (
                _("[Inkmeter] You are invited to %(reseller)s") % {"reseller": ctx.reseller.name}
            ),
            invitation=invitation,
            fallback_language=_invitation_fallback_language(invitation),
        )
    return invitation


INVITATION_TEMPLATE = "accounts/email/invitation.txt"
# What the email log shows instead of the link: the link lets its holder join.
INVITATION_LINK_WITHHELD = gettext_lazy(
    "(the link is in the email sent to the invitee; it is not kept here)"
)


def _invitation_fallback_language(invitation: Invitation) -> str | None:
    """An invitee without an account reads the invitation in the language of who sent it."""
    from portal import i18n

    return i18n.language_of(invitation.invited_by) if invitation.invited_by else None


def _invitation_token(nonce: str) -> str:
    return salted_hmac("inkmeter.invitation", nonce, algorithm="sha256").hexdigest()


def _invitation_email_context(invitation: Invitation, *, url: str | Promise) -> dict[str, Any]:
    return {
        "invitation": invitation,
        "reseller": invitation.reseller,
        "url": url,
        "ttl_days": settings.INVITATION_TTL_DAYS,
    }


def invitation_email_body(*, invitation_id: int) -> str:
    """The invitation email as sent, with its link; for the email sender, in the tenant's scope."""
    invitation = Invitation.unscoped.select_related("reseller", "customer", "invited_by").get(
        pk=invitation_id
    )
    from portal import formatting, i18n

    token = _invitation_token(invitation.token_nonce)
    url = settings.SITE_URL + reverse("invitation-accept", kwargs={"token": token})
    # The same language and formats as the logged body (email_services.emails_queue).
    reader = i18n.readers(
        [invitation.email], fallback_language=_invitation_fallback_language(invitation)
    )[invitation.email]
    with translation.override(reader.language), formatting.override(locale=reader.locale):
        return render_to_string(INVITATION_TEMPLATE, _invitation_email_context(invitation, url=url))


def invitation_revoke(*, ctx: TenantContext, invitation_id: int) -> Invitation:
    _require_admin(ctx)
    with transaction.atomic():
        invitation = _get_for_update(Invitation, ctx, invitation_id)
        if invitation.status != "pending":
            raise ConflictError(
                _("This invitation is %(status)s; only pending ones can be revoked.")
                % {"status": invitation.status},
                code="invitation_not_pending",
            )
        invitation.revoked_at = now()
        invitation.save(update_fields=["revoked_at"])
        audit_record(ctx=ctx, action="invitation.revoke", obj=invitation)
    return invitation


def invitation_find(*, token: str) -> Invitation | None:
    """The invitation a link's token stands for, whatever its state; None if unknown."""
    if not token or len(token) > 128:
        return None
    # Looked up by hash across tenants: the token itself is the proof of access.
    with rls.system("an invitation is found by its token before its reseller is known"):
        return (
            Invitation.unscoped.select_related("reseller", "customer")
            .filter(token_hash=_sha256(token))
            .first()
        )


def invitation_accept(*, token: str, user: User) -> Membership:
    """Turn a pending invitation into a membership of `user`; the addresses must match."""
    invitation = invitation_find(token=token)
    if invitation is None:
        raise NotFoundError(_("This invitation link is not valid."), code="invitation_unknown")
    if invitation.status != "pending":
        raise ConflictError(
            _("This invitation is %(status)s. Ask for a new one.") % {"status": invitation.status},
            code=f"invitation_{invitation.status}",
        )
    if invitation.email.lower() != user.email.lower():
        raise PermissionDeniedError(
            _("This invitation was sent to %(email)s; sign in with that address.")
            % {"email": invitation.email},
            code="invitation_other_email",
        )
    ctx = TenantContext(
        reseller=invitation.reseller, customer=invitation.customer, role=Role.SYSTEM, user=user
    )
    with rls.tenant(invitation.reseller_id):
        claimed = Invitation.unscoped.filter(
            pk=invitation.pk, accepted_at=None, revoked_at=None
        ).update(accepted_at=now(), accepted_by=user)
        if claimed != 1:
            raise ConflictError(_("This invitation was used already."), code="invitation_accepted")
        membership, _created = Membership.unscoped.update_or_create(
            user=user,
            reseller=invitation.reseller,
            customer=invitation.customer,
            defaults={"role": invitation.role},
        )
        audit_record(
            ctx=ctx,
            action="invitation.accept",
            obj=invitation,
            detail={"email": user.email, "role": invitation.role},
        )
    return membership


def membership_update_role(*, ctx: TenantContext, membership_id: int, role: str) -> Membership:
    _require_admin(ctx)
    with transaction.atomic():
        membership = _get_for_update(Membership, ctx, membership_id)
        same_scope = RESELLER_ROLES if membership.customer_id is None else CUSTOMER_ROLES
        if role not in same_scope:
            raise DomainError(
                _("That role does not fit this membership."),
                code="invalid_role",
                fields={"role": [_("Choose a role of the same kind (reseller or customer).")]},
            )
        if ctx.user is not None and membership.user_id == ctx.user.pk:
            raise DomainError(_("You cannot change your own role."), code="own_membership")
        old = membership.role
        membership.role = role
        membership.save(update_fields=["role"])
        audit_record(
            ctx=ctx, action="membership.role", obj=membership, detail={"from": old, "to": role}
        )
    return membership


def membership_remove(*, ctx: TenantContext, membership_id: int) -> None:
    _require_admin(ctx)
    with transaction.atomic():
        membership = _get_for_update(Membership, ctx, membership_id)
        if ctx.user is not None and membership.user_id == ctx.user.pk:
            raise DomainError(_("You cannot remove yourself."), code="own_membership")
        audit_record(
            ctx=ctx,
            action="membership.remove",
            obj=membership,
            detail={"email": membership.user.email, "role": membership.role},
        )
        membership.delete()


# --- API tokens -----------------------------------------------------------------------------

TOKEN_PREFIX = "ink_"  # noqa: S105 - a public prefix, not a secret


def api_token_create(
    *, ctx: TenantContext, name: str, role: str, customer_id: int | None = None
) -> tuple[ApiToken, str]:
    """Create a token; the returned raw value is shown once and never stored."""
    _require_admin(ctx)
    name = name.strip()
    if not name:
        raise DomainError(_("Name the token."), fields={"name": [_("This field is required.")]})
    customer = _role_customer(ctx, role, customer_id, missing="Choose the customer.")
    if ctx.user is None:
        raise PermissionDeniedError(_("A token is created by a person."))
    key = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    with transaction.atomic():
        token = ApiToken.objects.for_tenant(ctx).create(
            reseller_id=ctx.reseller_id,
            customer=customer,
            name=name,
            role=role,
            key=key,
            secret_hash=_sha256(secret),
            created_by=ctx.user,
        )
        audit_record(ctx=ctx, action="api_token.create", obj=token, detail={"name": name})
    return token, f"{TOKEN_PREFIX}{key}_{secret}"


def api_token_revoke(*, ctx: TenantContext, token_id: int) -> ApiToken:
    _require_admin(ctx)
    with transaction.atomic():
        token = _get_for_update(ApiToken, ctx, token_id)
        if token.revoked_at is not None:
            raise ConflictError(_("This token is revoked already."), code="token_revoked")
        token.revoked_at = now()
        token.save(update_fields=["revoked_at"])
        audit_record(ctx=ctx, action="api_token.revoke", obj=token)
    return token


def api_token_key(*, raw: str) -> str:
    """The public key part of a raw token (`ink_<key>_<secret>`), or "" if it has none."""
    if not raw.startswith(TOKEN_PREFIX) or raw.count("_") < 2:
        return ""
    return raw[len(TOKEN_PREFIX) :].partition("_")[0]


def api_token_authenticate(*, raw: str) -> ApiToken | None:
    """The active token that `raw` stands for, or None. Constant-time secret comparison."""
    key = api_token_key(raw=raw)
    if not key:
        return None
    secret = raw[len(TOKEN_PREFIX) + len(key) + 1 :]
    token = (
        ApiToken.unscoped.select_related("reseller", "customer", "created_by")
        .filter(key=key, revoked_at=None, reseller__is_active=True, created_by__is_active=True)
        .first()
    )
    if token is None or not hmac.compare_digest(token.secret_hash, _sha256(secret)):
        return None
    # At most one write a minute per token: "last used" needs no more precision.
    if token.last_used_at is None or now() - token.last_used_at > timedelta(minutes=1):
        ApiToken.unscoped.filter(pk=token.pk).update(last_used_at=now())
    return token


# --- A user's own preferences -------------------------------------------------------------------


def user_preferences_update(
    *, user: User, locale: str, time_zone: str, language: str | None = None
) -> User:
    """The language `user` reads (portal/i18n.py), and how the portal writes numbers, dates
    and times for them (portal/formatting.py). Blank keeps the default; anything else must be
    a known language, locale or IANA time zone. Without `language`, it stays as it is."""
    from portal import formatting, i18n

    errors: dict[str, list[str]] = {}
    if language and not i18n.language_valid(language):
        errors["language"] = [_("Choose one of the listed languages.")]
    if locale and not formatting.locale_code_valid(locale):
        errors["locale"] = [_("Choose one of the listed formats.")]
    if time_zone and not formatting.time_zone_valid(time_zone):
        errors["time_zone"] = [_("Choose a time zone from the list, such as Europe/Berlin.")]
    if errors:
        raise DomainError(_("Check the preferences."), code="invalid_preferences", fields=errors)
    user.locale, user.time_zone = locale, time_zone
    if language is not None:
        user.language = language
    # A person's own row, not a tenant's: no tenant scope and no tenant audit trail.
    user.save(update_fields=["language", "locale", "time_zone"])
    return user


# --- Housekeeping -------------------------------------------------------------------------------


def invitations_purge(*, older_than_days: int = 90) -> int:
    """Delete invitations that ended (expired, revoked or accepted) long ago; returns the count."""
    cutoff = now() - timedelta(days=older_than_days)
    # Spans every tenant: run by beat, never for a request.
    deleted, _by_model = Invitation.unscoped.filter(expires_at__lt=cutoff).delete()
    return deleted


def _role_customer(
    ctx: TenantContext, role: str, customer_id: int | None, *, missing: str
) -> Customer | None:
    """The tenant's customer a membership role is tied to: required for customer roles, none
    for reseller roles. Refuses unknown roles and customers of other tenants."""
    if role not in MEMBERSHIP_ROLES:
        raise DomainError(
            _("Unknown role."), code="invalid_role", fields={"role": [_("Unknown role.")]}
        )
    if role not in CUSTOMER_ROLES:
        return None
    customer = Customer.objects.for_tenant(ctx).filter(pk=customer_id).first()
    if customer is None:
        raise DomainError(
            _("Customer roles need a customer."),
            code="customer_required",
            fields={"customer": [missing]},
        )
    return customer


def _get_for_update(model: type[Any], ctx: TenantContext, pk: int) -> Any:
    obj = model.objects.for_tenant(ctx).select_for_update(of=("self",)).filter(pk=pk).first()
    if obj is None:
        raise NotFoundError(
            _("No such %(verbose_name)s.") % {"verbose_name": model._meta.verbose_name}
        )
    return obj


def _jsonable(fields: dict[str, Any]) -> dict[str, str]:
    return {key: str(value) for key, value in fields.items()}
