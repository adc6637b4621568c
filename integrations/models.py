"""Outgoing webhooks: a reseller's endpoints and the log of every delivery to them.

A delivery row is written in the transaction of the domain action it reports (an outbox), so an
event is sent if and only if its action committed. Sending is a lease, like EmailLog's: a worker
claims the row in a committed transaction, makes the HTTP call outside any transaction, and
records the outcome; errors retry with a backoff until WEBHOOK_MAX_ATTEMPTS, then `failed`."""

from __future__ import annotations

import uuid
from typing import ClassVar

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.timezone import now
from django.utils.translation import gettext_lazy as _
from django.utils.translation import gettext_noop, pgettext_lazy

from portal.i18n import translate_logged
from portal.tenancy import TenantModel

# A delivery error with a value in it (the others are fixed sentences, or a library's text).
HOST_NOT_FOUND = gettext_noop("The host %(host)s cannot be found.")


class Event(models.TextChoices):
    STATEMENT_FINALISED = "statement.finalised", _("Statement finalised")
    ORDER_PLACED = "order.placed", _("Order placed")
    ORDER_SHIPPED = "order.shipped", _("Order shipped")
    SUPPLY_LOW = "supply.low", _("Supply low")
    DEVICE_OFFLINE = "device.offline", _("Printer offline")
    # Sent by the "send a test event" button to one endpoint only; nobody subscribes to it.
    PING = "webhook.test", _("Test event")


SUBSCRIBABLE = tuple(e for e in Event.values if e != Event.PING)


class WebhookEndpoint(TenantModel):
    """A URL of a reseller's system that receives the events it subscribed to."""

    tenant_customer_field: ClassVar[str | None] = None

    url = models.URLField(max_length=500)
    description = models.CharField(max_length=200, blank=True)
    # Signs every delivery (HMAC-SHA256); kept in clear because signing needs it, shown once.
    secret = models.CharField(max_length=100)
    events = models.JSONField(default=list)
    is_active = models.BooleanField(default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=now)
    updated_at = models.DateTimeField(default=now)

    class Meta:
        ordering = ["created_at", "pk"]

    def __str__(self) -> str:
        return self.url

    @property
    def event_labels(self) -> list[str]:
        """The subscribed events in words (the codes are the receiver's, in the payload)."""
        return [str(Event(e).label) if e in Event.values else e for e in self.events]


class WebhookDelivery(TenantModel):
    """One event for one endpoint, with its attempts' outcome (the portal's delivery log)."""

    tenant_customer_field: ClassVar[str | None] = None

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        SENDING = "sending", _("Sending")
        # An order is delivered too ("Geliefert"); a webhook's event is "Zugestellt".
        SUCCEEDED = "succeeded", pgettext_lazy("webhook delivery", "Delivered")
        FAILED = "failed", _("Failed")

    endpoint = models.ForeignKey(
        WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries"
    )
    event = models.CharField(max_length=32, choices=Event.choices)
    # The event's id, the same in every delivery of it (to each endpoint, and on a redelivery):
    # the receiver's key to drop duplicates.
    event_id = models.UUIDField(default=uuid.uuid4)
    payload = models.JSONField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    # Claims taken so far; the attempt that reaches WEBHOOK_MAX_ATTEMPTS and fails is final.
    attempts = models.PositiveSmallIntegerField(default=0)
    # When the row may be claimed: at once when new, after the backoff when retrying, and at the
    # end of the lease while `sending` (a live sender has finished or been killed by then).
    next_attempt_at = models.DateTimeField(default=now)
    response_code = models.PositiveSmallIntegerField(null=True, blank=True)
    response_excerpt = models.CharField(max_length=500, blank=True)
    # In English, whatever the installation's language: see error_text.
    error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=now)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # webhook_delivery_list pages through a reseller's deliveries newest first.
            models.Index(fields=["reseller", "-created_at"], name="integrations_delivery_recent"),
            # webhooks_deliver_sweep finds deliveries due a (re)try: new, retrying, lease expired.
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(status__in=["pending", "sending"]),
                name="integrations_delivery_due",
            ),
        ]

    @property
    def error_text(self) -> str:
        """The logged error in the reader's language."""
        return translate_logged(self.error, [HOST_NOT_FOUND])
