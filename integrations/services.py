"""Webhooks: reseller admins manage endpoints; other apps' services emit events inside their own
transactions; a task delivers each event to each subscribed endpoint, signed, and retries with a
backoff. docs/webhooks.md describes what a receiver gets and how it checks the signature."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import logging
import random
import secrets
import socket
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import F
from django.utils import translation
from django.utils.timezone import now
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from accounts.services import audit_record
from integrations.models import (
    HOST_NOT_FOUND,
    SUBSCRIBABLE,
    Event,
    WebhookDelivery,
    WebhookEndpoint,
)
from portal import rls
from portal.errors import ConflictError, DomainError, NotFoundError, PermissionDeniedError
from portal.tenancy import ADMIN_ROLES, TenantContext

log = logging.getLogger(__name__)

SECRET_PREFIX = "whsec_"  # noqa: S105 (a label, not a secret)
# Headers of every delivery (docs/webhooks.md).
EVENT_HEADER = "Inkmeter-Event"
EVENT_ID_HEADER = "Inkmeter-Event-Id"
DELIVERY_HEADER = "Inkmeter-Delivery"
TIMESTAMP_HEADER = "Inkmeter-Timestamp"
SIGNATURE_HEADER = "Inkmeter-Signature"
# What the log keeps of a receiver's answer; the rest is not read at all.
EXCERPT_BYTES = 500
# A worker holds a claimed delivery this long (longer than one attempt can take: a connect and a
# few reads of WEBHOOK_READ_TIMEOUT); a worker that dies leaves it to be retried after.
LEASE = timedelta(seconds=300)
BACKOFF_MAX_SECONDS = 3600
DUE_STATUSES = (WebhookDelivery.Status.PENDING, WebhookDelivery.Status.SENDING)


def _require_admin(ctx: TenantContext) -> None:
    if ctx.role not in ADMIN_ROLES:
        raise PermissionDeniedError(_("Only a reseller admin may manage webhooks."))


# --- Endpoints ------------------------------------------------------------------------------


def webhook_url_check(url: str) -> None:
    """Refuse what the portal must not call: other schemes than http(s), and (unless
    WEBHOOK_ALLOW_PRIVATE_URLS) hosts that resolve to loopback, private, link-local or reserved
    addresses, which would let a tenant reach the portal's own network (SSRF)."""

    def refuse(message: str) -> DomainError:
        return DomainError(message, code="webhook_url_refused", fields={"url": [message]})

    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise refuse(_("Enter an http:// or https:// address."))
    if parts.username or parts.password:
        raise refuse(
            _("Leave user names and passwords out of the address; the signature is the proof.")
        )
    if settings.WEBHOOK_ALLOW_PRIVATE_URLS:
        return
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        infos = socket.getaddrinfo(parts.hostname, port, proto=socket.IPPROTO_TCP)
    except (OSError, ValueError, UnicodeError):
        raise refuse(_(HOST_NOT_FOUND) % {"host": parts.hostname}) from None
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%")[0])
        if not address.is_global or address.is_multicast:
            raise refuse(_("Addresses on a private or local network cannot receive webhooks."))


def _events_clean(events: Sequence[str]) -> list[str]:
    chosen = sorted(set(events))
    unknown = [e for e in chosen if e not in SUBSCRIBABLE]
    if unknown or not chosen:
        message = (
            _("Choose at least one event.")
            if not chosen
            else _("Unknown event %(event)s.") % {"event": unknown[0]}
        )
        raise DomainError(message, code="webhook_events", fields={"events": [message]})
    return chosen


def _secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def webhook_endpoint_create(
    *,
    ctx: TenantContext,
    url: str,
    events: Sequence[str],
    description: str = "",
    is_active: bool = True,
) -> tuple[WebhookEndpoint, str]:
    """A new endpoint and its signing secret, which the caller shows once."""
    _require_admin(ctx)
    url = url.strip()
    webhook_url_check(url)
    chosen = _events_clean(events)
    secret = _secret()
    with transaction.atomic():
        endpoint = WebhookEndpoint.objects.for_tenant(ctx).create(
            reseller_id=ctx.reseller_id,
            url=url,
            description=description.strip()[:200],
            secret=secret,
            events=chosen,
            is_active=is_active,
            created_by=ctx.user if ctx.user is not None and ctx.user.pk else None,
        )
        audit_record(ctx=ctx, action="webhook.create", obj=endpoint, detail={"url": url})
    return endpoint, secret


def _endpoint_for_update(ctx: TenantContext, endpoint_id: int) -> WebhookEndpoint:
    endpoint = (
        WebhookEndpoint.objects.for_tenant(ctx).select_for_update().filter(pk=endpoint_id).first()
    )
    if endpoint is None:
        raise NotFoundError(_("No such webhook endpoint."))
    return endpoint


def webhook_endpoint_update(
    *,
    ctx: TenantContext,
    endpoint_id: int,
    url: str,
    events: Sequence[str],
    description: str,
    is_active: bool,
) -> WebhookEndpoint:
    _require_admin(ctx)
    url = url.strip()
    with transaction.atomic():
        endpoint = _endpoint_for_update(ctx, endpoint_id)
        webhook_url_check(url)
        chosen = _events_clean(events)
        changed = {
            name: value
            for name, value in (
                ("url", url),
                ("events", chosen),
                ("description", description.strip()[:200]),
                ("is_active", is_active),
            )
            if getattr(endpoint, name) != value
        }
        for name, value in changed.items():
            setattr(endpoint, name, value)
        endpoint.updated_at = now()
        endpoint.save(update_fields=[*changed, "updated_at"])
        if changed:
            audit_record(
                ctx=ctx, action="webhook.update", obj=endpoint, detail=dict.fromkeys(changed, True)
            )
    return endpoint


def webhook_endpoint_rotate(*, ctx: TenantContext, endpoint_id: int) -> tuple[WebhookEndpoint, str]:
    """A new signing secret, at once: deliveries from now on are signed with it only."""
    _require_admin(ctx)
    secret = _secret()
    with transaction.atomic():
        endpoint = _endpoint_for_update(ctx, endpoint_id)
        endpoint.secret = secret
        endpoint.updated_at = now()
        endpoint.save(update_fields=["secret", "updated_at"])
        audit_record(ctx=ctx, action="webhook.rotate", obj=endpoint)
    return endpoint, secret


# --- Events ---------------------------------------------------------------------------------


# What the receiver gets under "data", or a function that builds it: called only when an
# endpoint listens, so that an action of a reseller without webhooks reads nothing more.
Data = dict[str, Any] | Callable[[], dict[str, Any]]


@dataclass(frozen=True)
class Emitted:
    """One domain event of one reseller."""

    reseller_id: int
    event: str
    data: Data


def webhook_resellers_listening(*, reseller_ids: Sequence[int], event: str) -> set[int]:
    """Of these resellers, those with an active endpoint for `event`: a sweep over many rows
    builds the events' data only for them."""
    # Read by services for their own tenants (a sweep's are every reseller's).
    rows = WebhookEndpoint.unscoped.filter(
        reseller_id__in=set(reseller_ids), is_active=True
    ).values_list("reseller_id", "events")
    return {reseller_id for reseller_id, events in rows if event in events}


def webhook_emit(*, reseller_id: int, event: str, data: Data) -> list[int]:
    return webhooks_emit(events=[Emitted(reseller_id=reseller_id, event=event, data=data)])


def webhooks_emit(*, events: Sequence[Emitted]) -> list[int]:
    """Log a delivery of each event to each active endpoint subscribed to it, in the caller's
    transaction, and send them once it commits: an event goes out if and only if its action
    committed. Returns the new deliveries' ids."""
    if not events:
        return []
    resellers = {e.reseller_id for e in events}
    # Called by services of the events' own tenants (a request's, a task's, a sweep's).
    endpoints = list(
        WebhookEndpoint.unscoped.filter(reseller_id__in=resellers, is_active=True).order_by("pk")
    )
    if not endpoints:
        return []
    moment = now()
    rows: list[WebhookDelivery] = []
    for emitted in events:
        listening = [
            endpoint
            for endpoint in endpoints
            if endpoint.reseller_id == emitted.reseller_id and emitted.event in endpoint.events
        ]
        if not listening:
            continue
        data = emitted.data() if callable(emitted.data) else emitted.data
        payload = _payload(emitted.event, data, moment)
        rows.extend(_delivery(endpoint, emitted.event, payload, moment) for endpoint in listening)
    ids = [d.pk for d in WebhookDelivery.unscoped.bulk_create(rows)]
    if ids:
        transaction.on_commit(lambda: _deliveries_enqueue(ids))
    return ids


def _payload(event: str, data: dict[str, Any], moment: Any) -> dict[str, Any]:
    body = {"id": str(uuid.uuid4()), "type": event, "created_at": moment, "data": data}
    # Through JSON once, so that what is stored is exactly what every attempt sends.
    loaded: dict[str, Any] = json.loads(json.dumps(body, cls=DjangoJSONEncoder))
    return loaded


def _delivery(
    endpoint: WebhookEndpoint, event: str, payload: dict[str, Any], moment: Any
) -> WebhookDelivery:
    return WebhookDelivery(
        reseller_id=endpoint.reseller_id,
        endpoint=endpoint,
        event=event,
        event_id=payload["id"],
        payload=payload,
        created_at=moment,
        next_attempt_at=moment,
    )


def webhook_test_send(*, ctx: TenantContext, endpoint_id: int) -> WebhookDelivery:
    """A test event to one endpoint, whether or not it is active or subscribed to anything."""
    _require_admin(ctx)
    endpoint = WebhookEndpoint.objects.for_tenant(ctx).filter(pk=endpoint_id).first()
    if endpoint is None:
        raise NotFoundError(_("No such webhook endpoint."))
    moment = now()
    data = {"message": "A test event from Inkmeter.", "endpoint_id": endpoint.pk}
    with transaction.atomic():
        delivery = _delivery(endpoint, Event.PING, _payload(Event.PING, data, moment), moment)
        delivery.save()
        delivery_id = delivery.pk
        transaction.on_commit(lambda: _deliveries_enqueue([delivery_id]))
    return delivery


def webhook_redeliver(*, ctx: TenantContext, delivery_id: int) -> WebhookDelivery:
    """Send a logged event again, as a new delivery with the same event id and body (the
    receiver drops it if it has it already); the old row keeps its outcome."""
    _require_admin(ctx)
    with transaction.atomic():
        old = (
            WebhookDelivery.objects.for_tenant(ctx)
            .select_related("endpoint")
            .filter(pk=delivery_id)
            .first()
        )
        if old is None:
            raise NotFoundError(_("No such delivery."))
        if old.status in DUE_STATUSES:
            raise ConflictError(
                _("This delivery is still being tried; wait for its outcome."),
                code="delivery_pending",
            )
        delivery = _delivery(old.endpoint, old.event, old.payload, now())
        delivery.save()
        audit_record(
            ctx=ctx, action="webhook.redeliver", obj=old.endpoint, detail={"event": old.event}
        )
        delivery_id = delivery.pk
        transaction.on_commit(lambda: _deliveries_enqueue([delivery_id]))
    return delivery


def _deliveries_enqueue(delivery_ids: list[int], countdown: float = 0) -> None:
    from integrations.tasks import webhook_deliver_task

    try:
        for delivery_id in delivery_ids:
            webhook_deliver_task.apply_async(
                kwargs={"delivery_id": delivery_id}, countdown=countdown, retry=False
            )
    except Exception:  # the broker is down: webhooks_deliver_sweep sends them later
        log.warning("webhook deliveries %s left to the sweep", delivery_ids, exc_info=True)


# --- Delivery -------------------------------------------------------------------------------


def webhook_body(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()


def webhook_signature(*, secret: str, timestamp: str, body: bytes) -> str:
    """`v1=` and the hex HMAC-SHA256, keyed with the endpoint's secret, of
    `<timestamp>.<body>`: the receiver recomputes it from the raw body it got."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "v1=" + mac.hexdigest()


def webhook_deliver(*, delivery_id: int) -> bool:
    """One attempt at a due delivery, if this worker can claim it; True if it was delivered."""
    delivery = _claim(delivery_id)
    if delivery is None:
        return False
    endpoint = delivery.endpoint
    if not endpoint.is_active and delivery.event != Event.PING:
        _record(delivery, is_final=True, error=gettext_noop("The endpoint was turned off."))
        return False
    body = webhook_body(delivery.payload)
    timestamp = str(int(now().timestamp()))
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Inkmeter-Webhooks/1",
        EVENT_HEADER: delivery.event,
        EVENT_ID_HEADER: str(delivery.event_id),
        DELIVERY_HEADER: str(delivery.pk),
        TIMESTAMP_HEADER: timestamp,
        SIGNATURE_HEADER: webhook_signature(secret=endpoint.secret, timestamp=timestamp, body=body),
    }
    try:
        # Again at each attempt: the host's address may have changed since it was saved. The
        # log is written in English and read in each reader's language (WebhookDelivery.error_text).
        with translation.override("en"):
            webhook_url_check(endpoint.url)
    except DomainError as error:
        _record(delivery, is_final=True, error=error.message)
        return False
    timeout = httpx.Timeout(settings.WEBHOOK_READ_TIMEOUT, connect=settings.WEBHOOK_CONNECT_TIMEOUT)
    try:
        # No redirects (a redirect could point inside the network) and no proxy from the
        # environment; the answer's body is read only as far as the log keeps it.
        with (
            httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False) as client,
            client.stream("POST", endpoint.url, content=body, headers=headers) as response,
        ):
            excerpt = _excerpt(response)
            code = response.status_code
    except httpx.HTTPError as exc:
        _record(delivery, is_final=False, error=f"{type(exc).__name__}: {exc}"[:500])
        return False
    if 200 <= code < 300:
        _record(delivery, is_final=True, code=code, excerpt=excerpt, delivered=True)
        return True
    _record(delivery, is_final=False, code=code, excerpt=excerpt, error=f"HTTP {code}")
    return False


def _excerpt(response: httpx.Response) -> str:
    read = b""
    for chunk in response.iter_raw():
        read += chunk
        if len(read) >= EXCERPT_BYTES:
            break
    return read[:EXCERPT_BYTES].decode("utf-8", errors="replace").replace("\x00", "")


def _claim(delivery_id: int) -> WebhookDelivery | None:
    """Take the lease on a due delivery, or None if it is not due or another worker holds it:
    one conditional UPDATE, committed before the HTTP call (see orders.email_services)."""
    moment = now()
    with rls.system("the claim names the row; its task has no tenant of its own", durable=True):
        claimed = WebhookDelivery.unscoped.filter(
            pk=delivery_id,
            status__in=DUE_STATUSES,
            next_attempt_at__lte=moment,
            attempts__lt=settings.WEBHOOK_MAX_ATTEMPTS,
        ).update(
            status=WebhookDelivery.Status.SENDING,
            attempts=F("attempts") + 1,
            next_attempt_at=moment + LEASE,
            last_attempt_at=moment,
        )
        if claimed != 1:
            return None
        return WebhookDelivery.unscoped.select_related("endpoint").get(pk=delivery_id)


def webhook_backoff(attempts: int) -> float:
    """Seconds before the next attempt after `attempts` failed ones: doubling from
    WEBHOOK_RETRY_BASE_SECONDS, at most an hour, and between half and all of that at random, so
    that deliveries failed together by one outage do not all come back at once."""
    ceiling = min(BACKOFF_MAX_SECONDS, settings.WEBHOOK_RETRY_BASE_SECONDS * 2 ** (attempts - 1))
    return ceiling / 2 + random.uniform(0, ceiling / 2)  # noqa: S311 (spread, not a secret)


def _record(
    delivery: WebhookDelivery,
    *,
    is_final: bool,
    code: int | None = None,
    excerpt: str = "",
    error: str = "",
    delivered: bool = False,
) -> None:
    """The outcome of the claimed attempt, unless a rerun has taken the row since."""
    moment = now()
    exhausted = delivery.attempts >= settings.WEBHOOK_MAX_ATTEMPTS
    fields: dict[str, Any] = {"response_code": code, "response_excerpt": excerpt, "error": error}
    delay = None
    if delivered:
        fields.update(status=WebhookDelivery.Status.SUCCEEDED, delivered_at=moment)
    elif is_final or exhausted:
        fields.update(status=WebhookDelivery.Status.FAILED)
    else:
        delay = webhook_backoff(delivery.attempts)
        fields.update(
            status=WebhookDelivery.Status.PENDING,
            next_attempt_at=moment + timedelta(seconds=delay),
        )
    with rls.tenant(delivery.reseller_id):
        WebhookDelivery.unscoped.filter(
            pk=delivery.pk, status=WebhookDelivery.Status.SENDING, attempts=delivery.attempts
        ).update(**fields)
    if not delivered:
        log.warning(
            "webhook delivery %s attempt %s failed%s: %s",
            delivery.pk,
            delivery.attempts,
            "" if delay is not None else ", giving up",
            error,
        )
    if delay is not None:
        _deliveries_enqueue([delivery.pk], countdown=delay)


def webhooks_deliver_sweep(*, limit: int = 500) -> int:
    """Deliveries that are due: new ones whose task was lost, retries, and those held by a
    worker that died (lease run out). One whose last allowed attempt died with its worker is
    marked failed. Each goes to a task of its own (a slow receiver holds up only its own);
    returns how many were sent off."""
    moment = now()
    with rls.system("the sweep of the beat schedule covers every reseller's deliveries"):
        due = WebhookDelivery.unscoped.filter(status__in=DUE_STATUSES, next_attempt_at__lte=moment)
        due.filter(
            status=WebhookDelivery.Status.SENDING, attempts__gte=settings.WEBHOOK_MAX_ATTEMPTS
        ).update(
            status=WebhookDelivery.Status.FAILED,
            error=gettext_noop("The sender stopped during the last attempt."),
        )
        ids = list(due.order_by("next_attempt_at", "pk").values_list("pk", flat=True)[:limit])
    _deliveries_enqueue(ids)
    return len(ids)
