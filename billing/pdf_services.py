"""Statement PDFs: rendered within the request when the statement is small, otherwise by a task
on the `pdf` queue while the page and the API show the document's state.

WeasyPrint took 12.5-37 s for a statement of 100 printers on the shared 2-core machine under
load 7-10 before its template was tuned, and still takes about 1.5 s of CPU per 100 printers
(benchmarks/statement_pdf.py, docs/scale.md); gunicorn kills a request after 30 s, and each
render holds a web worker.
The rendered document is stored in PostgreSQL, so any web process can serve it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils.timezone import now

from billing import charts, exports, selectors
from billing.models import Statement, StatementLine, StatementPdf
from portal.tenancy import TenantContext

log = logging.getLogger(__name__)

# Statements with more printers than this render in a task (about ten printers a page).
INLINE_MAX_DEVICES = 25
# A document pending for longer than the task may run was lost with its message: send again.
RENDER_TIME_LIMIT = timedelta(seconds=600)
# A failed rendering is shown this long before a request tries again (or at once on `retry`).
FAILED_SHOWN_FOR = timedelta(minutes=1)


def statement_pdf_is_inline(lines: Iterable[StatementLine]) -> bool:
    """Whether a statement with these lines is rendered within the request."""
    return len({line.device_id for line in lines if line.device_id}) <= INLINE_MAX_DEVICES


def statement_pdf_context(*, ctx: TenantContext, statement: Statement) -> dict[str, Any]:
    """What the printed statement shows: the statement page's data (views._statement_context)."""
    return {
        "statement": statement,
        "lines": list(selectors.statement_lines(ctx=ctx, statement=statement)),
        "reseller": ctx.reseller,
        "sites": selectors.statement_sites(ctx=ctx, statement=statement),
        "adjustments": selectors.statement_adjustments(ctx=ctx, statement=statement),
    }


def statement_pdf_render_now(context: dict[str, Any]) -> bytes:
    return exports.statement_pdf(charts.pdf_context(context))


def statement_pdf_content(document: StatementPdf) -> bytes:
    """A ready document's bytes (PostgreSQL hands them over as a memoryview)."""
    if document.content is None:
        raise ValueError(f"statement PDF {document.pk} is {document.status}, not ready")
    return bytes(document.content)


def statement_pdf_request(
    *, ctx: TenantContext, statement: Statement, retry: bool = False
) -> StatementPdf:
    """The document of the statement as it is now: the stored one, or a new one whose rendering
    goes to the `pdf` queue when the caller commits. A lost rendering is sent again, and so is a
    failed one once it has been shown for a while, or at once with `retry`.

    `statement` comes from selectors.statement_get, so a foreign statement never gets here."""
    from billing.tasks import statement_pdf_render_task

    with transaction.atomic():
        document, created = StatementPdf.objects.for_tenant(ctx).get_or_create(
            statement=statement,
            computed_at=statement.computed_at,
            statement_status=statement.status,
            defaults={"reseller_id": statement.reseller_id, "customer_id": statement.customer_id},
        )
        if created:
            # Documents of the statement's earlier versions are never shown again.
            StatementPdf.objects.for_tenant(ctx).filter(statement=statement).exclude(
                pk=document.pk
            ).delete()
        else:
            lost = document.status == StatementPdf.Status.PENDING and (
                document.requested_at < now() - RENDER_TIME_LIMIT
            )
            failed = document.status == StatementPdf.Status.FAILED and (
                retry or (document.rendered_at or now()) < now() - FAILED_SHOWN_FOR
            )
            if not (lost or failed):
                return document
            # Claimed by a conditional UPDATE: of two requests retrying at once, one sends.
            retried = (
                StatementPdf.objects.for_tenant(ctx)
                .filter(pk=document.pk, status=document.status, requested_at=document.requested_at)
                .update(
                    status=StatementPdf.Status.PENDING,
                    requested_at=now(),
                    rendered_at=None,
                    error="",
                )
            )
            document.refresh_from_db()
            if not retried:
                return document
        document_id = document.pk
        transaction.on_commit(lambda: statement_pdf_render_task.delay(document_id=document_id))
    return document


def statement_pdf_render(*, document_id: int) -> bool:
    """The task's work: render a pending document and store it. False when there was nothing
    to do (rendered already, or the statement changed since: its next request asks anew)."""
    document = (
        StatementPdf.unscoped.select_related("reseller", "statement")
        .filter(pk=document_id, status=StatementPdf.Status.PENDING)
        .first()
    )
    if document is None:
        return False
    statement = document.statement
    pending = StatementPdf.unscoped.filter(pk=document.pk, status=StatementPdf.Status.PENDING)
    if (statement.computed_at, statement.status) != (
        document.computed_at,
        document.statement_status,
    ):
        pending.update(
            status=StatementPdf.Status.FAILED, error="The statement changed.", rendered_at=now()
        )
        return False
    ctx = TenantContext.system(reseller=document.reseller)
    try:
        content = statement_pdf_render_now(statement_pdf_context(ctx=ctx, statement=statement))
    except Exception as error:  # WeasyPrint's failures have no common base class
        log.exception("statement PDF %s failed", document.pk)
        pending.update(status=StatementPdf.Status.FAILED, error=str(error)[:500], rendered_at=now())
        return False
    return pending.update(status=StatementPdf.Status.READY, content=content, rendered_at=now()) == 1
