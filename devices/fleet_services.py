"""Writes of the fleet pages: rename, move, retire and annotate a device; acknowledge and snooze
its alerts. Each takes the tenant context first, checks the role, finds its rows through
`for_tenant(ctx)` (another reseller's id is not found: 404, nothing changed) and writes its audit
row in the transaction of the change.

Moving a device keeps its history with it: readings, snapshots, alerts and jobs hang off the
device, and the customer columns copied beside it (hot state, forecasts, supply alerts, cartridge
replacements, its own reorder policy, its direct-connect credential) follow it. Billing follows
contract membership, never the device's customer, so a move or a retirement never changes a
membership silently: when the device is in a contract that has not ended, the caller must say
whether the membership is kept (the old contract goes on billing it) or ends on a given day.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, timedelta
from typing import TYPE_CHECKING, Any

from django.db import transaction
from django.db.models import Q
from django.utils.timezone import now
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts.models import Site
from accounts.services import audit_record
from devices.models import Alert, Credential, Device, DeviceNote, DeviceState
from portal.errors import ConflictError, DomainError, NotFoundError, PermissionDeniedError
from portal.tenancy import ADMIN_ROLES, Role, TenantContext

if TYPE_CHECKING:
    from billing.models import ContractDevice

# Who may rename, move, retire and import devices: the reseller's administrators.
DEVICE_ADMIN_ROLES = ADMIN_ROLES | {Role.SYSTEM}
# Who works the fleet day to day: notes, acknowledging and snoozing alerts.
FLEET_STAFF_ROLES = ADMIN_ROLES | {Role.RESELLER_SUPPORT, Role.SYSTEM}

NOTE_MAX_CHARS = 4000
# A snooze is for "not now", not "never": at most thirty days.
SNOOZE_MAX_HOURS = 24 * 30


class ContractAction:
    """What happens to a device's contract membership when it moves to another customer or is
    retired. No default on purpose: the caller decides, having been shown both."""

    KEEP = "keep"
    END = "end"
    CHOICES = (
        (KEEP, gettext_lazy("Keep the membership: the contract goes on billing this printer")),
        (END, gettext_lazy("End the membership on the given day")),
    )


def _require(ctx: TenantContext, roles: frozenset[Role], what: str) -> None:
    if ctx.role not in roles:
        raise PermissionDeniedError(_("Your role may not %(what)s.") % {"what": what})


def today_utc() -> date:
    return now().astimezone(UTC).date()


def _device_for_update(ctx: TenantContext, device_id: int) -> Device:
    device = (
        Device.objects.for_tenant(ctx)
        .select_for_update(of=("self",))
        .select_related("customer", "site")
        .filter(pk=device_id)
        .first()
    )
    if device is None:
        raise NotFoundError(_("No such device."))
    return device


# --- Rename -------------------------------------------------------------------------------------


def device_rename(*, ctx: TenantContext, device_id: int, name: str) -> Device:
    """The portal's label for the device; empty goes back to model and serial."""
    _require(ctx, DEVICE_ADMIN_ROLES, _("rename devices"))
    name = name.strip()
    with transaction.atomic():
        device = _device_for_update(ctx, device_id)
        if len(name) > 200:
            message = "At most 200 characters."
            raise DomainError(message, fields={"name": [message]})
        old = device.name
        if old == name:
            return device
        device.name = name
        device.updated_at = now()
        device.save(update_fields=["name", "updated_at"])
        audit_record(ctx=ctx, action="device.rename", obj=device, detail={"old": old, "new": name})
    return device


# --- Contract membership (shared by move and retire) --------------------------------------------


def device_memberships_running(
    *, ctx: TenantContext, device_id: int, on: date
) -> list[ContractDevice]:
    """The device's contract memberships that still bill it on or after `on`."""
    from billing.models import ContractDevice

    return list(
        ContractDevice.objects.for_tenant(ctx)
        .filter(Q(left_on__isnull=True) | Q(left_on__gt=on), device_id=device_id)
        .select_related("contract", "contract__customer")
        .order_by("joined_on", "pk")
    )


def _memberships_apply(
    ctx: TenantContext,
    device: Device,
    *,
    contract_action: str,
    effective_on: date,
    reason: str,
) -> list[dict[str, str]]:
    """Carry out the caller's decision on the device's running memberships; refuse without one."""
    from billing.services import contract_device_remove

    running = device_memberships_running(ctx=ctx, device_id=device.pk, on=effective_on)
    if not running:
        return []
    if contract_action not in (ContractAction.KEEP, ContractAction.END):
        references = ", ".join(m.contract.reference for m in running)
        message = (
            _(
                "This printer is billed under contract %(references)s: choose whether the "
                "membership is kept or ends when it moves."
            )
            if reason == "moves"
            else _(
                "This printer is billed under contract %(references)s: choose whether the "
                "membership is kept or ends when it retires."
            )
        )
        raise DomainError(
            message % {"references": references},
            code="contract_decision_required",
            fields={"contract_action": [_("Keep or end the contract membership.")]},
        )
    done = []
    for membership in running:
        if contract_action == ContractAction.END:
            if membership.joined_on >= effective_on:
                raise DomainError(
                    _(
                        "The printer joins contract %(reference)s only on %(joined_on)s: "
                        "remove that membership on the contract's page."
                    )
                    % {
                        "reference": membership.contract.reference,
                        "joined_on": membership.joined_on,
                    },
                    code="membership_not_started",
                    fields={
                        "effective_on": [
                            _("After %(joined_on)s.") % {"joined_on": membership.joined_on}
                        ]
                    },
                )
            contract_device_remove(ctx=ctx, contract_device_id=membership.pk, left_on=effective_on)
        done.append(
            {
                "contract": membership.contract.reference,
                "action": contract_action,
                "left_on": str(effective_on) if contract_action == ContractAction.END else "",
            }
        )
    return done


# --- Move ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeviceMovePlan:
    """What a move would do, for the confirmation page (read only)."""

    device: Device
    site: Site
    is_customer_change: bool
    memberships: list[ContractDevice] = field(default_factory=list)
    effective_on: date = field(default_factory=today_utc)


def device_move_plan(*, ctx: TenantContext, device_id: int, site_id: int) -> DeviceMovePlan:
    from devices.fleet_selectors import device_get

    device = device_get(ctx=ctx, device_id=device_id)
    site = _site_get(ctx, site_id)
    is_customer_change = site.customer_id != device.customer_id
    today = today_utc()
    memberships = (
        device_memberships_running(ctx=ctx, device_id=device.pk, on=today)
        if is_customer_change
        else []
    )
    return DeviceMovePlan(device, site, is_customer_change, memberships, today)


def _site_get(ctx: TenantContext, site_id: int) -> Site:
    site = Site.objects.for_tenant(ctx).select_related("customer").filter(pk=site_id).first()
    if site is None:
        raise NotFoundError(_("No such site."), fields={"site": [_("No such site.")]})
    return site


def device_move(
    *,
    ctx: TenantContext,
    device_id: int,
    site_id: int,
    contract_action: str = "",
    effective_on: date | None = None,
) -> Device:
    """Move a device to another site, of its customer or of another customer of the reseller.

    Within the customer nothing about billing changes. To another customer, the device's running
    contract memberships (a contract bills its own customer) are kept or ended on `effective_on`
    as `contract_action` says; without a decision the move is refused. The old customer's
    collectors may no longer report the device (ingestion checks the customer)."""
    _require(ctx, DEVICE_ADMIN_ROLES, _("move devices"))
    effective_on = effective_on or today_utc()
    with transaction.atomic():
        device = _device_for_update(ctx, device_id)
        site = _site_get(ctx, site_id)
        if site.pk == device.site_id:
            raise DomainError(
                _("The printer is at this site already."),
                code="same_site",
                fields={"site": [_("Choose another site.")]},
            )
        old_site, old_customer = device.site, device.customer
        is_customer_change = site.customer_id != device.customer_id
        contract = []
        if is_customer_change:
            contract = _memberships_apply(
                ctx,
                device,
                contract_action=contract_action,
                effective_on=effective_on,
                reason="moves",
            )
        device.site = site
        device.customer = site.customer
        device.updated_at = now()
        device.save(update_fields=["site", "customer", "updated_at"])
        if is_customer_change:
            _customer_columns_follow(ctx, device)
        audit_record(
            ctx=ctx,
            action="device.move",
            obj=device,
            detail={
                "serial": device.serial,
                "from_customer": old_customer.name,
                "from_site": old_site.name,
                "to_customer": site.customer.name,
                "to_site": site.name,
                "contracts": contract,
            },
        )
    return device


def _customer_columns_follow(ctx: TenantContext, device: Device) -> None:
    """Rows that copy the device's customer beside it (for scoping) follow it to the new one."""
    from orders.models import CartridgeReplacement, ReorderPolicy, SupplyAlert, SupplyForecast

    customer_id = device.customer_id
    DeviceState.objects.for_tenant(ctx).filter(device=device).update(customer_id=customer_id)
    Credential.objects.for_tenant(ctx).filter(kind=Credential.Kind.DIRECT, device=device).update(
        customer_id=customer_id
    )
    SupplyForecast.objects.for_tenant(ctx).filter(supply__device=device).update(
        customer_id=customer_id
    )
    for model in (SupplyAlert, CartridgeReplacement, ReorderPolicy):
        model.objects.for_tenant(ctx).filter(device=device).update(customer_id=customer_id)


# --- Retire -------------------------------------------------------------------------------------


def device_retire_plan(*, ctx: TenantContext, device_id: int) -> tuple[Device, list[Any]]:
    from devices.fleet_selectors import device_get

    device = device_get(ctx=ctx, device_id=device_id)
    return device, device_memberships_running(ctx=ctx, device_id=device.pk, on=today_utc())


def device_retire(
    *,
    ctx: TenantContext,
    device_id: int,
    contract_action: str = "",
    effective_on: date | None = None,
) -> Device:
    """Take a device out of service: it leaves the fleet lists, the alert counts and the offline
    sweep. Its history stays, and telemetry it still sends is stored (it stays retired, and its
    alerts are not emailed), so nothing is lost if it was retired by mistake. A running contract
    membership is kept or ended as `contract_action` says."""
    _require(ctx, DEVICE_ADMIN_ROLES, _("retire devices"))
    effective_on = effective_on or today_utc()
    with transaction.atomic():
        device = _device_for_update(ctx, device_id)
        if device.retired_at is not None:
            raise ConflictError(_("This printer is retired already."), code="device_retired")
        contract = _memberships_apply(
            ctx,
            device,
            contract_action=contract_action,
            effective_on=effective_on,
            reason="retires",
        )
        device.retired_at = device.updated_at = now()
        device.save(update_fields=["retired_at", "updated_at"])
        audit_record(
            ctx=ctx,
            action="device.retire",
            obj=device,
            detail={"serial": device.serial, "contracts": contract},
        )
    return device


def device_unretire(*, ctx: TenantContext, device_id: int) -> Device:
    """Back in service; contract memberships ended at retirement are not restored."""
    _require(ctx, DEVICE_ADMIN_ROLES, _("return devices to service"))
    with transaction.atomic():
        device = _device_for_update(ctx, device_id)
        if device.retired_at is None:
            raise ConflictError(_("This printer is in service."), code="device_in_service")
        device.retired_at = None
        device.updated_at = now()
        device.save(update_fields=["retired_at", "updated_at"])
        audit_record(
            ctx=ctx, action="device.unretire", obj=device, detail={"serial": device.serial}
        )
    return device


# --- Notes --------------------------------------------------------------------------------------


def device_note_add(*, ctx: TenantContext, device_id: int, body: str) -> DeviceNote:
    _require(ctx, FLEET_STAFF_ROLES, _("write device notes"))
    body = body.strip()
    with transaction.atomic():
        # Found first: another tenant's device is a 404 whatever the input.
        device = Device.objects.for_tenant(ctx).filter(pk=device_id).first()
        if device is None:
            raise NotFoundError(_("No such device."))
        if not body or len(body) > NOTE_MAX_CHARS:
            message = f"Write a note of at most {NOTE_MAX_CHARS} characters."
            raise DomainError(message, fields={"body": [message]})
        user = ctx.user if ctx.user is not None and ctx.user.pk else None
        note = DeviceNote.objects.for_tenant(ctx).create(
            reseller_id=ctx.reseller_id,
            device=device,
            author=user,
            author_email=user.email if user is not None else "",
            body=body,
        )
        audit_record(
            ctx=ctx, action="device.note", obj=device, detail={"note": note.pk, "chars": len(body)}
        )
    return note


# --- Alerts -------------------------------------------------------------------------------------


def _alert_for_update(ctx: TenantContext, alert_id: int) -> Alert:
    alert = (
        Alert.objects.for_tenant(ctx)
        .select_for_update(of=("self",))
        .select_related("device")
        .filter(pk=alert_id)
        .first()
    )
    if alert is None:
        raise NotFoundError(_("No such alert."))
    if alert.cleared_at is not None:
        raise ConflictError(_("The printer has cleared this alert already."), code="alert_cleared")
    return alert


def _actor(ctx: TenantContext) -> Any:
    return ctx.user if ctx.user is not None and ctx.user.pk else None


def alert_acknowledge(*, ctx: TenantContext, alert_id: int) -> Alert:
    """Mark an open alert as seen, by whom and when; it stays open until the printer clears it."""
    _require(ctx, FLEET_STAFF_ROLES, _("acknowledge alerts"))
    with transaction.atomic():
        alert = _alert_for_update(ctx, alert_id)
        if alert.acknowledged_at is not None:
            raise ConflictError(_("This alert is acknowledged already."), code="alert_acknowledged")
        alert.acknowledged_at = now()
        alert.acknowledged_by = _actor(ctx)
        alert.save(update_fields=["acknowledged_at", "acknowledged_by"])
        audit_record(
            ctx=ctx,
            action="alert.acknowledge",
            obj=alert.device,
            detail={"alert": alert.pk, "code": alert.code},
        )
    return alert


def alert_snooze(*, ctx: TenantContext, alert_id: int, hours: int) -> Alert:
    """Hide an open alert from the open alerts and their counts for `hours`."""
    _require(ctx, FLEET_STAFF_ROLES, _("snooze alerts"))
    with transaction.atomic():
        # Found first: another tenant's alert is a 404 whatever the input.
        alert = _alert_for_update(ctx, alert_id)
        if not 1 <= hours <= SNOOZE_MAX_HOURS:
            message = f"Snooze for 1 to {SNOOZE_MAX_HOURS} hours."
            raise DomainError(message, fields={"hours": [message]})
        alert.snoozed_until = now() + timedelta(hours=hours)
        alert.snoozed_by = _actor(ctx)
        alert.save(update_fields=["snoozed_until", "snoozed_by"])
        audit_record(
            ctx=ctx,
            action="alert.snooze",
            obj=alert.device,
            detail={
                "alert": alert.pk,
                "code": alert.code,
                "until": alert.snoozed_until.isoformat(),
            },
        )
    return alert


def alert_unsnooze(*, ctx: TenantContext, alert_id: int) -> Alert:
    _require(ctx, FLEET_STAFF_ROLES, _("snooze alerts"))
    with transaction.atomic():
        alert = _alert_for_update(ctx, alert_id)
        if alert.snoozed_until is None or alert.snoozed_until <= now():
            raise ConflictError(_("This alert is not snoozed."), code="alert_not_snoozed")
        alert.snoozed_until = None
        alert.snoozed_by = None
        alert.save(update_fields=["snoozed_until", "snoozed_by"])
        audit_record(ctx=ctx, action="alert.unsnooze", obj=alert.device, detail={"alert": alert.pk})
    return alert
