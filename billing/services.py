"""Writes of price plans, contracts, device memberships and counter corrections.

Statements (compute, finalise, adjust, close) live in billing/statement_services.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Max, Q
from django.utils.translation import gettext as _

from accounts.models import Customer, Reseller
from accounts.services import audit_record
from billing.models import (
    Contract,
    ContractDevice,
    CounterCorrection,
    PlanRate,
    PlanTier,
    PlanVersion,
    PricePlan,
    Statement,
)
from billing.pricing import MONEY, UNITS, Tier, number_problem, tiers_valid
from devices.models import Device
from portal.errors import ConflictError, DomainError, NotFoundError, PermissionDeniedError
from portal.money import CURRENCIES
from portal.tenancy import ADMIN_ROLES, Role, TenantContext

# Who may change plans, contracts and corrections; finance also finalises (statement services).
BILLING_ADMIN_ROLES = ADMIN_ROLES | {Role.RESELLER_FINANCE, Role.SYSTEM}


def _require_billing_admin(ctx: TenantContext) -> None:
    if ctx.role not in BILLING_ADMIN_ROLES:
        raise PermissionDeniedError(_("Only a reseller admin or finance user may do this."))


@dataclass(frozen=True)
class RateSpec:
    """One counter's price in a plan version, as entered."""

    counter: str
    media_type: str = ""
    color: str = ""
    mode: str = PlanRate.Mode.GRADUATED
    scope: str = PlanRate.Scope.DEVICE
    included_units: Decimal = Decimal(0)
    tiers: tuple[Tier, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class Terms:
    """A plan version's terms."""

    effective_from: date
    monthly_fee_per_device: Decimal = Decimal(0)
    minimum_monthly: Decimal = Decimal(0)
    tax_rate: Decimal = Decimal(0)
    rates: tuple[RateSpec, ...] = ()


def _validate_terms(terms: Terms) -> None:
    for name in ("monthly_fee_per_device", "minimum_monthly", "tax_rate"):
        problem = number_problem(getattr(terms, name), MONEY)
        if problem:
            raise DomainError(problem, fields={name: [problem]})
    if terms.tax_rate > 100:
        raise DomainError(
            _("A tax rate is a percentage."), fields={"tax_rate": [_("At most 100.")]}
        )
    seen: set[tuple[str, str, str]] = set()
    for rate in terms.rates:
        key = (rate.counter, rate.media_type, rate.color)
        if not rate.counter:
            raise DomainError(_("Every rate names a counter."), fields={"rates": [_("Counter?")]})
        if key in seen:
            raise DomainError(
                _("%(counter)s is priced twice.") % {"counter": rate.counter},
                fields={"rates": [_("Each counter once.")]},
            )
        seen.add(key)
        if rate.mode not in PlanRate.Mode.values or rate.scope not in PlanRate.Scope.values:
            raise DomainError(_("Unknown tier mode or allowance scope."))
        problem = number_problem(rate.included_units, UNITS)
        if problem:
            raise DomainError(
                _("%(counter)s allowance: %(problem)s")
                % {"counter": rate.counter, "problem": problem},
                fields={"rates": [problem]},
            )
        problem = tiers_valid(rate.tiers)
        if problem:
            raise DomainError(f"{rate.counter}: {problem}", fields={"rates": [problem]})


def _write_version(version: PlanVersion, terms: Terms) -> None:
    for spec in terms.rates:
        rate = PlanRate.objects.create(
            version=version,
            counter=spec.counter,
            media_type=spec.media_type,
            color=spec.color,
            mode=spec.mode,
            scope=spec.scope,
            included_units=spec.included_units,
        )
        PlanTier.objects.bulk_create(
            PlanTier(
                rate=rate,
                from_units=t.from_units,
                to_units=t.to_units,
                unit_price=t.unit_price,
            )
            for t in spec.tiers
        )


def plan_create(
    *, ctx: TenantContext, name: str, currency: str, terms: Terms, description: str = ""
) -> PricePlan:
    _require_billing_admin(ctx)
    name = name.strip()
    if not name:
        raise DomainError(
            _("A plan needs a name."), fields={"name": [_("This field is required.")]}
        )
    if currency not in CURRENCIES:
        raise DomainError(
            _("Unknown currency."), fields={"currency": [_("Pick a listed currency.")]}
        )
    _validate_terms(terms)
    if PricePlan.objects.for_tenant(ctx).filter(name__iexact=name).exists():
        raise ConflictError(
            _("A plan named %(name)s exists already.") % {"name": repr(name)},
            code="plan_exists",
            fields={"name": [_("A plan with this name exists already.")]},
        )
    with transaction.atomic():
        plan = PricePlan.objects.for_tenant(ctx).create(
            reseller_id=ctx.reseller_id, name=name, currency=currency, description=description
        )
        version = PlanVersion.objects.for_tenant(ctx).create(
            reseller_id=ctx.reseller_id,
            plan=plan,
            number=1,
            effective_from=terms.effective_from,
            monthly_fee_per_device=terms.monthly_fee_per_device,
            minimum_monthly=terms.minimum_monthly,
            tax_rate=terms.tax_rate,
            created_by=ctx.user if ctx.user is not None and ctx.user.pk else None,
        )
        _write_version(version, terms)
        audit_record(ctx=ctx, action="plan.create", obj=plan, detail={"name": name})
    return plan


def plan_revise(*, ctx: TenantContext, plan_id: int, terms: Terms) -> PlanVersion:
    """New terms from `terms.effective_from`. A version no final statement used is edited in
    place when the date matches; otherwise a new version starts on that date. Terms that would
    reprice a final statement are refused: corrections of those are adjustments."""
    _require_billing_admin(ctx)
    _validate_terms(terms)
    with transaction.atomic():
        plan = PricePlan.objects.for_tenant(ctx).select_for_update().filter(pk=plan_id).first()
        if plan is None:
            raise NotFoundError(_("No such plan."))
        final_after = Statement.objects.for_tenant(ctx).filter(
            plan_version__plan=plan,
            status=Statement.Status.FINAL,
            period_end__gt=terms.effective_from,
        )
        if final_after.exists():
            raise ConflictError(
                _("Final statements cover this date; choose a later effective date."),
                code="plan_version_used",
                fields={"effective_from": [_("After the last finalised period.")]},
            )
        versions = PlanVersion.objects.for_tenant(ctx).filter(plan=plan)
        version = versions.filter(effective_from=terms.effective_from).first()
        fields = {
            "monthly_fee_per_device": terms.monthly_fee_per_device,
            "minimum_monthly": terms.minimum_monthly,
            "tax_rate": terms.tax_rate,
        }
        if version is None:
            number = (versions.aggregate(n=Max("number"))["n"] or 0) + 1
            version = versions.create(
                reseller_id=ctx.reseller_id,
                plan=plan,
                number=number,
                effective_from=terms.effective_from,
                created_by=ctx.user if ctx.user is not None and ctx.user.pk else None,
                **fields,
            )
        else:
            for key, value in fields.items():
                setattr(version, key, value)
            version.save(update_fields=list(fields))
            PlanRate.objects.filter(version=version).delete()
        _write_version(version, terms)
        audit_record(
            ctx=ctx,
            action="plan.revise",
            obj=plan,
            detail={"version": version.number, "effective_from": str(terms.effective_from)},
        )
    return version


# --- Contracts and memberships -----------------------------------------------------------------


def contract_create(
    *,
    ctx: TenantContext,
    customer_id: int,
    plan_id: int,
    reference: str,
    starts_on: date,
    ends_on: date | None = None,
    anchor_day: int = 1,
    purchase_order: str = "",
    missing_data: str = Contract.MissingData.ESTIMATE,
) -> Contract:
    _require_billing_admin(ctx)
    reference = reference.strip()
    if not reference:
        raise DomainError(
            _("A contract needs a reference."), fields={"reference": [_("Required.")]}
        )
    if not 1 <= anchor_day <= 28:
        raise DomainError(_("Anchor day 1 to 28."), fields={"anchor_day": [_("Between 1 and 28.")]})
    if ends_on is not None and ends_on <= starts_on:
        raise DomainError(
            _("The contract ends after it starts."), fields={"ends_on": [_("Later.")]}
        )
    if missing_data not in Contract.MissingData.values:
        raise DomainError(_("Unknown missing-data rule."))
    customer = Customer.objects.for_tenant(ctx).filter(pk=customer_id).first()
    plan = PricePlan.objects.for_tenant(ctx).filter(pk=plan_id).first()
    if customer is None or plan is None:
        raise NotFoundError(_("No such customer or plan."))
    if Contract.objects.for_tenant(ctx).filter(reference__iexact=reference).exists():
        raise ConflictError(
            _("Contract %(reference)s exists already.") % {"reference": repr(reference)},
            code="contract_exists",
            fields={"reference": [_("Another contract has this reference.")]},
        )
    with transaction.atomic():
        contract = Contract.objects.for_tenant(ctx).create(
            reseller_id=ctx.reseller_id,
            customer=customer,
            plan=plan,
            reference=reference,
            purchase_order=purchase_order.strip(),
            anchor_day=anchor_day,
            starts_on=starts_on,
            ends_on=ends_on,
            missing_data=missing_data,
        )
        audit_record(ctx=ctx, action="contract.create", obj=contract, detail={"ref": reference})
    return contract


def contract_update(
    *,
    ctx: TenantContext,
    contract_id: int,
    purchase_order: str | None = None,
    ends_on: date | None = None,
    missing_data: str | None = None,
) -> Contract:
    """Change the PO reference, the missing-data rule or end the contract (which ends the
    memberships still open then)."""
    _require_billing_admin(ctx)
    with transaction.atomic():
        contract = (
            Contract.objects.for_tenant(ctx).select_for_update().filter(pk=contract_id).first()
        )
        if contract is None:
            raise NotFoundError(_("No such contract."))
        changed: dict[str, Any] = {}
        if purchase_order is not None:
            changed["purchase_order"] = purchase_order.strip()
        if missing_data is not None:
            if missing_data not in Contract.MissingData.values:
                raise DomainError(_("Unknown missing-data rule."))
            changed["missing_data"] = missing_data
        if ends_on is not None:
            if ends_on <= contract.starts_on:
                raise DomainError(
                    _("The contract ends after it starts."), fields={"ends_on": ["?"]}
                )
            changed["ends_on"] = ends_on
            memberships = ContractDevice.objects.for_tenant(ctx).filter(contract=contract)
            if memberships.filter(joined_on__gte=ends_on).exists():
                raise ConflictError(
                    _("Devices join after this end date."), fields={"ends_on": [_("Too early.")]}
                )
            memberships.filter(Q(left_on__isnull=True) | Q(left_on__gt=ends_on)).update(
                left_on=ends_on
            )
        for key, value in changed.items():
            setattr(contract, key, value)
        contract.save(update_fields=list(changed))
        audit_record(ctx=ctx, action="contract.update", obj=contract, detail=_jsonable(changed))
    return contract


def contract_device_add(
    *, ctx: TenantContext, contract_id: int, device_id: int, joined_on: date
) -> ContractDevice:
    """A device joins a contract on `joined_on`; it may be in one contract at a time."""
    _require_billing_admin(ctx)
    with transaction.atomic():
        contract = Contract.objects.for_tenant(ctx).filter(pk=contract_id).first()
        # Lock the device: two concurrent assignments of one printer are serialised here.
        device = Device.objects.for_tenant(ctx).select_for_update().filter(pk=device_id).first()
        if contract is None or device is None:
            raise NotFoundError(_("No such contract or device."))
        if device.customer_id != contract.customer_id:
            raise DomainError(
                _("This printer belongs to another customer."),
                fields={"device": [_("Other customer.")]},
            )
        if joined_on < contract.starts_on or (
            contract.ends_on is not None and joined_on >= contract.ends_on
        ):
            raise DomainError(
                _("The device joins within the contract's term."),
                fields={"joined_on": [_("Within the contract's term.")]},
            )
        overlapping = ContractDevice.objects.for_tenant(ctx).filter(
            Q(left_on__isnull=True) | Q(left_on__gt=joined_on), device=device
        )
        if overlapping.exists():
            raise ConflictError(
                _("This printer is in a contract on that date already."),
                code="device_in_contract",
                fields={"device": [_("Already in a contract then.")]},
            )
        try:
            with transaction.atomic():
                membership = ContractDevice.objects.for_tenant(ctx).create(
                    reseller_id=ctx.reseller_id,
                    contract=contract,
                    device=device,
                    joined_on=joined_on,
                    left_on=contract.ends_on,
                )
        except IntegrityError as exc:
            raise ConflictError(
                _("This printer is in a contract on that date already."), code="device_in_contract"
            ) from exc
        audit_record(
            ctx=ctx,
            action="contract.device_add",
            obj=contract,
            detail={"device": device.serial, "joined_on": str(joined_on)},
        )
    return membership


def contract_device_remove(
    *, ctx: TenantContext, contract_device_id: int, left_on: date
) -> ContractDevice:
    """The device leaves on `left_on` (the first day no longer billed)."""
    _require_billing_admin(ctx)
    with transaction.atomic():
        membership = (
            ContractDevice.objects.for_tenant(ctx)
            .select_for_update()
            .select_related("contract", "device")
            .filter(pk=contract_device_id)
            .first()
        )
        if membership is None:
            raise NotFoundError(_("No such contract device."))
        if left_on <= membership.joined_on:
            raise DomainError(
                _("A device leaves after it joined."),
                fields={"left_on": [_("After the join date.")]},
            )
        if membership.left_on is not None and left_on > membership.left_on:
            raise DomainError(
                _("The device has left already."), fields={"left_on": [_("Earlier.")]}
            )
        membership.left_on = left_on
        membership.save(update_fields=["left_on"])
        audit_record(
            ctx=ctx,
            action="contract.device_remove",
            obj=membership.contract,
            detail={"device": membership.device.serial, "left_on": str(left_on)},
        )
    return membership


# --- Counter corrections ----------------------------------------------------------------------


def correction_create(
    *,
    ctx: TenantContext,
    device_id: int,
    counter: str,
    kind: str,
    effective_at: datetime,
    value: Decimal,
    note: str,
    media_type: str = "",
    color: str = "",
    old_value: Decimal | None = None,
) -> CounterCorrection:
    """A manual meter read, or a board swap after which the counter restarts at `value`."""
    _require_billing_admin(ctx)
    if kind not in CounterCorrection.Kind.values:
        raise DomainError(_("Unknown correction."), fields={"kind": [_("Choose one.")]})
    if not note.strip():
        raise DomainError(_("Say why."), fields={"note": [_("A note is required.")]})
    if value < 0 or (old_value is not None and old_value < 0):
        raise DomainError(_("Counters are never negative."), fields={"value": [_("Zero or more.")]})
    if old_value is not None and kind != CounterCorrection.Kind.BOARD_SWAP:
        raise DomainError(_("Only a board swap has an old board's count."))
    device = Device.objects.for_tenant(ctx).filter(pk=device_id).first()
    if device is None:
        raise NotFoundError(_("No such device."))
    user = ctx.user if ctx.user is not None and ctx.user.pk else None
    with transaction.atomic():
        correction = CounterCorrection.objects.for_tenant(ctx).create(
            reseller_id=ctx.reseller_id,
            device=device,
            counter=counter.strip(),
            media_type=media_type.strip(),
            color=color.strip(),
            kind=kind,
            effective_at=effective_at,
            value=value,
            old_value=old_value,
            note=note.strip(),
            entered_by=user,
            entered_by_email=user.email if user is not None else "system",
        )
        audit_record(
            ctx=ctx,
            action="counter.correct",
            obj=device,
            detail={"counter": counter, "kind": kind, "value": str(value)},
        )
    return correction


def _jsonable(fields: dict[str, Any]) -> dict[str, Any]:
    return {
        k: v if isinstance(v, str | int | bool) or v is None else str(v) for k, v in fields.items()
    }


# --- Demo data -----------------------------------------------------------------------------------


def plan_terms_demo(effective_from: date) -> Terms:
    return Terms(
        effective_from=effective_from,
        monthly_fee_per_device=Decimal("12.50"),
        minimum_monthly=Decimal("50.00"),
        tax_rate=Decimal("19.00"),
        rates=(
            RateSpec(
                counter="impressions.mono",
                included_units=Decimal(500),
                tiers=(
                    Tier(Decimal(0), Decimal(5000), Decimal("0.0120")),
                    Tier(Decimal(5000), None, Decimal("0.0090")),
                ),
            ),
            # Total impressions are not priced: they are mono plus colour, billed above.
            RateSpec(
                counter="impressions.color",
                included_units=Decimal(200),
                scope=PlanRate.Scope.POOLED,
                mode=PlanRate.Mode.VOLUME,
                tiers=(
                    Tier(Decimal(0), Decimal(10000), Decimal("0.0650")),
                    Tier(Decimal(10000), None, Decimal("0.0550")),
                ),
            ),
            RateSpec(counter="media.area", tiers=(Tier(Decimal(0), None, Decimal("1.8500")),)),
            RateSpec(counter="ink.used", tiers=(Tier(Decimal(0), None, Decimal("0.1200")),)),
        ),
    )


def seed_demo_billing(reseller: Reseller, *, today: date | None = None) -> Contract | None:
    """A demo plan, a contract per customer with its printers, and draft statements of the
    last closed period. Idempotent: a second run finds the plan and leaves things as they are."""
    from django.utils.timezone import now

    from billing import statement_services
    from billing.pricing import period_before, period_containing

    today = today or now().date()
    ctx = TenantContext.system(reseller=reseller)
    if PricePlan.objects.for_tenant(ctx).filter(name="Pay per page · Standard").exists():
        return None
    current_start, _ = period_containing(today, 1)
    last_start, _ = period_before(current_start, 1)
    first_start, _ = period_before(last_start, 1)
    plan = plan_create(
        ctx=ctx,
        name="Pay per page · Standard",
        currency="EUR",
        description="Mono and colour impressions with included pages, media by area.",
        terms=plan_terms_demo(first_start),
    )
    first_contract = None
    for index, customer in enumerate(Customer.objects.for_tenant(ctx).order_by("name", "pk")):
        devices = Device.objects.for_tenant(ctx).filter(customer=customer).order_by("serial")
        if not devices.exists():
            continue
        contract = contract_create(
            ctx=ctx,
            customer_id=customer.pk,
            plan_id=plan.pk,
            reference=f"PPU-{today.year}-{index + 1:03d}",
            purchase_order=f"PO-{4500 + index}",
            starts_on=first_start,
        )
        first_contract = first_contract or contract
        for device in devices:
            contract_device_add(
                ctx=ctx, contract_id=contract.pk, device_id=device.pk, joined_on=first_start
            )
        statement_services.statement_compute(
            ctx=ctx, contract_id=contract.pk, period_start=last_start
        )
    return first_contract


__all__: Sequence[str] = [
    "RateSpec",
    "Terms",
    "contract_create",
    "contract_device_add",
    "contract_device_remove",
    "contract_update",
    "correction_create",
    "plan_create",
    "plan_revise",
    "seed_demo_billing",
]
