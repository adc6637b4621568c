"""Celery tasks of billing: thin, idempotent (the statement's unique key is the claim)."""

from datetime import date

from celery import shared_task
from django.utils.timezone import now

from billing import email_services, pdf_services, statement_services
from billing.models import StatementPdf
from portal import rls
from portal.tenancy import TenantContext


@shared_task(acks_late=True, soft_time_limit=1500, time_limit=1800)
def statements_close_task(*, as_of: str | None = None) -> int:
    """Nightly: drafts of the period that just ended, and every open draft again."""
    day = date.fromisoformat(as_of) if as_of else now().date()
    # No transaction around it: the close scopes itself and runs its batches side by side.
    return statement_services.statements_close(as_of=day)


@shared_task(acks_late=True, soft_time_limit=540, time_limit=600)
def statements_stale_sweep_task() -> int:
    """Recompute drafts that late readings or corrections arrived after."""
    return statement_services.statements_stale_sweep()  # scoped by itself, as the close


@shared_task(acks_late=True, soft_time_limit=240, time_limit=300)
def statement_compute_task(*, reseller_id: int, contract_id: int, period_start: str) -> int:
    """On demand from the portal or the API."""
    from accounts.models import Reseller

    with rls.tenant(reseller_id):
        reseller = Reseller.objects.get(pk=reseller_id)
        statement = statement_services.statement_compute(
            ctx=TenantContext.system(reseller=reseller),
            contract_id=contract_id,
            period_start=date.fromisoformat(period_start),
        )
    return statement.pk


@shared_task(acks_late=True, soft_time_limit=540, time_limit=600)
def statement_pdf_render_task(*, document_id: int) -> bool:
    """A big statement's PDF, on the `pdf` queue; the page and the API poll its state."""
    reseller_id = rls.reseller_of(StatementPdf, document_id)
    if reseller_id is None:
        return False
    with rls.tenant(reseller_id):
        return pdf_services.statement_pdf_render(document_id=document_id)


@shared_task(
    acks_late=True,
    soft_time_limit=540,
    time_limit=600,
    autoretry_for=(email_services.StatementPdfUnavailableError,),
    retry_backoff=60,
    max_retries=5,
)
def statement_email_task(*, statement_id: int) -> bool:
    """A finalised statement's email with its PDF, on the `pdf` queue (rendering first)."""
    from billing.models import Statement

    reseller_id = rls.reseller_of(Statement, statement_id)
    if reseller_id is None:
        return False
    with rls.tenant(reseller_id):
        return email_services.statement_email_send(statement_id=statement_id) is not None


@shared_task(acks_late=True, soft_time_limit=120, time_limit=150)
def statements_email_sweep_task() -> int:
    return email_services.statements_email_sweep()  # scoped by itself
