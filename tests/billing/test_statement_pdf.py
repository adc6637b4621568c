"""A big statement's PDF is rendered by a task on the `pdf` queue; the page and the API show its
state until it is ready. Small statements keep rendering within the request (test_pages.py)."""

from __future__ import annotations

import pytest
import time_machine
from django.urls import reverse

from billing import pdf_services, statement_services
from billing.models import Statement, StatementPdf
from portal.tenancy import Role
from tests.billing.conftest import at, read

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
def final(tenant, draft) -> Statement:
    with time_machine.travel(at("2026-03-03")):
        return statement_services.statement_finalise(
            ctx=tenant.ctx(), statement_id=draft.pk, by=tenant.admin.user
        )


@pytest.fixture
def big(monkeypatch):
    """Every statement with a printer counts as big."""
    monkeypatch.setattr(pdf_services, "INLINE_MAX_DEVICES", 0)


def _url(statement: Statement) -> str:
    return reverse("statement-pdf", kwargs={"statement_id": statement.pk})


def test_the_page_shows_the_pdf_being_prepared_then_offers_it(
    big, login, alice, final, django_capture_on_commit_callbacks
):
    client = login(alice)

    with django_capture_on_commit_callbacks(execute=True) as sent:
        page = client.get(_url(final))
    poll = client.get(_url(final), headers={"HX-Request": "true"})
    download = client.get(_url(final))

    assert page.status_code == 202
    assert 'data-state="pending"' in page.content.decode()
    assert f'hx-get="{_url(final)}"' in page.content.decode()
    assert len(sent) == 1
    assert 'data-state="ready"' in poll.content.decode()
    assert "Download the PDF" in poll.content.decode()
    assert download["Content-Type"] == "application/pdf"
    assert download.content.startswith(b"%PDF")
    document = StatementPdf.unscoped.get()
    assert document.status == StatementPdf.Status.READY
    assert bytes(document.content) == download.content


def test_a_pending_document_is_not_sent_twice(
    big, login, alice, final, django_capture_on_commit_callbacks
):
    client = login(alice)

    with django_capture_on_commit_callbacks() as first:
        client.get(_url(final))
    with django_capture_on_commit_callbacks() as second:
        again = client.get(_url(final), headers={"HX-Request": "true"})

    assert len(first) == 1
    assert second == []
    assert 'data-state="pending"' in again.content.decode()
    assert StatementPdf.unscoped.count() == 1


def test_a_failed_rendering_shows_why_and_the_next_request_tries_again(
    big, login, alice, final, monkeypatch, django_capture_on_commit_callbacks
):
    client = login(alice)
    real_render = pdf_services.statement_pdf_render_now

    def broken(context):
        raise RuntimeError("no fonts")

    monkeypatch.setattr(pdf_services, "statement_pdf_render_now", broken)
    with django_capture_on_commit_callbacks(execute=True):
        client.get(_url(final))
    failed = client.get(_url(final), headers={"HX-Request": "true"})
    monkeypatch.setattr(pdf_services, "statement_pdf_render_now", real_render)
    with django_capture_on_commit_callbacks(execute=True):
        client.get(_url(final), {"retry": "1"})

    assert 'data-state="failed"' in failed.content.decode()
    assert "no fonts" in failed.content.decode()
    assert "hx-trigger" not in failed.content.decode()  # the page stops polling
    assert client.get(_url(final)).content.startswith(b"%PDF")
    assert StatementPdf.unscoped.get().error == ""


def test_a_recomputed_statement_gets_a_new_document(
    big, tenant, login, alice, draft, contract, printers, django_capture_on_commit_callbacks
):
    client = login(alice)
    with django_capture_on_commit_callbacks(execute=True):
        client.get(_url(draft))
    first = StatementPdf.unscoped.get()

    read(printers[0], at("2026-02-28"), 3000)
    statement_services.statement_compute(
        ctx=tenant.ctx(), contract_id=contract.pk, period_start=FEB
    )
    again = client.get(_url(draft))

    assert again.status_code == 202
    document = StatementPdf.unscoped.get()
    assert document.pk != first.pk
    assert document.status == StatementPdf.Status.PENDING


def test_the_api_answers_202_until_the_pdf_is_ready(
    big, client, tenant, final, django_capture_on_commit_callbacks
):
    from accounts import services as account_services

    _, raw = account_services.api_token_create(
        ctx=tenant.ctx(), name="ERP", role=Role.RESELLER_FINANCE
    )
    auth = {"HTTP_AUTHORIZATION": f"Bearer {raw}"}
    url = f"/api/v1/statements/{final.pk}/pdf"

    with django_capture_on_commit_callbacks(execute=True):
        pending = client.get(url, **auth)
    ready = client.get(url, **auth)

    assert pending.status_code == 202
    assert pending["Retry-After"] == "5"
    assert pending.json()["status"] == "pending"
    assert ready.status_code == 200
    assert ready.content.startswith(b"%PDF")


def test_a_foreign_reseller_gets_404_and_nothing_is_prepared(
    big, login, charlie, final, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as sent:
        response = login(charlie).get(_url(final))

    assert response.status_code == 404
    assert sent == []
    assert not StatementPdf.unscoped.exists()
