"""The sign-in and account pages (allauth's) in the portal's own layout, with titles that read
once, and a second-factor step that tells a reused code from a wrong one. Through HTTP."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest
import time_machine
from allauth.account.models import EmailAddress
from allauth.mfa.totp.internal.auth import SECRET_SESSION_KEY

from accounts.mfa_forms import CODE_USED_MESSAGE
from portal.tenancy import Role
from tests.factories import PASSWORD, MembershipFactory, totp_code

pytestmark = pytest.mark.django_db

# The middle of a 30-second TOTP window: both sign-ins below fall inside it.
MOMENT = datetime(2026, 5, 4, 9, 0, 10, tzinfo=UTC)


def _title(body: str) -> str:
    match = re.search(r"<title>(.*?)</title>", body, re.S)
    assert match
    return " ".join(match.group(1).split())


@pytest.fixture
def admin(tenant: Any) -> Any:
    user = tenant.admin.user
    EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
    return user


def _password_step(client: Any, user: Any) -> Any:
    answer = client.post("/accounts/login/", {"login": user.email, "password": PASSWORD})
    assert answer["Location"] == "/accounts/2fa/authenticate/"
    return answer


def test_a_code_used_once_is_refused_as_already_used(client: Any, admin: Any) -> None:
    with time_machine.travel(MOMENT, tick=False):
        code = totp_code(admin)
        _password_step(client, admin)
        assert client.post("/accounts/2fa/authenticate/", {"code": code}).status_code == 302
        client.post("/accounts/logout/")

        _password_step(client, admin)
        again = client.post("/accounts/2fa/authenticate/", {"code": code})

    assert again.status_code == 200
    body = again.content.decode()
    assert "This code was already used" in body
    assert CODE_USED_MESSAGE in body
    assert "Incorrect code" not in body
    assert client.get("/")["Location"].startswith("/accounts/")  # still not signed in


def test_a_wrong_code_is_still_called_incorrect(client: Any, admin: Any) -> None:
    with time_machine.travel(MOMENT, tick=False):
        right = totp_code(admin)
        wrong = f"{(int(right) + 1) % 1_000_000:06d}"
        _password_step(client, admin)
        answer = client.post("/accounts/2fa/authenticate/", {"code": wrong})

    body = answer.content.decode()
    assert "Incorrect code" in body
    assert "already used" not in body


def test_a_code_reused_to_confirm_access_is_refused_as_already_used(
    client: Any, admin: Any
) -> None:
    with time_machine.travel(MOMENT, tick=False):
        code = totp_code(admin)
        _password_step(client, admin)
        client.post("/accounts/2fa/authenticate/", {"code": code})

        again = client.post("/accounts/2fa/reauthenticate/", {"code": code})

    assert CODE_USED_MESSAGE in again.content.decode()


def test_sign_in_pages_have_one_clear_title_and_the_portal_layout(client: Any, admin: Any) -> None:
    login = client.get("/accounts/login/").content.decode()
    reset = client.get("/accounts/password/reset/").content.decode()
    _password_step(client, admin)
    second = client.get("/accounts/2fa/authenticate/").content.decode()

    assert _title(login) == "Sign in · Inkmeter"
    assert _title(second) == "Enter your code · Inkmeter"
    assert _title(reset).endswith(" · Inkmeter")
    for body in (login, reset, second):
        assert _title(body).count("Inkmeter") == 1
        assert '<link rel="stylesheet" href="/static/css/app.css">' in body
        assert 'class="auth-card"' in body
        assert '<form method="post" class="stack"' in body
    # The cancel of the second step is a secondary button, not a second blue one.
    assert '<button class="secondary" form="logout-from-stage" type="submit">Cancel</button>' in (
        second
    )


def test_account_pages_are_portal_pages(client: Any, admin: Any, login: Any) -> None:
    client = login(admin)

    for path in ("/accounts/email/", "/accounts/password/change/", "/accounts/2fa/"):
        body = client.get(path).content.decode()
        assert 'class="shell"' in body, path  # sidebar and top bar
        assert _title(body).count("Inkmeter") == 1, path


def test_setting_up_the_app_shows_the_code_and_key_in_the_portal(client: Any, tenant: Any) -> None:
    finance = MembershipFactory(reseller=tenant.reseller, role=Role.RESELLER_FINANCE).user
    EmailAddress.objects.create(user=finance, email=finance.email, verified=True, primary=True)
    client.post("/accounts/login/", {"login": finance.email, "password": PASSWORD})
    client.post("/accounts/reauthenticate/", {"password": PASSWORD})

    body = client.get("/accounts/2fa/totp/activate/").content.decode()

    assert _title(body) == "Set up your authenticator app · Inkmeter"
    assert 'class="qr-code"' in body
    assert client.session[SECRET_SESSION_KEY] in body  # the key to type in, read-only
    assert 'class="shell"' in body
