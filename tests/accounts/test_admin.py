"""The Django admin: operators only, every page of a reseller's rows audited like entering the
reseller, and no secret of a second factor, a credential or a token readable in it."""

from __future__ import annotations

import pytest
from allauth.mfa.models import Authenticator
from allauth.mfa.utils import decrypt
from django.contrib import admin

from accounts.models import AuditEvent, Customer
from devices import services as device_services
from portal.tenancy import Role
from tests.factories import UserFactory, sign_in

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator(client):
    user = UserFactory(email="ops@platform.test", is_superuser=True, is_staff=True, totp=True)
    sign_in(client, user)
    return user


def _admin_events():
    return AuditEvent.unscoped.filter(action__startswith="admin.").order_by("reseller_id", "pk")


def test_a_list_of_every_tenant_is_audited_in_each_reseller_it_shows(
    client, operator, tenant, foreign_tenant
):
    page = client.get("/admin/accounts/customer/")

    assert page.status_code == 200
    assert b"Alpha Customer" in page.content
    assert b"Charlie Customer" in page.content
    events = list(_admin_events())
    assert [e.reseller_id for e in events] == sorted(
        [tenant.reseller.pk, foreign_tenant.reseller.pk]
    )
    for event in events:
        assert (event.actor, event.actor_role, event.action) == (
            operator,
            Role.OPERATOR,
            "admin.list",
        )
        assert event.detail["model"] == "accounts.customer"
        assert event.path == "/admin/accounts/customer/"


def test_one_row_seen_or_changed_is_audited_in_its_reseller(client, operator, tenant):
    customer = tenant.customer
    url = f"/admin/accounts/customer/{customer.pk}/change/"

    assert client.get(url).status_code == 200
    saved = client.post(url, {"name": "Alpha Renamed", "reseller": tenant.reseller.pk})

    assert saved.status_code in (200, 302)
    seen, changed = _admin_events()
    assert (seen.reseller_id, seen.action, seen.object_id) == (
        tenant.reseller.pk,
        "admin.view",
        str(customer.pk),
    )
    assert (changed.reseller_id, changed.action) == (tenant.reseller.pk, "admin.change")
    # The operator's own trail shows it too, next to their visits of the portal.
    assert client.get("/operator/audit/").status_code == 200


def test_rows_of_other_apps_are_audited_too(client, operator, tenant):
    credential, _ = device_services.credential_create(
        ctx=tenant.ctx(), kind="collector", site_id=tenant.site.pk
    )

    assert client.get(f"/admin/devices/credential/{credential.pk}/change/").status_code == 200

    (event,) = _admin_events()
    assert (event.reseller_id, event.detail["model"]) == (tenant.reseller.pk, "devices.credential")


def test_every_admin_of_tenant_data_is_audited():
    from accounts.admin_site import TenantAuditedAdmin, is_tenant_data

    tenant_admins = {m: a for m, a in admin.site._registry.items() if is_tenant_data(m)}

    assert Customer in tenant_admins
    assert all(isinstance(a, TenantAuditedAdmin) for a in tenant_admins.values())


def test_totp_secrets_are_not_readable_in_the_admin(client, operator, alice):
    authenticator = Authenticator.objects.get(user=alice, type=Authenticator.Type.TOTP)
    secret = decrypt(authenticator.data["secret"])

    listing = client.get("/admin/mfa/authenticator/")
    detail = client.get(f"/admin/mfa/authenticator/{authenticator.pk}/change/")

    assert listing.status_code == detail.status_code == 200
    assert str(alice).encode() in listing.content
    for page in (listing, detail):
        assert secret.encode() not in page.content
        assert b'"secret"' not in page.content
    assert client.post(f"/admin/mfa/authenticator/{authenticator.pk}/change/").status_code == 403


def test_credential_and_token_secrets_are_not_readable_in_the_admin(client, operator, tenant):
    from accounts import services

    credential, secret = device_services.credential_create(
        ctx=tenant.ctx(), kind="collector", site_id=tenant.site.pk
    )
    token, raw = services.api_token_create(ctx=tenant.ctx(), name="ERP", role=Role.RESELLER_ADMIN)

    pages = [
        client.get(f"/admin/devices/credential/{credential.pk}/change/"),
        client.get(f"/admin/accounts/apitoken/{token.pk}/change/"),
        client.get("/admin/accounts/apitoken/"),
    ]

    for page in pages:
        assert page.status_code == 200
        body = page.content.decode()
        for leak in (secret, raw, raw.rsplit("_", 1)[1], token.secret_hash):
            assert leak not in body
        assert "secret" not in body.lower().replace("secret_", "")
