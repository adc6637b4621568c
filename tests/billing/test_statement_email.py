"""A finalised statement is emailed once to its customer's billing contact with the PDF attached
(rendered by the task on the `pdf` queue), and announced once to webhooks."""

from __future__ import annotations

import json

import pytest
import time_machine
from django.core import mail
from django.urls import reverse

from billing import email_services, statement_services
from billing.models import Statement
from billing.tasks import statement_email_task, statements_email_sweep_task
from integrations import services as webhook_services
from integrations.models import Event
from orders.email_services import emails_send_sweep
from orders.models import EmailLog
from tests.billing.conftest import at, read

pytestmark = pytest.mark.django_db
FEB = at("2026-02-01").date()


@pytest.fixture
def draft(tenant, contract, printers) -> Statement:
    a, b = printers
    read(a, at("2026-01-31"), 1000)
    read(a, at("2026-02-27"), 2600)
    read(b, at("2026-02-10"), 70)
    return statement_services.statement_compute(
        ctx=tenant.ctx(), contract_id=contract.pk, period_start=FEB
    )


@pytest.fixture
def billing_contact(tenant) -> str:
    tenant.customer.billing_email = "accounts-payable@alpha-customer.test"
    tenant.customer.save(update_fields=["billing_email"])
    return tenant.customer.billing_email


def finalise(tenant, draft, capture) -> Statement:
    with time_machine.travel(at("2026-03-03")), capture(execute=True):
        return statement_services.statement_finalise(
            ctx=tenant.ctx(), statement_id=draft.pk, by=tenant.admin.user
        )


def test_the_billing_contact_gets_the_statement_with_its_pdf(
    tenant, draft, billing_contact, django_capture_on_commit_callbacks
):
    final = finalise(tenant, draft, django_capture_on_commit_callbacks)

    [message] = mail.outbox
    assert message.to == [billing_contact]
    assert f"statement {final.number}" in message.subject
    [(name, content, mimetype)] = message.attachments
    assert (name, mimetype) == (f"statement-{final.number}.pdf", "application/pdf")
    assert content.startswith(b"%PDF")
    email = EmailLog.unscoped.get()
    assert (email.kind, email.status, email.statement_id) == ("statement", "sent", final.pk)


def test_the_email_goes_once_however_often_the_task_and_sweeps_run(
    tenant, draft, billing_contact, django_capture_on_commit_callbacks
):
    final = finalise(tenant, draft, django_capture_on_commit_callbacks)

    with django_capture_on_commit_callbacks(execute=True):
        assert statement_email_task.delay(statement_id=final.pk).get() is False
        assert statements_email_sweep_task.delay().get() == 0
        emails_send_sweep()

    assert len(mail.outbox) == 1
    assert EmailLog.unscoped.count() == 1


def test_a_lost_task_is_re_derived_by_the_sweep(
    tenant, draft, billing_contact, django_capture_on_commit_callbacks
):
    with time_machine.travel(at("2026-03-03")), django_capture_on_commit_callbacks(execute=False):
        final = statement_services.statement_finalise(
            ctx=tenant.ctx(), statement_id=draft.pk, by=tenant.admin.user
        )
    assert mail.outbox == []

    with time_machine.travel(at("2026-03-04")), django_capture_on_commit_callbacks(execute=True):
        assert statements_email_sweep_task.delay().get() == 1

    [message] = mail.outbox
    assert message.to == [billing_contact]
    assert message.attachments[0][0] == f"statement-{final.number}.pdf"


def test_no_billing_email_means_no_email(tenant, draft, django_capture_on_commit_callbacks):
    final = finalise(tenant, draft, django_capture_on_commit_callbacks)

    assert email_services.statement_email_send(statement_id=final.pk) is None
    assert mail.outbox == []
    assert EmailLog.unscoped.count() == 0


def test_a_draft_is_never_emailed(tenant, draft, billing_contact):
    assert email_services.statement_email_send(statement_id=draft.pk) is None
    assert EmailLog.unscoped.count() == 0


def test_finalising_announces_the_statement_once_to_webhooks(
    tenant, draft, settings, django_capture_on_commit_callbacks, monkeypatch
):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True
    sent: list[int] = []
    monkeypatch.setattr(webhook_services, "_deliveries_enqueue", lambda ids, **kw: sent.extend(ids))
    endpoint, _ = webhook_services.webhook_endpoint_create(
        ctx=tenant.ctx(), url="http://127.0.0.1:9/hooks", events=[Event.STATEMENT_FINALISED]
    )

    final = finalise(tenant, draft, django_capture_on_commit_callbacks)
    with pytest.raises(statement_services.StatementFinalError):
        finalise(tenant, draft, django_capture_on_commit_callbacks)

    [delivery] = endpoint.deliveries.all()
    assert sent == [delivery.pk]
    assert delivery.event == "statement.finalised"
    data = json.loads(webhook_services.webhook_body(delivery.payload))["data"]["statement"]
    assert (data["id"], data["number"], data["currency"]) == (final.pk, final.number, "EUR")
    assert data["total"] == str(final.total)
    assert data["customer"]["name"] == tenant.customer.name


def test_the_billing_email_set_on_the_customer_form_receives_the_statement(
    tenant, draft, login, alice, django_capture_on_commit_callbacks
):
    client = login(alice)
    edit = reverse("customer-edit", kwargs={"customer_id": tenant.customer.pk})
    form = client.get(edit).content.decode()
    assert 'name="billing_email"' in form

    refused = client.post(edit, {"name": tenant.customer.name, "billing_email": "nope"})
    saved = client.post(edit, {"name": tenant.customer.name, "billing_email": "ap@alpha.test"})
    final = finalise(tenant, draft, django_capture_on_commit_callbacks)

    assert "billing_email" in refused.context["form"].errors
    assert saved.status_code == 302
    [message] = mail.outbox
    assert message.to == ["ap@alpha.test"]
    assert message.attachments[0][0] == f"statement-{final.number}.pdf"


def test_the_billing_contact_reads_the_customers_language(
    tenant, draft, login, alice, pdf_html, django_capture_on_commit_callbacks
):
    """A billing contact is nobody's account: the customer's language (set on its form) writes
    the email and the PDF, whatever the installation's; the portal stays in English."""
    client = login(alice)
    edit = reverse("customer-edit", kwargs={"customer_id": tenant.customer.pk})
    assert 'name="language"' in client.get(edit).content.decode()
    form = {"name": tenant.customer.name, "billing_email": "ap@alpha.test", "language": "de"}

    refused = client.post(edit, {**form, "language": "xx"})
    saved = client.post(edit, form)
    final = finalise(tenant, draft, django_capture_on_commit_callbacks)

    assert "language" in refused.context["form"].errors
    assert saved.status_code == 302
    [message] = mail.outbox
    assert f"Nutzungsabrechnung {final.number}" in message.subject
    assert "has finalised" not in message.body
    [html] = pdf_html
    assert "<h1>Nutzungsabrechnung</h1>" in html
    assert "Nettobetrag" in html
    page = client.get(reverse("statement-detail", args=[final.pk])).content.decode()
    assert f"No. {final.number}" in page
