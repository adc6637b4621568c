"""A finalised statement goes to its customer's billing contact with the PDF attached.

The work runs in a task on the `pdf` queue, since a big statement's PDF takes seconds of CPU
(billing/pdf_services.py): it renders the document through the statement PDF pipeline, then
logs the email in the orders app's email log, which sends it after the commit and attaches the
stored PDF at each attempt. One email per statement (a unique key on the log), so a retried or
redelivered task never sends a second one; `statements_email_sweep` re-derives lost tasks."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef
from django.utils.timezone import now
from django.utils.translation import gettext as _

from billing import pdf_services
from billing.models import Statement, StatementPdf
from orders.email_services import emails_queue
from orders.models import EmailLog
from portal import rls
from portal.tenancy import TenantContext

log = logging.getLogger(__name__)

# The sweep looks this far back for final statements whose email was never logged.
SWEEP_WINDOW = timedelta(days=7)


class StatementPdfUnavailableError(Exception):
    """The PDF could not be rendered this time; the task retries later."""


def statement_email_enqueue(*, statement_id: int) -> None:
    """Send the statement's email after the caller's transaction commits."""

    def enqueue() -> None:
        from billing.tasks import statement_email_task

        try:
            statement_email_task.apply_async(kwargs={"statement_id": statement_id}, retry=False)
        except Exception:  # the broker is down: statements_email_sweep sends it later
            log.warning("statement %s email left to the sweep", statement_id, exc_info=True)

    transaction.on_commit(enqueue)


def statement_pdf_attachment(*, statement_id: int) -> tuple[str, bytes] | None:
    """The file name and bytes of a final statement's ready PDF, or None."""
    document = (
        StatementPdf.unscoped.select_related("statement")
        .filter(statement_id=statement_id, statement_status=Statement.Status.FINAL)
        .filter(status=StatementPdf.Status.READY)
        .order_by("-rendered_at")
        .first()
    )
    if document is None:
        return None
    name = f"statement-{document.statement.number}.pdf"
    return name, pdf_services.statement_pdf_content(document)


def statement_email_send(*, statement_id: int) -> EmailLog | None:
    """The task's work, in the statement's tenant scope: render the PDF if need be and log the
    email to the billing contact. None when there is nothing to send (no billing email, not
    final) or the email is logged already."""
    statement = (
        Statement.unscoped.select_related("customer", "reseller")
        .filter(pk=statement_id, status=Statement.Status.FINAL)
        .first()
    )
    if statement is None or not statement.customer.billing_email:
        return None
    if EmailLog.unscoped.filter(statement_id=statement.pk).exists():
        return None
    ctx = TenantContext.system(reseller=statement.reseller)
    # One transaction with the rendering: the render task that the request enqueues on commit
    # then finds the document ready and does nothing.
    with transaction.atomic():
        document = pdf_services.statement_pdf_request(ctx=ctx, statement=statement)
        if document.status == StatementPdf.Status.PENDING:
            pdf_services.statement_pdf_render(document_id=document.pk)
            document.refresh_from_db()
    if document.status != StatementPdf.Status.READY:
        raise StatementPdfUnavailableError(f"statement {statement.pk}: {document.error}")
    reseller, customer = statement.reseller, statement.customer
    try:
        with transaction.atomic():
            emails = emails_queue(
                reseller_id=statement.reseller_id,
                customer_id=statement.customer_id,
                recipients=[customer.billing_email],
                kind=EmailLog.Kind.STATEMENT,
                template="billing/email/statement_final.txt",
                context={"statement": statement, "customer": customer, "reseller": reseller},
                subject=lambda: (
                    _("[Inkmeter] %(reseller)s: statement %(number)s")
                    % {"reseller": reseller.name, "number": statement.number}
                ),
                statement=statement,
                fallback_language=customer.language or None,
            )
    except IntegrityError:
        return None  # another run of the task logged it first
    return emails[0] if emails else None


def statements_email_sweep() -> int:
    """Final statements of the last days whose email was never logged (a lost task)."""
    with rls.system("the sweep of the beat schedule covers every reseller's statements"):
        ids = list(
            Statement.unscoped.filter(
                status=Statement.Status.FINAL, finalised_at__gte=now() - SWEEP_WINDOW
            )
            .exclude(customer__billing_email="")
            .exclude(Exists(EmailLog.unscoped.filter(statement_id=OuterRef("pk"))))
            .values_list("pk", flat=True)[:500]
        )
        for statement_id in ids:
            statement_email_enqueue(statement_id=statement_id)
    return len(ids)
