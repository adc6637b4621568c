"""Reads of accounts data; each takes the tenant context first."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import cast

from django.db.models import Count, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce

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
from portal.errors import NotFoundError
from portal.tenancy import Role, TenantContext


@dataclass(frozen=True)
class ResolvedSession:
    ctx: TenantContext | None
    memberships: list[Membership] = field(default_factory=list)


def session_context_resolve(
    *, user: User, membership_id: int | None, operator_reseller_id: int | None
) -> ResolvedSession:
    """The tenant a signed-in user acts for: the membership chosen in the switcher, else the
    first; for a platform operator, the reseller entered from the operator console."""
    # Across tenants on purpose: these are the user's own memberships, for the switcher.
    memberships = list(
        Membership.unscoped.filter(user=user, reseller__is_active=True)
        .select_related("reseller", "customer")
        .order_by("reseller__name", "customer__name", "pk")
    )
    if user.is_superuser and operator_reseller_id is not None:
        reseller = Reseller.objects.filter(pk=operator_reseller_id).first()
        if reseller is not None:
            ctx = TenantContext(reseller=reseller, role=Role.OPERATOR, user=user)
            return ResolvedSession(ctx=ctx, memberships=memberships)
    chosen = next((m for m in memberships if m.pk == membership_id), None)
    if chosen is None and memberships:
        chosen = memberships[0]
    if chosen is None:
        return ResolvedSession(ctx=None, memberships=memberships)
    ctx = TenantContext(
        reseller=chosen.reseller,
        customer=chosen.customer,
        role=Role(chosen.role),
        user=user,
        membership=chosen,
    )
    return ResolvedSession(ctx=ctx, memberships=memberships)


def reseller_get(*, ctx: TenantContext) -> Reseller:
    return ctx.reseller


def customer_list(*, ctx: TenantContext, search: str = "") -> QuerySet[Customer]:
    # annotate() loses the model type through the generic tenant manager.
    qs = cast(
        "QuerySet[Customer]",
        Customer.objects.for_tenant(ctx).annotate(site_count=Count("sites", distinct=True)),
    )
    if search:
        qs = qs.filter(Q(name__icontains=search) | Q(account_number__icontains=search))
    return qs.order_by("name", "pk")


def customer_get(*, ctx: TenantContext, customer_id: int) -> Customer:
    customer = Customer.objects.for_tenant(ctx).filter(pk=customer_id).first()
    if customer is None:
        raise NotFoundError("No such customer.")
    return customer


def site_list(*, ctx: TenantContext, customer_id: int | None = None) -> QuerySet[Site]:
    qs = Site.objects.for_tenant(ctx).select_related("customer")
    if customer_id is not None:
        qs = qs.filter(customer_id=customer_id)
    return qs.order_by("customer__name", "name", "pk")


def site_get(*, ctx: TenantContext, site_id: int) -> Site:
    site = Site.objects.for_tenant(ctx).select_related("customer").filter(pk=site_id).first()
    if site is None:
        raise NotFoundError("No such site.")
    return site


def membership_list(*, ctx: TenantContext, customer_id: int | None = None) -> QuerySet[Membership]:
    qs = Membership.objects.for_tenant(ctx).select_related("user", "customer")
    if customer_id is not None:
        qs = qs.filter(customer_id=customer_id)
    return qs.order_by("customer__name", "user__email", "pk")


def membership_get(*, ctx: TenantContext, membership_id: int) -> Membership:
    membership = (
        Membership.objects.for_tenant(ctx)
        .select_related("user", "customer")
        .filter(pk=membership_id)
        .first()
    )
    if membership is None:
        raise NotFoundError("No such membership.")
    return membership


def invitation_list(*, ctx: TenantContext) -> QuerySet[Invitation]:
    return (
        Invitation.objects.for_tenant(ctx)
        .select_related("customer", "invited_by")
        .filter(accepted_at=None, revoked_at=None)
        .order_by("-created_at", "-pk")
    )


def audit_list(*, ctx: TenantContext, action: str = "") -> QuerySet[AuditEvent]:
    qs = AuditEvent.objects.for_tenant(ctx).select_related("customer")
    if action:
        qs = qs.filter(action__startswith=action)
    return qs.order_by("-created_at", "-pk")


def operator_audit_list(*, user: User, reseller_id: int | None = None) -> QuerySet[AuditEvent]:
    """Every operator access across resellers, for the operators themselves."""
    if not user.is_superuser:
        return AuditEvent.unscoped.none()
    qs = AuditEvent.unscoped.select_related("reseller").filter(actor_role=Role.OPERATOR)
    if reseller_id is not None:
        qs = qs.filter(reseller_id=reseller_id)
    return qs.order_by("-created_at", "-pk")


def operator_reseller_list(*, user: User) -> QuerySet[Reseller]:
    if not user.is_superuser:
        return Reseller.objects.none()
    customers = (
        Customer.unscoped.filter(reseller=OuterRef("pk"))
        .values("reseller")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return Reseller.objects.annotate(customer_count=Coalesce(Subquery(customers), 0)).order_by(
        "name"
    )


def api_token_list(*, ctx: TenantContext) -> QuerySet[ApiToken]:
    return ApiToken.objects.for_tenant(ctx).select_related("customer", "created_by")


def dashboard_counts(*, ctx: TenantContext) -> dict[str, int]:
    return {
        "customers": Customer.objects.for_tenant(ctx).count(),
        "sites": Site.objects.for_tenant(ctx).count(),
        "users": Membership.objects.for_tenant(ctx).values("user").distinct().count(),
        "pending_invitations": invitation_list(ctx=ctx).count(),
    }
