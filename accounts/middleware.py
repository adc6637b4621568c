from collections.abc import Callable

from allauth.mfa.models import Authenticator
from django.contrib import messages
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect

from portal.api import error_body
from portal.tenancy import MFA_REQUIRED_ROLES

# Pages a user must reach to set up the second factor, or to leave.
_EXEMPT_PREFIXES = ("/accounts/", "/static/", "/healthz", "/readyz", "/switch/")


class RequireMFAMiddleware:
    """Admins, finance users and operators must have TOTP before they see tenant data."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        ctx = getattr(request, "ctx", None)
        if (
            ctx is not None
            and ctx.role in MFA_REQUIRED_ROLES
            and not request.path.startswith(_EXEMPT_PREFIXES)
            and not Authenticator.objects.filter(
                user=request.user, type=Authenticator.Type.TOTP
            ).exists()
        ):
            if request.path.startswith("/api/"):
                return JsonResponse(
                    error_body("mfa_required", "Set up two-factor authentication first."),
                    status=403,
                )
            messages.warning(
                request,
                "Your role needs two-factor authentication. Set up an authenticator app to go on.",
            )
            return redirect("mfa_activate_totp")
        return self.get_response(request)
