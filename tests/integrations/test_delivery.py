"""Delivery of webhooks to a real receiver on loopback: signed, retried with a backoff on errors
and timeouts, given up after WEBHOOK_MAX_ATTEMPTS, once per claim, never to refused addresses."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
from datetime import timedelta

import pytest
import time_machine
from django.utils.timezone import now

from integrations import services
from integrations.models import Event, WebhookDelivery, WebhookEndpoint
from integrations.tasks import webhook_deliver_task, webhooks_deliver_sweep_task
from portal.errors import DomainError
from tests.integrations.conftest import Hooked

pytestmark = pytest.mark.django_db


def send_test(tenant, hooked: Hooked, capture) -> WebhookDelivery:
    with capture(execute=True):
        delivery = services.webhook_test_send(ctx=tenant.ctx(), endpoint_id=hooked.endpoint.pk)
    delivery.refresh_from_db()
    return delivery


def sweep_at(moment, capture) -> int:
    with time_machine.travel(moment, tick=False), capture(execute=True):
        return webhooks_deliver_sweep_task.delay().get()


def test_the_signature_verifies_with_the_secret_and_with_nothing_else(
    tenant, hooked, receiver, django_capture_on_commit_callbacks
):
    delivery = send_test(tenant, hooked, django_capture_on_commit_callbacks)

    [got] = receiver.received
    headers = {k.lower(): v for k, v in got.headers.items()}
    timestamp = headers["inkmeter-timestamp"]
    signed = timestamp.encode() + b"." + got.body
    expected = "v1=" + hmac.new(hooked.secret.encode(), signed, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers["inkmeter-signature"], expected)
    forged = "v1=" + hmac.new(b"whsec_guess", signed, hashlib.sha256).hexdigest()
    assert not hmac.compare_digest(headers["inkmeter-signature"], forged)
    body = json.loads(got.body)
    assert (body["type"], body["id"]) == ("webhook.test", str(delivery.event_id))
    assert headers["inkmeter-event-id"] == str(delivery.event_id)
    assert headers["inkmeter-event"] == "webhook.test"
    assert headers["inkmeter-delivery"] == str(delivery.pk)
    assert headers["content-type"] == "application/json"
    assert abs(int(timestamp) - now().timestamp()) < 300
    assert (delivery.status, delivery.attempts, delivery.response_code) == ("succeeded", 1, 200)
    assert delivery.response_excerpt == "ok"


def test_a_500_is_retried_after_a_backoff_then_delivered(
    tenant, hooked, receiver, settings, django_capture_on_commit_callbacks
):
    settings.WEBHOOK_RETRY_BASE_SECONDS = 60
    receiver.answer(500, b"database down")
    before = now()

    delivery = send_test(tenant, hooked, django_capture_on_commit_callbacks)

    assert (delivery.status, delivery.attempts, delivery.response_code) == ("pending", 1, 500)
    assert delivery.response_excerpt == "database down"
    assert delivery.error == "HTTP 500"
    # Half to all of the base for the first retry (jitter), never at once.
    wait = (delivery.next_attempt_at - before).total_seconds()
    assert 30 <= wait <= 61
    assert (
        sweep_at(
            delivery.next_attempt_at - timedelta(seconds=1), django_capture_on_commit_callbacks
        )
        == 0
    )
    assert len(receiver.received) == 1

    sweep_at(delivery.next_attempt_at + timedelta(seconds=1), django_capture_on_commit_callbacks)

    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.response_code) == ("succeeded", 2, 200)
    assert delivery.error == ""
    first, second = receiver.received
    assert first.body == second.body  # same event, same id, same bytes
    assert first.headers["Inkmeter-Event-Id"] == second.headers["Inkmeter-Event-Id"]


def test_backoff_doubles_with_jitter_up_to_an_hour(settings):
    settings.WEBHOOK_RETRY_BASE_SECONDS = 30
    waits = {n: [services.webhook_backoff(n) for _ in range(200)] for n in (1, 2, 5, 12)}

    assert min(waits[1]) >= 15
    assert max(waits[1]) <= 30
    assert min(waits[2]) >= 30
    assert max(waits[2]) <= 60
    assert min(waits[5]) >= 240
    assert max(waits[5]) <= 480
    assert min(waits[12]) >= 1800
    assert max(waits[12]) <= 3600
    assert len(set(waits[5])) > 1  # spread, not one fixed step


def test_it_gives_up_after_the_last_attempt(
    tenant, hooked, receiver, settings, django_capture_on_commit_callbacks
):
    settings.WEBHOOK_MAX_ATTEMPTS = 3
    for _ in range(5):
        receiver.answer(503, b"busy")

    delivery = send_test(tenant, hooked, django_capture_on_commit_callbacks)
    for _ in range(4):
        delivery.refresh_from_db()
        sweep_at(
            delivery.next_attempt_at + timedelta(seconds=1), django_capture_on_commit_callbacks
        )

    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.response_code) == ("failed", 3, 503)
    assert len(receiver.received) == 3


def test_a_receiver_slower_than_the_read_timeout_counts_as_a_failed_attempt(
    tenant, hooked, receiver, settings, django_capture_on_commit_callbacks
):
    settings.WEBHOOK_READ_TIMEOUT = 0.2
    receiver.answer(200, b"late", delay=2.0)

    delivery = send_test(tenant, hooked, django_capture_on_commit_callbacks)

    assert (delivery.status, delivery.attempts, delivery.response_code) == ("pending", 1, None)
    assert delivery.error.startswith("ReadTimeout")


def test_a_closed_port_is_a_failed_attempt(
    tenant, private_urls_allowed, settings, django_capture_on_commit_callbacks
):
    with socket.socket() as s:  # a port nobody listens on once this closes
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    endpoint, _ = services.webhook_endpoint_create(
        ctx=tenant.ctx(), url=f"http://127.0.0.1:{port}/", events=[Event.ORDER_PLACED]
    )
    hooked = Hooked(endpoint=endpoint, secret="")

    delivery = send_test(tenant, hooked, django_capture_on_commit_callbacks)

    assert (delivery.status, delivery.attempts) == ("pending", 1)
    assert delivery.error.startswith("ConnectError")


def test_a_delivery_is_attempted_once_however_often_its_task_runs(
    tenant, hooked, receiver, django_capture_on_commit_callbacks
):
    delivery = send_test(tenant, hooked, django_capture_on_commit_callbacks)

    assert webhook_deliver_task.delay(delivery_id=delivery.pk).get() is False
    assert sweep_at(now() + timedelta(hours=2), django_capture_on_commit_callbacks) == 0
    assert len(receiver.received) == 1
    assert WebhookDelivery.unscoped.get().attempts == 1


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/hook",
        "http://localhost/hook",
        "http://10.1.2.3/hook",
        "http://192.168.0.10/hook",
        "http://169.254.169.254/latest/meta-data",  # cloud metadata
        "http://[::1]/hook",
        "http://0.0.0.0/hook",
    ],
)
def test_local_and_private_addresses_are_refused_when_saved(tenant, url):
    with pytest.raises(DomainError) as refused:
        services.webhook_endpoint_create(ctx=tenant.ctx(), url=url, events=[Event.ORDER_PLACED])

    assert refused.value.code == "webhook_url_refused"
    assert "url" in refused.value.fields
    assert WebhookEndpoint.unscoped.count() == 0


@pytest.mark.parametrize(
    "url",
    ["ftp://files.example.com/x", "file:///etc/passwd", "gopher://x/", "https://u:p@h.example/"],
)
def test_other_schemes_and_credentials_are_refused_even_where_private_is_allowed(
    tenant, private_urls_allowed, url
):
    with pytest.raises(DomainError) as refused:
        services.webhook_endpoint_create(ctx=tenant.ctx(), url=url, events=[Event.ORDER_PLACED])

    assert refused.value.code == "webhook_url_refused"
    assert WebhookEndpoint.unscoped.count() == 0


def test_an_address_refused_by_the_time_of_sending_gets_no_request(
    tenant, hooked, receiver, settings, django_capture_on_commit_callbacks
):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = False

    delivery = send_test(tenant, hooked, django_capture_on_commit_callbacks)

    assert receiver.received == []
    assert (delivery.status, delivery.attempts) == ("failed", 1)
    assert "private or local network" in delivery.error


def test_a_turned_off_endpoint_gets_no_events(
    tenant, hooked, receiver, django_capture_on_commit_callbacks
):
    services.webhook_endpoint_update(
        ctx=tenant.ctx(),
        endpoint_id=hooked.endpoint.pk,
        url=hooked.endpoint.url,
        events=hooked.endpoint.events,
        description="",
        is_active=False,
    )

    with django_capture_on_commit_callbacks(execute=True):
        ids = services.webhook_emit(
            reseller_id=tenant.reseller.pk, event=Event.ORDER_PLACED, data={"order": {}}
        )

    assert ids == []
    assert receiver.received == []


def test_a_rolled_back_action_sends_nothing(
    tenant, hooked, receiver, django_capture_on_commit_callbacks
):
    from django.db import transaction

    def action_that_fails() -> None:
        with transaction.atomic():
            services.webhook_emit(
                reseller_id=tenant.reseller.pk, event=Event.ORDER_PLACED, data={"order": {}}
            )
            raise RuntimeError("the action failed")

    with django_capture_on_commit_callbacks(execute=True), pytest.raises(RuntimeError):
        action_that_fails()

    assert WebhookDelivery.unscoped.count() == 0
    assert receiver.received == []
