"""The second factor, in the session: one gate for every way a session can be signed in.

allauth's login asks for the TOTP code of a user who has an authenticator, but other doors
sign a session in with the password alone or less (Django's admin login, an invitation's
sign-up, an email confirmation, any `login()` call). So the check is not "has an
authenticator" but "gave its code in this session": allauth records each authentication step
in the session (`get_authentication_records`), and a step of method `mfa` is the proof.

Who needs it: platform operators (superusers, and staff, who reach the admin) always, and
anyone acting in a role of `MFA_REQUIRED_ROLES`. Until they have given it, such a session
reaches only the pages that give it (or set it up) and the logout; the API answers 403
`mfa_required`; the admin site checks the same function (accounts/admin_site.py).
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlencode

from allauth.account.authentication import get_authentication_records
from allauth.account.internal.flows.login import record_authentication
from allauth.mfa.models import Authenticator
from django.contrib import messages
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.translation import gettext as _

from portal.api import error_body
from portal.tenancy import MFA_REQUIRED_ROLES

# Reachable whoever is signed in: nothing of a tenant, nothing of an account.
_OPEN_PREFIXES = ("/static/", "/healthz", "/readyz")


def second_factor_required(request: HttpRequest) -> bool:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return False
    if user.is_superuser or user.is_staff:
        return True
    ctx = getattr(request, "ctx", None)
    return ctx is not None and ctx.role in MFA_REQUIRED_ROLES


def second_factor_given(request: HttpRequest) -> bool:
    """Whether the signed-in user gave a second factor in this session (not: has one)."""
    records = get_authentication_records(request, request.user)
    return any(record.get("method") == "mfa" for record in records)


def second_factor_missing(request: HttpRequest) -> bool:
    return second_factor_required(request) and not second_factor_given(request)


class RequireMFAMiddleware:
    """Sends a session that needs a second factor and has not given it to give (or set up) one."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path.startswith(_OPEN_PREFIXES) or not second_factor_missing(request):
            return self.get_response(request)
        has_totp = Authenticator.objects.filter(
            user=request.user, type=Authenticator.Type.TOTP
        ).exists()
        # The pages that give the factor, or set the first one up (whose activation may first
        # ask for the password again), and the way out. Not the rest of /accounts/: a session
        # with the password alone must not switch the factor off or change the addresses.
        allowed = {reverse("account_logout"), reverse("mfa_reauthenticate")}
        if not has_totp:
            allowed |= {reverse("mfa_activate_totp"), reverse("account_reauthenticate")}
        if request.path in allowed:
            response = self.get_response(request)
            if not has_totp and request.method == "POST":
                _record_activation(request)
            return response
        if request.path.startswith("/api/"):
            return JsonResponse(
                error_body("mfa_required", "Sign in with your second factor first."), status=403
            )
        if not has_totp:
            messages.warning(
                request,
                _(
                    "Your role needs two-factor authentication. "
                    "Set up an authenticator app to go on."
                ),
            )
            return redirect("mfa_activate_totp")
        query = urlencode({"next": request.get_full_path()}, safe="/")
        return redirect(f"{reverse('mfa_reauthenticate')}?{query}")


def _record_activation(request: HttpRequest) -> None:
    """Setting up the app took a valid code from it, in this session; allauth records no
    authentication step for that (its signal comes only after the commit), so it is here."""
    authenticator = Authenticator.objects.filter(
        user=request.user, type=Authenticator.Type.TOTP
    ).first()
    if authenticator is not None:
        record_authentication(
            request, request.user, "mfa", id=authenticator.pk, type="totp", activated=True
        )
