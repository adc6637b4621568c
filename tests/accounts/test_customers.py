import pytest

from accounts import services
from accounts.models import AuditEvent, Customer, Site
from portal.errors import ConflictError, PermissionDeniedError
from portal.tenancy import Role
from tests.factories import CustomerFactory, MembershipFactory, SiteFactory

pytestmark = pytest.mark.django_db


def test_admin_creates_customer_and_it_is_audited(login, alice, tenant):
    response = login(alice).post(
        "/customers/new/", {"name": "Hafen Logistik", "account_number": "K-1001"}
    )

    customer = Customer.objects.for_tenant(tenant.ctx()).get(name="Hafen Logistik")
    assert response.status_code == 302
    assert response["Location"] == f"/customers/{customer.pk}/"
    assert customer.account_number == "K-1001"
    event = AuditEvent.objects.for_tenant(tenant.ctx()).get(action="customer.create")
    assert (event.actor_email, event.object_id) == (alice.email, str(customer.pk))


def test_duplicate_name_is_refused_next_to_the_field_and_changes_nothing(login, alice, tenant):
    before = Customer.objects.for_tenant(tenant.ctx()).count()

    response = login(alice).post("/customers/new/", {"name": "alpha customer"})

    assert response.status_code == 200
    assert response.context["form"].errors == {
        "name": ["A customer with this name exists already."]
    }
    assert Customer.objects.for_tenant(tenant.ctx()).count() == before
    assert not AuditEvent.objects.for_tenant(tenant.ctx()).filter(action="customer.create").exists()


def test_blank_name_gets_a_field_error(login, alice):
    response = login(alice).post("/customers/new/", {"name": ""})

    assert response.status_code == 200
    assert response.context["form"].errors["name"] == ["This field is required."]


def test_support_role_cannot_create_customers(login, tenant):
    support = MembershipFactory(reseller=tenant.reseller, role=Role.RESELLER_SUPPORT)

    response = login(support.user).post("/customers/new/", {"name": "Sneaky"})

    assert response.status_code == 403
    assert not Customer.objects.for_tenant(tenant.ctx()).filter(name="Sneaky").exists()


def test_customer_list_searches_and_paginates_with_constant_queries(
    login, alice, tenant, assert_data_queries
):
    CustomerFactory.create_batch(30, reseller=tenant.reseller)
    client = login(alice)

    with assert_data_queries(12, exact=False):
        first = client.get("/customers/")
    second = client.get("/customers/?page=2")
    found = client.get("/customers/?q=alpha")

    assert first.status_code == 200
    assert len(first.context["page"].object_list) == 25
    assert len(second.context["page"].object_list) == 6
    assert [c.name for c in found.context["page"]] == ["Alpha Customer"]


def test_customer_list_answers_htmx_with_the_table_only(login, alice):
    response = login(alice).get("/customers/?q=alpha", headers={"HX-Request": "true"})

    assert response.status_code == 200
    assert b"<html" not in response.content
    assert b"Alpha Customer" in response.content


def test_customer_user_sees_only_their_own_customer(login, bob, tenant):
    other = CustomerFactory(reseller=tenant.reseller, name="Neighbour GmbH")
    client = login(bob)

    assert client.get(f"/customers/{tenant.customer.pk}/").status_code == 200
    assert client.get(f"/customers/{other.pk}/").status_code == 404
    assert client.get("/customers/").status_code == 403


def test_site_create_and_edit(login, alice, tenant):
    client = login(alice)
    response = client.post(
        f"/customers/{tenant.customer.pk}/sites/new/",
        {"name": "Warehouse", "city": "Bremen", "country": "de", "contact_email": "w@x.test"},
    )
    site = Site.objects.for_tenant(tenant.ctx()).get(name="Warehouse")
    assert response["Location"] == f"/sites/{site.pk}/"
    assert site.country == "DE"

    client.post(f"/sites/{site.pk}/edit/", {"name": "Warehouse North", "city": "Bremen"})
    site.refresh_from_db()
    assert site.name == "Warehouse North"


def test_site_with_a_bad_email_is_refused(login, alice, tenant):
    response = login(alice).post(
        f"/customers/{tenant.customer.pk}/sites/new/", {"name": "X", "contact_email": "nope"}
    )

    assert response.status_code == 200
    assert "contact_email" in response.context["form"].errors
    assert not Site.objects.for_tenant(tenant.ctx()).filter(name="X").exists()


def test_duplicate_site_name_in_one_customer_is_refused(tenant):
    with pytest.raises(ConflictError) as refused:
        services.site_create(ctx=tenant.ctx(), customer_id=tenant.customer.pk, name="alpha hq")

    assert refused.value.code == "site_exists"


def test_services_refuse_non_admin_roles(tenant):
    with pytest.raises(PermissionDeniedError):
        services.customer_create(ctx=tenant.ctx(Role.RESELLER_FINANCE), name="Nope")


def test_a_site_of_another_reseller_cannot_be_edited(foreign_tenant, tenant):
    foreign_site = SiteFactory(customer=foreign_tenant.customer)

    from portal.errors import NotFoundError

    with pytest.raises(NotFoundError):
        services.site_update(ctx=tenant.ctx(), site_id=foreign_site.pk, name="Mine now")
    foreign_site.refresh_from_db()
    assert foreign_site.name != "Mine now"


def test_billing_address_is_kept_and_shown(login, alice, tenant):
    client = login(alice)
    client.post(
        f"/customers/{tenant.customer.pk}/edit/",
        {"name": "Alpha Customer", "billing_address": "Kai 5\n20457 Hamburg"},
    )

    customer = Customer.objects.for_tenant(tenant.ctx()).get(pk=tenant.customer.pk)
    assert customer.billing_address == "Kai 5\n20457 Hamburg"
    assert b"Kai 5<br>20457 Hamburg" in client.get(f"/customers/{customer.pk}/").content
