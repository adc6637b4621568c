import pytest
from django.core import mail

from portal.tenancy import Role
from tests.factories import PASSWORD, MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_login_is_by_email(client, tenant):
    support = MembershipFactory(
        reseller=tenant.reseller,
        role=Role.RESELLER_SUPPORT,
        user=UserFactory(email="sue@alpha.test"),
    )
    from allauth.account.models import EmailAddress

    EmailAddress.objects.create(
        user=support.user, email="sue@alpha.test", verified=True, primary=True
    )

    response = client.post("/accounts/login/", {"login": "SUE@alpha.test", "password": PASSWORD})

    assert response.status_code == 302
    assert client.get("/").status_code == 200


def test_repeated_failed_logins_are_rate_limited(client, tenant):
    user = UserFactory(email="target@alpha.test")
    limited = "Too many failed login attempts"
    answers = [
        client.post("/accounts/login/", {"login": user.email, "password": "wrong"}).content.decode()
        for _ in range(6)
    ]

    assert [limited in a for a in answers] == [False] * 5 + [True]
    # Even the right password is refused while the limit holds.
    right = client.post("/accounts/login/", {"login": user.email, "password": PASSWORD})
    assert right.status_code == 200
    assert limited in right.content.decode()
    assert "_auth_user_id" not in client.session


def test_admin_without_totp_must_set_it_up_first(login, tenant):
    admin = MembershipFactory(reseller=tenant.reseller, role=Role.RESELLER_ADMIN)

    response = login(admin.user).get("/customers/")

    assert response.status_code == 302
    assert response["Location"] == "/accounts/2fa/totp/activate/"
    api = login(admin.user).get("/api/v1/customers")
    assert api.status_code == 403
    assert api.json()["error"]["code"] == "mfa_required"


def test_finance_needs_totp_but_support_does_not(login, tenant):
    finance = MembershipFactory(reseller=tenant.reseller, role=Role.RESELLER_FINANCE)
    support = MembershipFactory(reseller=tenant.reseller, role=Role.RESELLER_SUPPORT)

    assert login(finance.user).get("/").status_code == 302
    assert login(support.user).get("/").status_code == 200


def test_password_reset_sends_a_link(client):
    UserFactory(email="forgetful@alpha.test")

    response = client.post("/accounts/password/reset/", {"email": "forgetful@alpha.test"})

    assert response.status_code == 302
    assert len(mail.outbox) == 1
    assert "/accounts/password/reset/key/" in mail.outbox[0].body


def test_signup_is_closed_without_an_invitation(client):
    response = client.post(
        "/accounts/signup/",
        {
            "email": "walk.in@x.test",
            "password1": "long-passphrase-1",
            "password2": "long-passphrase-1",
        },
    )

    from accounts.models import User

    assert b"Sign Up Closed" in response.content or response.status_code == 403
    assert not User.objects.filter(email="walk.in@x.test").exists()


def test_an_unverified_address_must_be_confirmed_before_signing_in(client):
    from allauth.account.models import EmailAddress

    user = UserFactory(email="fresh@alpha.test")
    EmailAddress.objects.create(user=user, email=user.email, verified=False, primary=True)

    response = client.post("/accounts/login/", {"login": user.email, "password": PASSWORD})

    assert response.status_code == 302
    assert response["Location"] == "/accounts/confirm-email/"
    assert "_auth_user_id" not in client.session
    (message,) = mail.outbox
    link = next(line for line in message.body.splitlines() if "/accounts/confirm-email/" in line)
    client.post(link[link.index("/accounts/") :].strip())
    assert EmailAddress.objects.get(user=user).verified is True
