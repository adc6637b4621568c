"""A big statement's PDF is rendered by a task on the `pdf` queue; the page and the API show its
state until it is ready. Small statements keep rendering within the request (test_pages.py)."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

import pytest
import time_machine
from django.urls import reverse

from billing import pdf_services, statement_services
from billing.models import Statement, StatementPdf
from portal import formatting
from portal.tenancy import Role
from tests.billing.conftest import at, read

FEB = at("2026-02-01").date()
DASH = "\N{EN DASH}"  # between the two ends of a range in the printed statement


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


def _pdf_text(content: bytes) -> tuple[int, str]:
    """The pages and the text of a PDF, one printed line to a line, spaces normalised."""
    import io

    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(content))
    text = "\n".join(page.extract_text() for page in reader.pages)
    return len(reader.pages), "\n".join(re.sub(r"\s+", " ", line) for line in text.splitlines())


def test_a_statement_of_many_printers_prints_every_printer_line_and_total(
    tenant, login, alice, contract, django_capture_on_commit_callbacks
):
    """40 printers on two sites render on the `pdf` queue (more than INLINE_MAX_DEVICES): the
    document names every printer with its total, prints every line's figures, adds the charges
    and sites up to the statement's amounts, and carries the totals."""
    from billing import services
    from billing.templatetags.billing import units
    from tests.factories import DeviceFactory, SiteFactory

    ctx = tenant.ctx()
    branch = SiteFactory(customer=tenant.customer, name="Altona")
    printers = [
        DeviceFactory(
            site=tenant.site if n % 2 else branch, serial=f"MANY-{n:03d}", name=f"Desk {n}"
        )
        for n in range(40)
    ]
    for n, device in enumerate(printers):
        services.contract_device_add(
            ctx=ctx, contract_id=contract.pk, device_id=device.pk, joined_on=FEB
        )
        read(device, at("2026-01-31"), 1000 + n)
        read(device, at("2026-02-28"), 1500 + 40 * n)
        # One printer's colour counter was read at other times: its lines carry their own.
        hour = 9 if n == 7 else 12
        read(device, at("2026-01-31", hour), 100, name="impressions.color")
        read(device, at("2026-02-28", hour), 160 + n, name="impressions.color")
    statement = statement_services.statement_compute(
        ctx=ctx, contract_id=contract.pk, period_start=FEB
    )
    with time_machine.travel(at("2026-03-03")):
        statement = statement_services.statement_finalise(
            ctx=ctx, statement_id=statement.pk, by=None
        )
    client = login(alice)

    with django_capture_on_commit_callbacks(execute=True) as sent:
        assert client.get(_url(statement)).status_code == 202
    download = client.get(_url(statement))

    assert len(sent) == 1
    pages, text = _pdf_text(download.content)
    assert pages > 1
    assert f"Page 1 of {pages}" in text
    lines = list(statement.lines.select_related("device", "device__site").order_by("position"))
    devices = {line.device for line in lines}
    assert len(devices) == 42  # and the contract's two printers without readings
    with formatting.override():  # the document is in the installation's formats

        def eur(value: Any) -> str:
            return formatting.money(value, "EUR")

        def moment(day: str, hour: int = 12) -> str:
            return formatting.datetime(at(day, hour))

        for device in devices:
            amount = eur(sum(line.amount for line in lines if line.device == device))
            heading = f"{device.name} · {device.serial} · {device.site.name}"
            if device in printers and device != printers[7]:
                read_at = f"{moment('2026-01-31')} {DASH} {moment('2026-02-28')}"
                assert f"{heading} · readings {read_at} {amount}" in text
            else:
                assert f"{heading} {amount}" in text
        for line in (line for line in lines if line.device in printers):
            if line.kind == "fee":
                days = f"{formatting.date(FEB)} {DASH} {formatting.date(date(2026, 2, 28))}"
                row = f"Monthly device fee · {days} · {line.rate_label}"
                assert f"{row} {eur(line.unit_price)} {eur(line.amount)}" in text
                continue
            figures = " ".join(units(f) for f in (line.usage, line.allowance, line.billable))
            price = eur(line.unit_price) if line.unit_price is not None else line.rate_label
            tail = f"{figures} {price} {eur(line.amount)}"
            if line.device == printers[7]:
                hour = 9 if line.counter == "impressions.color" else 12
                # A reading's own moment under its value: the day, then the time unbroken.
                taken = at("2026-01-31", hour)
                start = [units(line.start_value), formatting.date(taken), formatting.time(taken)]
                pattern = r"{} {}\n{}\s+{}\n".format(*map(re.escape, [line.counter_label, *start]))
                assert re.search(pattern, text)
            else:
                row = f"{line.counter_label} {units(line.start_value)} {units(line.end_value)}"
                assert f"{row} {tail}" in text
        fees = eur(sum(line.amount for line in lines if line.kind == "fee"))
        assert f"Monthly device fees 42 {fees}" in text
        for site in (tenant.site, branch):
            amount = eur(sum(line.amount for line in lines if line.device.site == site))
            count = sum(1 for device in devices if device.site == site)
            assert re.search(rf"^{site.name} .* {count} {re.escape(amount)}$", text, re.MULTILINE)
        assert f"Net amount {eur(statement.subtotal)}" in text
        assert f"Tax {formatting.percent(statement.tax_rate, None)} {eur(statement.tax)}" in text
        assert text.count(f"Total {eur(statement.total)}") == 2  # the summary and the totals
