import pytest

from accounts.models import Membership
from portal.tenancy import Role
from tests.factories import MembershipFactory

pytestmark = pytest.mark.django_db


def test_a_user_in_two_tenants_switches_between_them(login, alice, foreign_tenant):
    second = MembershipFactory(
        user=alice, reseller=foreign_tenant.reseller, role=Role.RESELLER_SUPPORT
    )
    client = login(alice)

    assert client.get("/").context["ctx"].reseller.name == "Alpha Printing"
    response = client.post("/switch/", {"membership": second.pk})

    assert response.status_code == 302
    page = client.get("/")
    assert page.context["ctx"].reseller == foreign_tenant.reseller
    assert page.context["ctx"].role == Role.RESELLER_SUPPORT
    assert b"Charlie Printing" in page.content


def test_switching_to_someone_elses_membership_is_404(login, alice, charlie):
    foreign = Membership.unscoped.get(user=charlie)
    client = login(alice)

    assert client.post("/switch/", {"membership": foreign.pk}).status_code == 404
    assert client.post("/switch/", {"membership": "garbage"}).status_code == 404
    assert client.get("/").context["ctx"].reseller.name == "Alpha Printing"


def test_a_user_without_membership_gets_403(login):
    from tests.factories import UserFactory

    assert login(UserFactory()).get("/").status_code == 403
