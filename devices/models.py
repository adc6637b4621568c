"""Devices, the credentials that report for them, and the telemetry they send.

Write-hot columns live in their own tables (pretix): `DeviceState` (one row per device, what it
reported last) and `Supply` (one row per supply, its current state), so the fleet pages read a
device list with one join and ingestion never rewrites the `Device` registry row. Readings are
append-only. Ingestion writes them in bulk (devices/ingest.py); dedup comes from the unique
constraints below, never a cache. On PostgreSQL the append-only tables (raw batches, snapshots,
counter and supply readings) are partitioned by month, so that old months can be detached and
archived (devices/partitions.py).
"""

from __future__ import annotations

from typing import Any, ClassVar

from django.db import models
from django.db.models import Q
from django.db.models.functions import Now
from django.utils.timezone import now
from django.utils.translation import gettext_lazy as _

from portal.tenancy import TenantModel


def _reseller_fk_unindexed(*, db_constraint: bool = True) -> Any:
    # Append-only reading tables are read by device (whose composite index leads the scan) and
    # never by reseller alone; a separate reseller index would only slow the COPY down.
    return models.ForeignKey(
        "accounts.Reseller",
        on_delete=models.CASCADE,
        related_name="+",
        db_index=False,
        db_constraint=db_constraint,
    )


def _reading_device_fk() -> Any:
    # No database constraint on a reading's device and reseller: ingestion writes readings only in
    # the transaction that stores their snapshot, for the same device and reseller, and the
    # snapshot's own keys are checked. A second check per reading (20 per snapshot, deferred to
    # the commit) was the largest database cost of an ingest batch. Deletes still cascade through
    # Django's collector; a batch committed between its reading and snapshot DELETEs can leave
    # orphan readings of the deleted device, which no tenant-scoped query reaches.
    return models.ForeignKey(
        Device, on_delete=models.CASCADE, related_name="+", db_index=False, db_constraint=False
    )


class Credential(TenantModel):
    """What a data collector or a direct-connect printer signs its requests with.

    The secret is stored only Fernet-encrypted with CREDENTIAL_ENCRYPTION_KEY, so a database
    dump alone does not reveal it; HMAC verification needs the plaintext, hence not a hash.
    """

    class Kind(models.TextChoices):
        COLLECTOR = "collector", _("Data collector")
        DIRECT = "direct", _("Direct connect")

    kind = models.CharField(max_length=16, choices=Kind.choices)
    name = models.CharField(max_length=200)
    customer = models.ForeignKey(
        "accounts.Customer", on_delete=models.CASCADE, related_name="credentials"
    )
    # A collector registers the new printers it finds to this site.
    site = models.ForeignKey(
        "accounts.Site", on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    # A direct-connect credential writes only for this device.
    device = models.ForeignKey(
        "devices.Device", on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    key_id = models.CharField(max_length=32, unique=True)  # credential_authenticate looks it up
    secret_encrypted = models.BinaryField()
    # After a rotation the old secret stays valid until previous_valid_until.
    previous_secret_encrypted = models.BinaryField(null=True, blank=True)
    previous_valid_until = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        "accounts.User", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=now)
    rotated_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_seen_at = models.DateTimeField(null=True, blank=True)
    last_seen_ip = models.GenericIPAddressField(null=True, blank=True)

    # Collector configuration, served by GET /api/v1/collector/config.
    ranges = models.JSONField(default=list, blank=True)
    # SNMP communities are read secrets of the customer's LAN: encrypted like the secret.
    communities_encrypted = models.BinaryField(null=True, blank=True)
    poll_interval_minutes = models.PositiveIntegerField(default=60)
    upload_interval_minutes = models.PositiveIntegerField(default=60)
    config_version = models.PositiveIntegerField(default=1)

    # Collector health, from the envelope of its last batch (protocol/telemetry-v1.md, source).
    agent = models.CharField(max_length=200, blank=True)
    agent_host = models.CharField(max_length=255, blank=True)
    last_batch_at = models.DateTimeField(null=True, blank=True)
    # Snapshots the collector still held unacknowledged when it sent that batch (its own among
    # them); None when it does not say (an older collector).
    outbox_backlog = models.PositiveIntegerField(null=True, blank=True)
    last_discovery_at = models.DateTimeField(null=True, blank=True)
    # Set by collectors_silent_sweep (which emails the reseller once per silence), cleared by the
    # collector's next request.
    silent_since = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["customer_id", "name", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=(
                    Q(kind="collector", site__isnull=False, device__isnull=True)
                    | Q(kind="direct", device__isnull=False)
                ),
                name="devices_credential_kind_target",
            ),
            # The collector never polls more often than every 15 minutes (printers are slow).
            models.CheckConstraint(
                condition=Q(poll_interval_minutes__gte=15), name="devices_credential_poll_min"
            ),
        ]
        indexes = [
            # credential_list shows a reseller's credentials by customer.
            models.Index(fields=["reseller", "customer"], name="devices_credential_by_customer"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.key_id})"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    @property
    def status(self) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.last_seen_at is None:
            return "never reported"
        return "active"


class AuthFailure(TenantModel):
    """A refused request that named a known key: shown to the reseller, never the secret."""

    credential = models.ForeignKey(Credential, on_delete=models.CASCADE, related_name="failures")
    reason = models.CharField(max_length=32)
    ip = models.GenericIPAddressField(null=True, blank=True)
    path = models.CharField(max_length=200)
    created_at = models.DateTimeField(default=now)

    tenant_customer_field: ClassVar[str | None] = "credential__customer"

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # credential_detail lists a credential's recent failures.
            models.Index(fields=["credential", "-created_at"], name="devices_authfail_recent"),
        ]


class TelemetryPolicy(TenantModel):
    """Per customer: what of job names and user names is stored (privacy)."""

    class Personal(models.TextChoices):
        STORE = "store", _("Store as reported")
        HASH = "hash", _("Store a keyed hash")
        DROP = "drop", _("Do not store")

    customer = models.OneToOneField(
        "accounts.Customer", on_delete=models.CASCADE, related_name="telemetry_policy"
    )
    job_names = models.CharField(max_length=8, choices=Personal.choices, default=Personal.HASH)
    user_names = models.CharField(max_length=8, choices=Personal.choices, default=Personal.HASH)
    updated_at = models.DateTimeField(default=now)


class Device(TenantModel):
    """A printer of a customer, identified by its serial within the reseller."""

    customer = models.ForeignKey("accounts.Customer", on_delete=models.CASCADE, related_name="+")
    site = models.ForeignKey("accounts.Site", on_delete=models.CASCADE, related_name="+")
    serial = models.CharField(max_length=128)
    manufacturer = models.CharField(max_length=128, blank=True)
    model = models.CharField(max_length=255, blank=True)
    product_number = models.CharField(max_length=128, blank=True)
    # The portal's own label for the device; the printer cannot change it.
    name = models.CharField(max_length=200, blank=True)
    # Reports are expected this often; offline after twice as long (devices_offline_sweep).
    report_interval_minutes = models.PositiveIntegerField(default=60)
    created_at = models.DateTimeField(default=now)
    # A retired device leaves the fleet pages, the alert counts and the offline sweep; its
    # history stays and telemetry it still sends is stored (device_retire).
    retired_at = models.DateTimeField(null=True, blank=True)
    # When the registry row last changed (name, site, customer, retirement): the API's
    # `updated_since`. A database default, so that ingestion's raw INSERT of a new device sets
    # it too; the fleet services bump it with each change. No index of its own: the API's filter
    # ORs it with the device's last report (devices.selectors.device_feed_list), which no
    # single index serves, and a reseller's devices are few enough to read.
    updated_at = models.DateTimeField(default=now, db_default=Now())

    class Meta:
        ordering = ["serial"]
        constraints = [
            # Ingestion upserts devices by serial; a serial is one printer within a reseller.
            models.UniqueConstraint(fields=["reseller", "serial"], name="devices_device_serial"),
        ]
        indexes = [
            # device_list filters by customer and site.
            models.Index(fields=["reseller", "customer", "site"], name="devices_device_by_site"),
        ]

    def __str__(self) -> str:
        return self.name or f"{self.model or 'Printer'} {self.serial}"


class DeviceState(TenantModel):
    """What a device reported last (by collected_at): the write-hot columns of a device."""

    class State(models.TextChoices):
        IDLE = "idle", _("Idle")
        PRINTING = "printing", _("Printing")
        WARMUP = "warmup", _("Warming up")
        ERROR = "error", _("Error")
        WARNING = "warning", _("Warning")
        OFFLINE = "offline", _("Offline")
        SLEEP = "sleep", _("Sleep")
        UNKNOWN = "unknown", _("Unknown")

    device = models.OneToOneField(
        Device, on_delete=models.CASCADE, primary_key=True, related_name="state"
    )
    customer = models.ForeignKey("accounts.Customer", on_delete=models.CASCADE, related_name="+")
    last_seen_at = models.DateTimeField()
    last_snapshot_id = models.UUIDField()
    state = models.CharField(max_length=16, choices=State.choices, default=State.UNKNOWN)
    detail = models.CharField(max_length=1000, blank=True)
    firmware = models.CharField(max_length=128, blank=True)
    ip = models.CharField(max_length=64, blank=True)
    hostname = models.CharField(max_length=255, blank=True)
    mac = models.CharField(max_length=64, blank=True)
    impressions_total = models.DecimalField(max_digits=20, decimal_places=4, null=True)
    # Set by devices_offline_sweep, cleared by the next report.
    is_online = models.BooleanField(default=True)
    offline_since = models.DateTimeField(null=True, blank=True)
    # The device list's per-row figures, so that it sorts and filters by them without reading
    # every supply and alert of the fleet: the lowest level among the supplies of the latest
    # report and the alerts it listed as active (a snapshot lists all of both, and clears the
    # alerts it does not list), written with the rest of the row; the offline sweep adds its
    # alert. devices/rollup_services.py computes them from the stored rows (the migration).
    lowest_supply_percent = models.FloatField(null=True)
    open_alert_count = models.PositiveIntegerField(default=0, db_default=0)

    class Meta:
        indexes = [
            # devices_offline_sweep looks for online devices whose last report is old.
            models.Index(
                fields=["last_seen_at"],
                condition=Q(is_online=True),
                name="devices_state_online_seen",
            ),
        ]


class TelemetryBatch(TenantModel):
    """A raw accepted batch exactly as received: append-only, for audit and replay.

    On PostgreSQL the table is partitioned by month of `received_at` (devices/partitions.py),
    the time the follow-up sweep and the audit read it by. A retry of a batch arrives later,
    possibly in another month's partition, so no unique constraint can include the partition
    key and still catch it: ingestion finds an earlier delivery by its key under an advisory
    lock instead (devices/ingest.py, `_Store.batch_insert`).
    """

    customer = models.ForeignKey("accounts.Customer", on_delete=models.CASCADE, related_name="+")
    credential = models.ForeignKey(Credential, on_delete=models.CASCADE, related_name="batches")
    batch_id = models.UUIDField()
    received_at = models.DateTimeField(default=now)
    remote_ip = models.GenericIPAddressField(null=True, blank=True)
    content_encoding = models.CharField(max_length=16, blank=True)
    body = models.BinaryField()
    snapshot_count = models.PositiveIntegerField()
    # The answer given, so that a repeated batch_id gets the same one.
    answer = models.JSONField()
    # Transactional outbox: follow-up work (alert mail) not yet done; batch_followup claims it
    # and batches_followup_sweep re-derives anything whose task was lost.
    followup_done_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-received_at", "-id"]
        indexes = [
            # batch_ingest looks for an earlier delivery of a batch in every month's partition:
            # a repeated batch changes nothing (protocol/telemetry-v1.md).
            models.Index(fields=["credential", "batch_id"], name="devices_batch_by_key"),
            # batches_followup_sweep finds batches whose follow-up never ran.
            models.Index(
                fields=["received_at"],
                condition=Q(followup_done_at__isnull=True),
                name="devices_batch_followup_due",
            ),
        ]


class Snapshot(TenantModel):
    """One stored snapshot; its identity columns give the device's identity history.

    Snapshots and their readings are partitioned by month of `collected_at` on PostgreSQL
    (devices/partitions.py): billing, the fleet charts and the forecasts all read them by it.
    """

    reseller = _reseller_fk_unindexed()
    tenant_customer_field: ClassVar[str | None] = "device__customer"

    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="+", db_index=False)
    # No database constraint: a partitioned batch table's key is (id, received_at). The batch
    # is written in the same transaction as its snapshots; deletes cascade through Django.
    batch = models.ForeignKey(
        TelemetryBatch,
        on_delete=models.CASCADE,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
    snapshot_id = models.UUIDField()
    collected_at = models.DateTimeField()
    state = models.CharField(max_length=16, blank=True)
    firmware = models.CharField(max_length=128, blank=True)
    ip = models.CharField(max_length=64, blank=True)
    hostname = models.CharField(max_length=255, blank=True)
    mac = models.CharField(max_length=64, blank=True)

    class Meta:
        constraints = [
            # A snapshot already stored is a duplicate, whichever batch brings it again. The key
            # holds the partition key: a sender resends a snapshot with the collected_at it was
            # taken at (the collector keeps both in its outbox), so a duplicate always lands in
            # the partition of the original and meets it there.
            models.UniqueConstraint(
                fields=["snapshot_id", "collected_at"], name="devices_snapshot_once"
            ),
        ]
        indexes = [
            # device_identity_history and alert clearing read a device's snapshots in time order.
            models.Index(fields=["device", "collected_at"], name="devices_snapshot_by_time"),
            # meter_read_list pages through a reseller's snapshots by (collected_at, id) without
            # OFFSET: one entry per snapshot, where an index on the readings would cost twelve.
            models.Index(
                fields=["reseller", "collected_at", "id"], name="devices_snapshot_by_reseller"
            ),
        ]


class CounterReading(TenantModel):
    """A cumulative counter's value at collected_at (append-only; usage is its growth)."""

    reseller = _reseller_fk_unindexed(db_constraint=False)
    tenant_customer_field: ClassVar[str | None] = "device__customer"

    device = _reading_device_fk()
    collected_at = models.DateTimeField()
    name = models.CharField(max_length=100)
    # Qualifiers: a counter is its name plus these ("" when not reported).
    media_type = models.CharField(max_length=128, blank=True)
    color = models.CharField(max_length=64, blank=True)
    unit = models.CharField(max_length=32, blank=True)
    value = models.DecimalField(max_digits=20, decimal_places=4)

    class Meta:
        indexes = [
            # Billing takes the last reading at or before a period boundary per counter.
            models.Index(
                fields=["device", "name", "media_type", "color", "collected_at"],
                name="devices_counter_series",
            ),
        ]


class SupplyReading(TenantModel):
    """A supply's level at collected_at (append-only; forecasts read the series)."""

    reseller = _reseller_fk_unindexed(db_constraint=False)
    tenant_customer_field: ClassVar[str | None] = "device__customer"

    device = _reading_device_fk()
    supply_key = models.CharField(max_length=128)
    collected_at = models.DateTimeField()
    level = models.FloatField(null=True)
    max_capacity = models.FloatField(null=True)
    level_state = models.CharField(max_length=16, blank=True)
    percent = models.FloatField(null=True)
    serial = models.CharField(max_length=128, blank=True)

    class Meta:
        indexes = [
            # Forecasts read one supply's levels in time order.
            models.Index(
                fields=["device", "supply_key", "collected_at"], name="devices_supply_series"
            ),
        ]


class Supply(TenantModel):
    """A supply's current state: the values of its latest reading by collected_at."""

    class LevelState(models.TextChoices):
        OK = "ok", _("Level known")
        UNKNOWN = "unknown", _("Unknown")
        SOME_REMAINING = "some_remaining", _("Some remaining")
        UNLIMITED = "unlimited", _("Unlimited")

    # Every ingest batch rewrites its devices' supply rows, and a changed level moves the row out
    # of a HOT update, so each index costs an insert per supply per snapshot: the foreign keys
    # get none of their own, as devices_supply_once leads with device and devices_supply_low
    # with reseller.
    reseller = _reseller_fk_unindexed()
    tenant_customer_field: ClassVar[str | None] = "device__customer"

    device = models.ForeignKey(
        Device, on_delete=models.CASCADE, related_name="supplies", db_index=False
    )
    supply_key = models.CharField(max_length=128)
    kind = models.CharField(max_length=16, blank=True)
    color = models.CharField(max_length=64, blank=True)
    # black for matte black (normalise.color_family); "" when the colour is unknown.
    color_family = models.CharField(max_length=16, blank=True, default="", db_default="")
    description = models.CharField(max_length=255, blank=True)
    part_number = models.CharField(max_length=128, blank=True)
    serial = models.CharField(max_length=128, blank=True)
    manufacturer = models.CharField(max_length=128, blank=True)
    is_genuine = models.BooleanField(null=True)
    unit = models.CharField(max_length=32, blank=True)
    max_capacity = models.FloatField(null=True)
    level = models.FloatField(null=True)
    level_state = models.CharField(max_length=16, choices=LevelState.choices, blank=True)
    # 0-100 when level and capacity are known, else None (see normalise.supply_percent).
    percent = models.FloatField(null=True)
    status = models.CharField(max_length=64, blank=True)
    expires_on = models.DateField(null=True)
    observed_at = models.DateTimeField()
    observed_snapshot_id = models.UUIDField()

    class Meta:
        ordering = ["device_id", "supply_key"]
        constraints = [
            # Ingestion upserts the current state per supply.
            models.UniqueConstraint(fields=["device", "supply_key"], name="devices_supply_once"),
        ]
        indexes = [
            # Low-supply lists and reorder evaluation scan by percent within a reseller.
            models.Index(fields=["reseller", "percent"], name="devices_supply_low"),
        ]


class MediaSource(TenantModel):
    """A tray or roll as last reported."""

    tenant_customer_field: ClassVar[str | None] = "device__customer"

    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="media_sources")
    source_key = models.CharField(max_length=128)
    status = models.CharField(max_length=64, blank=True)
    media_type = models.CharField(max_length=128, blank=True)
    width_mm = models.FloatField(null=True)
    length_mm = models.FloatField(null=True)
    observed_at = models.DateTimeField()
    observed_snapshot_id = models.UUIDField()

    class Meta:
        constraints = [
            # Ingestion upserts the current state per source.
            models.UniqueConstraint(fields=["device", "source_key"], name="devices_media_once"),
        ]


class Alert(TenantModel):
    """An alert episode: raised by the device (or the portal's offline sweep), later cleared.

    An episode is (device, code, the sender's alert id) when the sender gives an id (the
    collector builds it from the Printer-MIB alert table row, which a new raise replaces), else
    (device, code, raised_at); a sender that reports neither has one episode per code. The key
    never holds a time the sender derives afresh at each report (a collector's raised_at moves
    with its clock and restarts), so such a report is the same alert, and one email. It is
    cleared by its reported cleared_at or by the first later snapshot without it (a snapshot
    lists every active alert; none listed means none active), so the outcome does not depend on
    arrival order.
    """

    class Severity(models.TextChoices):
        CRITICAL = "critical", _("Critical")
        WARNING = "warning", _("Warning")
        INFO = "info", _("Info")

    OFFLINE_CODE = "device.offline"

    tenant_customer_field: ClassVar[str | None] = "device__customer"

    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="alerts")
    code = models.CharField(max_length=128)
    # The sender's id of this raise ("" when it gives none): part of the key.
    alert_key = models.CharField(max_length=128, blank=True, default="", db_default="")
    # Without an id: raised_at as reported, or the epoch when the device does not say. With an
    # id: the epoch (the id alone tells episodes apart). Part of the key.
    episode = models.DateTimeField()
    severity = models.CharField(max_length=16, choices=Severity.choices)
    description = models.CharField(max_length=1000, blank=True)
    first_seen_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()
    reported_cleared_at = models.DateTimeField(null=True, blank=True)
    cleared_at = models.DateTimeField(null=True, blank=True)
    notified_at = models.DateTimeField(null=True, blank=True)
    # Someone has seen it: it stays open (and counted) until the printer clears it.
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        "accounts.User", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # Hidden from the open alerts and their counts until then (alert_snooze).
    snoozed_until = models.DateTimeField(null=True, blank=True)
    snoozed_by = models.ForeignKey(
        "accounts.User", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["-first_seen_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["device", "code", "alert_key", "episode"], name="devices_alert_once"
            ),
        ]
        indexes = [
            # Alert lists show a reseller's open alerts newest first.
            models.Index(
                fields=["reseller", "-first_seen_at"],
                condition=Q(cleared_at__isnull=True),
                name="devices_alert_open",
            ),
            # device_figures_refresh counts each device's open alerts.
            models.Index(
                fields=["device"],
                condition=Q(cleared_at__isnull=True),
                name="devices_alert_open_by_device",
            ),
        ]


class DeviceNote(TenantModel):
    """A reseller's note on a device (visits, swaps, quirks): append-only, internal."""

    tenant_customer_field: ClassVar[str | None] = "device__customer"

    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="notes")
    author = models.ForeignKey(
        "accounts.User", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # Kept beside the foreign key so the note keeps its author after the user's deletion.
    author_email = models.CharField(max_length=254, blank=True)
    body = models.TextField()
    created_at = models.DateTimeField(default=now)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # device_note_list shows a device's notes newest first.
            models.Index(fields=["device", "-created_at"], name="devices_note_by_device"),
        ]


class Job(TenantModel):
    """A print, scan or copy job; one row per (device, uuid), latest report wins."""

    tenant_customer_field: ClassVar[str | None] = "device__customer"

    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="+")
    uuid = models.CharField(max_length=128)
    type = models.CharField(max_length=8)
    # Per TelemetryPolicy: as reported, "sha256:<hex>" or "".
    name = models.CharField(max_length=512, blank=True)
    user = models.CharField(max_length=255, blank=True)
    status = models.CharField(max_length=64, blank=True)
    source = models.CharField(max_length=64, blank=True)
    submitted_at = models.DateTimeField(null=True)
    completed_at = models.DateTimeField(null=True)
    pages = models.PositiveBigIntegerField(null=True)
    copies = models.PositiveBigIntegerField(null=True)
    print_quality = models.CharField(max_length=64, blank=True)
    media_type = models.CharField(max_length=128, blank=True)
    media_area_m2 = models.FloatField(null=True)
    printed_area_m2 = models.FloatField(null=True)
    media_length_m = models.FloatField(null=True)
    ink_ml = models.JSONField(default=dict)
    account_id = models.CharField(max_length=255, blank=True)
    project_id = models.CharField(max_length=255, blank=True)
    application_category = models.CharField(max_length=128, blank=True)
    observed_at = models.DateTimeField()
    observed_snapshot_id = models.UUIDField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["device", "uuid"], name="devices_job_once"),
        ]


class DevicePageDay(TenantModel):
    """A device's page counter (`impressions.total`) per UTC day: the day's last reading and
    the pages printed that day, the growth since the last reading of the device's previous day
    with one. A drop is a counter reset (a board swap): that day counts nothing, and counting
    goes on from the new value; a device's first day counts nothing either.

    Ingestion keeps it (devices/rollup_services.py) in the transaction that stores the
    readings, whatever order they arrive in, so the device page and the dashboard read a row
    per device and day instead of the readings (24 a day at hourly polls, 12 counters each)."""

    pk = models.CompositePrimaryKey("device", "day")
    # Read by device (the key) only; see _reading_device_fk for the missing constraint.
    reseller = _reseller_fk_unindexed(db_constraint=False)
    tenant_customer_field: ClassVar[str | None] = "device__customer"

    device = _reading_device_fk()
    day = models.DateField()
    counter = models.DecimalField(max_digits=20, decimal_places=4)
    counter_at = models.DateTimeField()
    pages = models.DecimalField(max_digits=20, decimal_places=4)


class CustomerPageDay(TenantModel):
    """Pages a customer's printers printed per UTC day: the sum of their DevicePageDay pages,
    kept by ingestion with each change of those (an addition, so concurrent batches of one
    customer add up). The dashboard's page chart reads a row per customer and day, whatever
    the size of the fleet. Pages stay with the customer that owned the printer when it
    printed them."""

    pk = models.CompositePrimaryKey("customer", "day")
    # devices_customer_pages_by_day leads with the reseller.
    reseller = _reseller_fk_unindexed()
    # The key leads with the customer.
    customer = models.ForeignKey(
        "accounts.Customer", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    day = models.DateField()
    pages = models.DecimalField(max_digits=20, decimal_places=4)

    class Meta:
        indexes = [
            # The reseller's dashboard sums its customers' pages over the last 30-odd days.
            models.Index(fields=["reseller", "day"], name="devices_customer_pages_by_day"),
        ]
