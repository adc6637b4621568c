import pytest

from accounts import services
from accounts.models import ApiToken, Customer
from portal.tenancy import Role

pytestmark = pytest.mark.django_db


@pytest.fixture
def token(tenant):
    _, raw = services.api_token_create(ctx=tenant.ctx(), name="ERP", role=Role.RESELLER_ADMIN)
    return raw


def _auth(raw):
    return {"Authorization": f"Bearer {raw}"}


def test_token_lists_the_tenants_customers(client, token, foreign_tenant):
    response = client.get("/api/v1/customers", headers=_auth(token))

    assert response.status_code == 200
    assert [c["name"] for c in response.json()["results"]] == ["Alpha Customer"]


def test_token_is_stored_hashed_and_shown_once(tenant, token):
    stored = ApiToken.objects.for_tenant(tenant.ctx()).get()
    assert token.startswith(f"ink_{stored.key}_")
    assert token.split("_", 2)[2] not in stored.secret_hash


def test_create_customer_through_the_api(client, token, tenant):
    response = client.post(
        "/api/v1/customers",
        {"name": "Via API"},
        content_type="application/json",
        headers=_auth(token),
    )

    assert response.status_code == 201
    assert Customer.objects.for_tenant(tenant.ctx()).filter(name="Via API").exists()


def test_bad_input_gets_a_machine_readable_error_and_changes_nothing(client, token, tenant):
    before = Customer.objects.for_tenant(tenant.ctx()).count()

    response = client.post(
        "/api/v1/customers",
        {"name": "", "billing_email": "not-an-email"},
        content_type="application/json",
        headers=_auth(token),
    )

    assert response.status_code == 400
    body = response.json()["error"]
    assert body["code"] == "validation_failed"
    assert set(body["fields"]) == {"name", "billing_email"}
    assert Customer.objects.for_tenant(tenant.ctx()).count() == before


def test_duplicate_is_a_409_with_a_stable_code(client, token):
    response = client.post(
        "/api/v1/customers",
        {"name": "Alpha Customer"},
        content_type="application/json",
        headers=_auth(token),
    )

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "customer_exists"


def test_foreign_customer_is_404(client, token, foreign_tenant):
    response = client.get(f"/api/v1/customers/{foreign_tenant.customer.pk}", headers=_auth(token))

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert "Charlie" not in response.content.decode()


def test_revoked_and_malformed_tokens_are_refused(client, tenant, token):
    stored = ApiToken.objects.for_tenant(tenant.ctx()).get()
    services.api_token_revoke(ctx=tenant.ctx(), token_id=stored.pk)

    for raw in (token, "ink_nothing", "garbage", token[:-1] + "x"):
        response = client.get("/api/v1/customers", headers=_auth(raw))
        assert response.status_code == 401, raw
        assert response.json()["error"]["code"] == "authentication_failed"


def test_read_only_roles_cannot_write(client, tenant):
    _, raw = services.api_token_create(ctx=tenant.ctx(), name="Finance", role=Role.RESELLER_FINANCE)

    response = client.post(
        "/api/v1/customers", {"name": "Nope"}, content_type="application/json", headers=_auth(raw)
    )

    assert response.status_code == 403
    assert not Customer.objects.for_tenant(tenant.ctx()).filter(name="Nope").exists()


def test_customer_token_sees_only_its_customer(client, tenant):
    from tests.factories import CustomerFactory

    CustomerFactory(reseller=tenant.reseller, name="Neighbour")
    _, raw = services.api_token_create(
        ctx=tenant.ctx(), name="Shop", role=Role.CUSTOMER_ADMIN, customer_id=tenant.customer.pk
    )

    response = client.get("/api/v1/customers", headers=_auth(raw))

    assert [c["name"] for c in response.json()["results"]] == ["Alpha Customer"]
    assert client.get("/api/v1/me", headers=_auth(raw)).json() == {
        "email": tenant.admin.user.email,
        "reseller": "alpha",
        "customer": "Alpha Customer",
        "role": "customer_admin",
    }


def test_tokens_page_shows_a_new_token_once(login, alice, tenant):
    client = login(alice)
    response = client.post("/settings/tokens/", {"name": "ERP", "role": "reseller_finance"})

    assert response.status_code == 200
    raw = response.context["created"]["raw"]
    assert raw.encode() in response.content
    assert raw.encode() not in client.get("/settings/tokens/").content


def test_schema_and_docs_are_served_without_a_cdn(client, login, alice):
    schema = client.get("/api/v1/schema")
    assert schema.status_code == 200  # the API's shape is public; its data is not
    assert b"/api/v1/customers" in schema.content

    docs = client.get("/api/v1/docs").content.decode()
    assert "cdn" not in docs.lower()
    assert "/static/drf_spectacular_sidecar/" in docs
