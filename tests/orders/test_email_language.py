"""Emails in the recipient's language (issue 13.4): a user's own language and number format,
else the installation's (LANGUAGE_CODE) for addresses that are nobody's account; an invitee
reads the inviter's language, in the logged body and in the one sent with the link."""

from __future__ import annotations

from typing import Any

import pytest
from django.core import mail

from accounts import services as account_services
from accounts.models import User
from devices import services as device_services
from orders import email_services, supply_services
from orders.models import EmailLog
from tests.conftest import Tenant
from tests.factories import AlertFactory
from tests.orders.conftest import ReportFn, daily

pytestmark = pytest.mark.django_db

NBSP = "\u00a0"


def low_supply_emails(device: Any, report: ReportFn, capture: Any) -> dict[str, mail.EmailMessage]:
    report(*daily(30, 2, 10))  # ends at 12 %, below the default 15 %
    with capture(execute=True):
        supply_services.supplies_evaluate(device_ids=[device.pk])
    return {message.to[0]: message for message in mail.outbox}


def test_a_german_user_gets_the_low_supply_email_in_german(
    tenant: Tenant,
    bob: User,
    supply: Any,
    product: Any,
    report: ReportFn,
    django_capture_on_commit_callbacks: Any,
) -> None:
    bob.language = "de"
    bob.save(update_fields=["language"])

    sent = low_supply_emails(supply.device, report, django_capture_on_commit_callbacks)

    german = sent["bob@customer.test"]
    assert german.subject.endswith(" knapp bei Front office (Alpha HQ)")
    assert german.body.startswith("Guten Tag,")
    assert "Dieses Verbrauchsmaterial hat seinen Nachbestellpunkt erreicht:" in german.body
    assert f"Füllstand:    12{NBSP}%" in german.body  # German numbers, not just words
    assert "Reichweite noch etwa 6 Tage" in german.body
    assert "reorder point" not in german.body


def test_an_english_user_and_addresses_without_an_account_get_english(
    tenant: Tenant,
    bob: User,
    supply: Any,
    product: Any,
    report: ReportFn,
    django_capture_on_commit_callbacks: Any,
) -> None:
    bob.language = "en"
    bob.save(update_fields=["language"])

    sent = low_supply_emails(supply.device, report, django_capture_on_commit_callbacks)

    assert sorted(sent) == [
        "bob@customer.test",
        "frontdesk@alpha-customer.test",
        "support@alpha-printing.test",
    ]
    for message in sent.values():
        assert " low on Front office (Alpha HQ)" in message.subject
        assert message.body.startswith("Hello,")
        assert "This supply has reached its reorder point:" in message.body
        assert "Level:    12%" in message.body


def test_a_sites_contact_reads_the_customers_language_and_the_support_inbox_the_installations(
    tenant: Tenant,
    bob: User,
    supply: Any,
    product: Any,
    report: ReportFn,
    django_capture_on_commit_callbacks: Any,
) -> None:
    bob.language = "en"
    bob.save(update_fields=["language"])
    tenant.customer.language = "de"
    tenant.customer.save(update_fields=["language"])

    sent = low_supply_emails(supply.device, report, django_capture_on_commit_callbacks)

    contact = sent["frontdesk@alpha-customer.test"]
    assert contact.body.startswith("Guten Tag,")
    assert f"Füllstand:    12{NBSP}%" in contact.body
    for english in ("bob@customer.test", "support@alpha-printing.test"):
        assert sent[english].body.startswith("Hello,")


def test_an_installation_in_german_writes_to_its_support_inbox_in_german(
    settings: Any, tenant: Tenant, device: Any
) -> None:
    settings.LANGUAGE_CODE = "de"
    alerts = [
        AlertFactory(device=device, code="media.jam", description="", severity="critical"),
        AlertFactory(device=device, code="cover_open", description="", severity="warning"),
    ]

    device_services.alerts_notify(alert_ids=[a.pk for a in alerts])
    email_services.emails_send_sweep()

    (sent,) = mail.outbox
    assert sent.to == ["support@alpha-printing.test"]
    assert sent.subject == "[Inkmeter] 2 neue Druckermeldungen"
    assert "Drucker melden 2 neue Fehler:" in sent.body
    assert "Papierstau" in sent.body
    assert "Eine Abdeckung ist offen" in sent.body


def test_an_invitee_reads_the_language_of_who_invited_them(
    tenant: Tenant, alice: User, django_capture_on_commit_callbacks: Any
) -> None:
    alice.language = "de"
    alice.save(update_fields=["language"])

    with django_capture_on_commit_callbacks(execute=True):
        account_services.invitation_create(
            ctx=tenant.ctx(), email="neu@example.test", role="reseller_support"
        )

    logged = EmailLog.unscoped.get(kind=EmailLog.Kind.INVITATION)
    (sent,) = mail.outbox
    for subject, body in ((logged.subject, logged.body), (sent.subject, sent.body)):
        assert subject == "[Inkmeter] Einladung zu Alpha Printing"
        assert body.startswith("Guten Tag,")
        assert "Händler-Support" in body
        assert "Der Link gilt 7 Tage lang." in body
    assert "der Link steht in der E-Mail an die eingeladene Person" in logged.body
    assert "/invitations/" in sent.body
    assert "/invitations/" not in logged.body


def test_an_invitee_with_an_account_reads_their_own_language(
    tenant: Tenant, alice: User, bob: User, django_capture_on_commit_callbacks: Any
) -> None:
    alice.language = "de"
    alice.save(update_fields=["language"])
    bob.language = "en"
    bob.save(update_fields=["language"])

    with django_capture_on_commit_callbacks(execute=True):
        account_services.invitation_create(
            ctx=tenant.ctx(), email=bob.email, role="reseller_support"
        )

    (sent,) = mail.outbox
    assert sent.subject == "[Inkmeter] You are invited to Alpha Printing"
    assert sent.body.startswith("Hello,")
