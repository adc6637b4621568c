"""Attempt limits on the doors that take guesses: password reset (allauth),
invitation links, API tokens and the signed telemetry endpoint. All through HTTP."""

from __future__ import annotations

import gzip
import json
import re
import socket
import uuid

import pytest
from django.core import mail
from django.test import Client, override_settings

from accounts import services
from accounts.models import Customer, Membership
from devices import services as device_services
from devices.simulator import signed_headers
from portal import ratelimit
from portal.tenancy import Role
from tests.devices.conftest import snapshot
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_password_reset_requests_are_limited_per_address(client):
    UserFactory(email="forgetful@alpha.test")
    answers = [
        client.post("/accounts/password/reset/", {"email": "forgetful@alpha.test"}).status_code
        for _ in range(6)
    ]

    # ACCOUNT_RATE_LIMITS["reset_password"] = "20/m/ip,5/m/key": five mails, then 429.
    assert answers == [302] * 5 + [429]
    assert len(mail.outbox) == 5


def test_password_reset_requests_are_limited_per_ip(client, settings):
    settings.ACCOUNT_RATE_LIMITS = {**settings.ACCOUNT_RATE_LIMITS, "reset_password": "3/m/ip"}
    answers = [
        client.post("/accounts/password/reset/", {"email": f"nobody{n}@x.test"}) for n in range(4)
    ]

    assert [a.status_code for a in answers] == [302, 302, 302, 429]
    assert "Too many attempts" in answers[-1].content.decode()  # templates/429.html


# --- Invitation links ---------------------------------------------------------------------------


def test_guessing_invitation_links_is_cut_off_with_a_clear_page(client, settings):
    settings.INVITATION_ACCEPT_RATE_LIMIT = "5/10m"
    answers = [client.get(f"/invitations/guess-{n}/").status_code for n in range(6)]

    assert answers == [404] * 5 + [429]
    refused = client.get("/invitations/guess-x/")
    assert refused.status_code == 429
    body = refused.content.decode()
    assert "Too many attempts" in body
    assert re.search(r"Try again in \d+ minutes?\.", body)
    assert 0 < int(refused["Retry-After"]) <= 600


def test_a_real_link_is_refused_too_past_the_limit_and_nothing_is_joined(
    client, settings, tenant, django_capture_on_commit_callbacks
):
    settings.INVITATION_ACCEPT_RATE_LIMIT = "3/10m"
    with django_capture_on_commit_callbacks(execute=True):
        services.invitation_create(
            ctx=tenant.ctx(), email="late@alpha.test", role=Role.RESELLER_SUPPORT
        )
    token = mail.outbox[0].body.split("/invitations/")[1].split("/")[0]
    user = UserFactory(email="late@alpha.test")
    client.force_login(user)
    for n in range(3):
        client.get(f"/invitations/guess-{n}/")

    response = client.post(f"/invitations/{token}/")

    assert response.status_code == 429
    assert not Membership.unscoped.filter(user=user).exists()


def test_other_addresses_are_not_affected(settings):
    settings.INVITATION_ACCEPT_RATE_LIMIT = "2/10m"
    attacker, bystander = Client(REMOTE_ADDR="198.51.100.1"), Client(REMOTE_ADDR="198.51.100.2")
    for n in range(3):
        attacker.get(f"/invitations/guess-{n}/")

    assert attacker.get("/invitations/guess-x/").status_code == 429
    assert bystander.get("/invitations/guess-x/").status_code == 404


def test_behind_a_proxy_clients_are_told_apart_by_x_forwarded_for(settings):
    settings.INVITATION_ACCEPT_RATE_LIMIT = "2/10m"
    settings.ALLAUTH_TRUSTED_PROXY_COUNT = 1
    proxy = "10.0.0.5"  # every request arrives from the proxy
    attacker = Client(REMOTE_ADDR=proxy, headers={"X-Forwarded-For": "198.51.100.1"})
    bystander = Client(REMOTE_ADDR=proxy, headers={"X-Forwarded-For": "198.51.100.2"})
    spoofer = Client(REMOTE_ADDR=proxy, headers={"X-Forwarded-For": "1.2.3.4, 198.51.100.1"})
    for n in range(2):
        attacker.get(f"/invitations/guess-{n}/")

    assert attacker.get("/invitations/guess-x/").status_code == 429
    # An address the client made up itself, before the proxy's, does not help.
    assert spoofer.get("/invitations/guess-x/").status_code == 429
    assert bystander.get("/invitations/guess-x/").status_code == 404


# --- API tokens ---------------------------------------------------------------------------------


def _bearer(raw):
    return {"Authorization": f"Bearer {raw}"}


def test_failed_tokens_are_limited_with_the_api_error_body(client, settings, tenant):
    settings.API_AUTH_FAILURE_RATE_LIMIT = "3/10m"
    statuses = [
        client.get("/api/v1/customers", headers=_bearer(f"ink_nokey{n}_bad")).status_code
        for n in range(4)
    ]

    assert statuses == [401, 401, 401, 429]
    refused = client.get("/api/v1/customers", headers=_bearer("ink_nokeyx_bad"))
    assert refused.status_code == 429
    assert refused.json() == {
        "error": {
            "code": "rate_limited",
            "message": "Too many failed authentication attempts; try again later.",
            "fields": {},
        }
    }
    assert 0 < int(refused["Retry-After"]) <= 600


def test_a_valid_token_is_let_through_from_a_limited_address(client, settings, tenant):
    settings.API_AUTH_FAILURE_RATE_LIMIT = "1/10m"
    _, good = services.api_token_create(ctx=tenant.ctx(), name="ERP", role=Role.RESELLER_ADMIN)
    for _ in range(3):
        client.get("/api/v1/customers", headers=_bearer("ink_nokey_bad"))
    assert client.get("/api/v1/me", headers=_bearer("ink_nokey_bad")).status_code == 429

    response = client.post(
        "/api/v1/customers",
        {"name": "Still served"},
        content_type="application/json",
        headers=_bearer(good),
    )

    assert response.status_code == 201
    assert Customer.objects.for_tenant(tenant.ctx()).filter(name="Still served").exists()
    # Its success did not lift the limit for the failures.
    assert client.get("/api/v1/me", headers=_bearer("ink_nokey_bad")).status_code == 429


def test_failures_on_one_token_key_are_limited_across_addresses(settings, tenant):
    settings.API_AUTH_FAILURE_RATE_LIMIT = "100/10m"
    settings.API_AUTH_FAILURE_KEY_RATE_LIMIT = "3/10m"
    token, good = services.api_token_create(ctx=tenant.ctx(), name="ERP", role=Role.RESELLER_ADMIN)
    wrong = f"ink_{token.key}_not-the-secret"
    statuses = [
        Client(REMOTE_ADDR=f"198.51.100.{n}").get("/api/v1/me", headers=_bearer(wrong)).status_code
        for n in range(1, 6)
    ]
    fresh = Client(REMOTE_ADDR="203.0.113.77")

    assert statuses == [401, 401, 401, 429, 429]
    assert fresh.get("/api/v1/me", headers=_bearer(wrong)).status_code == 429
    # The token's owner is not locked out, and other keys are not affected.
    assert fresh.get("/api/v1/me", headers=_bearer(good)).status_code == 200
    assert fresh.get("/api/v1/me", headers=_bearer("ink_otherkey_bad")).status_code == 401


def test_good_tokens_never_count(client, settings, tenant):
    settings.API_AUTH_FAILURE_RATE_LIMIT = "2/10m"
    _, good = services.api_token_create(ctx=tenant.ctx(), name="ERP", role=Role.RESELLER_ADMIN)

    statuses = {client.get("/api/v1/me", headers=_bearer(good)).status_code for _ in range(10)}

    assert statuses == {200}
    assert client.get("/api/v1/me", headers=_bearer("ink_nokey_bad")).status_code == 401


# --- Telemetry: the real endpoint, limited by the same helper ------------------------------------

TELEMETRY = "/api/v1/telemetry"


def _batch_post(client, credential, secret):
    body = gzip.compress(
        json.dumps(
            {
                "schema": "inkmeter.telemetry/1",
                "batch_id": str(uuid.uuid4()),
                "snapshots": [snapshot()],
            }
        ).encode()
    )
    headers = signed_headers(
        key_id=credential.key_id, secret=secret, method="POST", path=TELEMETRY, body=body
    )
    headers["Content-Encoding"] = "gzip"
    return client.post(TELEMETRY, data=body, content_type="application/json", headers=headers)


def test_telemetry_signature_failures_are_limited_per_ip(client, settings, tenant):
    settings.TELEMETRY_AUTH_FAILURE_RATE_LIMIT = "3/10m"
    credential, secret = device_services.credential_create(
        ctx=tenant.ctx(), kind="collector", site_id=tenant.site.pk
    )
    other = Client(REMOTE_ADDR="203.0.113.9")

    assert _batch_post(other, credential, secret).status_code == 202  # successes do not count
    statuses = [_batch_post(client, credential, "wrong-secret").status_code for _ in range(4)]

    assert statuses == [401, 401, 401, 429]
    refused = _batch_post(client, credential, "wrong-secret")
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "rate_limited"
    assert 0 < int(refused["Retry-After"]) <= 600
    assert _batch_post(other, credential, secret).status_code == 202


def test_a_correctly_signed_batch_is_accepted_from_a_limited_address(client, settings, tenant):
    settings.TELEMETRY_AUTH_FAILURE_RATE_LIMIT = "2/10m"
    credential, secret = device_services.credential_create(
        ctx=tenant.ctx(), kind="collector", site_id=tenant.site.pk
    )
    for _ in range(3):
        _batch_post(client, credential, "wrong-secret")
    assert _batch_post(client, credential, "wrong-secret").status_code == 429

    accepted = _batch_post(client, credential, secret)

    assert accepted.status_code == 202
    assert accepted.json()["accepted"] == 1


def test_signature_failures_on_one_key_are_limited_across_addresses(settings, tenant):
    settings.TELEMETRY_AUTH_FAILURE_RATE_LIMIT = "100/10m"
    settings.TELEMETRY_AUTH_FAILURE_KEY_RATE_LIMIT = "3/10m"
    credential, secret = device_services.credential_create(
        ctx=tenant.ctx(), kind="collector", site_id=tenant.site.pk
    )
    other, _ = device_services.credential_create(
        ctx=tenant.ctx(), kind="collector", site_id=tenant.site.pk
    )
    statuses = [
        _batch_post(Client(REMOTE_ADDR=f"198.51.100.{n}"), credential, "wrong").status_code
        for n in range(1, 6)
    ]
    fresh = Client(REMOTE_ADDR="203.0.113.77")

    assert statuses == [401, 401, 401, 429, 429]
    assert _batch_post(fresh, credential, "wrong").status_code == 429
    # The collector that holds the secret keeps uploading; other keys are not affected.
    assert _batch_post(fresh, credential, secret).status_code == 202
    assert _batch_post(fresh, other, "wrong").status_code == 401


def test_telemetry_is_accepted_while_the_cache_is_down(client, tenant):
    # A Redis cache whose server is gone: nothing listens on the port of a closed socket.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    gone = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{port}/0",
        }
    }
    credential, secret = device_services.credential_create(
        ctx=tenant.ctx(), kind="collector", site_id=tenant.site.pk
    )

    # Not the settings fixture: the cache must work again before the fixtures' teardown.
    with override_settings(CACHES=gone):
        accepted = _batch_post(client, credential, secret)
        refused = _batch_post(client, credential, "wrong-secret")

    assert accepted.status_code == 202
    assert accepted.json()["accepted"] == 1
    assert refused.status_code == 401  # refused for its signature, not failed for the cache


def test_rates_are_written_like_allauths():
    assert ratelimit.Rate.parse("20/10m") == ratelimit.Rate(limit=20, window_seconds=600)
    assert ratelimit.Rate.parse("5/m") == ratelimit.Rate(limit=5, window_seconds=60)
    assert ratelimit.Rate.parse("100/h") == ratelimit.Rate(limit=100, window_seconds=3600)
    with pytest.raises(ValueError, match="20/10m"):
        ratelimit.Rate.parse("20 per minute")
