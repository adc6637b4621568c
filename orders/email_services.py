"""Emails of the orders app: each is logged before it is sent, sent once after the commit
that asked for it, and its outcome is kept for the portal's email log."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import Any

from django.core.mail import send_mail
from django.db import transaction
from django.template.loader import render_to_string
from django.utils.timezone import now

from accounts.models import Membership
from orders.models import EmailLog, NotificationPreference, Order, SupplyAlert
from portal.tenancy import CUSTOMER_ROLES

log = logging.getLogger(__name__)


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
    subject: str,
    order: Order | None = None,
    supply_alert: SupplyAlert | None = None,
) -> list[EmailLog]:
    """Log one email per recipient and send them once the caller's transaction commits."""
    body = render_to_string(template, context)
    unique = list(dict.fromkeys(r.strip().lower() for r in recipients if r and r.strip()))
    # Written by services for their own tenant (a request's or a task's).
    emails = EmailLog.unscoped.bulk_create(
        [
            EmailLog(
                reseller_id=reseller_id,
                customer_id=customer_id,
                recipient=recipient,
                subject=subject[:255],
                body=body,
                kind=kind,
                order=order,
                supply_alert=supply_alert,
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
    """Send logged emails, each once: a conditional UPDATE claims it before the SMTP call."""
    sent = 0
    for email_id in sorted(email_ids):
        # System code: the claim names the row; there is no tenant to scope by in a task.
        claimed = EmailLog.unscoped.filter(pk=email_id, status=EmailLog.Status.PENDING).update(
            status=EmailLog.Status.SENT, sent_at=now()
        )
        if claimed != 1:
            continue
        email = EmailLog.unscoped.get(pk=email_id)
        try:
            send_mail(
                subject=email.subject,
                message=email.body,
                from_email=None,
                recipient_list=[email.recipient],
            )
        except Exception as exc:  # logged on the row, shown in the portal
            EmailLog.unscoped.filter(pk=email_id).update(
                status=EmailLog.Status.FAILED, error=f"{type(exc).__name__}: {exc}"[:500]
            )
            continue
        sent += 1
    return sent


def emails_send_sweep(*, older_than_seconds: int = 120, limit: int = 500) -> int:
    """Emails logged but never sent (their task was lost)."""
    cutoff = now() - timedelta(seconds=older_than_seconds)
    pending = list(
        EmailLog.unscoped.filter(status=EmailLog.Status.PENDING, created_at__lte=cutoff)
        .order_by("pk")
        .values_list("pk", flat=True)[:limit]
    )
    return emails_send(email_ids=pending)
