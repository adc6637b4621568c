"""Price plans, contracts, counter corrections and usage statements.

Periods are half-open date ranges [period_start, period_end): a period's boundaries are
midnight UTC, so a reading taken exactly at a boundary ends one period and starts the next.
Device memberships and contract terms use the same convention: `left_on` and `ends_on` are the
first day no longer covered.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any, ClassVar

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils.text import format_lazy
from django.utils.timezone import now
from django.utils.translation import gettext_lazy as _

from billing.pricing import MONEY, PRICE, UNITS
from portal import labels
from portal.errors import ConflictError
from portal.money import CURRENCIES
from portal.tenancy import TenantModel


def money_field(**kwargs: Any) -> Any:
    return models.DecimalField(
        max_digits=MONEY.max_digits, decimal_places=MONEY.decimal_places, **kwargs
    )


def units_field(**kwargs: Any) -> Any:
    return models.DecimalField(
        max_digits=UNITS.max_digits, decimal_places=UNITS.decimal_places, **kwargs
    )


def price_field(**kwargs: Any) -> Any:
    return models.DecimalField(
        max_digits=PRICE.max_digits, decimal_places=PRICE.decimal_places, **kwargs
    )


# The counters of the wire contract (devices/protocol/telemetry-v1.md), as documents name them:
# with the unit of those that are not counted in pieces (portal/labels.py has the words).
# Lazy, like the words: each page and document reads them in its own language.
COUNTER_LABELS = {
    name: format_lazy("{} ({})", label, labels.COUNTER_UNITS[name])
    if labels.COUNTER_UNITS.get(name) in ("m²", "m", "ml")
    else label
    for name, label in labels.COUNTERS.items()
}


class StatementFinalError(ConflictError):
    code = "statement_final"


class PricePlan(TenantModel):
    """A reseller's tariff; its terms live in versions, each effective from a date."""

    # Plans are the reseller's catalogue, shared by all its customers.
    tenant_customer_field: ClassVar[str | None] = None

    name = models.CharField(max_length=200)
    currency = models.CharField(max_length=3, choices=[(c, c) for c in CURRENCIES])
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(default=now)

    class Meta:
        ordering = ["name"]
        constraints = [
            # plan_create refuses a second plan of the same name.
            models.UniqueConstraint(fields=["reseller", "name"], name="billing_plan_name_once"),
        ]

    def __str__(self) -> str:
        return self.name


class PlanVersion(TenantModel):
    """The terms of a plan from `effective_from`; immutable once a statement used it."""

    tenant_customer_field: ClassVar[str | None] = None

    plan = models.ForeignKey(PricePlan, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    effective_from = models.DateField()
    monthly_fee_per_device = money_field(default=Decimal(0))
    minimum_monthly = money_field(default=Decimal(0))
    # Percent, e.g. 19.00; zero when the reseller invoices tax elsewhere.
    tax_rate = models.DecimalField(
        max_digits=5,
        decimal_places=2,
        default=Decimal(0),
        validators=[MinValueValidator(Decimal(0)), MaxValueValidator(Decimal(100))],
    )
    created_at = models.DateTimeField(default=now)
    created_by = models.ForeignKey(
        "accounts.User", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["plan_id", "-effective_from"]
        constraints = [
            models.UniqueConstraint(fields=["plan", "number"], name="billing_version_number"),
            # The version of a period is the one with the latest effective_from at its start.
            models.UniqueConstraint(
                fields=["plan", "effective_from"], name="billing_version_effective_once"
            ),
            models.CheckConstraint(
                condition=Q(monthly_fee_per_device__gte=0, minimum_monthly__gte=0),
                name="billing_version_fees_positive",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.plan.name} v{self.number} from {self.effective_from}"


class PlanRate(models.Model):
    """The price of one counter (name plus optional qualifiers) under a plan version.

    Reached only through its version, which carries the tenant."""

    class Mode(models.TextChoices):
        GRADUATED = "graduated", _("Graduated (each tier prices its own units)")
        VOLUME = "volume", _("Volume (the tier reached prices every unit)")

    class Scope(models.TextChoices):
        DEVICE = "device", _("Per device")
        POOLED = "pooled", _("Pooled across the contract")

    version = models.ForeignKey(PlanVersion, on_delete=models.CASCADE, related_name="rates")
    counter = models.CharField(max_length=100)
    # Blank matches any value; a rate naming a qualifier wins over one that does not.
    media_type = models.CharField(max_length=128, blank=True)
    color = models.CharField(max_length=64, blank=True)
    mode = models.CharField(max_length=16, choices=Mode.choices, default=Mode.GRADUATED)
    scope = models.CharField(max_length=16, choices=Scope.choices, default=Scope.DEVICE)
    # Units included per device before tiers apply; pooled: per device, shared by all.
    included_units = units_field(default=Decimal(0))

    class Meta:
        ordering = ["version_id", "counter", "media_type", "color"]
        constraints = [
            models.UniqueConstraint(
                fields=["version", "counter", "media_type", "color"], name="billing_rate_once"
            ),
            models.CheckConstraint(
                condition=Q(included_units__gte=0), name="billing_rate_included_positive"
            ),
        ]

    def __str__(self) -> str:
        qualifiers = "/".join(q for q in (self.media_type, self.color) if q)
        return f"{self.counter}[{qualifiers}]" if qualifiers else self.counter


class PlanTier(models.Model):
    """[from_units, to_units) of billable units (after the allowance) at unit_price."""

    rate = models.ForeignKey(PlanRate, on_delete=models.CASCADE, related_name="tiers")
    from_units = units_field()
    to_units = units_field(null=True, blank=True)
    unit_price = price_field()

    class Meta:
        ordering = ["rate_id", "from_units"]
        constraints = [
            models.UniqueConstraint(fields=["rate", "from_units"], name="billing_tier_once"),
            models.CheckConstraint(
                condition=Q(from_units__gte=0, unit_price__gte=0)
                & (Q(to_units__isnull=True) | Q(to_units__gt=models.F("from_units"))),
                name="billing_tier_range",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.from_units}-{self.to_units or ''} at {self.unit_price}"


class Contract(TenantModel):
    """A customer's devices billed under a plan, in monthly periods from an anchor day."""

    class MissingData(models.TextChoices):
        ESTIMATE = "estimate", _("Estimate from the device's recent daily average")
        CARRY = "carry", _("Bill nothing; the usage lands in the period readings resume")

    customer = models.ForeignKey("accounts.Customer", on_delete=models.PROTECT, related_name="+")
    plan = models.ForeignKey(PricePlan, on_delete=models.PROTECT, related_name="contracts")
    reference = models.CharField(max_length=100)
    purchase_order = models.CharField(max_length=100, blank=True)
    anchor_day = models.PositiveSmallIntegerField(
        default=1, validators=[MinValueValidator(1), MaxValueValidator(28)]
    )
    starts_on = models.DateField()
    ends_on = models.DateField(null=True, blank=True, help_text="First day no longer covered.")
    missing_data = models.CharField(
        max_length=16, choices=MissingData.choices, default=MissingData.ESTIMATE
    )
    created_at = models.DateTimeField(default=now)

    class Meta:
        ordering = ["customer_id", "reference"]
        constraints = [
            models.UniqueConstraint(
                fields=["reseller", "reference"], name="billing_contract_reference_once"
            ),
            models.CheckConstraint(
                condition=Q(anchor_day__gte=1, anchor_day__lte=28), name="billing_contract_anchor"
            ),
            models.CheckConstraint(
                condition=Q(ends_on__isnull=True) | Q(ends_on__gt=models.F("starts_on")),
                name="billing_contract_term",
            ),
        ]
        indexes = [
            # contract_list filters a reseller's contracts by customer.
            models.Index(fields=["reseller", "customer"], name="billing_contract_by_customer"),
        ]

    def __str__(self) -> str:
        return self.reference


class ContractDevice(TenantModel):
    """A device's membership of a contract over [joined_on, left_on)."""

    tenant_customer_field: ClassVar[str | None] = "contract__customer"

    contract = models.ForeignKey(Contract, on_delete=models.CASCADE, related_name="memberships")
    device = models.ForeignKey("devices.Device", on_delete=models.PROTECT, related_name="+")
    joined_on = models.DateField()
    left_on = models.DateField(null=True, blank=True, help_text="First day no longer billed.")

    class Meta:
        ordering = ["contract_id", "joined_on", "pk"]
        constraints = [
            # A device is in at most one open membership, on every database; dated overlaps
            # are refused by contract_device_add and, on PostgreSQL, by an exclusion constraint
            # (migration 0002).
            models.UniqueConstraint(
                fields=["device"],
                condition=Q(left_on__isnull=True),
                name="billing_device_open_once",
            ),
            models.CheckConstraint(
                condition=Q(left_on__isnull=True) | Q(left_on__gt=models.F("joined_on")),
                name="billing_membership_range",
            ),
        ]
        indexes = [
            # Usage queries join a contract's memberships by device.
            models.Index(fields=["device", "joined_on"], name="billing_membership_by_device"),
        ]


class CounterCorrection(TenantModel):
    """A reseller's correction of a counter series: a manual meter read, or a board swap that
    restarts the counter from `value` (after `old_value`, the old board's last count)."""

    class Kind(models.TextChoices):
        METER_READ = "meter_read", _("Manual meter read")
        BOARD_SWAP = "board_swap", _("Board swap (counter restarts)")

    tenant_customer_field: ClassVar[str | None] = "device__customer"

    device = models.ForeignKey("devices.Device", on_delete=models.CASCADE, related_name="+")
    counter = models.CharField(max_length=100)
    media_type = models.CharField(max_length=128, blank=True)
    color = models.CharField(max_length=64, blank=True)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    effective_at = models.DateTimeField()
    value = units_field()
    old_value = units_field(null=True, blank=True)
    note = models.TextField()
    entered_by = models.ForeignKey(
        "accounts.User", on_delete=models.SET_NULL, null=True, related_name="+"
    )
    entered_by_email = models.CharField(max_length=254)
    created_at = models.DateTimeField(default=now)

    class Meta:
        ordering = ["-effective_at", "-pk"]
        indexes = [
            # Usage queries merge a device's corrections into its counter series.
            models.Index(fields=["device", "effective_at"], name="billing_correction_series"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(value__gte=0) & (Q(old_value__isnull=True) | Q(old_value__gte=0)),
                name="billing_correction_positive",
            ),
        ]


class StatementCounter(TenantModel):
    """The last statement number given by a reseller; finalise increments it under a lock."""

    tenant_customer_field: ClassVar[str | None] = None

    last_number = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["reseller"], name="billing_counter_once"),
        ]


class Statement(TenantModel):
    class Kind(models.TextChoices):
        REGULAR = "regular", _("Statement")
        ADJUSTMENT = "adjustment", _("Adjustment")

    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        FINAL = "final", _("Final")

    customer = models.ForeignKey("accounts.Customer", on_delete=models.PROTECT, related_name="+")
    contract = models.ForeignKey(Contract, on_delete=models.PROTECT, related_name="statements")
    plan_version = models.ForeignKey(PlanVersion, on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.REGULAR)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.DRAFT)
    adjusts = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="adjustments"
    )
    period_start = models.DateField()
    period_end = models.DateField()
    currency = models.CharField(max_length=3)
    subtotal = money_field(default=Decimal(0))
    tax_rate = models.DecimalField(max_digits=5, decimal_places=2, default=Decimal(0))
    tax = money_field(default=Decimal(0))
    total = money_field(default=Decimal(0))
    flag_count = models.PositiveIntegerField(default=0)
    number = models.PositiveIntegerField(null=True, blank=True)
    computed_at = models.DateTimeField(default=now)
    finalised_at = models.DateTimeField(null=True, blank=True)
    finalised_by = models.ForeignKey(
        "accounts.User", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["-period_start", "contract_id", "pk"]
        constraints = [
            # Two workers computing one period meet here: one regular statement per period.
            models.UniqueConstraint(
                fields=["contract", "period_start"],
                condition=Q(kind="regular"),
                name="billing_statement_period_once",
            ),
            # At most one open adjustment per statement; it is finalised before the next.
            models.UniqueConstraint(
                fields=["adjusts"],
                condition=Q(kind="adjustment", status="draft"),
                name="billing_adjustment_draft_once",
            ),
            # Numbers are given at finalise, without gaps, once per reseller.
            models.UniqueConstraint(
                fields=["reseller", "number"], name="billing_statement_number_once"
            ),
            models.CheckConstraint(
                condition=Q(status="draft", number__isnull=True)
                | Q(status="final", number__isnull=False),
                name="billing_statement_final_numbered",
            ),
            models.CheckConstraint(
                condition=Q(kind="regular", adjusts__isnull=True)
                | Q(kind="adjustment", adjusts__isnull=False),
                name="billing_statement_adjustment_refers",
            ),
        ]
        indexes = [
            # statement_list filters a reseller's statements by period and status.
            models.Index(
                fields=["reseller", "period_start", "status"], name="billing_statement_period"
            ),
        ]

    def __str__(self) -> str:
        label = f"No. {self.number}" if self.number else "Draft"
        return f"{self.get_kind_display()} {label} {self.period_start}"

    # The status as loaded from the database, which is what immutability is about.
    _stored_status: str = ""

    @classmethod
    def from_db(cls, *args: Any, **kwargs: Any) -> Statement:
        instance = super().from_db(*args, **kwargs)
        instance._stored_status = instance.__dict__.get("status", "")
        return instance

    # A final statement is immutable: refused here, and by a database trigger (migration 0002)
    # for writes that bypass the model.
    def save(self, *args: Any, **kwargs: Any) -> None:
        if self._stored_status == Statement.Status.FINAL:
            raise StatementFinalError(str(_("A final statement cannot be changed.")))
        super().save(*args, **kwargs)
        self._stored_status = self.status

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        if self._stored_status == Statement.Status.FINAL:
            raise StatementFinalError(str(_("A final statement cannot be deleted.")))
        return super().delete(*args, **kwargs)

    @property
    def is_final(self) -> bool:
        return self.status == Statement.Status.FINAL

    @property
    def period_last_day(self) -> date:
        return self.period_end - timedelta(days=1)


class StatementLine(TenantModel):
    class Kind(models.TextChoices):
        USAGE = "usage", _("Usage")
        FEE = "fee", _("Monthly fee")
        MINIMUM = "minimum", _("Minimum commitment")

    tenant_customer_field: ClassVar[str | None] = "customer"

    # A period close writes 100,000s of lines: they are read by statement only (the unique
    # index below leads with it), and their tenant columns copy the statement's, whose own
    # foreign keys hold. So no separate indexes and no per-row foreign key checks on those.
    reseller = models.ForeignKey(
        "accounts.Reseller",
        on_delete=models.CASCADE,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
    statement = models.ForeignKey(
        Statement, on_delete=models.CASCADE, related_name="lines", db_index=False
    )
    customer = models.ForeignKey(
        "accounts.Customer",
        on_delete=models.DO_NOTHING,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
    position = models.PositiveIntegerField()
    kind = models.CharField(max_length=16, choices=Kind.choices)
    # The device comes from the statement's contract membership, whose own foreign key holds;
    # a database check of it per line cost a 100,000-device close about a second of each
    # commit. The ORM still refuses to delete a billed device (PROTECT).
    device = models.ForeignKey(
        "devices.Device",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        db_constraint=False,
    )
    counter = models.CharField(max_length=100, blank=True)
    media_type = models.CharField(max_length=128, blank=True)
    color = models.CharField(max_length=64, blank=True)
    window_start = models.DateField(null=True, blank=True)
    window_end = models.DateField(null=True, blank=True)
    start_at = models.DateTimeField(null=True, blank=True)
    start_value = units_field(null=True, blank=True)
    end_at = models.DateTimeField(null=True, blank=True)
    end_value = units_field(null=True, blank=True)
    # Growth of the counter in the window, then what is billed of it.
    measured = units_field(default=Decimal(0))
    usage = units_field(default=Decimal(0))
    allowance = units_field(default=Decimal(0))
    billable = units_field(default=Decimal(0))
    # Estimated units billed but not yet backed by readings (the next period offsets them).
    estimate_outstanding = units_field(default=Decimal(0))
    unit_price = price_field(null=True, blank=True)
    rate_label = models.CharField(max_length=200, blank=True)
    amount = money_field()
    flags = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["statement_id", "position"]
        constraints = [
            # Also the index the exports stream a statement's lines in order by.
            models.UniqueConstraint(fields=["statement", "position"], name="billing_line_once"),
        ]

    @property
    def counter_label(self) -> str:
        label = str(COUNTER_LABELS.get(self.counter, self.counter))
        qualifiers = ", ".join(q for q in (self.media_type, self.color) if q)
        return f"{label}, {qualifiers}" if qualifiers else label

    @property
    def window_last_day(self) -> date | None:
        return self.window_end - timedelta(days=1) if self.window_end else None


class StatementPdf(TenantModel):
    """A statement's PDF rendered by a task on the `pdf` queue, for statements too big to render
    within a web request (billing/pdf_services.py): the page and the API show its state until
    it is ready, and any web process can serve the stored bytes."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Being prepared")
        READY = "ready", _("Ready")
        FAILED = "failed", _("Failed")

    statement = models.ForeignKey(Statement, on_delete=models.CASCADE, related_name="+")
    customer = models.ForeignKey("accounts.Customer", on_delete=models.CASCADE, related_name="+")
    # The statement's version the document shows: a recompute or a finalisation makes a new one.
    computed_at = models.DateTimeField()
    statement_status = models.CharField(max_length=8)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    requested_at = models.DateTimeField(default=now)
    # When the rendering ended, ready or failed.
    rendered_at = models.DateTimeField(null=True, blank=True)
    content = models.BinaryField(null=True, blank=True)
    error = models.CharField(max_length=500, blank=True)

    class Meta:
        constraints = [
            # statement_pdf_request finds the document of a statement's version by this key;
            # two requests racing for it create one.
            models.UniqueConstraint(
                fields=["statement", "computed_at", "statement_status"], name="billing_pdf_once"
            ),
        ]
