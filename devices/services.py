"""Every write of the devices app outside the ingestion hot path (devices/ingest.py): credentials,
collector configuration, privacy policy, request authentication and the beat sweeps."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache, partial
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.urls import reverse
from django.utils.timezone import now
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from accounts.models import Customer, Site
from accounts.services import audit_record
from devices import ip_ranges
from devices.models import (
    Alert,
    AuthFailure,
    Credential,
    Device,
    DeviceState,
    TelemetryBatch,
    TelemetryPolicy,
)
from portal.errors import ConflictError, DomainError, NotFoundError, PermissionDeniedError
from portal.tenancy import ADMIN_ROLES, Role, TenantContext

log = logging.getLogger(__name__)

MIN_POLL_MINUTES = 15
SIGNATURE_PREFIX = "v1="


def _require_admin(ctx: TenantContext) -> None:
    if ctx.role not in ADMIN_ROLES and ctx.role != Role.SYSTEM:
        raise PermissionDeniedError(_("Only a reseller admin may do this."))


# --- Secrets at rest ----------------------------------------------------------------------------


@lru_cache(maxsize=4)
def _fernet(setting: str) -> MultiFernet:
    keys = [part.strip() for part in setting.split(",") if part.strip()]
    # Any string becomes a Fernet key through SHA-256, so operators may set a passphrase.
    return MultiFernet(
        [Fernet(base64.urlsafe_b64encode(hashlib.sha256(k.encode()).digest())) for k in keys]
    )


def secret_encrypt(plain: str) -> bytes:
    return _fernet(str(settings.CREDENTIAL_ENCRYPTION_KEY)).encrypt(plain.encode())


def secret_decrypt(token: bytes | memoryview) -> str:
    return _fernet(str(settings.CREDENTIAL_ENCRYPTION_KEY)).decrypt(bytes(token)).decode()


def personal_data_key() -> bytes:
    """Key of the privacy hashes of job and user names: stable, and not in the database."""
    return hashlib.sha256(b"inkmeter-personal:" + str(settings.SECRET_KEY).encode()).digest()


# --- Credentials --------------------------------------------------------------------------------


def _new_key_id(kind: str) -> str:
    return ("col_" if kind == Credential.Kind.COLLECTOR else "dev_") + secrets.token_hex(8)


def credential_create(
    *,
    ctx: TenantContext,
    kind: str,
    name: str = "",
    site_id: int | None = None,
    serial: str = "",
) -> tuple[Credential, str]:
    """Register a collector for a site, or a direct-connect credential for the device with
    `serial` (registered to `site_id` if the portal does not know it yet). Returns the
    credential and its secret, which is shown once and stored only encrypted."""
    _require_admin(ctx)
    site: Site | None = None
    device: Device | None = None
    if site_id is not None:
        site = Site.objects.for_tenant(ctx).select_related("customer").filter(pk=site_id).first()
        if site is None:
            raise NotFoundError(_("No such site."), fields={"site": [_("No such site.")]})
    serial = serial.strip()
    if kind == Credential.Kind.COLLECTOR:
        if site is None:
            raise DomainError(
                _("A collector belongs to a site."), fields={"site": [_("Choose the site.")]}
            )
        customer = site.customer
        label = name.strip() or f"Collector at {site.name}"
    elif kind == Credential.Kind.DIRECT:
        if not serial or len(serial) > 128:
            raise DomainError(
                _("A direct-connect credential needs the printer's serial."),
                fields={"serial": [_("Enter the serial number (at most 128 characters).")]},
            )
        device = Device.objects.for_tenant(ctx).filter(serial=serial).first()
        if device is None and site is None:
            raise DomainError(
                _("No printer with serial %(serial)s yet: choose the site to register it to.")
                % {"serial": serial},
                code="site_required",
                fields={"site": [_("Choose the site where this printer stands.")]},
            )
        customer = device.customer if device is not None else site.customer  # type: ignore[union-attr]
        label = name.strip() or f"Printer {serial}"
    else:
        raise DomainError(
            _("Unknown credential kind."), fields={"kind": [_("collector or direct")]}
        )
    secret = secrets.token_urlsafe(32)
    with transaction.atomic():
        if kind == Credential.Kind.DIRECT and device is None:
            if site is None:  # unreachable: checked above, for the type checker
                raise DomainError(_("Choose the site."))
            device = Device.objects.for_tenant(ctx).create(
                reseller_id=ctx.reseller_id,
                customer=site.customer,
                site=site,
                serial=serial,
                report_interval_minutes=settings.DIRECT_REPORT_INTERVAL_MINUTES,
            )
        credential = Credential.objects.for_tenant(ctx).create(
            reseller_id=ctx.reseller_id,
            kind=kind,
            name=label[:200],
            customer=customer,
            site=site if kind == Credential.Kind.COLLECTOR else None,
            device=device,
            key_id=_new_key_id(kind),
            secret_encrypted=secret_encrypt(secret),
            communities_encrypted=secret_encrypt(json.dumps(["public"])),
            created_by=ctx.user if ctx.user is not None and ctx.user.pk else None,
        )
        audit_record(
            ctx=ctx,
            action="credential.create",
            obj=credential,
            detail={"kind": kind, "key_id": credential.key_id, "name": credential.name},
        )
    return credential, secret


def _credential_for_update(ctx: TenantContext, credential_id: int) -> Credential:
    credential = (
        Credential.objects.for_tenant(ctx)
        .select_for_update(of=("self",))
        .filter(pk=credential_id)
        .first()
    )
    if credential is None:
        raise NotFoundError(_("No such credential."))
    return credential


def credential_rotate(
    *, ctx: TenantContext, credential_id: int, grace_hours: int | None = None
) -> tuple[Credential, str]:
    """A new secret; the current one stays valid for the grace period, then only the new one."""
    _require_admin(ctx)
    hours = settings.CREDENTIAL_ROTATION_GRACE_HOURS if grace_hours is None else grace_hours
    if not 0 <= hours <= 24 * 30:
        raise DomainError(
            _("The grace period is 0 to 720 hours."), fields={"grace_hours": [_("0 to 720.")]}
        )
    secret = secrets.token_urlsafe(32)
    with transaction.atomic():
        credential = _credential_for_update(ctx, credential_id)
        if credential.revoked_at is not None:
            raise ConflictError(_("A revoked credential cannot be rotated."), code="revoked")
        moment = now()
        credential.previous_secret_encrypted = credential.secret_encrypted
        credential.previous_valid_until = moment + timedelta(hours=hours)
        credential.secret_encrypted = secret_encrypt(secret)
        credential.rotated_at = moment
        credential.save(
            update_fields=[
                "previous_secret_encrypted",
                "previous_valid_until",
                "secret_encrypted",
                "rotated_at",
            ]
        )
        audit_record(
            ctx=ctx, action="credential.rotate", obj=credential, detail={"grace_hours": hours}
        )
    return credential, secret


def credential_revoke(*, ctx: TenantContext, credential_id: int) -> Credential:
    _require_admin(ctx)
    with transaction.atomic():
        credential = _credential_for_update(ctx, credential_id)
        if credential.revoked_at is not None:
            raise ConflictError(_("This credential is revoked already."), code="revoked")
        credential.revoked_at = now()
        credential.save(update_fields=["revoked_at"])
        audit_record(ctx=ctx, action="credential.revoke", obj=credential)
    return credential


# --- Collector configuration --------------------------------------------------------------------


def collector_config_update(
    *,
    ctx: TenantContext,
    credential_id: int,
    ranges: list[str],
    communities: list[str],
    poll_interval_minutes: int,
    upload_interval_minutes: int,
) -> Credential:
    """Change what a collector scans and how often; the collector picks it up by version."""
    _require_admin(ctx)
    errors: dict[str, list[str]] = {}
    clean_ranges: list[str] = []
    for item in ranges:
        if not item.strip():
            continue
        try:
            clean_ranges.append(ip_ranges.range_parse(item).text)
        except ip_ranges.RangeError as error:
            errors.setdefault("ranges", []).append(error.message)
    if len(clean_ranges) > 256:
        errors.setdefault("ranges", []).append("At most 256 ranges.")
    clean_communities = [c.strip() for c in communities if c.strip()]
    if not clean_communities:
        errors["communities"] = [_("Give at least one SNMP community (usually 'public').")]
    elif any(len(c) > 64 for c in clean_communities) or len(clean_communities) > 16:
        errors["communities"] = [_("At most 16 communities of at most 64 characters.")]
    if poll_interval_minutes < MIN_POLL_MINUTES or poll_interval_minutes > 24 * 60:
        errors["poll_interval_minutes"] = [
            _("Between %(MIN_POLL_MINUTES)s and 1440 minutes.")
            % {"MIN_POLL_MINUTES": MIN_POLL_MINUTES}
        ]
    if upload_interval_minutes < 1 or upload_interval_minutes > 24 * 60:
        errors["upload_interval_minutes"] = [_("Between 1 and 1440 minutes.")]
    if errors:
        raise DomainError(_("The configuration is not valid."), fields=errors)
    with transaction.atomic():
        credential = _credential_for_update(ctx, credential_id)
        if credential.kind != Credential.Kind.COLLECTOR:
            raise DomainError(_("Only collectors have a configuration."), code="not_a_collector")
        credential.ranges = clean_ranges
        credential.communities_encrypted = secret_encrypt(json.dumps(clean_communities))
        credential.poll_interval_minutes = poll_interval_minutes
        credential.upload_interval_minutes = upload_interval_minutes
        credential.config_version = F("config_version") + 1
        credential.save(
            update_fields=[
                "ranges",
                "communities_encrypted",
                "poll_interval_minutes",
                "upload_interval_minutes",
                "config_version",
            ]
        )
        # Devices of this collector are expected at the new pace (offline sweep).
        Device.objects.for_tenant(ctx).filter(site_id=credential.site_id).update(
            report_interval_minutes=poll_interval_minutes
        )
        audit_record(
            ctx=ctx,
            action="collector.configure",
            obj=credential,
            detail={
                "ranges": clean_ranges,
                "communities": len(clean_communities),
                "poll_interval_minutes": poll_interval_minutes,
                "upload_interval_minutes": upload_interval_minutes,
            },
        )
    credential.refresh_from_db(fields=["config_version"])
    return credential


def collector_communities(credential: Credential) -> list[str]:
    if not credential.communities_encrypted:
        return []
    communities: list[str] = json.loads(secret_decrypt(credential.communities_encrypted))
    return communities


def _collector_thresholds(credential: Credential) -> tuple[int, dict[str, int]]:
    """The customer's reorder threshold and the overrides of devices at this collector's site:
    the collector uploads at once when a supply crosses its device's threshold."""
    from orders.models import ReorderPolicy

    ctx = TenantContext.system(reseller=credential.reseller)
    default = ReorderPolicy.DEFAULT_THRESHOLD
    overrides: dict[str, int] = {}
    rows = ReorderPolicy.objects.for_tenant(ctx).filter(
        Q(device__isnull=True) | Q(device__site_id=credential.site_id),
        customer_id=credential.customer_id,
    )
    for serial, threshold in rows.values_list("device__serial", "threshold_percent"):
        if serial is None:
            default = threshold
        else:
            overrides[serial] = threshold
    return default, dict(sorted(overrides.items()))


def collector_config(credential: Credential) -> dict[str, Any]:
    """The answer of GET /api/v1/collector/config (the collector codes against exactly this)."""
    threshold, thresholds = _collector_thresholds(credential)
    return {
        "config_version": credential.config_version,
        # Rows stored before the range rule (0.0.0.0/0, ...) are left out: the collector would
        # refuse them anyway, and it must never be asked to sweep them.
        "ranges": [r for r in credential.ranges if ip_ranges.range_is_valid(str(r))],
        "communities": collector_communities(credential),
        "poll_interval_minutes": max(MIN_POLL_MINUTES, credential.poll_interval_minutes),
        "upload_interval_minutes": credential.upload_interval_minutes,
        "reorder_threshold_percent": threshold,
        "reorder_thresholds": thresholds,
    }


# --- Privacy ------------------------------------------------------------------------------------


def telemetry_policy_update(
    *, ctx: TenantContext, customer_id: int, job_names: str, user_names: str
) -> TelemetryPolicy:
    _require_admin(ctx)
    choices = set(TelemetryPolicy.Personal.values)
    if job_names not in choices or user_names not in choices:
        raise DomainError(_("Choose store, hash or drop."), code="invalid_policy")
    customer = Customer.objects.for_tenant(ctx).filter(pk=customer_id).first()
    if customer is None:
        raise NotFoundError(_("No such customer."))
    with transaction.atomic():
        policy, _created = TelemetryPolicy.objects.for_tenant(ctx).update_or_create(
            reseller_id=ctx.reseller_id,
            customer=customer,
            defaults={"job_names": job_names, "user_names": user_names, "updated_at": now()},
        )
        audit_record(
            ctx=ctx,
            action="telemetry_policy.update",
            obj=customer,
            detail={"job_names": job_names, "user_names": user_names},
        )
    return policy


# --- Signed requests ----------------------------------------------------------------------------


@dataclass(frozen=True)
class SignedRequest:
    key_id: str
    timestamp: str
    signature: str
    method: str
    path: str
    body_sha256: str
    ip: str | None


def signature_compute(
    *, secret: str, method: str, path: str, timestamp: str, body_sha256: str
) -> str:
    message = "\n".join(("v1", method, path, timestamp, body_sha256))
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def _timestamp_parse(value: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


_DUMMY_TOKEN = Fernet(Fernet.generate_key()).encrypt(b"x" * 43)


def credential_authenticate(*, request: SignedRequest) -> Credential | None:
    """The active credential that signed `request`, or None for any failure.

    The caller answers every failure the same way; failures that name a known key are logged
    for its reseller (AuthFailure, never the secret)."""
    credential = None
    if 0 < len(request.key_id) <= 32:
        # Across tenants on purpose: the key names the tenant, the signature proves it. Its
        # reseller comes along (is it active?); the rest is read by id on every telemetry batch,
        # and building three more model instances per request cost more than the query.
        credential = (
            Credential.unscoped.select_related("reseller").filter(key_id=request.key_id).first()
        )
    if credential is None:
        # Spend the time a known key would, so that response times do not enumerate keys.
        with contextlib.suppress(InvalidToken):
            _fernet("dummy").decrypt(_DUMMY_TOKEN)
        return None
    reason = _failure_reason(credential, request)
    if reason is None:
        return credential
    AuthFailure.unscoped.create(
        reseller_id=credential.reseller_id,
        credential=credential,
        reason=reason,
        ip=request.ip,
        path=request.path[:200],
    )
    log.warning("refused %s for credential %s: %s", request.path, credential.key_id, reason)
    return None


def _failure_reason(credential: Credential, request: SignedRequest) -> str | None:
    moment = now()
    if credential.revoked_at is not None or not credential.reseller.is_active:
        return "revoked"
    given = request.signature[len(SIGNATURE_PREFIX) :].lower()
    if not request.signature.startswith(SIGNATURE_PREFIX) or len(given) != 64:
        return "bad_signature"
    secrets_to_try = [credential.secret_encrypted]
    if credential.previous_secret_encrypted and (
        credential.previous_valid_until is not None and credential.previous_valid_until > moment
    ):
        secrets_to_try.append(credential.previous_secret_encrypted)
    matched = False
    for encrypted in secrets_to_try:
        expected = signature_compute(
            secret=secret_decrypt(encrypted),
            method=request.method,
            path=request.path,
            timestamp=request.timestamp,
            body_sha256=request.body_sha256,
        )
        matched = hmac.compare_digest(expected, given) or matched
    if not matched:
        return "bad_signature"
    sent = _timestamp_parse(request.timestamp)
    skew = timedelta(seconds=settings.TELEMETRY_CLOCK_SKEW_SECONDS)
    if sent is None or abs(moment - sent) > skew:
        return "stale_timestamp"
    return None


@dataclass(frozen=True)
class CollectorReport:
    """What a collector says about itself in a batch's envelope (`source`)."""

    agent: str = ""
    host: str = ""
    outbox_backlog: int | None = None
    last_discovery_at: datetime | None = None


def credential_seen(
    *, credential: Credential, ip: str | None, report: CollectorReport | None = None
) -> None:
    """Record when and from where a credential last reported: at most one write a minute, but
    every batch of a collector writes what it says about itself (its backlog drains batch by
    batch, and the health page must not show a stale one), and a silent collector that speaks
    again is no longer silent."""
    moment = now()
    if (
        report is None
        and credential.silent_since is None
        and credential.last_seen_at is not None
        and moment - credential.last_seen_at < timedelta(minutes=1)
        and credential.last_seen_ip == ip
    ):
        return
    fields: dict[str, Any] = {"last_seen_at": moment, "last_seen_ip": ip, "silent_since": None}
    if report is not None:
        fields |= {
            "agent": report.agent[:200],
            "agent_host": report.host[:255],
            "last_batch_at": moment,
            "outbox_backlog": report.outbox_backlog,
            "last_discovery_at": report.last_discovery_at,
        }
    # Ingestion by credential: the credential itself is the tenant's proof.
    Credential.unscoped.filter(pk=credential.pk).update(**fields)
    for name, value in fields.items():
        setattr(credential, name, value)


def collector_silence_minutes(credential: Credential) -> int:
    """How long a collector may be quiet before it counts as silent: a few of its uploads, and
    never less than COLLECTOR_SILENT_AFTER_MINUTES (uploads retry on a backoff of minutes)."""
    return max(settings.COLLECTOR_SILENT_AFTER_MINUTES, 3 * credential.upload_interval_minutes)


def collectors_silent_sweep(*, limit: int = 1000) -> int:
    """Mark collectors that have fallen silent and email each reseller once per silence.

    Silent: an active collector that has reported before and not since its silence threshold. A
    collector that never reported is not silent (it may not be installed yet). The claim is a
    conditional UPDATE of silent_since in the transaction that logs the email, so a sweep run
    twice sends nothing twice; the collector's next request clears it (credential_seen)."""
    from orders.email_services import emails_queue
    from orders.models import EmailLog

    moment = now()
    floor = settings.COLLECTOR_SILENT_AFTER_MINUTES
    # Across tenants: a beat sweep. One condition per distinct upload interval (a handful).
    intervals = set(
        Credential.unscoped.filter(kind=Credential.Kind.COLLECTOR)
        .values_list("upload_interval_minutes", flat=True)
        .distinct()
    )
    if not intervals:
        return 0
    overdue = Q()
    for minutes in intervals:
        overdue |= Q(
            upload_interval_minutes=minutes,
            last_seen_at__lt=moment - timedelta(minutes=max(floor, 3 * minutes)),
        )
    with transaction.atomic():
        silent = list(
            Credential.unscoped.select_for_update(skip_locked=True, of=("self",))
            .filter(
                overdue,
                kind=Credential.Kind.COLLECTOR,
                revoked_at__isnull=True,
                silent_since__isnull=True,
                reseller__is_active=True,
            )
            .select_related("reseller", "customer", "site")
            .order_by("pk")[:limit]
        )
        if not silent:
            return 0
        Credential.unscoped.filter(pk__in=[c.pk for c in silent], silent_since=None).update(
            silent_since=moment
        )
        by_reseller: dict[int, list[Credential]] = {}
        for credential in silent:
            by_reseller.setdefault(credential.reseller_id, []).append(credential)
        for reseller_id, credentials in by_reseller.items():
            recipient = credentials[0].reseller.support_email
            if not recipient:
                continue
            emails_queue(
                reseller_id=reseller_id,
                customer_id=None,
                recipients=[recipient],
                kind=EmailLog.Kind.COLLECTOR_SILENT,
                template="devices/email/collectors_silent.txt",
                context={"collectors": credentials, "site_url": settings.SITE_URL},
                subject=partial(_collectors_silent_subject, len(credentials)),
            )
    return len(silent)


def _collectors_silent_subject(count: int) -> str:
    return ngettext(
        "[Inkmeter] %(count)s data collector stopped reporting",
        "[Inkmeter] %(count)s data collectors stopped reporting",
        count,
    ) % {"count": count}


def _alerts_subject(count: int) -> str:
    return ngettext(
        "[Inkmeter] %(count)s new printer alert",
        "[Inkmeter] %(count)s new printer alerts",
        count,
    ) % {"count": count}


# --- Follow-up work and sweeps ------------------------------------------------------------------


def alerts_notify(*, alert_ids: list[int]) -> int:
    """Email the reseller about newly raised critical and warning alerts, each exactly once.

    The claim (notified_at) is taken in the same transaction that logs the email (an EmailLog
    row, orders/email_services.py), so a task run twice, or a sweep racing the task, logs
    nothing twice, and a worker killed before the SMTP call leaves the email to be resent."""
    from orders.email_services import emails_queue
    from orders.models import EmailLog

    if not alert_ids:
        return 0
    with transaction.atomic():
        # System work across the batch's devices; claimed rows are locked, others skipped.
        claimed = list(
            Alert.unscoped.select_for_update(skip_locked=True, of=("self",))
            .filter(pk__in=alert_ids, notified_at=None)
            .select_related("device", "device__customer", "device__site", "reseller")
            .order_by("pk")
        )
        if not claimed:
            return 0
        Alert.unscoped.filter(pk__in=[a.pk for a in claimed]).update(notified_at=now())
        by_reseller: dict[int, list[Alert]] = {}
        for alert in claimed:
            # A retired printer that still reports is stored, not announced (device_retire).
            if alert.device.retired_at is not None:
                continue
            if alert.severity != Alert.Severity.INFO:
                by_reseller.setdefault(alert.reseller_id, []).append(alert)
        for reseller_id, alerts in by_reseller.items():
            recipient = alerts[0].reseller.support_email
            if not recipient:
                continue
            emails_queue(
                reseller_id=reseller_id,
                customer_id=None,
                recipients=[recipient],
                kind=EmailLog.Kind.PRINTER_CRITICAL,
                template="devices/email/alerts.txt",
                context={
                    "alerts": alerts,
                    "url": settings.SITE_URL + reverse("alert-list"),
                },
                subject=partial(_alerts_subject, len(alerts)),
            )
    return len(claimed)


def batch_followup(*, batch_pk: int) -> bool:
    """The work that follows an accepted batch (alert mail); runs once per batch."""
    with transaction.atomic():
        # System code: a claim by conditional UPDATE on the batch row.
        claimed = TelemetryBatch.unscoped.filter(pk=batch_pk, followup_done_at=None).update(
            followup_done_at=now()
        )
        if claimed != 1:
            return False
        batch = TelemetryBatch.unscoped.only("reseller_id", "customer_id", "received_at").get(
            pk=batch_pk
        )
        alert_ids = list(
            Alert.unscoped.filter(
                device__customer_id=batch.customer_id,
                notified_at=None,
                cleared_at=None,
            ).values_list("pk", flat=True)[:1000]
        )
        alerts_notify(alert_ids=alert_ids)
        # Forecasts, low-supply alerts and reorders (orders app): an ask per customer, which
        # batches arriving together share; its sweep covers a lost ask or task.
        from orders.supply_services import supplies_evaluate_request

        supplies_evaluate_request(reseller_id=batch.reseller_id, customer_id=batch.customer_id)
    return True


def batches_followup_sweep(*, older_than_seconds: int | None = None, limit: int = 500) -> int:
    """Run the follow-up of accepted batches whose task was lost (broker or worker down): those
    committed more than TELEMETRY_FOLLOWUP_GRACE_SECONDS ago, so a task still queued runs first.
    """
    if older_than_seconds is None:
        older_than_seconds = settings.TELEMETRY_FOLLOWUP_GRACE_SECONDS
    cutoff = now() - timedelta(seconds=older_than_seconds)
    pending = list(
        TelemetryBatch.unscoped.filter(followup_done_at=None, received_at__lte=cutoff)
        .order_by("received_at")
        .values_list("pk", flat=True)[:limit]
    )
    return sum(batch_followup(batch_pk=pk) for pk in pending)


def devices_offline_sweep(*, limit: int = 5000) -> int:
    """Mark devices silent for twice their report interval offline, and raise an alert."""
    moment = now()
    # One set-based query per distinct interval (a handful): portable, unlike interval arithmetic.
    intervals = set(Device.unscoped.values_list("report_interval_minutes", flat=True).distinct())
    overdue = Q()
    for minutes in intervals:
        overdue |= Q(
            device__report_interval_minutes=minutes,
            last_seen_at__lt=moment - timedelta(minutes=2 * minutes),
        )
    if not intervals:
        return 0
    with transaction.atomic():
        # Across tenants: a beat sweep. Rows being written by ingestion are skipped this round.
        states = list(
            DeviceState.unscoped.select_for_update(skip_locked=True, of=("self",))
            .filter(overdue, is_online=True, device__retired_at__isnull=True)
            .values_list("device_id", "reseller_id", "last_seen_at")
            .order_by("device_id")[:limit]
        )
        if not states:
            return 0
        # The offline alert raised below is open beside those of the device's last report.
        DeviceState.unscoped.filter(device_id__in=[s[0] for s in states]).update(
            is_online=False, offline_since=moment, open_alert_count=F("open_alert_count") + 1
        )
        Alert.unscoped.bulk_create(
            [
                Alert(
                    reseller_id=reseller_id,
                    device_id=device_id,
                    code=Alert.OFFLINE_CODE,
                    episode=moment,
                    severity=Alert.Severity.WARNING,
                    description=f"No report since {last_seen:%Y-%m-%d %H:%M} UTC.",
                    first_seen_at=moment,
                    last_seen_at=moment,
                )
                for device_id, reseller_id, last_seen in states
            ],
            ignore_conflicts=True,
        )
        _offline_webhooks_emit(states, moment)
    alert_ids = list(
        Alert.unscoped.filter(
            device_id__in=[s[0] for s in states], code=Alert.OFFLINE_CODE, episode=moment
        ).values_list("pk", flat=True)
    )
    transaction.on_commit(lambda: _enqueue_alerts_notify(alert_ids))
    return len(states)


def _offline_webhooks_emit(states: list[tuple[int, int, datetime]], moment: datetime) -> None:
    """device.offline for the devices of resellers listening for it; the data is read only
    for them (a sweep may mark thousands offline at once)."""
    from integrations.models import Event
    from integrations.services import Emitted, webhook_resellers_listening, webhooks_emit

    listening = webhook_resellers_listening(
        reseller_ids=[s[1] for s in states], event=Event.DEVICE_OFFLINE
    )
    if not listening:
        return
    last_seen = {device_id: seen for device_id, _, seen in states}
    devices = Device.unscoped.filter(pk__in=[s[0] for s in states if s[1] in listening]).order_by(
        "pk"
    )
    webhooks_emit(
        events=[
            Emitted(
                reseller_id=device.reseller_id,
                event=Event.DEVICE_OFFLINE,
                data={
                    "device": {
                        "id": device.pk,
                        "serial": device.serial,
                        "name": device.name,
                        "model": device.model,
                        "customer": device.customer_id,
                        "site": device.site_id,
                    },
                    "last_seen_at": last_seen[device.pk],
                    "offline_since": moment,
                },
            )
            for device in devices
        ]
    )


def _enqueue_alerts_notify(alert_ids: list[int]) -> None:
    from devices.tasks import alerts_notify_task

    try:
        alerts_notify_task.apply_async(kwargs={"alert_ids": alert_ids}, retry=False)
    except Exception:  # the broker is down: the next sweep picks the alerts up
        log.warning("could not enqueue alerts_notify; left to the sweep", exc_info=True)


def alerts_notify_sweep(*, limit: int = 1000) -> int:
    """Alerts never notified (their task was lost)."""
    pending = list(
        Alert.unscoped.filter(notified_at=None, cleared_at=None)
        .order_by("pk")
        .values_list("pk", flat=True)[:limit]
    )
    return alerts_notify(alert_ids=pending)
