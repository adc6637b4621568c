"""Every way into a session that needs a second factor asks for it, in that session: allauth's
login, Django's admin login, and sessions that were signed in some other way (an invitation's
sign-up, an email confirmation, any `login()`). Checked through HTTP, with real TOTP codes."""

from __future__ import annotations

import pytest
from allauth.account.models import EmailAddress
from allauth.mfa.models import Authenticator
from allauth.mfa.totp.internal.auth import SECRET_SESSION_KEY

from accounts.models import ApiToken, Reseller
from portal.tenancy import Role
from tests.factories import PASSWORD, MembershipFactory, UserFactory, totp_code

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _codes_survive_a_slow_request(settings):
    # A code taken just before its 30-s window ends is checked in the next one when the
    # machine is busy; one window of tolerance, as authenticator apps' clocks drift anyway.
    settings.MFA_TOTP_TOLERANCE = 1


@pytest.fixture
def operator(db):
    user = UserFactory(email="ops@platform.test", is_superuser=True, is_staff=True, totp=True)
    EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
    return user


def _is_login_redirect(response) -> bool:
    return response.status_code == 302 and response["Location"].startswith(
        ("/accounts/login/", "/accounts/2fa/", "/admin/login/")
    )


def test_the_admin_login_with_the_password_alone_reaches_nothing(client, operator, tenant):
    answer = client.post(
        "/admin/login/?next=/admin/",
        {"username": operator.email, "password": PASSWORD, "next": "/admin/"},
    )

    # Django's own password form is not there: the admin's login is allauth's.
    assert answer.status_code == 302
    assert answer["Location"].startswith("/accounts/login/")
    for path in ("/admin/", "/operator/", "/admin/mfa/authenticator/"):
        assert _is_login_redirect(client.get(path)), path
    entered = client.post(f"/operator/resellers/{tenant.reseller.pk}/enter/")
    assert _is_login_redirect(entered)
    assert client.get("/api/v1/me").status_code in (401, 403)


def test_the_operator_signs_in_with_password_and_code_and_reaches_the_admin(client, operator):
    first = client.post("/accounts/login/", {"login": operator.email, "password": PASSWORD})
    assert first["Location"] == "/accounts/2fa/authenticate/"
    # Half-way through, nothing is open yet.
    assert _is_login_redirect(client.get("/admin/"))
    assert _is_login_redirect(client.get("/operator/"))

    second = client.post("/accounts/2fa/authenticate/", {"code": totp_code(operator)})

    assert second.status_code == 302
    assert client.get("/operator/").status_code == 200
    assert client.get("/admin/").status_code == 200


def test_a_session_signed_in_without_the_code_must_give_it_before_anything(client, operator):
    # What Django's admin login, or any other `login()`, leaves: a session with no second factor.
    client.force_login(operator)

    page = client.get("/operator/")
    api = client.get("/api/v1/me")

    assert page.status_code == 302
    assert page["Location"] == "/accounts/2fa/reauthenticate/?next=/operator/"
    assert api.status_code == 403
    assert api.json()["error"]["code"] == "mfa_required"
    # Nor can it switch the second factor off, or change the account's addresses.
    for path in ("/accounts/2fa/totp/deactivate/", "/accounts/email/", "/admin/"):
        assert _is_login_redirect(client.get(path)), path
    assert Authenticator.objects.filter(user=operator, type="totp").exists()

    wrong = client.post("/accounts/2fa/reauthenticate/?next=/operator/", {"code": "000000"})
    assert wrong.status_code == 200
    assert client.get("/operator/").status_code == 302
    right = client.post(
        "/accounts/2fa/reauthenticate/?next=/operator/", {"code": totp_code(operator)}
    )

    assert right["Location"] == "/operator/"
    assert client.get("/operator/").status_code == 200
    assert client.get("/api/v1/me").status_code in (200, 403)  # no tenant: not mfa_required
    assert "mfa_required" not in client.get("/api/v1/me").content.decode()


def test_a_password_only_operator_session_cannot_enter_a_reseller_or_mint_tokens(
    client, operator, tenant
):
    client.force_login(operator)
    session = client.session
    session["inkmeter_operator_reseller_id"] = tenant.reseller.pk
    session.save()

    page = client.post("/settings/tokens/", {"name": "stolen", "role": Role.RESELLER_ADMIN})

    assert _is_login_redirect(page)
    assert not ApiToken.unscoped.filter(name="stolen").exists()


def test_a_reseller_admin_signed_in_some_other_way_gives_the_code(client, alice):
    client.force_login(alice)

    response = client.get("/customers/")

    assert response.status_code == 302
    assert response["Location"] == "/accounts/2fa/reauthenticate/?next=/customers/"
    client.post("/accounts/2fa/reauthenticate/", {"code": totp_code(alice)})
    assert client.get("/customers/").status_code == 200


def test_setting_up_the_authenticator_counts_as_the_second_factor(client, tenant):
    finance = MembershipFactory(reseller=tenant.reseller, role=Role.RESELLER_FINANCE).user
    EmailAddress.objects.create(user=finance, email=finance.email, verified=True, primary=True)
    client.post("/accounts/login/", {"login": finance.email, "password": PASSWORD})
    assert client.get("/")["Location"] == "/accounts/2fa/totp/activate/"
    # allauth asks for the password again before a factor is added.
    assert client.get("/accounts/2fa/totp/activate/")["Location"].startswith(
        "/accounts/reauthenticate/"
    )
    client.post("/accounts/reauthenticate/", {"password": PASSWORD})

    assert client.get("/accounts/2fa/totp/activate/").status_code == 200
    secret = client.session[SECRET_SESSION_KEY]
    activated = client.post("/accounts/2fa/totp/activate/", {"code": totp_code(secret=secret)})

    assert activated.status_code == 302
    assert Authenticator.objects.filter(user=finance, type="totp").exists()
    assert client.get("/").status_code == 200


def test_support_needs_no_second_factor(client, tenant):
    support = MembershipFactory(reseller=tenant.reseller, role=Role.RESELLER_SUPPORT).user
    client.force_login(support)

    assert client.get("/customers/").status_code == 200
    assert client.get("/api/v1/customers").status_code == 200


def test_the_admin_is_for_operators_only(client, login, alice):
    # A reseller admin with both factors is still not an operator.
    login(alice)

    assert client.get("/admin/").status_code == 403
    assert Reseller.objects.exists()
