"""Who may do what in the orders app: the role sets the services check, in one place."""

from __future__ import annotations

from collections.abc import Iterable

from accounts.models import User
from portal.errors import PermissionDeniedError
from portal.tenancy import CUSTOMER_ROLES, Role, TenantContext

CATALOG_ROLES = frozenset({Role.OPERATOR, Role.RESELLER_ADMIN, Role.SYSTEM})
SUPPORT_ROLES = frozenset({Role.OPERATOR, Role.RESELLER_ADMIN, Role.RESELLER_SUPPORT, Role.SYSTEM})
ORDERING_ROLES = SUPPORT_ROLES | CUSTOMER_ROLES
APPROVER_ROLES = frozenset({Role.CUSTOMER_ADMIN, Role.RESELLER_ADMIN, Role.OPERATOR})


def require(ctx: TenantContext, roles: Iterable[Role], what: str) -> None:
    if ctx.role not in roles:
        raise PermissionDeniedError(f"Your role does not allow you to {what}.")


def actor(ctx: TenantContext) -> User | None:
    return ctx.user if ctx.user is not None and ctx.user.pk else None
