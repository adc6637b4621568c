import re
from contextlib import contextmanager
from datetime import timedelta

import pytest
import time_machine
from django.core import mail
from django.db import connection
from django.utils.timezone import now

from accounts import services
from accounts.models import Invitation, Membership
from orders.models import EmailLog
from portal import rls
from portal.errors import ConflictError, DomainError, PermissionDeniedError
from portal.tenancy import Role
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def _invite(client, **data):
    return client.post("/users/invite/", data)


def _link_token():
    (message,) = mail.outbox
    match = re.search(r"/invitations/([\w-]+)/", message.body)
    assert match, message.body
    return match.group(1)


@pytest.fixture
def sent(login, alice, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = _invite(login(alice), email="New.Person@Example.test", role="reseller_support")
    assert response.status_code == 302
    return _link_token()


def test_invitation_emails_a_link_and_stores_only_a_hash(sent, tenant):
    invitation = Invitation.objects.for_tenant(tenant.ctx()).get()
    assert invitation.email == "new.person@example.test"
    assert invitation.token_hash != sent
    assert mail.outbox[0].to == ["new.person@example.test"]
    assert "Alpha Printing" in mail.outbox[0].subject


def test_a_new_person_signs_up_from_the_link_and_joins(sent, client, tenant):
    client.logout()
    landing = client.get(f"/invitations/{sent}/")
    assert landing.status_code == 302
    assert landing["Location"].startswith("/accounts/signup/")

    signup = client.post(
        landing["Location"],
        {
            "email": "new.person@example.test",
            "password1": "a-long-enough-passphrase",
            "password2": "a-long-enough-passphrase",
        },
    )
    assert signup.status_code == 302, signup.content.decode()[:2000]
    # The link proved the address, so no confirmation email is needed before accepting.
    accept = client.post(f"/invitations/{sent}/")

    assert accept.status_code == 302
    membership = Membership.objects.for_tenant(tenant.ctx()).get(
        user__email="new.person@example.test"
    )
    assert membership.role == Role.RESELLER_SUPPORT
    assert Invitation.objects.for_tenant(tenant.ctx()).get().status == "accepted"


def test_an_existing_user_logs_in_then_accepts(sent, client, login, tenant):
    person = UserFactory(email="new.person@example.test")
    client.logout()
    assert client.get(f"/invitations/{sent}/")["Location"].startswith("/accounts/login/")

    response = login(person).post(f"/invitations/{sent}/")

    assert response.status_code == 302
    assert Membership.objects.for_tenant(tenant.ctx()).filter(user=person).exists()


def test_another_signed_in_user_cannot_use_the_link(sent, login, tenant):
    intruder = UserFactory(email="intruder@example.test")

    response = login(intruder).post(f"/invitations/{sent}/")

    assert response.status_code == 200
    assert "sent to new.person@example.test" in response.content.decode()
    assert not Membership.objects.for_tenant(tenant.ctx()).filter(user=intruder).exists()
    assert Invitation.objects.for_tenant(tenant.ctx()).get().status == "pending"


def test_an_expired_invitation_cannot_be_accepted(sent, login, tenant):
    person = UserFactory(email="new.person@example.test")
    with time_machine.travel(now() + timedelta(days=8)):
        response = login(person).post(f"/invitations/{sent}/")

    assert response.status_code == 410
    assert not Membership.objects.for_tenant(tenant.ctx()).filter(user=person).exists()


def test_a_used_invitation_cannot_be_used_twice(sent, tenant):
    person = UserFactory(email="new.person@example.test")
    services.invitation_accept(token=sent, user=person)

    with pytest.raises(ConflictError) as refused:
        services.invitation_accept(token=sent, user=person)
    assert refused.value.code == "invitation_accepted"


def test_unknown_token_is_404(client):
    assert client.get("/invitations/not-a-real-token/").status_code == 404


def test_revoked_invitation_shows_as_revoked(sent, login, alice, tenant):
    invitation = Invitation.objects.for_tenant(tenant.ctx()).get()
    login(alice).post(f"/invitations/{invitation.pk}/revoke/")

    person = UserFactory(email="new.person@example.test")
    with pytest.raises(ConflictError):
        services.invitation_accept(token=sent, user=person)


def test_customer_roles_need_a_customer(login, alice, tenant):
    response = _invite(login(alice), email="x@example.test", role="customer_buyer")

    assert response.status_code == 200
    assert response.context["form"].errors == {
        "customer": ["Choose the customer this user belongs to."]
    }
    assert not Invitation.objects.for_tenant(tenant.ctx()).exists()


def test_a_customer_of_another_reseller_is_not_a_choice(login, alice, foreign_tenant, tenant):
    response = _invite(
        login(alice),
        email="x@example.test",
        role="customer_buyer",
        customer=foreign_tenant.customer.pk,
    )

    assert response.status_code == 200
    assert "customer" in response.context["form"].errors
    assert not Invitation.objects.for_tenant(tenant.ctx()).exists()


def test_inviting_a_member_again_is_refused(tenant, alice):
    with pytest.raises(ConflictError) as refused:
        services.invitation_create(ctx=tenant.ctx(), email=alice.email, role="reseller_admin")
    assert refused.value.code == "already_member"


def test_only_admins_invite(tenant):
    with pytest.raises(PermissionDeniedError):
        services.invitation_create(
            ctx=tenant.ctx(Role.RESELLER_SUPPORT), email="a@b.test", role="reseller_admin"
        )


def test_role_change_keeps_the_scope_kind(tenant, bob):
    membership = Membership.objects.for_tenant(tenant.ctx()).get(user=bob)

    with pytest.raises(DomainError) as refused:
        services.membership_update_role(
            ctx=tenant.ctx(), membership_id=membership.pk, role="reseller_admin"
        )
    assert refused.value.code == "invalid_role"
    membership.refresh_from_db()
    assert membership.role == Role.CUSTOMER_ADMIN


# --- The web form on a committed request, under PostgreSQL's row-level security ----------------


@contextmanager
def _as_a_real_request():
    """What the server does: no scope on the connection but what the request sets itself.
    (Test code acts as system, on the whole connection in a transactional test; the bug this
    guards lived in the gap between a request's commit and its on-commit callbacks.)"""
    if not rls.enabled():
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config(%s, '', false)", [rls.SCOPE])
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config(%s, %s, false)", [rls.SCOPE, rls.SYSTEM])


@pytest.mark.django_db(transaction=True)
def test_the_web_form_commits_the_invitation_and_sends_its_email(login, alice, tenant, client):
    if connection.vendor == "postgresql":
        assert rls.enabled(), "this test guards the row-level-security path"
    login(alice)

    with _as_a_real_request():
        response = _invite(client, email="web.invitee@example.test", role="reseller_support")

    assert response.status_code == 302
    assert response["Location"] == "/users/"
    invitation = Invitation.objects.for_tenant(tenant.ctx()).get(email="web.invitee@example.test")
    (message,) = mail.outbox
    assert message.to == ["web.invitee@example.test"]
    assert message.subject == "[Inkmeter] You are invited to Alpha Printing"
    # The email is logged like every other, and sent once.
    logged = EmailLog.objects.for_tenant(tenant.ctx()).get()
    assert (logged.kind, logged.status, logged.recipient, logged.attempts) == (
        EmailLog.Kind.INVITATION,
        EmailLog.Status.SENT,
        "web.invitee@example.test",
        1,
    )
    # The link in the email works; the log, which the reseller's staff can read, does not hold it.
    token = _link_token()
    assert services.invitation_find(token=token) == invitation
    assert token not in logged.body
    assert "/invitations/" not in logged.body
    client.logout()
    with _as_a_real_request():
        landing = client.get(f"/invitations/{token}/")
    assert landing.status_code == 302
    assert landing["Location"].startswith("/accounts/signup/")
