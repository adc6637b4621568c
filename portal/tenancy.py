"""The one tenancy gate.

A request's tenant context (reseller, optional customer, role) is resolved once, by
`TenantMiddleware` for portal sessions or by the API authentication for tokens and device
credentials. Every selector takes it, and tenant-owned models expose their rows only through
`Model.objects.for_tenant(ctx)`: any other use of `objects` raises `UnscopedQueryError`, so a
query that forgot the scope fails loudly instead of reading another tenant's rows.

System code that legitimately works across tenants (ingestion by credential, beat sweeps,
the operator console) uses `Model.unscoped` and says why; a test keeps `unscoped` and raw
`objects` out of views, API classes and tasks.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import models
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils.translation import gettext_lazy as _

from portal import rls
from portal.errors import NotFoundError, PermissionDeniedError

if TYPE_CHECKING:
    from accounts.models import Customer, Membership, Reseller, User


class Role(models.TextChoices):
    OPERATOR = "operator", _("Platform operator")
    RESELLER_ADMIN = "reseller_admin", _("Reseller admin")
    RESELLER_FINANCE = "reseller_finance", _("Reseller finance")
    RESELLER_SUPPORT = "reseller_support", _("Reseller support")
    CUSTOMER_ADMIN = "customer_admin", _("Customer admin")
    CUSTOMER_BUYER = "customer_buyer", _("Customer buyer")
    # Not a membership role: Celery tasks, ingestion and management commands acting for a tenant.
    SYSTEM = "system", _("System")


RESELLER_ROLES = frozenset({Role.RESELLER_ADMIN, Role.RESELLER_FINANCE, Role.RESELLER_SUPPORT})
CUSTOMER_ROLES = frozenset({Role.CUSTOMER_ADMIN, Role.CUSTOMER_BUYER})
MEMBERSHIP_ROLES = RESELLER_ROLES | CUSTOMER_ROLES
# Roles that see the whole reseller (every customer); the others see one customer.
RESELLER_WIDE_ROLES = RESELLER_ROLES | {Role.OPERATOR, Role.SYSTEM}
# Roles whose holders must sign in with a second factor.
MFA_REQUIRED_ROLES = frozenset({Role.OPERATOR, Role.RESELLER_ADMIN, Role.RESELLER_FINANCE})
# Who may administer a reseller: customers, sites, users, credentials, tokens.
ADMIN_ROLES = frozenset({Role.OPERATOR, Role.RESELLER_ADMIN})


@dataclass(frozen=True, slots=True)
class TenantContext:
    """Who is acting, for which reseller and (for customer roles) which customer."""

    reseller: Reseller
    role: Role
    customer: Customer | None = None
    user: User | None = None
    membership: Membership | None = None

    def __post_init__(self) -> None:
        if self.role in CUSTOMER_ROLES and self.customer is None:
            raise ValueError("a customer role needs a customer")

    @property
    def reseller_id(self) -> int:
        return self.reseller.pk

    @property
    def customer_id(self) -> int | None:
        return self.customer.pk if self.customer is not None else None

    @property
    def is_operator(self) -> bool:
        return self.role == Role.OPERATOR

    @property
    def is_reseller_wide(self) -> bool:
        return self.role in RESELLER_WIDE_ROLES

    @property
    def is_customer(self) -> bool:
        return self.role in CUSTOMER_ROLES

    def has_role(self, roles: Iterable[Role]) -> bool:
        return self.role in roles

    @classmethod
    def system(cls, *, reseller: Reseller, customer: Customer | None = None) -> TenantContext:
        """The context of a task or command acting inside one tenant."""
        return cls(reseller=reseller, role=Role.SYSTEM, customer=customer)


class UnscopedQueryError(RuntimeError):
    """A tenant model was queried without `for_tenant(ctx)`."""


_M = TypeVar("_M", bound=models.Model)


class TenantQuerySet(models.QuerySet[_M], Generic[_M]):
    def for_tenant(self, ctx: TenantContext) -> TenantQuerySet[_M]:
        qs = self.filter(reseller_id=ctx.reseller_id)
        customer_field = getattr(self.model, "tenant_customer_field", None)
        if ctx.customer is not None and customer_field:
            qs = qs.filter(**{customer_field: ctx.customer_id})
        return qs


class TenantManager(models.Manager[_M], Generic[_M]):
    """`objects` of a tenant model: the only way in is `for_tenant(ctx)`."""

    def get_queryset(self) -> TenantQuerySet[_M]:
        raise UnscopedQueryError(
            f"{self.model.__name__}.objects needs for_tenant(ctx); "
            f"system code that spans tenants uses {self.model.__name__}.unscoped"
        )

    def for_tenant(self, ctx: TenantContext) -> TenantQuerySet[_M]:
        return TenantQuerySet(self.model, using=self._db).for_tenant(ctx)


class UnscopedManager(models.Manager[_M], Generic[_M]):
    """Every row of every tenant; for system code, admin and Django's own machinery."""

    def get_queryset(self) -> TenantQuerySet[_M]:
        return TenantQuerySet(self.model, using=self._db)


class TenantModel(models.Model):
    """A row owned by one reseller (and, where `tenant_customer_field` says so, one customer)."""

    # Declared first so that Django's own machinery (related managers, unique checks, admin)
    # uses it as the default manager; application code goes through `objects`.
    unscoped: ClassVar[UnscopedManager[Any]] = UnscopedManager()
    objects: ClassVar[TenantManager[Any]] = TenantManager()

    # The lookup that ties a row to a customer, for customer-role contexts; None for rows a
    # reseller shares with all its customers (catalog products, for example).
    tenant_customer_field: ClassVar[str | None] = "customer"

    reseller = models.ForeignKey("accounts.Reseller", on_delete=models.CASCADE, related_name="+")

    class Meta:
        abstract = True


# --- Request side -----------------------------------------------------------------------------


class TenantRequest(HttpRequest):
    """An HttpRequest after TenantMiddleware (for type checkers)."""

    ctx: TenantContext | None
    user: Any


SESSION_MEMBERSHIP_KEY = "inkmeter_membership_id"
SESSION_OPERATOR_RESELLER_KEY = "inkmeter_operator_reseller_id"


class TenantMiddleware:
    """Resolves `request.ctx` once per request from the session's chosen membership."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not rls.enabled():
            return self._handle(request)
        # One transaction per request, scoped to the tenant resolved below (or, for the API, by
        # its authentication); a streamed body gets the same scope when it is read.
        with rls.request():
            response = self._handle(request)
            reseller_id = rls.current_reseller_id() if response.streaming else None
        if response.streaming:
            stream: Any = response
            stream.streaming_content = rls.stream_in_scope(stream.streaming_content, reseller_id)
        return response

    def _handle(self, request: HttpRequest) -> HttpResponse:
        from accounts import selectors

        tenant_request: Any = request
        tenant_request.ctx = None
        tenant_request.memberships = []
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            rls.activate_system("a user's memberships may span resellers")
            resolved = selectors.session_context_resolve(
                user=user,
                membership_id=request.session.get(SESSION_MEMBERSHIP_KEY),
                operator_reseller_id=request.session.get(SESSION_OPERATOR_RESELLER_KEY),
            )
            tenant_request.ctx = resolved.ctx
            tenant_request.memberships = resolved.memberships
            rls.activate(resolved.ctx.reseller_id if resolved.ctx else None)
        response = self.get_response(request)
        ctx = tenant_request.ctx
        if ctx is not None and ctx.is_operator and _is_tenant_page(request):
            from accounts.services import audit_record

            # Every access of an operator to a reseller's data leaves a row (DESIGN.md).
            audit_record(
                ctx=ctx,
                action="operator.access",
                detail={"method": request.method, "status": response.status_code},
                path=request.path,
                ip=request.META.get("REMOTE_ADDR"),
            )
        return response


def _is_tenant_page(request: HttpRequest) -> bool:
    # The admin writes rows of its own, naming each reseller whose rows a page shows.
    return not request.path.startswith((settings.STATIC_URL, "/accounts/", "/operator/", "/admin/"))


ViewFunc = Callable[..., HttpResponse]


def tenant_view(*roles: Role) -> Callable[[ViewFunc], ViewFunc]:
    """A portal page that needs a signed-in user with a tenant, optionally in one of `roles`.

    Anonymous users are sent to the login page; users without a tenant or with another role
    get 403. Objects of another tenant are never found by the selectors, hence 404.
    """

    def decorator(view: ViewFunc) -> ViewFunc:
        @functools.wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if not request.user.is_authenticated:
                from django.contrib.auth.views import redirect_to_login

                return redirect_to_login(request.get_full_path())
            ctx = getattr(request, "ctx", None)
            if ctx is None and getattr(request.user, "is_superuser", False):
                # An operator outside every reseller starts from the list of resellers.
                return redirect("operator-home")
            if ctx is None:
                raise PermissionDenied(
                    _(
                        "Your account is not part of any reseller or customer yet. "
                        "Ask whoever invited you to send the invitation again."
                    )
                )
            if roles and ctx.role not in roles:
                raise PermissionDenied(_("Your role does not allow this page."))
            try:
                return view(request, *args, **kwargs)
            except NotFoundError as exc:
                raise Http404(exc.message) from exc
            except PermissionDeniedError as exc:
                raise PermissionDenied(exc.message) from exc

        return wrapped

    return decorator
