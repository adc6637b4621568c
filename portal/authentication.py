"""API authentication and the tenant context it resolves.

Kept apart from portal.api because DRF imports these classes while rest_framework.views is
still loading: nothing here may import it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.conf import settings
from drf_spectacular.authentication import SessionScheme
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions, permissions
from rest_framework.authentication import BaseAuthentication, SessionAuthentication
from rest_framework.request import Request

from portal import ratelimit, rls
from portal.tenancy import Role, TenantContext

if TYPE_CHECKING:
    from rest_framework.views import APIView


class ApiTokenAuthentication(BaseAuthentication):
    """`Authorization: Bearer ink_<key>_<secret>`: a reseller's integration token."""

    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[Any, Any] | None:
        from accounts import services

        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not header.startswith(self.keyword + " "):
            return None
        raw = header[len(self.keyword) + 1 :].strip()
        with rls.system("a token is found by its key before its reseller is known"):
            token = services.api_token_authenticate(raw=raw)
            if token is not None:
                ctx = TenantContext(
                    reseller=token.reseller,
                    customer=token.customer,
                    role=Role(token.role),
                    user=token.created_by,
                )
        if token is None:
            # Only failures count, per IP and per token key: guessing stops, and a valid token
            # is never refused, whoever failed before it (portal.ratelimit.failure_hit).
            wait = ratelimit.failure_hit(
                scope="api-token",
                ip=ratelimit.client_ip(request._request),
                key=services.api_token_key(raw=raw),
                ip_rate=settings.API_AUTH_FAILURE_RATE_LIMIT,
                key_rate=settings.API_AUTH_FAILURE_KEY_RATE_LIMIT,
            )
            if wait is not None:
                raise RateLimited(wait=wait)
            raise exceptions.AuthenticationFailed("Invalid or revoked token.")
        rls.activate(ctx.reseller_id)
        request._request.ctx = ctx  # type: ignore[attr-defined]
        return token.created_by, token

    def authenticate_header(self, request: Request) -> str:
        return self.keyword


class RateLimited(exceptions.APIException):
    status_code = 429
    default_code = "rate_limited"
    default_detail = ratelimit.FAILURE_MESSAGE

    def __init__(self, wait: int) -> None:
        super().__init__()
        self.wait = wait  # DRF's handler turns it into Retry-After


class SessionTenantAuthentication(SessionAuthentication):
    """The portal's own session (with CSRF), for pages that call the API with htmx."""


class ApiTokenScheme(OpenApiAuthenticationExtension):
    target_class = "portal.authentication.ApiTokenAuthentication"
    name = "tokenAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {"type": "http", "scheme": "bearer", "bearerFormat": "ink_<key>_<secret>"}


class SessionTenantScheme(SessionScheme):
    target_class = "portal.authentication.SessionTenantAuthentication"


class HasTenant(permissions.BasePermission):
    """Authenticated, with a tenant context; `required_roles` on the view narrows the roles."""

    def has_permission(self, request: Request, view: APIView) -> bool:
        ctx = getattr(request._request, "ctx", None)
        if ctx is None or not request.user or not request.user.is_authenticated:
            return False
        roles = getattr(view, "required_roles", None)
        return roles is None or ctx.role in roles


def request_ctx(request: Request) -> TenantContext:
    ctx: TenantContext = request._request.ctx  # type: ignore[attr-defined]
    return ctx
