"""Subjects built from device, supply and customer text are one header line: a newline in a
printer's supply description used to make its low-supply email fail (BadHeaderError)."""

from __future__ import annotations

import pytest
from django.core import mail

from orders import supply_services
from orders.email_services import emails_queue
from orders.models import EmailLog, SupplyAlert
from portal.mail import SUBJECT_MAX, email_subject
from tests.orders.conftest import daily

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Black\ntoner", "Black toner"),
        ("Black\r\n toner\x00\x1b[31m", "Black toner [31m"),
        ("  tabs\tand\u2028separators\u0085 ", "tabs and separators"),
        ("plain", "plain"),
        ("", ""),
    ],
)
def test_subjects_are_one_line_without_control_characters(text: str, expected: str) -> None:
    assert email_subject(text) == expected


def test_subjects_are_bounded() -> None:
    subject = email_subject("x" * 1000)
    assert len(subject) == SUBJECT_MAX
    assert subject.endswith("…")


def test_a_supply_description_with_a_newline_sends_its_low_supply_email(
    supply, product, report, django_capture_on_commit_callbacks
) -> None:
    supply.description = "Black\nToner\r\nBcc: victim@example.test"
    supply.save(update_fields=["description"])
    report(*daily(30, 2, 10))

    with django_capture_on_commit_callbacks(execute=True):
        supply_services.supplies_evaluate(device_ids=[supply.device_id])

    assert SupplyAlert.unscoped.get(supply=supply).status == "sent"
    assert set(EmailLog.unscoped.values_list("status", flat=True)) == {"sent"}
    assert len(mail.outbox) == EmailLog.unscoped.count() >= 2
    for message in mail.outbox:
        assert message.subject.startswith("[Inkmeter] Black Toner Bcc: victim@example.test low on")
        assert "victim@example.test" not in message.recipients()
        assert "\n" not in message.message()["Subject"]


def test_every_queued_email_gets_a_clean_subject(tenant) -> None:
    emails = emails_queue(
        reseller_id=tenant.reseller.pk,
        customer_id=None,
        recipients=["a@example.test"],
        kind=EmailLog.Kind.PRINTER_CRITICAL,
        template="devices/email/alerts.txt",
        context={"alerts": []},
        subject="[Inkmeter] Order 7:\nshipped" + "!" * 400,
    )
    assert emails[0].subject.startswith("[Inkmeter] Order 7: shipped!")
    assert len(emails[0].subject) == SUBJECT_MAX
