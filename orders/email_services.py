"""Emails of the orders app: each is logged before it is sent, sent after the commit that
asked for it by whichever worker holds its lease, and its outcome is kept for the portal's
email log. A worker killed mid-send costs a delay, not the email (see `emails_send`)."""

from __future__ import annotations

import logging
import smtplib
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import timedelta
from email.utils import parseaddr
from typing import Any

from django.conf import settings
from django.core.mail import EmailMessage
from django.core.mail.utils import DNS_NAME
from django.db import transaction
from django.db.models import F
from django.template.loader import render_to_string
from django.utils import translation
from django.utils.timezone import now

from accounts.models import Invitation, Membership
from orders.models import EmailLog, NotificationPreference, Order, SupplyAlert
from portal import formatting, i18n, rls
from portal.mail import email_subject
from portal.tenancy import CUSTOMER_ROLES

log = logging.getLogger(__name__)

# Rows a sender may claim: never tried or retrying (pending), or whose lease may have run out.
DUE_STATUSES = (EmailLog.Status.PENDING, EmailLog.Status.SENDING)
# The first retry after an error waits this long, each later one twice as long as the one before.
RETRY_BACKOFF_SECONDS = 60


def opted_out(reseller_id: int, kind: str) -> set[int]:
    # Read inside services for a task's recipients: the reseller is the task's own tenant.
    return set(
        NotificationPreference.unscoped.filter(
            reseller_id=reseller_id, kind=kind, is_enabled=False
        ).values_list("user_id", flat=True)
    )


def customer_recipients(
    *, reseller_id: int, customer_id: int, kind: str, roles: Iterable[str] | None = None
) -> list[str]:
    """The customer's users who receive `kind` (everyone unless they opted out)."""
    roles = list(roles or CUSTOMER_ROLES)
    # System code for a task's tenant: memberships of one customer of the reseller.
    users = Membership.unscoped.filter(
        reseller_id=reseller_id, customer_id=customer_id, role__in=roles, user__is_active=True
    ).values_list("user_id", "user__email")
    out = opted_out(reseller_id, kind)
    return [email for user_id, email in users if user_id not in out]


# --- Email ------------------------------------------------------------------------------------


def emails_queue(
    *,
    reseller_id: int,
    customer_id: int | None,
    recipients: Sequence[str],
    kind: str,
    template: str,
    context: dict[str, Any],
    subject: str | Callable[[], str],
    order: Order | None = None,
    supply_alert: SupplyAlert | None = None,
    invitation: Invitation | None = None,
    statement: Any = None,
    fallback_language: str | None = None,
    languages: Mapping[str, str] | None = None,
) -> list[EmailLog]:
    """Log one email per recipient and send them once the caller's transaction commits.

    Each recipient reads it in their own language and number format (portal/i18n.py), so the
    body and `subject` (best a function, called with that language active) are rendered once per
    way of reading, whoever's request asked for them. Addresses that are nobody's account read
    their language in `languages`, else `fallback_language`, else the installation's; times
    are in the installation's zone."""
    unique = list(dict.fromkeys(r.strip().lower() for r in recipients if r and r.strip()))
    readers = i18n.readers(unique, fallback_language=fallback_language, languages=languages)
    rendered: dict[i18n.Reader, tuple[str, str]] = {}
    for reader in dict.fromkeys(readers.values()):
        with translation.override(reader.language), formatting.override(locale=reader.locale):
            text = subject() if callable(subject) else subject
            rendered[reader] = (email_subject(text), render_to_string(template, context))
    # Written by services for their own tenant (a request's or a task's).
    emails = EmailLog.unscoped.bulk_create(
        [
            EmailLog(
                reseller_id=reseller_id,
                customer_id=customer_id,
                recipient=recipient,
                subject=rendered[readers[recipient]][0],
                body=rendered[readers[recipient]][1],
                kind=kind,
                order=order,
                supply_alert=supply_alert,
                invitation=invitation,
                statement=statement,
            )
            for recipient in unique
        ]
    )
    ids = [e.pk for e in emails]
    if ids:
        transaction.on_commit(lambda: _emails_enqueue(ids))
    return emails


def _emails_enqueue(email_ids: list[int]) -> None:
    from orders.tasks import emails_send_task

    try:
        emails_send_task.apply_async(kwargs={"email_ids": email_ids}, retry=False)
    except Exception:  # the broker is down: emails_send_sweep sends them later
        log.warning("emails %s left to the sweep", email_ids, exc_info=True)


def emails_send(*, email_ids: list[int]) -> int:
    """Send the logged emails that are due, each by one worker at a time; returns how many went.

    Each email is a lease (`email_claim`), taken and committed before the SMTP call, so the
    database always says who is sending what; the SMTP call runs outside any transaction. A
    worker killed between its claim and the mark leaves the row `sending` until its lease runs
    out; then the redelivered task or `emails_send_sweep` sends it again.

    That gives "exactly once" everywhere but one window: the mail server has accepted the
    message (answered the final "." of DATA) and the worker dies before it marks the row sent.
    Nothing on this side can tell that apart from a send that never happened, so the rerun
    sends the message again. Both copies carry the same Message-ID (`message_id`), which is
    how a mail server, a client or a person recognises the second as a duplicate.
    """
    sent = 0
    for email_id in sorted(email_ids):
        email = email_claim(email_id=email_id)
        if email is not None and _email_deliver(email):
            sent += 1
    return sent


def email_claim(*, email_id: int) -> EmailLog | None:
    """Take the lease on a due email (new, retrying, or whose sender's lease ran out), or None
    if it is not due or another worker holds it.

    The claim is one conditional UPDATE in its own committed transaction (durable: nesting it
    in a caller's transaction would hold the claim back until after the SMTP call). Two workers
    racing for a row both run it; PostgreSQL makes the second wait for the first and re-check
    the condition, which the first's lease no longer meets."""
    moment = now()
    lease = timedelta(seconds=settings.EMAIL_SEND_LEASE_SECONDS)
    with rls.system("the claim names the row; its task has no tenant of its own", durable=True):
        claimed = EmailLog.unscoped.filter(
            pk=email_id,
            status__in=DUE_STATUSES,
            next_attempt_at__lte=moment,
            attempts__lt=settings.EMAIL_SEND_ATTEMPTS,
        ).update(
            status=EmailLog.Status.SENDING,
            attempts=F("attempts") + 1,
            next_attempt_at=moment + lease,
        )
        if claimed != 1:
            return None
        return EmailLog.unscoped.get(pk=email_id)


def message_id(email: EmailLog) -> str:
    """The Message-ID of every attempt to send this row: the same on a resend, different for
    every other email (the row's id and creation time, at the sender's domain)."""
    domain = parseaddr(settings.DEFAULT_FROM_EMAIL)[1].rpartition("@")[2] or DNS_NAME
    return f"<inkmeter.email.{email.pk}.{int(email.created_at.timestamp())}@{domain}>"


def _email_deliver(email: EmailLog) -> bool:
    """One SMTP attempt for a claimed email, then its outcome on the row."""
    message = EmailMessage(
        subject=email_subject(email.subject),  # rows logged before subjects were cleaned
        body=_body_to_send(email),
        to=[email.recipient],
        headers={"Message-ID": message_id(email)},
    )
    try:
        if email.statement_id is not None:
            message.attach(*_statement_attachment(email), "application/pdf")
        message.send()
    except Exception as exc:  # kept on the row, shown in the portal's email log
        _email_attempt_failed(email, exc)
        return False
    # By pk alone: it did go out, even if a slow send outlived its lease meanwhile.
    with rls.tenant(email.reseller_id):
        EmailLog.unscoped.filter(pk=email.pk).update(
            status=EmailLog.Status.SENT, sent_at=now(), error=""
        )
    return True


def _statement_attachment(email: EmailLog) -> tuple[str, bytes]:
    """The statement's PDF, read from its stored document at each attempt (the log keeps no
    bytes of its own)."""
    from billing.email_services import statement_pdf_attachment

    with rls.tenant(email.reseller_id):
        attachment = statement_pdf_attachment(statement_id=int(email.statement_id or 0))
    if attachment is None:
        raise LookupError(f"the PDF of statement {email.statement_id} is not ready")
    return attachment


def _body_to_send(email: EmailLog) -> str:
    """The body as it goes out: the logged one, except that an invitation's link (its
    invitee's key, which the log must not hold) is rendered from the invitation row."""
    if email.invitation_id is None:
        return email.body
    from accounts.services import invitation_email_body

    with rls.tenant(email.reseller_id):
        return invitation_email_body(invitation_id=email.invitation_id)


def _email_attempt_failed(email: EmailLog, exc: Exception) -> None:
    error = f"{type(exc).__name__}: {exc}"[:500]
    is_final = _is_permanent(exc) or email.attempts >= settings.EMAIL_SEND_ATTEMPTS
    backoff = timedelta(seconds=RETRY_BACKOFF_SECONDS * 2 ** (email.attempts - 1))
    outcome: dict[str, Any] = (
        {"status": EmailLog.Status.FAILED}
        if is_final
        else {"status": EmailLog.Status.PENDING, "next_attempt_at": now() + backoff}
    )
    # Only while the lease is still this attempt's: a rerun may have taken the row since.
    with rls.tenant(email.reseller_id):
        EmailLog.unscoped.filter(
            pk=email.pk, status=EmailLog.Status.SENDING, attempts=email.attempts
        ).update(error=error, **outcome)
    log.warning(
        "email %s attempt %s failed%s: %s",
        email.pk,
        email.attempts,
        "" if not is_final else ", giving up",
        error,
    )


def _is_permanent(exc: Exception) -> bool:
    """A 5xx answer (no such mailbox, message refused) or a message that cannot be built:
    another attempt would fail the same way. Timeouts, refused connections and 4xx retry."""
    if isinstance(exc, smtplib.SMTPResponseException):
        return exc.smtp_code >= 500
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return all(code >= 500 for code, _ in exc.recipients.values())
    return not isinstance(exc, OSError)  # SMTPException is an OSError


def emails_send_sweep(*, limit: int = 500) -> int:
    """Send the emails that are due: never sent (their task was lost), retrying after an
    error, or held by a worker that died (lease run out). An email whose last allowed attempt
    died with its worker is marked failed."""
    moment = now()
    with rls.system("the sweep of the beat schedule covers every reseller's emails"):
        due = EmailLog.unscoped.filter(status__in=DUE_STATUSES, next_attempt_at__lte=moment)
        exhausted = due.filter(
            status=EmailLog.Status.SENDING, attempts__gte=settings.EMAIL_SEND_ATTEMPTS
        ).update(status=EmailLog.Status.FAILED, error="The sender stopped during the last attempt.")
        lost = due.filter(status=EmailLog.Status.SENDING).count()
        ids = list(due.order_by("next_attempt_at", "pk").values_list("pk", flat=True)[:limit])
    if exhausted or lost:
        log.warning("emails: %s lost by their sender to resend, %s failed", lost, exhausted)
    # Each email in transactions of its own, none of them around the SMTP call.
    return emails_send(email_ids=ids)
