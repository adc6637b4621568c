"""Supply catalog, reorder policies, forecasts, low-supply alerts, emails and orders.

The state that decides whether a customer hears about a supply lives in the database:
`SupplyAlert` has at most one open row per supply (a partial unique constraint), and its email
is claimed by a conditional UPDATE, so "email once" is a fact of the data rather than of the
code that happens to run. Orders move through one transition map (`ORDER_TRANSITIONS`) and every
move leaves an `OrderEvent`.
"""

from __future__ import annotations

from typing import ClassVar

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.timezone import now
from django.utils.translation import gettext_lazy as _

from portal.tenancy import TenantModel


class Product(TenantModel):
    """A catalog item of a reseller, offered to all its customers."""

    class Kind(models.TextChoices):
        TONER = "toner", _("Toner")
        INK = "ink", _("Ink")
        DRUM = "drum", _("Drum")
        PRINTHEAD = "printhead", _("Printhead")
        WASTE = "waste", _("Waste container")
        MAINTENANCE = "maintenance", _("Maintenance kit")
        OTHER = "other", _("Other")

    class YieldUnit(models.TextChoices):
        PAGES = "pages", _("pages")
        ML = "ml", _("ml")

    tenant_customer_field: ClassVar[str | None] = None

    sku = models.CharField("SKU", max_length=64)
    part_number = models.CharField("manufacturer part number", max_length=128, blank=True)
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.TONER)
    color = models.CharField("colour", max_length=64, blank=True)
    rated_yield = models.PositiveIntegerField(null=True, blank=True)
    yield_unit = models.CharField(max_length=8, choices=YieldUnit.choices, default=YieldUnit.PAGES)
    # Device model names as printers report them ("HP Color LaserJet M555"), matched exactly.
    compatible_models = models.JSONField(default=list, blank=True)
    price = models.DecimalField(max_digits=12, decimal_places=2)
    currency = models.CharField(max_length=3, default="EUR")
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=now)

    class Meta:
        ordering = ["sku"]
        constraints = [
            # product_create refuses a second product with the same SKU.
            models.UniqueConstraint(fields=["reseller", "sku"], name="orders_product_sku_once"),
            models.CheckConstraint(condition=Q(price__gte=0), name="orders_product_price_positive"),
        ]
        indexes = [
            # supply_product_match looks products up by part number first.
            models.Index(fields=["reseller", "part_number"], name="orders_product_part"),
        ]

    def __str__(self) -> str:
        return f"{self.sku} {self.name}"


class SupplyProductMapping(TenantModel):
    """A reseller's remembered answer to "which product is this supply?" for supplies that the
    part number and the model/colour rules could not match."""

    tenant_customer_field: ClassVar[str | None] = None

    part_number = models.CharField(max_length=128, blank=True)
    device_model = models.CharField(max_length=255, blank=True)
    kind = models.CharField(max_length=16, blank=True)
    color = models.CharField(max_length=64, blank=True)
    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="mappings")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(default=now)

    class Meta:
        constraints = [
            # mapping_remember updates the one answer per supply signature.
            models.UniqueConstraint(
                fields=["reseller", "part_number", "device_model", "kind", "color"],
                name="orders_mapping_signature_once",
            ),
        ]


class ReorderPolicy(TenantModel):
    """When to act on a customer's supplies: per customer, optionally overridden per device.
    Without a row the defaults below apply."""

    class Mode(models.TextChoices):
        ALERT = "alert", _("Alert only")
        DRAFT = "draft", _("Draft an order")
        SUBMIT = "submit", _("Submit an order")

    DEFAULT_THRESHOLD = 15
    DEFAULT_LEAD_TIME_DAYS = 7

    customer = models.ForeignKey("accounts.Customer", on_delete=models.CASCADE, related_name="+")
    device = models.ForeignKey(
        "devices.Device", on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    threshold_percent = models.PositiveSmallIntegerField(default=DEFAULT_THRESHOLD)
    lead_time_days = models.PositiveSmallIntegerField(default=DEFAULT_LEAD_TIME_DAYS)
    mode = models.CharField(max_length=8, choices=Mode.choices, default=Mode.ALERT)
    # Customer-wide only: orders placed by buyers wait for a customer admin.
    requires_approval = models.BooleanField(default=False)
    updated_at = models.DateTimeField(default=now)

    class Meta:
        constraints = [
            # policy_effective reads one customer row and at most one device row.
            models.UniqueConstraint(
                fields=["customer"],
                condition=Q(device__isnull=True),
                name="orders_policy_customer_once",
            ),
            models.UniqueConstraint(
                fields=["device"],
                condition=Q(device__isnull=False),
                name="orders_policy_device_once",
            ),
            models.CheckConstraint(
                condition=Q(threshold_percent__lte=100), name="orders_policy_threshold_percent"
            ),
        ]


class SupplyForecast(TenantModel):
    """What the last evaluation of a supply concluded: its product, its current cartridge and
    when it empties. `evaluated_observed_at` is the supply's observed_at at that evaluation, so
    supplies_evaluate_sweep finds every supply with newer readings."""

    class Method(models.TextChoices):
        THEIL_SEN = "theil_sen", _("Trend of the readings")
        THRESHOLD = "threshold", _("Threshold only (coarse levels)")
        STABLE = "stable", _("Not falling")
        INSUFFICIENT = "insufficient", _("Not enough readings")

    class Match(models.TextChoices):
        PART_NUMBER = "part_number", _("Part number")
        MAPPING = "mapping", _("Remembered mapping")
        MODEL_COLOR = "model_color", _("Model and colour")
        NONE = "", _("Unmatched")

    supply = models.OneToOneField(
        "devices.Supply", on_delete=models.CASCADE, primary_key=True, related_name="forecast"
    )
    customer = models.ForeignKey("accounts.Customer", on_delete=models.CASCADE, related_name="+")
    product = models.ForeignKey(
        Product, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    match = models.CharField(max_length=16, choices=Match.choices, blank=True)
    method = models.CharField(max_length=16, choices=Method.choices)
    is_coarse = models.BooleanField(default=False)
    days_to_empty = models.FloatField(null=True)
    # Percent per day, negative while the supply is used up.
    slope_per_day = models.FloatField(null=True)
    readings_used = models.PositiveIntegerField(default=0)
    cartridge_since = models.DateTimeField(null=True)
    pages_at_install = models.DecimalField(max_digits=20, decimal_places=4, null=True)
    evaluated_observed_at = models.DateTimeField()
    computed_at = models.DateTimeField(default=now)
    # The line of the last fit: where it reaches zero, and the newest day point it was fitted
    # to (its time and level). An evaluation fits again only when the daily series moved
    # (forecast.refit_due); in between, days_to_empty is counted down from empties_at.
    empties_at = models.DateTimeField(null=True)
    fitted_at = models.DateTimeField(null=True)
    fitted_percent = models.FloatField(null=True)
    # The newest point of the daily series (SupplyLevelDay), which the next readings extend.
    day_percent = models.FloatField(null=True)
    day_at = models.DateTimeField(null=True)
    day_steps = models.PositiveSmallIntegerField(null=True)
    # The newest reading folded into the series and the detector: the next evaluation reads
    # only the readings after it.
    folded_until = models.DateTimeField(null=True)
    # Replacement detection's running state (forecast.Detector): {"levels": [...], "serial": ""}.
    # None until the evaluation has folded the supply's history once (a forecast made before
    # the evaluation was incremental): it then reads the history once more.
    detector = models.JSONField(null=True)

    class Meta:
        indexes = [
            # The supplies overview sorts by days to empty within a reseller.
            models.Index(fields=["reseller", "days_to_empty"], name="orders_forecast_days"),
        ]


class SupplyLevelDay(TenantModel):
    """The daily series of a supply that forecasts are fitted to: per (UTC) day, the last
    level of the day, when the printer first reported it, and the coarse grids that all the
    day's levels lie on (bits of forecast.COARSE_STEPS). The evaluation extends it from the
    readings that arrived since its last run, so a fit reads a few hundred small rows, never the
    raw history.

    The key leads with the supply and holds the day, so the table can be partitioned by day
    like the readings tables, and a tenant's rows stay together when sharded by reseller."""

    pk = models.CompositePrimaryKey("supply", "day")
    # Read by supply (the key) only: no index on reseller, as on the readings tables.
    reseller = models.ForeignKey(
        "accounts.Reseller", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    tenant_customer_field: ClassVar[str | None] = "supply__device__customer"

    # No database constraint, as on the readings: the evaluation writes a supply's days in the
    # transaction that reads the supply; deletes cascade through Django.
    supply = models.ForeignKey(
        "devices.Supply",
        on_delete=models.CASCADE,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
    day = models.DateField()
    percent = models.FloatField()
    at = models.DateTimeField()
    steps = models.PositiveSmallIntegerField()


class SupplyEvaluationClaim(TenantModel):
    """One row per customer: whether its supplies are due an evaluation, whether a task is on
    its way for it, and the lease of the evaluation running now. Every batch of the customer
    asks for an evaluation here; only the first ask after a run sends a task, and only one run
    holds the claim at a time, so concurrent batches and the beat's sweep coalesce into one
    evaluation instead of repeating it (orders/supply_services.py, "Claims")."""

    customer = models.OneToOneField(
        "accounts.Customer", on_delete=models.CASCADE, primary_key=True, related_name="+"
    )
    # The first ask since the last claim; None when nothing is asked.
    requested_at = models.DateTimeField(null=True)
    # When the task for that ask was sent; None when no task is on its way.
    enqueued_at = models.DateTimeField(null=True)
    # The end of the running evaluation's lease; a dead worker's lease runs out.
    claimed_until = models.DateTimeField(null=True)

    class Meta:
        indexes = [
            # supplies_evaluate_sweep finds asks whose task was lost.
            models.Index(
                fields=["requested_at"],
                condition=Q(requested_at__isnull=False),
                name="orders_claim_requested",
            ),
        ]


class SupplyAlert(TenantModel):
    """A supply at its reorder point: armed when raised, sent once its email is out, closed by a
    cartridge replacement (or a user). At most one open alert per supply."""

    class Status(models.TextChoices):
        ARMED = "armed", _("Armed")
        SENT = "sent", _("Sent")
        CLOSED = "closed", _("Closed")

    class Reason(models.TextChoices):
        REORDER_POINT = "reorder_point", _("Reorder point reached")
        CRITICAL = "critical", _("Printer reports a critical alert")

    supply = models.ForeignKey("devices.Supply", on_delete=models.CASCADE, related_name="+")
    device = models.ForeignKey("devices.Device", on_delete=models.CASCADE, related_name="+")
    customer = models.ForeignKey("accounts.Customer", on_delete=models.CASCADE, related_name="+")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.ARMED)
    reason = models.CharField(max_length=16, choices=Reason.choices)
    percent = models.FloatField(null=True)
    days_to_empty = models.FloatField(null=True)
    created_at = models.DateTimeField(default=now)
    sent_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    closed_reason = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # "Email once": a supply has one open alert; a second raise finds it and stops.
            models.UniqueConstraint(
                fields=["supply"],
                condition=~Q(status="closed"),
                name="orders_alert_open_once",
            ),
        ]
        indexes = [
            # supply_alerts_notify_sweep finds armed alerts whose task was lost.
            models.Index(
                fields=["created_at"], condition=Q(status="armed"), name="orders_alert_armed"
            ),
        ]


class EmailLog(TenantModel):
    """Every email the orders app sends: written before sending, updated with the outcome.

    Sending is a lease, not a one-shot claim (orders/email_services.py): a worker takes the row
    (status `sending`, `next_attempt_at` = the lease's end) in a committed transaction, talks
    SMTP outside any transaction, and marks it `sent`. A worker killed in between leaves a row
    whose lease runs out, and the next run sends it again. Errors retry with a backoff until
    `attempts` reaches the limit, then the row is `failed`."""

    class Kind(models.TextChoices):
        SUPPLY_LOW = "supply_low", _("Low supply")
        PRINTER_CRITICAL = "printer_critical", _("Critical printer alert")
        COLLECTOR_SILENT = "collector_silent", _("Silent data collector")
        ORDER_STATUS = "order_status", _("Order status")
        INVITATION = "invitation", _("Invitation")
        STATEMENT = "statement", _("Usage statement")

    # The kinds a person may opt out of (NotificationPreference): an invitation is not one.
    NOTIFICATION_KINDS: ClassVar[tuple[str, ...]] = (
        Kind.SUPPLY_LOW,
        Kind.PRINTER_CRITICAL,
        Kind.ORDER_STATUS,
    )

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        SENDING = "sending", _("Sending")
        SENT = "sent", _("Sent")
        FAILED = "failed", _("Failed")

    customer = models.ForeignKey(
        "accounts.Customer", on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    recipient = models.EmailField()
    subject = models.CharField(max_length=255)
    body = models.TextField()
    kind = models.CharField(max_length=16, choices=Kind.choices)
    supply_alert = models.ForeignKey(
        SupplyAlert, on_delete=models.SET_NULL, null=True, blank=True, related_name="emails"
    )
    order = models.ForeignKey(
        "orders.Order", on_delete=models.SET_NULL, null=True, blank=True, related_name="emails"
    )
    # An invitation's link is its invitee's key, so the logged body holds a stand-in and the
    # sender renders the link from this row at each attempt (email_services._body_to_send).
    invitation = models.ForeignKey(
        "accounts.Invitation",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    # A finalised statement's email to the billing contact: its PDF is attached at each attempt
    # (billing/email_services.py).
    statement = models.ForeignKey(
        "billing.Statement", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    # Claims taken so far; the claim that would exceed EMAIL_SEND_ATTEMPTS marks the row failed.
    attempts = models.PositiveSmallIntegerField(default=0)
    # When the row may be claimed: at once for a new email, after a backoff for a retry, and at
    # the end of the lease while `sending` (a live sender has finished or been killed by then).
    next_attempt_at = models.DateTimeField(default=now)
    error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=now)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # email_list pages through a reseller's emails newest first.
            models.Index(fields=["reseller", "-created_at"], name="orders_email_recent"),
            # emails_send_sweep finds emails due a (re)send: never sent, retrying, lease expired.
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(status__in=["pending", "sending"]),
                name="orders_email_due",
            ),
        ]
        constraints = [
            # statement_email_send logs a statement's email once, however often its task runs.
            models.UniqueConstraint(
                fields=["statement"],
                condition=Q(statement__isnull=False),
                name="orders_email_statement_once",
            ),
        ]


class NotificationPreference(TenantModel):
    """A user's choice to receive (or not) one kind of email in one tenant; no row = yes."""

    tenant_customer_field: ClassVar[str | None] = None

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=16, choices=EmailLog.Kind.choices)
    is_enabled = models.BooleanField(default=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["reseller", "user", "kind"], name="orders_preference_once"
            ),
        ]


class Order(TenantModel):
    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        PENDING_APPROVAL = "pending_approval", _("Awaiting approval")
        SUBMITTED = "submitted", _("Submitted")
        ACCEPTED = "accepted", _("Accepted")
        SHIPPED = "shipped", _("Shipped")
        DELIVERED = "delivered", _("Delivered")
        CANCELLED = "cancelled", _("Cancelled")
        REJECTED = "rejected", _("Rejected")

    class Source(models.TextChoices):
        CATALOG = "catalog", _("Catalog")
        SUGGESTED = "suggested", _("Suggested")
        AUTOMATIC = "automatic", _("Reorder policy")

    customer = models.ForeignKey("accounts.Customer", on_delete=models.CASCADE, related_name="+")
    site = models.ForeignKey("accounts.Site", on_delete=models.PROTECT, related_name="+")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT)
    source = models.CharField(max_length=16, choices=Source.choices, default=Source.CATALOG)
    currency = models.CharField(max_length=3)
    note = models.TextField(blank=True)
    placed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    carrier = models.CharField(max_length=64, blank=True)
    tracking_number = models.CharField(max_length=128, blank=True)
    created_at = models.DateTimeField(default=now)
    updated_at = models.DateTimeField(default=now)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # order_list shows a reseller's (or customer's) orders newest first, by status.
            models.Index(fields=["reseller", "status", "-created_at"], name="orders_order_queue"),
        ]

    def __str__(self) -> str:
        return self.number

    @property
    def number(self) -> str:
        return f"ORD-{self.pk:06d}"

    @property
    def is_final(self) -> bool:
        return not ORDER_TRANSITIONS[self.Status(self.status)]


S = Order.Status
# The one transition map (STYLE rule 16); order_transition checks it, and who may take each
# step is in orders.services.TRANSITION_ROLES.
ORDER_TRANSITIONS: dict[Order.Status, frozenset[Order.Status]] = {
    S.DRAFT: frozenset({S.PENDING_APPROVAL, S.SUBMITTED, S.CANCELLED}),
    S.PENDING_APPROVAL: frozenset({S.SUBMITTED, S.REJECTED, S.CANCELLED}),
    S.SUBMITTED: frozenset({S.ACCEPTED, S.CANCELLED}),
    S.ACCEPTED: frozenset({S.SHIPPED, S.CANCELLED}),
    S.SHIPPED: frozenset({S.DELIVERED}),
    S.DELIVERED: frozenset(),
    S.CANCELLED: frozenset(),
    S.REJECTED: frozenset(),
}
# A line stops holding its supply's replenishment when its order reaches one of these.
LINE_CLOSING_STATUSES = frozenset({S.DELIVERED, S.CANCELLED, S.REJECTED})


class OrderLine(TenantModel):
    tenant_customer_field: ClassVar[str | None] = "order__customer"

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="lines")
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="+")
    # The supply this line replenishes, when ordered for one.
    supply = models.ForeignKey(
        "devices.Supply", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    quantity = models.PositiveIntegerField(default=1)
    unit_price = models.DecimalField(max_digits=12, decimal_places=2)
    line_total = models.DecimalField(max_digits=14, decimal_places=2)
    # True while the order is under way; an open line holds its supply's replenishment.
    is_open = models.BooleanField(default=True)

    class Meta:
        ordering = ["pk"]
        constraints = [
            # Two users ordering the same replenishment at once produce one line.
            models.UniqueConstraint(
                fields=["supply"],
                condition=Q(is_open=True, supply__isnull=False),
                name="orders_line_open_replenishment_once",
            ),
            models.CheckConstraint(condition=Q(quantity__gt=0), name="orders_line_qty_positive"),
        ]


class OrderEvent(TenantModel):
    """Append-only: every status change of an order, with who and when."""

    tenant_customer_field: ClassVar[str | None] = "order__customer"

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="events")
    from_status = models.CharField(max_length=16, blank=True)
    to_status = models.CharField(max_length=16)
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # Kept beside the foreign key so the history survives the user's deletion.
    by_label = models.CharField(max_length=254)
    at = models.DateTimeField(default=now)
    note = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["at", "pk"]


class CartridgeReplacement(TenantModel):
    """A detected replacement (level jumped up, or a new serial), with the yield the old
    cartridge gave: pages printed between its installation and its removal."""

    supply = models.ForeignKey("devices.Supply", on_delete=models.CASCADE, related_name="+")
    device = models.ForeignKey("devices.Device", on_delete=models.CASCADE, related_name="+")
    customer = models.ForeignKey("accounts.Customer", on_delete=models.CASCADE, related_name="+")
    detected_at = models.DateTimeField()
    old_serial = models.CharField(max_length=128, blank=True)
    new_serial = models.CharField(max_length=128, blank=True)
    old_percent = models.FloatField(null=True)
    new_percent = models.FloatField(null=True)
    pages_at_install = models.DecimalField(max_digits=20, decimal_places=4, null=True)
    pages_at_removal = models.DecimalField(max_digits=20, decimal_places=4, null=True)
    pages_yielded = models.DecimalField(max_digits=20, decimal_places=4, null=True)
    rated_yield = models.PositiveIntegerField(null=True)
    product = models.ForeignKey(
        Product, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    is_genuine = models.BooleanField(null=True)

    class Meta:
        ordering = ["-detected_at", "-id"]
        constraints = [
            # Re-evaluating the same readings records a replacement once.
            models.UniqueConstraint(
                fields=["supply", "detected_at"], name="orders_replacement_once"
            ),
        ]
