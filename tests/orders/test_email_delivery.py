"""Email delivery through its services: a lease per email, so a worker that dies mid-send
costs a delay and never the email; errors retry with a backoff, then fail where people look."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.core import mail

from devices import services as device_services
from orders import email_services
from orders.models import EmailLog
from tests.conftest import Tenant
from tests.factories import AlertFactory, DeviceFactory

pytestmark = pytest.mark.django_db

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
LEASE = timedelta(seconds=300)


def queue(tenant: Tenant, *recipients: str) -> list[EmailLog]:
    """Emails logged the way every service logs them; the test transaction never commits, so
    their task is never sent and they wait, as after a lost task."""
    return email_services.emails_queue(
        reseller_id=tenant.reseller.pk,
        customer_id=tenant.customer.pk,
        recipients=recipients,
        kind=EmailLog.Kind.ORDER_STATUS,
        template="orders/email/order_status.txt",
        context={"reseller": tenant.reseller},
        subject="[Inkmeter] Order 7: shipped",
    )


def row(email: EmailLog) -> EmailLog:
    return EmailLog.unscoped.get(pk=email.pk)


@pytest.fixture
def clock() -> Iterator[Any]:
    with time_machine.travel(START, tick=False) as traveller:
        yield traveller


@pytest.fixture
def refused_port() -> Iterator[int]:
    """A loopback port that refuses connections: bound, never listening, held for the test."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


@pytest.fixture
def smtp_down(settings: Any, refused_port: int) -> None:
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = refused_port
    settings.EMAIL_TIMEOUT = 2


def test_each_email_is_sent_once_with_a_message_id_of_its_own(tenant, clock):
    emails = queue(tenant, "a@customer.test", "b@customer.test")

    assert email_services.emails_send(email_ids=[e.pk for e in emails]) == 2

    sent = [row(e) for e in emails]
    assert [(e.status, e.attempts, e.sent_at, e.error) for e in sent] == [
        ("sent", 1, START, ""),
        ("sent", 1, START, ""),
    ]
    ids = [m.message()["Message-ID"] for m in mail.outbox]
    assert ids == [email_services.message_id(e) for e in sent]
    assert ids[0] != ids[1]
    assert ids[0] == f"<inkmeter.email.{emails[0].pk}.{int(START.timestamp())}@inkmeter.local>"


def test_a_sent_email_is_never_sent_again(tenant, clock):
    (email,) = queue(tenant, "a@customer.test")
    email_services.emails_send(email_ids=[email.pk])

    assert email_services.emails_send(email_ids=[email.pk]) == 0
    clock.move_to(START + 10 * LEASE)
    assert email_services.emails_send_sweep() == 0
    assert email_services.email_claim(email_id=email.pk) is None

    assert len(mail.outbox) == 1
    assert (row(email).status, row(email).attempts) == ("sent", 1)


def test_a_held_lease_is_taken_by_one_claimer_only(tenant, clock):
    (email,) = queue(tenant, "a@customer.test")

    first = email_services.email_claim(email_id=email.pk)
    second = email_services.email_claim(email_id=email.pk)

    assert first is not None
    assert (first.status, first.attempts, first.next_attempt_at) == ("sending", 1, START + LEASE)
    assert second is None
    assert email_services.emails_send(email_ids=[email.pk]) == 0  # the task, redelivered early
    assert mail.outbox == []


def test_an_email_whose_sender_died_is_sent_again_once_its_lease_runs_out(tenant, clock):
    (email,) = queue(tenant, "a@customer.test")
    # A worker claims it and is killed before it talks to the mail server.
    assert email_services.email_claim(email_id=email.pk) is not None

    clock.move_to(START + LEASE - timedelta(seconds=1))
    assert email_services.emails_send_sweep() == 0  # its sender may still be alive
    clock.move_to(START + LEASE)
    assert email_services.emails_send_sweep() == 1
    assert email_services.emails_send_sweep() == 0

    resent = row(email)
    assert (resent.status, resent.attempts, resent.sent_at) == ("sent", 2, START + LEASE)
    (message,) = mail.outbox
    assert message.message()["Message-ID"] == email_services.message_id(resent)


def test_smtp_errors_back_off_then_fail_and_show_in_the_email_log(
    tenant, alice, login, clock, smtp_down
):
    (email,) = queue(tenant, "a@customer.test")

    assert email_services.emails_send(email_ids=[email.pk]) == 0
    waits = []
    for attempt in range(2, 6):
        retrying = row(email)
        assert (retrying.status, retrying.attempts) == ("pending", attempt - 1)
        assert retrying.error.startswith("ConnectionRefusedError: ")
        assert email_services.emails_send_sweep() == 0  # not due yet: nothing tried
        assert row(email).attempts == attempt - 1
        waits.append((retrying.next_attempt_at - datetime.now(tz=UTC)).total_seconds())
        clock.move_to(retrying.next_attempt_at)
        assert email_services.emails_send_sweep() == 0

    failed = row(email)
    assert (failed.status, failed.attempts) == ("failed", 5)
    assert waits == [60, 120, 240, 480]
    clock.move_to(datetime.now(tz=UTC) + timedelta(days=1))
    assert email_services.emails_send_sweep() == 0
    assert row(email).attempts == 5

    listing = login(alice).get("/emails/").content.decode()
    assert "Failed" in listing
    assert "ConnectionRefusedError" in listing


def test_a_message_that_cannot_be_built_fails_without_retrying(tenant, clock):
    (email,) = queue(tenant, "a@customer.test\nbcc: everyone@elsewhere.test")

    assert email_services.emails_send(email_ids=[email.pk]) == 0

    failed = row(email)
    assert (failed.status, failed.attempts) == ("failed", 1)
    assert failed.error
    assert mail.outbox == []


def test_an_email_whose_last_attempt_died_with_its_sender_is_marked_failed(tenant, clock, settings):
    settings.EMAIL_SEND_ATTEMPTS = 2
    (email,) = queue(tenant, "a@customer.test")
    for step in (1, 2):
        assert email_services.email_claim(email_id=email.pk) is not None  # killed each time
        clock.move_to(START + step * LEASE)

    assert email_services.emails_send_sweep() == 0

    failed = row(email)
    assert (failed.status, failed.attempts) == ("failed", 2)
    assert failed.error == "The sender stopped during the last attempt."
    assert mail.outbox == []


def test_printer_alerts_are_logged_for_the_reseller_and_sent(tenant, clock):
    tenant.reseller.support_email = "support@alpha.test"
    tenant.reseller.save(update_fields=["support_email"])
    device = DeviceFactory(site=tenant.site, serial="SN-ALERT")
    alert = AlertFactory(device=device, severity="critical", code="media.jam")

    assert device_services.alerts_notify(alert_ids=[alert.pk]) == 1
    email = EmailLog.unscoped.get()
    assert (email.kind, email.customer_id, email.recipient, email.status) == (
        "printer_critical",
        None,
        "support@alpha.test",
        "pending",
    )
    # Words, not the printer's codes, and a subject that counts right.
    assert "Critical: Paper jam" in email.body
    assert "media.jam" not in email.body
    assert email.subject == "[Inkmeter] 1 new printer alert"

    assert email_services.emails_send_sweep() == 1
    assert row(email).status == "sent"
    assert mail.outbox[0].to == ["support@alpha.test"]
