"""Credentials: creation, secrecy at rest, rotation, revocation, collector configuration, the
management command and the admin pages, with the fixed trio (alice, bob, charlie)."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.core.management import call_command
from django.db import connection

from devices import services
from devices.models import Credential
from devices.simulator import signed_headers
from portal.errors import DomainError, PermissionDeniedError
from portal.tenancy import Role
from tests.devices.conftest import Post, Signed, snapshot

pytestmark = pytest.mark.django_db
CONFIG = "/api/v1/collector/config"


def _get_config(client: Any, key_id: str, secret: str) -> Any:
    headers = signed_headers(key_id=key_id, secret=secret, method="GET", path=CONFIG, body=b"")
    return client.get(CONFIG, headers=headers)


def test_secret_is_stored_only_encrypted(collector: Signed) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM devices_credential")
        dump = repr(cursor.fetchall())
    assert collector.secret not in dump
    assert collector.secret.encode().hex() not in dump


def test_rotation_keeps_the_old_secret_for_the_grace_period(
    post: Post, collector: Signed, tenant: Any
) -> None:
    _, new_secret = services.credential_rotate(
        ctx=tenant.ctx(), credential_id=collector.credential.pk, grace_hours=2
    )
    assert post(collector, [snapshot()]).status_code == 202  # old secret, within grace
    assert post(collector, [snapshot()], secret=new_secret).status_code == 202
    with time_machine.travel(datetime.now(tz=UTC) + timedelta(hours=3)):
        assert post(collector, [snapshot()], at=datetime.now(tz=UTC)).status_code == 401
        response = post(collector, [snapshot()], secret=new_secret, at=datetime.now(tz=UTC))
        assert response.status_code == 202


def test_customer_users_cannot_create_credentials(tenant: Any) -> None:
    with pytest.raises(PermissionDeniedError):
        services.credential_create(
            ctx=tenant.ctx(Role.CUSTOMER_ADMIN), kind="collector", site_id=tenant.site.pk
        )
    assert Credential.unscoped.count() == 0


def test_foreign_site_is_not_found(tenant: Any, foreign_tenant: Any) -> None:
    with pytest.raises(DomainError):
        services.credential_create(
            ctx=tenant.ctx(), kind="collector", site_id=foreign_tenant.site.pk
        )
    assert Credential.unscoped.count() == 0


def test_collector_fetches_its_configuration(client: Any, collector: Signed, tenant: Any) -> None:
    services.collector_config_update(
        ctx=tenant.ctx(),
        credential_id=collector.credential.pk,
        ranges=["192.0.2.0/24", "198.51.100.10 - 198.51.100.20", "203.0.113.5"],
        communities=["public", "printers"],
        poll_interval_minutes=30,
        upload_interval_minutes=15,
    )
    response = _get_config(client, collector.credential.key_id, collector.secret)
    assert response.status_code == 200
    assert response.json() == {
        "config_version": 2,
        "ranges": ["192.0.2.0/24", "198.51.100.10-198.51.100.20", "203.0.113.5"],
        "communities": ["public", "printers"],
        "poll_interval_minutes": 30,
        "upload_interval_minutes": 15,
        "reorder_threshold_percent": 15,
        "reorder_thresholds": {},
    }
    assert _get_config(client, collector.credential.key_id, "wrong").status_code == 401


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"poll_interval_minutes": 14}, "poll_interval_minutes"),
        ({"ranges": ["192.0.2.0/33"]}, "ranges"),
        ({"ranges": ["192.0.2.9-192.0.2.1"]}, "ranges"),
        ({"communities": []}, "communities"),
    ],
)
def test_invalid_configuration_is_refused_and_changes_nothing(
    collector: Signed, tenant: Any, change: dict[str, Any], field: str
) -> None:
    config = {
        "ranges": ["192.0.2.0/24"],
        "communities": ["public"],
        "poll_interval_minutes": 60,
        "upload_interval_minutes": 60,
    } | change
    with pytest.raises(DomainError) as refused:
        services.collector_config_update(
            ctx=tenant.ctx(), credential_id=collector.credential.pk, **config
        )
    assert field in refused.value.fields
    collector.credential.refresh_from_db()
    assert collector.credential.config_version == 1


def test_create_credential_command_prints_json(tenant: Any) -> None:
    out = io.StringIO()
    call_command(
        "create_credential",
        "--reseller",
        tenant.reseller.slug,
        "--customer",
        tenant.customer.name,
        "--site",
        tenant.site.name,
        stdout=out,
    )
    printed = json.loads(out.getvalue())
    assert set(printed) == {"key_id", "secret", "url"}
    credential = Credential.unscoped.get(key_id=printed["key_id"])
    assert credential.kind == "collector"
    assert services.secret_decrypt(credential.secret_encrypted) == printed["secret"]

    out = io.StringIO()
    call_command(
        "create_credential",
        "--reseller",
        tenant.reseller.slug,
        "--device",
        "SER1",
        "--customer",
        tenant.customer.name,
        "--site",
        tenant.site.name,
        stdout=out,
    )
    direct = Credential.unscoped.get(key_id=json.loads(out.getvalue())["key_id"])
    assert (direct.kind, direct.device.serial) == ("direct", "SER1")


def test_admin_registers_a_collector_and_sees_the_secret_once(
    login: Any, alice: Any, tenant: Any
) -> None:
    client = login(alice)
    response = client.post(
        "/settings/collectors/new/", {"kind": "collector", "site": tenant.site.pk, "name": "PC"}
    )
    assert response.status_code == 200
    credential = Credential.unscoped.get()
    secret = services.secret_decrypt(credential.secret_encrypted)
    assert secret in response.content.decode()
    detail = client.get(f"/settings/collectors/{credential.pk}/")
    assert secret not in detail.content.decode()
    listing = client.get("/settings/collectors/").content.decode()
    assert credential.key_id in listing


def test_pages_of_another_reseller_are_404(login: Any, charlie: Any, collector: Signed) -> None:
    client = login(charlie)
    pk = collector.credential.pk
    assert client.get(f"/settings/collectors/{pk}/").status_code == 404
    assert client.post(f"/settings/collectors/{pk}/revoke/").status_code == 404
    collector.credential.refresh_from_db()
    assert collector.credential.revoked_at is None


def test_customer_user_cannot_open_the_collector_pages(login: Any, bob: Any) -> None:
    assert login(bob).get("/settings/collectors/").status_code == 403


def test_admin_api_creates_rotates_and_revokes(login: Any, alice: Any, tenant: Any) -> None:
    client = login(alice)
    created = client.post(
        "/api/v1/credentials",
        {"kind": "collector", "site": tenant.site.pk},
        content_type="application/json",
    )
    assert created.status_code == 201
    body = created.json()
    pk = body["credential"]["id"]
    rotated = client.post(f"/api/v1/credentials/{pk}/rotate", {}, content_type="application/json")
    assert rotated.json()["secret"] != body["secret"]
    assert client.delete(f"/api/v1/credentials/{pk}").json()["status"] == "revoked"
