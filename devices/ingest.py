"""Telemetry ingestion (protocol/telemetry-v1.md): verify, validate, one transaction, 202.

One narrow module, so that it can move out of the portal later: a plain Django view (no DRF on
the hot path), msgspec validation (devices/wire.py) and bulk writes (devices/writer.py). Dedup
comes from unique constraints; every current-state row is written "latest collected_at wins",
so repeated, late and shuffled batches leave the same state as one ordered delivery.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import msgspec
from django.conf import settings
from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.timezone import now
from django.views.decorators.csrf import csrf_exempt

from devices import normalise, rollup_services, services, wire
from devices.models import Alert, Credential, TelemetryPolicy
from devices.writer import COPY_BOOL, NULL, Writer, copy_float, copy_str, from_stage_sql
from portal import ratelimit, rls
from portal.api import error_body

log = logging.getLogger(__name__)

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# The columns of the tables every batch writes in bulk; on PostgreSQL each has a staging table
# (devices/writer.py), created with the batch's first statement.
BATCH_COLUMNS = (
    "reseller_id",
    "customer_id",
    "credential_id",
    "batch_id",
    "received_at",
    "remote_ip",
    "content_encoding",
    "body",
    "snapshot_count",
    "answer",
)
SNAPSHOT_COLUMNS = (
    "reseller_id",
    "device_id",
    "batch_id",
    "snapshot_id",
    "collected_at",
    "state",
    "firmware",
    "ip",
    "hostname",
    "mac",
)
STATE_COLUMNS = (
    "reseller_id",
    "device_id",
    "customer_id",
    "last_seen_at",
    "last_snapshot_id",
    "state",
    "detail",
    "firmware",
    "ip",
    "hostname",
    "mac",
    "impressions_total",
    "is_online",
    "offline_since",
    "lowest_supply_percent",
    "open_alert_count",
)
COUNTER_COLUMNS = (
    "reseller_id",
    "device_id",
    "collected_at",
    "name",
    "media_type",
    "color",
    "unit",
    "value",
)
SUPPLY_READING_COLUMNS = (
    "reseller_id",
    "device_id",
    "collected_at",
    "supply_key",
    "level",
    "max_capacity",
    "level_state",
    "percent",
    "serial",
)
SUPPLY_COLUMNS: tuple[str, ...] = (
    "reseller_id",
    "device_id",
    "supply_key",
    "kind",
    "color",
    "color_family",
    "description",
    "part_number",
    "serial",
    "manufacturer",
    "is_genuine",
    "unit",
    "max_capacity",
    "level",
    "level_state",
    "percent",
    "status",
    "expires_on",
    "observed_at",
    "observed_snapshot_id",
)
# On PostgreSQL a batch's supplies are staged once, as current-supply rows plus their place in
# the batch (`id`, which breaks ties between two reports of one supply in one snapshot as the
# snapshot's order does); the readings and the current rows are both taken from that stage.
SUPPLY_STAGE_COLUMNS = (*SUPPLY_COLUMNS, "id")
STAGED = (
    ("devices_snapshot", SNAPSHOT_COLUMNS),
    ("devices_devicestate", STATE_COLUMNS),
    ("devices_counterreading", COUNTER_COLUMNS),
    ("devices_supply", SUPPLY_STAGE_COLUMNS),
)


class Refusal(Exception):
    """A request refused as a whole: nothing of it is stored."""

    def __init__(self, status: int, code: str, message: str, fields: Any = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.fields = status, code, message, fields


UNAUTHENTICATED = Refusal(
    401,
    "unauthenticated",
    "Key, signature or timestamp not accepted. Check the key id, the "
    "secret and the sender's clock.",
)


# --- HTTP ---------------------------------------------------------------------------------------

TELEMETRY_FAILURE_LIMITS = {
    "setting": "TELEMETRY_AUTH_FAILURE_RATE_LIMIT",
    "key_setting": "TELEMETRY_AUTH_FAILURE_KEY_RATE_LIMIT",
    "key_header": "HTTP_X_INKMETER_KEY",
}


# Failed signatures are limited per IP and per key id; senders that sign correctly are never
# counted, nor refused. The request's transaction is TenantMiddleware's: the view needs no
# savepoint of its own (ATOMIC_REQUESTS), as nothing in it recovers from a database error.
@transaction.non_atomic_requests
@ratelimit.auth_failures_limited(**TELEMETRY_FAILURE_LIMITS)
@csrf_exempt
def telemetry(request: HttpRequest) -> HttpResponse:
    """POST /api/v1/telemetry."""
    try:
        if request.method != "POST":
            raise Refusal(405, "method_not_allowed", "POST a batch.")
        _require_json(request)
        body = _read_body(request)
        credential = _authenticate(request, body)
        raw = _decompress(body, request.META.get("HTTP_CONTENT_ENCODING", ""))
        try:
            envelope = wire.decode_envelope(raw)
        except wire.WireError as error:
            raise Refusal(
                400, "invalid_batch", "The batch breaks the contract.", {"body": error.errors}
            ) from error
        answer = batch_ingest(
            credential=credential,
            envelope=envelope,
            plain=b"\\" not in raw,
            body=body,
            content_encoding=request.META.get("HTTP_CONTENT_ENCODING", ""),
            ip=_client_ip(request),
        )
    except Refusal as refusal:
        response = JsonResponse(
            error_body(refusal.code, refusal.message, refusal.fields), status=refusal.status
        )
        if refusal.status == 405:
            response["Allow"] = "POST"
        return response
    return JsonResponse(answer, status=202)


@ratelimit.auth_failures_limited(**TELEMETRY_FAILURE_LIMITS)
@csrf_exempt
def collector_config(request: HttpRequest) -> HttpResponse:
    """GET /api/v1/collector/config, signed like telemetry (SHA-256 of the empty body)."""
    try:
        if request.method != "GET":
            raise Refusal(405, "method_not_allowed", "GET the configuration.")
        credential = _authenticate(request, b"")
        if credential.kind != Credential.Kind.COLLECTOR:
            raise Refusal(403, "not_a_collector", "Only collectors have a configuration.")
    except Refusal as refusal:
        return JsonResponse(
            error_body(refusal.code, refusal.message, refusal.fields), status=refusal.status
        )
    services.credential_seen(credential=credential, ip=_client_ip(request))
    return JsonResponse(services.collector_config(credential))


def _client_ip(request: HttpRequest) -> str | None:
    # Behind a proxy the deployment sets REMOTE_ADDR from X-Forwarded-For (one trusted hop).
    return request.META.get("REMOTE_ADDR") or None


def _require_json(request: HttpRequest) -> None:
    # The body is JSON whatever its Content-Encoding; a sender that labels it otherwise is
    # misconfigured (or a browser form posted cross-site), so say so rather than guess.
    if (request.content_type or "").strip().lower() != "application/json":
        raise Refusal(
            415,
            "unsupported_media_type",
            "Send the batch as Content-Type: application/json (gzip it with Content-Encoding).",
        )


def _read_body(request: HttpRequest) -> bytes:
    limit = settings.TELEMETRY_MAX_BODY_BYTES
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > limit:
        raise Refusal(413, "too_large", f"The body exceeds {limit} bytes.")
    # request.read, not request.body: Django's own limit would answer 400, and this is bounded.
    body = request.read(limit + 1)
    if len(body) > limit:
        raise Refusal(413, "too_large", f"The body exceeds {limit} bytes.")
    return body


def _authenticate(request: HttpRequest, body: bytes) -> Credential:
    signed = services.SignedRequest(
        key_id=request.META.get("HTTP_X_INKMETER_KEY", ""),
        timestamp=request.META.get("HTTP_X_INKMETER_TIMESTAMP", ""),
        signature=request.META.get("HTTP_X_INKMETER_SIGNATURE", ""),
        method=request.method or "",
        path=request.path,
        body_sha256=hashlib.sha256(body).hexdigest(),
        ip=_client_ip(request),
    )
    # The request's transaction (TenantMiddleware) changes scope twice, with no savepoint of
    # its own: system to find the key, then the key's reseller, or nothing on a refusal.
    rls.activate_system("a credential is found by its key before its reseller is known")
    credential = services.credential_authenticate(request=signed)
    rls.activate(credential.reseller_id if credential is not None else None)
    if credential is None:
        raise UNAUTHENTICATED
    return credential


def _decompress(body: bytes, encoding: str) -> bytes:
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding != "gzip":
        raise Refusal(415, "unsupported_encoding", "Send the body plain or with gzip.")
    limit = settings.TELEMETRY_MAX_DECOMPRESSED_BYTES
    # Incrementally and bounded: a gzip bomb costs at most `limit` bytes of memory, then 413.
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        raw = inflater.decompress(body, limit + 1)
        if len(raw) > limit or inflater.unconsumed_tail:
            raise Refusal(413, "too_large", f"The decompressed body exceeds {limit} bytes.")
        raw += inflater.flush()
    except zlib.error as error:
        raise Refusal(400, "bad_encoding", "The body is not valid gzip.") from error
    if not inflater.eof or len(raw) > limit:
        raise Refusal(400, "bad_encoding", "The gzip stream is truncated.")
    return raw


# --- Validation and placement ---------------------------------------------------------------------


@dataclass
class Item:
    """A snapshot that passed validation, with what storing it needs."""

    index: int
    snapshot: wire.Snapshot
    snapshot_id: uuid.UUID
    collected_at: datetime
    # The stored value of each of the snapshot's counters, in their order (validated).
    counter_values: list[Decimal] = field(default_factory=list)
    device_id: int = 0
    # Each supply's level, capacity, level state and percentage as stored (`_supply_values`),
    # in the snapshot's order; computed once for the readings, the current rows and the figures.
    supply_values: list[tuple[float | None, float | None, str, float | None]] = field(
        default_factory=list
    )

    @property
    def order(self) -> tuple[datetime, uuid.UUID]:
        return (self.collected_at, self.snapshot_id)


@dataclass
class Outcome:
    items: list[Item] = field(default_factory=list)
    rejected: list[dict[str, Any]] = field(default_factory=list)

    def reject(self, index: int, errors: list[str]) -> None:
        self.rejected.append({"index": index, "errors": errors})


def _validate(envelope: wire.Envelope, moment: datetime) -> Outcome:
    outcome = Outcome()
    future = moment + timedelta(seconds=settings.TELEMETRY_CLOCK_SKEW_SECONDS)
    for index, raw in enumerate(envelope.snapshots):
        try:
            snapshot = wire.decode_snapshot(raw)
        except wire.WireError as error:
            outcome.reject(index, error.errors)
            continue
        # Times that do not exist in UTC are refused (`_range_errors`); only a snapshot with
        # alerts or jobs has other times than its own to check.
        try:
            collected_at: datetime | None = snapshot.collected_at.astimezone(UTC)
        except OverflowError:
            collected_at = None
        errors = (
            _range_errors(snapshot)
            if collected_at is None or snapshot.alerts or snapshot.jobs
            else []
        )
        if errors or collected_at is None:
            outcome.reject(index, errors)
            continue
        if "\x00" in snapshot.device.serial:
            errors.append("$.device.serial: contains NUL")
        if collected_at > future:
            errors.append("$.collected_at: in the future")
        values = [normalise.counter_value(counter.value) for counter in snapshot.counters]
        for i, value in enumerate(values):
            if value is None:
                errors.append(f"$.counters[{i}].value: too large for a counter")
        for i, job in enumerate(snapshot.jobs):
            for name in ("pages", "copies"):
                count = getattr(job, name)
                if isinstance(count, int | float) and count > normalise.COUNT_MAX:
                    errors.append(f"$.jobs[{i}].{name}: too large")
        if errors:
            outcome.reject(index, errors)
            continue
        outcome.items.append(
            Item(
                index,
                snapshot,
                uuid.UUID(snapshot.snapshot_id),
                collected_at,
                [value for value in values if value is not None],
            )
        )
    return outcome


def _range_errors(snapshot: wire.Snapshot) -> list[str]:
    """Times that exist in their offset but not in UTC (year 9999 at -01:00) cannot be stored."""
    moments: list[tuple[str, Any]] = [("$.collected_at", snapshot.collected_at)]
    moments += [(f"$.alerts[{i}].raised_at", a.raised_at) for i, a in enumerate(snapshot.alerts)]
    moments += [(f"$.alerts[{i}].cleared_at", a.cleared_at) for i, a in enumerate(snapshot.alerts)]
    moments += [(f"$.jobs[{i}].submitted_at", j.submitted_at) for i, j in enumerate(snapshot.jobs)]
    moments += [(f"$.jobs[{i}].completed_at", j.completed_at) for i, j in enumerate(snapshot.jobs)]
    errors = []
    for path, moment in moments:
        if isinstance(moment, datetime):
            try:
                moment.astimezone(UTC)
            except OverflowError:
                errors.append(f"{path}: out of range in UTC")
    return errors


# --- Storage ------------------------------------------------------------------------------------


def batch_ingest(
    *,
    credential: Credential,
    envelope: wire.Envelope,
    body: bytes,
    content_encoding: str,
    ip: str | None,
    plain: bool = False,
) -> dict[str, Any]:
    """Store one batch in one transaction and return the answer; the commit comes first.

    `plain`: the JSON text of the batch has no backslash. It then has no escapes, so none of its
    strings holds a NUL, a tab, a line break or a backslash (JSON forbids them unescaped, and the
    decoder refuses them), and the COPY text is written without looking at each string."""
    moment = now()
    outcome = _validate(envelope, moment)
    batch_id = uuid.UUID(envelope.batch_id)
    # In a request, part of its transaction (no savepoint: an error fails the whole request
    # and rolls it back with the batch); called alone, a transaction of its own.
    with transaction.atomic(savepoint=False):
        store = _Store(credential=credential, moment=moment, plain=plain)
        batch_pk = store.batch_insert(batch_id, body, content_encoding, ip, len(envelope.snapshots))
        if batch_pk is None:
            return store.answer_of(batch_id)
        accepted, duplicates = store.snapshots(outcome)
        answer = {
            "batch_id": str(batch_id),
            "accepted": accepted,
            "duplicates": duplicates,
            "rejected": sorted(outcome.rejected, key=lambda r: r["index"]),
        }
        store.finish(batch_pk, answer)
        services.credential_seen(
            credential=credential, ip=ip, report=_collector_report(credential, envelope)
        )
        transaction.on_commit(lambda: _enqueue_followup(batch_pk))
    return answer


def _collector_report(
    credential: Credential, envelope: wire.Envelope
) -> services.CollectorReport | None:
    """What a collector says about itself, for its health page; None for other senders."""
    if credential.kind != Credential.Kind.COLLECTOR:
        return None
    source = envelope.source if not isinstance(envelope.source, msgspec.UnsetType) else None
    if source is None:
        return services.CollectorReport()
    backlog = source.outbox_backlog
    discovered: datetime | None = None
    if not isinstance(source.last_discovery_at, msgspec.UnsetType):
        discovered = source.last_discovery_at
        if discovered.tzinfo is None:
            discovered = discovered.replace(tzinfo=UTC)
    return services.CollectorReport(
        agent=normalise.text(source.agent),
        host=normalise.text(source.host),
        outbox_backlog=None if isinstance(backlog, msgspec.UnsetType) else backlog,
        last_discovery_at=_utc(discovered),
    )


def _enqueue_followup(batch_pk: int) -> None:
    from devices.tasks import batch_followup_task

    try:
        # No result is kept: the Redis result backend would subscribe to each task's result
        # channel on every send, and nothing reads it (the sweep re-derives lost work).
        batch_followup_task.apply_async(
            kwargs={"batch_pk": batch_pk}, retry=False, ignore_result=True
        )
    except Exception:
        # The batch is committed; batches_followup_sweep runs its follow-up when the broker or
        # worker is back. The sender's answer does not depend on it.
        log.warning(
            "follow-up of batch %s not enqueued; left to the sweep", batch_pk, exc_info=True
        )


class _Store:
    """The statements of one batch, in an order that locks each device's state row before
    anything reads the device's history (concurrent batches of one device serialise there)."""

    def __init__(self, *, credential: Credential, moment: datetime, plain: bool = False) -> None:
        self.credential = credential
        # A free text as a COPY field: NUL dropped (normalise.text), then escaped (copy_str);
        # nothing to do on either count in a batch without a backslash (`batch_ingest`).
        self.copy_text: Callable[[str], str] = _unchanged if plain else _copy_text
        self.reseller_id = credential.reseller_id
        self.moment = moment
        self.w = Writer()
        # How the batch changed its customer's pages per day (DevicePageDay, CustomerPageDay).
        self.page_change: dict[date, Decimal] = {}
        # Make, model and product number of the batch's devices, as stored, by device id.
        self.registry: dict[int, tuple[str, str, str]] = {}
        # Devices whose state this batch advanced (their offline episode ends).
        self.advanced_ids: list[int] = []

    def batch_insert(
        self, batch_id: uuid.UUID, body: bytes, encoding: str, ip: str | None, count: int
    ) -> int | None:
        """Store the raw batch unless its credential delivered it before: its pk, or None.

        A retry may arrive in a later month than the first delivery, so in another partition of
        the batch table, where no unique constraint reaches (devices/partitions.py). The earlier
        delivery is looked for in every partition instead, under a transaction lock on the
        batch's key, so that concurrent deliveries of one batch take turns. SQLite serialises
        writers by itself: of two racing deliveries the second fails and is retried."""
        row: tuple[Any, ...] = (
            self.reseller_id,
            self.credential.customer_id,
            self.credential.pk,
            batch_id,
            self.moment,
            ip,
            encoding[:16],
            body,
            count,
            {},
        )
        if self.w.is_postgres:
            # One round trip: the stages, the lock, then the row unless an earlier delivery is
            # there (the INSERT's snapshot is taken after the lock is granted).
            self.w.stages_declare(STAGED)
            rows = self.w.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0)); "  # noqa: S608
                f"INSERT INTO devices_telemetrybatch ({', '.join(BATCH_COLUMNS)}) "
                "SELECT %s, %s, %s, %s, %s, %s::inet, %s, %s, %s, %s "
                "WHERE NOT EXISTS (SELECT 1 FROM devices_telemetrybatch "
                "WHERE credential_id = %s AND batch_id = %s) RETURNING id",
                [
                    f"devices.batch:{self.credential.pk}:{batch_id}",
                    *row,
                    self.credential.pk,
                    batch_id,
                ],
            )
            if not rows:
                return None
            self.batch_pk = rows[0][0]
            return self.batch_pk
        earlier = self.w.execute(
            "SELECT id FROM devices_telemetrybatch WHERE credential_id = %s AND batch_id = %s",
            [self.credential.pk, batch_id],
        )
        if earlier:
            return None
        rows = self.w.insert("devices_telemetrybatch", BATCH_COLUMNS, [row], returning="id")
        self.batch_pk = rows[0][0]
        return self.batch_pk

    def answer_of(self, batch_id: uuid.UUID) -> dict[str, Any]:
        from devices.models import TelemetryBatch

        # Ingestion by credential: the batch is looked up under the credential that sent it.
        # The first delivery's answer, should an archived month have been restored beside it.
        answer: dict[str, Any] = (
            TelemetryBatch.unscoped.filter(credential_id=self.credential.pk, batch_id=batch_id)
            .order_by("received_at", "pk")
            .values_list("answer", flat=True)[0]
        )
        return answer

    def finish(self, batch_pk: int, answer: dict[str, Any]) -> None:
        # received_at names the one partition that holds the row.
        self.w.execute(
            "UPDATE devices_telemetrybatch SET answer = %s WHERE id = %s AND received_at = %s",
            [answer, batch_pk, self.moment],
        )

    # Devices ------------------------------------------------------------------------------

    def _devices(self, outcome: Outcome) -> None:
        """Give each item its device id; reject items the credential may not report."""
        credential = self.credential
        serials = {item.snapshot.device.serial for item in outcome.items}
        known = self._devices_by_serial(serials)
        if credential.kind == Credential.Kind.COLLECTOR:
            missing = sorted(serials - set(known))
            if missing:
                latest = self._latest_by(outcome.items, lambda i: i.snapshot.device.serial)
                self.w.insert(
                    "devices_device",
                    [
                        "reseller_id",
                        "customer_id",
                        "site_id",
                        "serial",
                        "manufacturer",
                        "model",
                        "product_number",
                        "name",
                        "report_interval_minutes",
                        "created_at",
                    ],
                    [
                        (
                            self.reseller_id,
                            credential.customer_id,
                            credential.site_id,
                            serial,
                            normalise.text(latest[serial].snapshot.device.manufacturer),
                            normalise.text(latest[serial].snapshot.device.model),
                            normalise.text(latest[serial].snapshot.device.product_number),
                            "",
                            credential.poll_interval_minutes,
                            self.moment,
                        )
                        for serial in missing
                    ],
                    conflict="ON CONFLICT (reseller_id, serial) DO NOTHING",
                )
                known.update(self._devices_by_serial(set(missing)))
        kept = []
        for item in outcome.items:
            serial = item.snapshot.device.serial
            device = known.get(serial)
            if credential.kind == Credential.Kind.DIRECT:
                if device is None or device[0] != credential.device_id:
                    outcome.reject(
                        item.index,
                        [
                            "$.device.serial: this credential reports only for its own "
                            f"printer, not {serial!r}"
                        ],
                    )
                    continue
            elif device is None or device[1] != credential.customer_id:
                outcome.reject(
                    item.index, [f"$.device.serial: {serial!r} belongs to another customer"]
                )
                continue
            item.device_id = device[0]
            kept.append(item)
        outcome.items = kept

    def _devices_by_serial(self, serials: set[str]) -> dict[str, tuple[int, int]]:
        """Id and customer by serial; the registry's make and model are kept for `_registry`,
        so that the batch looks its devices up once."""
        if not serials:
            return {}
        among, serial_params = self.w.among("serial", sorted(serials))
        rows = self.w.execute(
            "SELECT serial, id, customer_id, manufacturer, model, product_number "  # noqa: S608
            f"FROM devices_device WHERE reseller_id = %s AND {among}",
            [self.reseller_id, *serial_params],
        )
        for _, pk, _, manufacturer, model, product_number in rows:
            self.registry[pk] = (manufacturer, model, product_number)
        return {serial: (pk, customer_id) for serial, pk, customer_id, *_ in rows}

    @staticmethod
    def _latest_by(items: list[Item], key: Callable[[Item], Any]) -> dict[Any, Item]:
        latest: dict[Any, Item] = {}
        for item in items:
            k = key(item)
            if k not in latest or latest[k].order < item.order:
                latest[k] = item
        return latest

    # Snapshots ----------------------------------------------------------------------------

    def snapshots(self, outcome: Outcome) -> tuple[int, int]:
        """Store the new snapshots and their rows; returns (accepted, duplicates)."""
        self._devices(outcome)
        unique: dict[uuid.UUID, Item] = {}
        for item in outcome.items:
            unique.setdefault(item.snapshot_id, item)
        within_batch_duplicates = len(outcome.items) - len(unique)
        rows = self.w.insert(
            "devices_snapshot",
            SNAPSHOT_COLUMNS,
            [self._snapshot_row(item) for item in unique.values()],
            conflict="ON CONFLICT (snapshot_id, collected_at) DO NOTHING",
            returning="snapshot_id",
        )
        stored = {row[0] for row in rows}
        new = [item for item in unique.values() if self.w.key(item.snapshot_id) in stored]
        for item in new:
            item.supply_values = [_supply_values(s) for s in item.snapshot.supplies]
        if new:
            self._state(new)
            self._counters(new)
            self._supplies(new)
            self._media(new)
            self._alerts(new)
            self._jobs(new)
            # Last: the customer's rows are shared by all its batches and stay locked until
            # the commit.
            rollup_services.customer_page_days_add(
                w=self.w,
                reseller_id=self.reseller_id,
                customer_id=self.credential.customer_id,
                change=self.page_change,
            )
        return len(new), within_batch_duplicates + len(unique) - len(new)

    def _snapshot_row(self, item: Item) -> tuple[Any, ...]:
        d = item.snapshot.device
        status = item.snapshot.status
        state = (
            status.state
            if isinstance(status, wire.Status) and isinstance(status.state, str)
            else ""
        )
        return (
            self.reseller_id,
            item.device_id,
            self.batch_pk,
            item.snapshot_id,
            item.collected_at,
            state,
            normalise.text(d.firmware),
            normalise.text(d.ip),
            normalise.text(d.hostname),
            normalise.text(d.mac),
        )

    def _state(self, new: list[Item]) -> None:
        latest = self._latest_by(new, lambda i: i.device_id)
        rows = []
        for device_id in sorted(latest):  # lock order: device id, so batches cannot deadlock
            item = latest[device_id]
            snap, d = item.snapshot, item.snapshot.device
            status = snap.status if isinstance(snap.status, wire.Status) else wire.Status()
            total = next(
                (
                    value
                    for c, value in zip(snap.counters, item.counter_values, strict=True)
                    if c.name == "impressions.total" and not c.media_type and not c.color
                ),
                None,
            )
            rows.append(
                (
                    self.reseller_id,
                    device_id,
                    self.credential.customer_id,
                    item.collected_at,
                    item.snapshot_id,
                    status.state if isinstance(status.state, str) else "unknown",
                    normalise.text(status.detail),
                    normalise.text(d.firmware),
                    normalise.text(d.ip),
                    normalise.text(d.hostname),
                    normalise.text(d.mac),
                    total,
                    True,
                    None,
                    *_figures(item),
                )
            )
        advanced = self.w.upsert_latest(
            "devices_devicestate",
            STATE_COLUMNS,
            rows,
            key=["device_id"],
            order=["last_seen_at", "last_snapshot_id"],
            returning="device_id",
        )
        if not advanced:
            return
        # Their offline episodes end in `_alerts`' statement.
        self.advanced_ids = sorted(row[0] for row in advanced)
        self._registry(latest, self.advanced_ids)

    def _registry(self, latest: dict[int, Item], advanced_ids: list[int]) -> None:
        """Keep the registry's make and model as the latest report says (rarely changes).

        Compared with the values read before the state rows were locked: should two senders'
        batches of one printer race and disagree on its model, the later report may leave the
        earlier one's name until the printer's next report (a label, no reading depends on
        it)."""
        for pk in advanced_ids:
            manufacturer, model, product_number = self.registry[pk]
            d = latest[pk].snapshot.device
            reported = (
                normalise.text(d.manufacturer) or manufacturer,
                normalise.text(d.model) or model,
                normalise.text(d.product_number) or product_number,
            )
            if reported != (manufacturer, model, product_number):
                self.w.execute(
                    "UPDATE devices_device SET manufacturer = %s, model = %s, "
                    "product_number = %s WHERE id = %s",
                    [*reported, pk],
                )

    def _counters(self, new: list[Item]) -> None:
        reseller_id = self.reseller_id
        text, color = normalise.text, normalise.color
        if self.w.is_postgres:
            # COPY text written here for this one shape (free texts cleaned unless the body is
            # plain; names are pattern-checked), then the readings and the pages per day from
            # the stage, each a prepared statement.
            lines: list[str] = []
            clean = self.copy_text
            for item in new:
                head = f"{reseller_id}\t{item.device_id}\t{item.collected_at.isoformat()}\t"
                lines += [
                    f"{head}{c.name}\t{clean(c.media_type)}\t"
                    f"{copy_str(color(c.color))}\t{clean(c.unit)}\t{value}\n"
                    for c, value in zip(item.snapshot.counters, item.counter_values, strict=True)
                ]
            if not lines:
                return
            table = "devices_counterreading"
            stage = self.w.stage(table, COUNTER_COLUMNS, "".join(lines))
            self.w.execute_fixed(from_stage_sql(stage, table, COUNTER_COLUMNS))
            rows = self.w.execute_fixed(rollup_services.page_days_fold_sql(stage), [reseller_id])
            self.page_change = {day: change for day, change in rows}
            return
        groups = []
        pages = []
        for item in new:
            rows = [
                (c.name, text(c.media_type), color(c.color), text(c.unit), value)
                for c, value in zip(item.snapshot.counters, item.counter_values, strict=True)
            ]
            groups.append(((reseller_id, item.device_id, item.collected_at), rows))
            pages += [
                rollup_services.PageReading(item.device_id, item.collected_at, row[4])
                for row in rows
                if row[0] == rollup_services.PAGE_COUNTER and not row[1] and not row[2]
            ]
        self.page_change = rollup_services.page_days_fold(
            w=self.w, reseller_id=reseller_id, readings=pages
        )
        self.w.append_grouped("devices_counterreading", COUNTER_COLUMNS, groups)

    def _supplies(self, new: list[Item]) -> None:
        if self.w.is_postgres:
            self._supplies_staged(new)
            return
        reseller_id = self.reseller_id
        readings = []
        # Per supply, its latest report and the values read from it.
        latest: dict[tuple[int, str], tuple[Item, wire.Supply, tuple[Any, ...]]] = {}
        for item in new:
            rows = []
            for s, values in zip(item.snapshot.supplies, item.supply_values, strict=True):
                rows.append((normalise.text(s.id), *values, normalise.text(s.serial)))
                key = (item.device_id, s.id)
                if key not in latest or latest[key][0].order < item.order:
                    latest[key] = (item, s, values)
            readings.append(((reseller_id, item.device_id, item.collected_at), rows))
        self.w.append_grouped(
            "devices_supplyreading",
            SUPPLY_READING_COLUMNS,
            readings,
        )
        current = []
        for (device_id, supply_key), (item, s, values) in sorted(
            latest.items(), key=lambda kv: kv[0]
        ):
            current.append(
                (
                    reseller_id,
                    device_id,
                    normalise.text(supply_key),
                    *_supply_attributes(s),
                    values[1],  # capacity, level, state, percent
                    values[0],
                    values[2],
                    values[3],
                    normalise.text(s.status),
                    s.expires_on,
                    item.collected_at,
                    item.snapshot_id,
                )
            )
        self.w.upsert_latest(
            "devices_supply",
            SUPPLY_COLUMNS,
            current,
            key=["device_id", "supply_key"],
            order=["observed_at", "observed_snapshot_id"],
        )

    def _supplies_staged(self, new: list[Item]) -> None:
        """PostgreSQL: every reported supply COPYed once into one stage, as its current row;
        the readings are all of them, the current rows the latest report of each supply
        (the first in its snapshot, should a snapshot list a supply twice); two prepared
        statements."""
        reseller_id = self.reseller_id
        clean, color, family_of = self.copy_text, normalise.color, normalise.color_family
        lines = []
        position = 0
        for item in new:
            head = f"{reseller_id}\t{item.device_id}\t"
            tail = f"{item.collected_at.isoformat()}\t{item.snapshot_id}\t"
            for s, (level, capacity, state, percent) in zip(
                item.snapshot.supplies, item.supply_values, strict=True
            ):
                # As _supply_attributes has them, for this one shape.
                colour = color(s.color)
                family = family_of(
                    colour, s.color_family if isinstance(s.color_family, str) else ""
                )
                position += 1
                lines.append(
                    f"{head}{clean(s.id)}\t{s.kind if isinstance(s.kind, str) else ''}\t"
                    f"{copy_str(colour)}\t{family}\t{clean(s.description)}\t"
                    f"{clean(s.part_number)}\t{clean(s.serial)}\t{clean(s.manufacturer)}\t"
                    f"{COPY_BOOL[s.genuine if isinstance(s.genuine, bool) else None]}\t"
                    f"{clean(s.unit)}\t{copy_float(capacity)}\t{copy_float(level)}\t{state}\t"
                    f"{copy_float(percent)}\t{clean(s.status)}\t"
                    f"{s.expires_on.isoformat() if s.expires_on is not None else NULL}\t"
                    f"{tail}{position}\n"
                )
        if not lines:
            return
        stage = self.w.stage("devices_supply", SUPPLY_STAGE_COLUMNS, "".join(lines))
        self.w.execute_fixed(supply_readings_from_stage(stage))
        self.w.execute_fixed(supply_upsert_from_stage(stage, connection_quote=self.w.quote))

    def _media(self, new: list[Item]) -> None:
        latest: dict[tuple[int, str], tuple[Item, dict[str, Any]]] = {}
        for item in new:
            for source in item.snapshot.media_sources:
                source_id = source.get("id")
                if not isinstance(source_id, str) or not source_id or len(source_id) > 128:
                    continue  # the contract leaves sources free-form; only named ones are kept
                k = (item.device_id, normalise.text(source_id))
                if k not in latest or latest[k][0].order < item.order:
                    latest[k] = (item, source)
        rows = [
            (
                self.reseller_id,
                device_id,
                key,
                _short(source.get("status"), 64),
                _short(source.get("media_type"), 128),
                _number(source.get("width_mm")),
                _number(source.get("length_mm")),
                item.collected_at,
                item.snapshot_id,
            )
            for (device_id, key), (item, source) in sorted(latest.items(), key=lambda kv: kv[0])
        ]
        self.w.upsert_latest(
            "devices_mediasource",
            [
                "reseller_id",
                "device_id",
                "source_key",
                "status",
                "media_type",
                "width_mm",
                "length_mm",
                "observed_at",
                "observed_snapshot_id",
            ],
            rows,
            key=["device_id", "source_key"],
            order=["observed_at", "observed_snapshot_id"],
        )

    def _alerts(self, new: list[Item]) -> None:
        # Per episode: first and last sighting, the latest severity and text, the earliest
        # reported clearing. All are commutative, so arrival order does not matter. An episode
        # is the sender's alert id where it gives one: a raised_at derived afresh at each
        # report (the collector's, from sysUpTime and its own clock) must not make a restart
        # look like a new alert. Without an id, the raised_at as reported (models.Alert).
        episodes: dict[tuple[int, str, str, datetime], dict[str, Any]] = {}
        for item in new:
            for a in item.snapshot.alerts:
                code, alert_key, episode = _alert_key(a)
                cleared = a.cleared_at.astimezone(UTC) if a.cleared_at is not None else None
                key = (item.device_id, code, alert_key, episode)
                e = episodes.get(key)
                if e is None:
                    episodes[key] = {
                        "first": item.collected_at,
                        "last": item.collected_at,
                        "order": item.order,
                        "severity": a.severity,
                        "description": normalise.text(a.description),
                        "cleared": cleared,
                    }
                    continue
                e["first"] = min(e["first"], item.collected_at)
                e["last"] = max(e["last"], item.collected_at)
                if item.order > e["order"]:
                    e["order"], e["severity"] = item.order, a.severity
                    e["description"] = normalise.text(a.description)
                if cleared is not None:
                    e["cleared"] = cleared if e["cleared"] is None else min(e["cleared"], cleared)
        if episodes:
            t = "devices_alert"
            self.w.insert(
                t,
                [
                    "reseller_id",
                    "device_id",
                    "code",
                    "alert_key",
                    "episode",
                    "severity",
                    "description",
                    "first_seen_at",
                    "last_seen_at",
                    "reported_cleared_at",
                ],
                [
                    (
                        self.reseller_id,
                        device_id,
                        code,
                        alert_key,
                        episode,
                        e["severity"],
                        e["description"],
                        e["first"],
                        e["last"],
                        e["cleared"],
                    )
                    for (device_id, code, alert_key, episode), e in sorted(episodes.items())
                ],
                conflict=(
                    "ON CONFLICT (device_id, code, alert_key, episode) DO UPDATE SET "
                    f"first_seen_at = CASE WHEN EXCLUDED.first_seen_at < {t}.first_seen_at "
                    f"THEN EXCLUDED.first_seen_at ELSE {t}.first_seen_at END, "
                    f"severity = CASE WHEN EXCLUDED.last_seen_at > {t}.last_seen_at "
                    f"THEN EXCLUDED.severity ELSE {t}.severity END, "
                    f"description = CASE WHEN EXCLUDED.last_seen_at > {t}.last_seen_at "
                    f"THEN EXCLUDED.description ELSE {t}.description END, "
                    f"last_seen_at = CASE WHEN EXCLUDED.last_seen_at > {t}.last_seen_at "
                    f"THEN EXCLUDED.last_seen_at ELSE {t}.last_seen_at END, "
                    f"reported_cleared_at = CASE WHEN {t}.reported_cleared_at IS NULL "
                    f"THEN EXCLUDED.reported_cleared_at WHEN EXCLUDED.reported_cleared_at IS NULL "
                    f"THEN {t}.reported_cleared_at WHEN EXCLUDED.reported_cleared_at < "
                    f"{t}.reported_cleared_at THEN EXCLUDED.reported_cleared_at "
                    f"ELSE {t}.reported_cleared_at END"
                ),
            )
        # An alert ends at its reported clearing, else at the first later snapshot (which, not
        # listing it, says it is gone). Only episodes this batch can affect are recomputed. In
        # the same statement, a device that reports again ends its offline episode (raised by
        # devices_offline_sweep).
        device_ids = sorted({item.device_id for item in new})
        earliest = min(item.collected_at for item in new)
        devices, device_params = self.w.among("device_id", device_ids)
        advanced, advanced_params = self.w.among("device_id", self.advanced_ids)
        self.w.execute(
            "UPDATE devices_alert SET cleared_at = CASE WHEN code = %s THEN %s "  # noqa: S608
            "WHEN reported_cleared_at IS NOT NULL "
            "THEN reported_cleared_at ELSE (SELECT MIN(s.collected_at) FROM devices_snapshot s "
            "WHERE s.device_id = devices_alert.device_id "
            "AND s.collected_at > devices_alert.last_seen_at) END "
            f"WHERE {devices} AND CASE WHEN code = %s "
            f"THEN cleared_at IS NULL AND {advanced} "
            "ELSE cleared_at IS NULL OR cleared_at > %s OR last_seen_at >= %s END",
            [
                Alert.OFFLINE_CODE,
                self.moment,
                *device_params,
                Alert.OFFLINE_CODE,
                *advanced_params,
                earliest,
                earliest,
            ],
        )

    def _jobs(self, new: list[Item]) -> None:
        latest: dict[tuple[int, str], tuple[Item, wire.Job]] = {}
        for item in new:
            for job in item.snapshot.jobs:
                k = (item.device_id, normalise.text(job.uuid))
                if k not in latest or latest[k][0].order < item.order:
                    latest[k] = (item, job)
        if not latest:
            return
        policy = (
            # Ingestion by credential: the policy of the credential's own customer.
            TelemetryPolicy.unscoped.filter(customer_id=self.credential.customer_id)
            .values_list("job_names", "user_names")
            .first()
        ) or (TelemetryPolicy.Personal.HASH, TelemetryPolicy.Personal.HASH)
        key = services.personal_data_key()

        def opt(value: Any) -> Any:
            return None if isinstance(value, msgspec_unset_type) else value

        rows = []
        for (device_id, job_uuid), (item, job) in sorted(latest.items(), key=lambda kv: kv[0]):
            rows.append(
                (
                    self.reseller_id,
                    device_id,
                    job_uuid,
                    job.type,
                    normalise.personal(job.name, mode=policy[0], key=key),
                    normalise.personal(job.user, mode=policy[1], key=key),
                    normalise.text(job.status),
                    normalise.text(job.source),
                    _utc(opt(job.submitted_at)),
                    _utc(opt(job.completed_at)),
                    _int(opt(job.pages)),
                    _int(opt(job.copies)),
                    normalise.text(job.print_quality),
                    normalise.text(job.media_type),
                    normalise.finite(opt(job.media_area_m2)),
                    normalise.finite(opt(job.printed_area_m2)),
                    normalise.finite(opt(job.media_length_m)),
                    _ink(opt(job.ink_ml)),
                    normalise.text(job.account_id),
                    normalise.text(job.project_id),
                    normalise.text(job.application_category),
                    item.collected_at,
                    item.snapshot_id,
                )
            )
        self.w.upsert_latest(
            "devices_job",
            [
                "reseller_id",
                "device_id",
                "uuid",
                "type",
                "name",
                "user",
                "status",
                "source",
                "submitted_at",
                "completed_at",
                "pages",
                "copies",
                "print_quality",
                "media_type",
                "media_area_m2",
                "printed_area_m2",
                "media_length_m",
                "ink_ml",
                "account_id",
                "project_id",
                "application_category",
                "observed_at",
                "observed_snapshot_id",
            ],
            rows,
            key=["device_id", "uuid"],
            order=["observed_at", "observed_snapshot_id"],
        )


msgspec_unset_type = type(wire.UNSET)


def _unchanged(value: str) -> str:
    return value


def _copy_text(value: str) -> str:
    return copy_str(normalise.text(value))


def _supply_attributes(
    s: wire.Supply,
) -> tuple[str, str, str, str, str, str, str, bool | None, str]:
    """A reported supply's kind, colour, colour family, description, part number, serial,
    maker, genuineness and unit, as stored in its current row."""
    color = normalise.color(s.color)
    reported_family = s.color_family if isinstance(s.color_family, str) else ""
    return (
        s.kind if isinstance(s.kind, str) else "",
        color,
        normalise.color_family(color, reported_family),
        normalise.text(s.description),
        normalise.text(s.part_number),
        normalise.text(s.serial),
        normalise.text(s.manufacturer),
        s.genuine if isinstance(s.genuine, bool) else None,
        normalise.text(s.unit),
    )


def supply_readings_from_stage(stage: str) -> str:
    """Every staged supply as a reading (`_Store._supplies_staged`)."""
    reading = ", ".join(SUPPLY_READING_COLUMNS)
    staged = reading.replace("collected_at", "observed_at")
    return f"INSERT INTO devices_supplyreading ({reading}) SELECT {staged} FROM {stage}"  # noqa: S608


def supply_upsert_from_stage(stage: str, *, connection_quote: Callable[[str], str]) -> str:
    """The latest staged report of each supply as its current row, unless a later one is stored
    (`Writer.upsert_latest`'s rule, in the supplies' lock order)."""
    q = connection_quote
    names = ", ".join(q(c) for c in SUPPLY_COLUMNS)
    updates = ", ".join(
        f"{q(c)} = EXCLUDED.{q(c)}" for c in SUPPLY_COLUMNS if c not in ("device_id", "supply_key")
    )
    return (
        f"INSERT INTO devices_supply ({names}) SELECT DISTINCT ON (device_id, supply_key) "  # noqa: S608
        f"{names} FROM {stage} "
        "ORDER BY device_id, supply_key, observed_at DESC, observed_snapshot_id DESC, id "
        f"ON CONFLICT (device_id, supply_key) DO UPDATE SET {updates} "
        "WHERE (devices_supply.observed_at, devices_supply.observed_snapshot_id) "
        "< (EXCLUDED.observed_at, EXCLUDED.observed_snapshot_id)"
    )


def _supply_values(s: wire.Supply) -> tuple[float | None, float | None, str, float | None]:
    """A reported supply's level, capacity, level state and percentage, as stored."""
    level = normalise.finite(s.level)
    capacity = normalise.finite(s.max_capacity)
    state = normalise.level_state(level, s.level_state if isinstance(s.level_state, str) else None)
    return level, capacity, state, normalise.supply_percent(level, capacity, state)


def _alert_key(a: wire.Alert) -> tuple[str, str, datetime]:
    """An alert's episode: its code and the sender's alert id where it gives one; without an
    id, when it was raised (the epoch when not reported)."""
    alert_key = normalise.text(a.id)
    episode = (
        a.raised_at.astimezone(UTC)
        if not alert_key and isinstance(a.raised_at, datetime)
        else EPOCH
    )
    return normalise.text(a.code), alert_key, episode


def _figures(item: Item) -> tuple[float | None, int]:
    """The device list's figures of a device's latest report (DeviceState): the lowest level
    of the supplies it reported and how many alerts it listed as active. A snapshot lists
    every supply and every active alert, and the alerts it does not list are cleared, so these
    are the open alerts and the supplies' levels once the snapshot is stored."""
    percents = [values[3] for values in item.supply_values if values[3] is not None]
    active = {_alert_key(a) for a in item.snapshot.alerts if a.cleared_at is None}
    return (min(percents) if percents else None), len(active)


def _utc(value: datetime | None) -> datetime | None:
    return value.astimezone(UTC) if value is not None else None


def _int(value: float | None) -> int | None:
    return int(value) if value is not None else None


def _ink(value: dict[str, float] | None) -> dict[str, float]:
    if not value:
        return {}
    return {normalise.color(k)[:64]: v for k, v in value.items() if normalise.finite(v) is not None}


def _short(value: Any, limit: int) -> str:
    return normalise.text(value)[:limit] if isinstance(value, str) else ""


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        return normalise.finite(float(value))
    except OverflowError:  # an integer beyond any float
        return None
