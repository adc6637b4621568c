"""Collector health: what a collector says about itself in its batches' envelope, the health page
(admins and support only, per reseller) and the sweep that marks a silent collector and emails
the reseller once per silence."""

from __future__ import annotations

import gzip
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.utils.timezone import now

from accounts.models import User
from devices import services
from devices.models import Credential
from devices.tasks import collectors_silent_sweep_task
from orders.models import EmailLog
from portal.celery import BEAT_SCHEDULE
from portal.tenancy import Role
from tests.conftest import LoginFn, Tenant
from tests.devices.conftest import Signed, snapshot
from tests.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db

HEALTH = "/settings/collectors/health/"


def _body(source: dict[str, Any] | None, serial: str = "CN-H-1") -> bytes:
    document: dict[str, Any] = {
        "schema": "inkmeter.telemetry/1",
        "batch_id": str(uuid.uuid4()),
        "snapshots": [snapshot(serial)],
    }
    if source is not None:
        document["source"] = source
    return gzip.compress(json.dumps(document).encode())


def _fresh(credential: Credential) -> Credential:
    return Credential.unscoped.get(pk=credential.pk)


def test_a_batch_records_the_collectors_version_backlog_and_last_discovery(
    post: Any, collector: Signed
) -> None:
    source = {
        "kind": "collector",
        "agent": "inkmeter-collector/0.3.1",
        "host": "OFFICE-PC-1",
        "outbox_backlog": 412,
        "last_discovery_at": "2026-11-20T06:00:00Z",
    }

    assert post(collector, body=_body(source)).status_code == 202

    c = _fresh(collector.credential)
    assert (c.agent, c.agent_host, c.outbox_backlog) == (
        "inkmeter-collector/0.3.1",
        "OFFICE-PC-1",
        412,
    )
    assert c.last_discovery_at == datetime(2026, 11, 20, 6, 0, tzinfo=UTC)
    assert c.last_batch_at is not None


def test_every_batch_updates_the_backlog_even_within_a_minute(post: Any, collector: Signed) -> None:
    for backlog in (300, 100, 0):
        post(collector, body=_body({"agent": "a/1", "outbox_backlog": backlog}, f"CN-{backlog}"))

    assert _fresh(collector.credential).outbox_backlog == 0


def test_an_older_collector_without_the_fields_shows_them_unknown(
    post: Any, collector: Signed
) -> None:
    post(collector, body=_body({"kind": "collector", "agent": "inkmeter-collector/0.1.0"}))

    c = _fresh(collector.credential)
    assert (c.agent, c.outbox_backlog, c.last_discovery_at) == (
        "inkmeter-collector/0.1.0",
        None,
        None,
    )


def test_a_nul_in_what_the_collector_says_of_itself_is_dropped_not_a_500(
    post: Any, collector: Signed
) -> None:
    """PostgreSQL text cannot hold NUL (the fuzz test found a 500 here): dropped, as from any
    other text a sender reports (devices.normalise.text)."""
    source = {"kind": "collector", "agent": "inkmeter-\x00collector/0.3.1", "host": "PC\x00-7"}

    assert post(collector, body=_body(source)).status_code == 202

    c = _fresh(collector.credential)
    assert (c.agent, c.agent_host) == ("inkmeter-collector/0.3.1", "PC-7")


def test_a_negative_backlog_is_refused_whole_and_nothing_is_recorded(
    post: Any, collector: Signed
) -> None:
    response = post(collector, body=_body({"agent": "evil/1", "outbox_backlog": -1}))

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_batch"
    c = _fresh(collector.credential)
    assert (c.agent, c.last_batch_at) == ("", None)


# --- The page -----------------------------------------------------------------------------------


def test_health_page_shows_each_collector_to_admins_and_support_only(
    login: LoginFn,
    alice: User,
    bob: User,
    tenant: Tenant,
    post: Any,
    collector: Signed,
    foreign_collector: Signed,
) -> None:
    post(
        collector,
        body=_body({"agent": "inkmeter-collector/0.3.1", "host": "PC-7", "outbox_backlog": 12}),
    )
    support = MembershipFactory(
        reseller=tenant.reseller, role=Role.RESELLER_SUPPORT, user=UserFactory()
    ).user

    for user in (alice, support):
        page = login(user).get(HEALTH)
        assert page.status_code == 200
        text = page.content.decode()
        assert "inkmeter-collector/0.3.1" in text
        assert "PC-7" in text
        assert f'data-collector="{collector.credential.key_id}"' in text
        assert foreign_collector.credential.key_id not in text
    assert login(bob).get(HEALTH).status_code == 403


def test_health_page_orders_silent_collectors_first(
    login: LoginFn, alice: User, tenant: Tenant, collector: Signed
) -> None:
    quiet, _ = services.credential_create(
        ctx=tenant.ctx(), kind="collector", site_id=tenant.site.pk, name="Quiet one"
    )
    Credential.unscoped.filter(pk=collector.credential.pk).update(last_seen_at=now())
    Credential.unscoped.filter(pk=quiet.pk).update(
        last_seen_at=now() - timedelta(days=1), silent_since=now() - timedelta(hours=20)
    )

    text = login(alice).get(HEALTH).content.decode()

    assert text.index(quiet.key_id) < text.index(collector.credential.key_id)
    assert "silent since" in text


# --- The sweep ----------------------------------------------------------------------------------


def test_beat_runs_the_silent_collector_sweep() -> None:
    assert BEAT_SCHEDULE["collectors-silent-sweep"]["task"] == (
        "devices.tasks.collectors_silent_sweep_task"
    )


def test_a_silent_collector_is_marked_and_the_reseller_emailed_once(
    tenant: Tenant, collector: Signed, foreign_collector: Signed, settings: Any
) -> None:
    settings.COLLECTOR_SILENT_AFTER_MINUTES = 120
    tenant.reseller.support_email = "support@alpha.test"
    tenant.reseller.save(update_fields=["support_email"])
    seen = now()
    Credential.unscoped.filter(
        pk__in=[collector.credential.pk, foreign_collector.credential.pk]
    ).update(last_seen_at=seen, upload_interval_minutes=60)

    # Three upload intervals (180 min) beat the 120-minute floor.
    with time_machine.travel(seen + timedelta(minutes=179)):
        assert collectors_silent_sweep_task.delay().get() == 0
    with time_machine.travel(seen + timedelta(minutes=181)):
        assert collectors_silent_sweep_task.delay().get() == 2
        assert collectors_silent_sweep_task.delay().get() == 0  # once per silence

    assert _fresh(collector.credential).silent_since is not None
    emails = EmailLog.unscoped.filter(kind=EmailLog.Kind.COLLECTOR_SILENT)
    assert emails.count() == 2  # one per reseller, each about its own collectors only
    email = emails.get(reseller=tenant.reseller)
    assert email.recipient == "support@alpha.test"
    assert collector.credential.name in email.body
    assert foreign_collector.credential.name not in email.body
    assert collector.credential.name not in emails.exclude(pk=email.pk).get().body


def test_a_collector_that_speaks_again_is_no_longer_silent_and_can_fall_silent_again(
    tenant: Tenant, collector: Signed, post: Any
) -> None:
    tenant.reseller.support_email = "support@alpha.test"
    tenant.reseller.save(update_fields=["support_email"])
    Credential.unscoped.filter(pk=collector.credential.pk).update(
        last_seen_at=now() - timedelta(days=1)
    )
    assert services.collectors_silent_sweep() == 1

    post(collector, body=_body({"agent": "a/1"}))
    assert _fresh(collector.credential).silent_since is None

    with time_machine.travel(now() + timedelta(days=1)):
        assert services.collectors_silent_sweep() == 1
    assert EmailLog.unscoped.filter(kind=EmailLog.Kind.COLLECTOR_SILENT).count() == 2


def test_a_config_fetch_also_ends_a_silence(tenant: Tenant, collector: Signed, client: Any) -> None:
    from devices.simulator import signed_headers

    Credential.unscoped.filter(pk=collector.credential.pk).update(
        last_seen_at=now() - timedelta(days=1)
    )
    services.collectors_silent_sweep()
    headers = signed_headers(
        key_id=collector.credential.key_id,
        secret=collector.secret,
        method="GET",
        path="/api/v1/collector/config",
        body=b"",
        at=datetime.now(tz=UTC),
    )

    assert client.get("/api/v1/collector/config", headers=headers).status_code == 200
    assert _fresh(collector.credential).silent_since is None


def test_never_reported_revoked_and_direct_credentials_are_not_silent(
    tenant: Tenant, collector: Signed
) -> None:
    revoked, _ = services.credential_create(
        ctx=tenant.ctx(), kind="collector", site_id=tenant.site.pk, name="Old PC"
    )
    Credential.unscoped.filter(pk=revoked.pk).update(
        last_seen_at=now() - timedelta(days=3), revoked_at=now()
    )
    direct, _ = services.credential_create(
        ctx=tenant.ctx(), kind="direct", serial="CN-D-1", site_id=tenant.site.pk
    )
    Credential.unscoped.filter(pk=direct.pk).update(last_seen_at=now() - timedelta(days=3))

    assert services.collectors_silent_sweep() == 0  # `collector` has never reported
