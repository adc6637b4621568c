from typing import Any

from allauth.account.adapter import DefaultAccountAdapter
from django.http import HttpRequest

from accounts import services

INVITATION_SESSION_KEY = "inkmeter_invitation_token"


class AccountAdapter(DefaultAccountAdapter):
    """Sign-up is by invitation only: people join a reseller or customer they were invited to."""

    def is_open_for_signup(self, request: HttpRequest) -> bool:
        token = request.session.get(INVITATION_SESSION_KEY, "")
        invitation = services.invitation_find(token=token)
        return invitation is not None and invitation.status == "pending"

    def get_signup_redirect_url(self, request: HttpRequest) -> Any:
        return super().get_signup_redirect_url(request)
