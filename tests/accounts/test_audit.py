import pytest

from accounts.models import AuditEvent
from portal.tenancy import Role
from tests.factories import UserFactory, sign_in

pytestmark = pytest.mark.django_db


def test_operator_access_is_audited_and_visible(client, tenant):
    operator = UserFactory(email="ops@platform.test", is_superuser=True, is_staff=True, totp=True)
    sign_in(client, operator)

    assert client.post(f"/operator/resellers/{tenant.reseller.pk}/enter/").status_code == 302
    page = client.get("/customers/")

    assert page.status_code == 200
    assert b"Alpha Customer" in page.content
    event = AuditEvent.objects.for_tenant(tenant.ctx()).get(
        action="operator.access", path="/customers/"
    )
    assert (event.actor_email, event.actor_role) == ("ops@platform.test", Role.OPERATOR)
    assert b"/customers/" in client.get("/operator/audit/").content


def test_reseller_admin_sees_the_operator_visit_in_their_audit_log(client, login, alice, tenant):
    operator = UserFactory(is_superuser=True, is_staff=True, totp=True)
    sign_in(client, operator)
    client.post(f"/operator/resellers/{tenant.reseller.pk}/enter/")
    client.get("/customers/")

    page = login(alice).get("/audit/?action=operator")

    assert page.status_code == 200
    assert operator.email.encode() in page.content


def test_non_operators_cannot_reach_the_console(login, alice, tenant):
    client = login(alice)
    assert client.get("/operator/").status_code == 403
    assert client.post(f"/operator/resellers/{tenant.reseller.pk}/enter/").status_code == 403


def test_operator_creates_a_reseller(client):
    operator = UserFactory(is_superuser=True, is_staff=True, totp=True)
    sign_in(client, operator)

    response = client.post("/operator/", {"name": "Gamma Print", "slug": ""})
    duplicate = client.post("/operator/", {"name": "Gamma Print", "slug": ""})

    from accounts.models import Reseller

    assert response.status_code == 302
    assert Reseller.objects.get(slug="gamma-print").name == "Gamma Print"
    assert duplicate.context["form"].errors == {"slug": ["Already taken."]}
