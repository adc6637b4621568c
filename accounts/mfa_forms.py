"""allauth's second-factor forms, with one answer of our own: a code that was already used.

allauth accepts each TOTP code once (TOTP.validate_code marks it used in the cache for one
period) and refuses a second use as "Incorrect code", which sends a person who typed the right
digits twice in a minute looking for a typo. This form tells them to wait for the next code.
"""

from __future__ import annotations

from typing import Any

from allauth.mfa.base.forms import AuthenticateForm, ReauthenticateForm
from allauth.mfa.models import Authenticator
from allauth.mfa.totp.internal.auth import TOTP, validate_totp_code
from allauth.mfa.utils import decrypt
from django import forms
from django.core.cache import cache

CODE_USED_MESSAGE = (
    "This code was already used. Wait for your authenticator app to show the next one, "
    "then enter that."
)


def totp_code_reused(user: Any, code: str) -> bool:
    """Whether `code` is a current code of the user's authenticator app that was used already."""
    authenticator = Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).first()
    if authenticator is None:
        return False
    totp = TOTP(authenticator)
    if not validate_totp_code(decrypt(authenticator.data["secret"]), code):
        return False
    # The key under which TOTP.validate_code marks a code used (allauth's own format).
    return cache.get(totp._get_used_cache_key(code)) is not None


class _CodeUsedMixin:
    user: Any

    def clean_code(self) -> str:
        try:
            code: str = super().clean_code()  # type: ignore[misc]
        except forms.ValidationError:
            code = str(getattr(self, "cleaned_data", {}).get("code", ""))
            if code and totp_code_reused(self.user, code):
                raise forms.ValidationError(CODE_USED_MESSAGE, code="code_used") from None
            raise
        return code


class MfaAuthenticateForm(_CodeUsedMixin, AuthenticateForm):
    pass


class MfaReauthenticateForm(_CodeUsedMixin, ReauthenticateForm):
    pass
