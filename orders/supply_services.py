"""The work that follows telemetry: match supplies to products, detect cartridge replacements,
forecast days to empty, raise low-supply alerts and email them once, and act on the reorder
policy.

Everything here is re-derivable from stored readings: `supplies_evaluate` may run twice, or
late, or from the beat sweep after a lost task, and reaches the same state (replacements and
open alerts are unique in the database; the alert email is claimed by a conditional UPDATE).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.urls import reverse
from django.utils.timezone import now
from django.utils.translation import gettext as _

from accounts.models import Customer, Reseller
from devices.models import Alert, CounterReading, Device, Supply, SupplyReading
from devices.writer import Writer
from integrations.models import Event
from integrations.services import webhook_emit
from orders import catalog_services, email_services, services
from orders import forecast as fc
from orders.models import (
    CartridgeReplacement,
    EmailLog,
    Order,
    OrderLine,
    Product,
    ReorderPolicy,
    SupplyAlert,
    SupplyEvaluationClaim,
    SupplyForecast,
    SupplyLevelDay,
    SupplyProductMapping,
)
from orders.roles import ORDERING_ROLES, require
from portal import labels, rls
from portal.errors import ConflictError, NotFoundError
from portal.tenancy import TenantContext

log = logging.getLogger(__name__)

# Without a known replacement, this much history is enough to find the current cartridge.
HISTORY = timedelta(days=180)
PAGE_COUNTER = "impressions.total"
# Supplies per sweep run; the rest waits for the next run.
SWEEP_DEVICES = 500


# --- Matching ----------------------------------------------------------------------------------


class Catalog:
    """A reseller's active products and remembered mappings, indexed by what the matching
    rules look up, so that matching a supply costs the same for ten products or ten thousand."""

    def __init__(self, products: list[Product], mappings: dict[tuple[str, str, str, str], int]):
        self.by_pk = {p.pk: p for p in products}
        self.mappings = mappings
        self.by_part: dict[str, list[Product]] = defaultdict(list)
        self.by_model_color: dict[tuple[str, str], list[Product]] = defaultdict(list)
        for p in products:
            self.by_part[p.part_number.strip().lower()].append(p)
            models = p.compatible_models if isinstance(p.compatible_models, list) else []
            for model in dict.fromkeys(m for m in models if isinstance(m, str)):
                self.by_model_color[(model, p.color)].append(p)


def catalog_load(*, reseller_id: int, device_models: set[str]) -> Catalog:
    products = list(
        Product.unscoped.filter(reseller_id=reseller_id, is_active=True).only(
            "pk", "part_number", "color", "kind", "compatible_models", "rated_yield", "yield_unit"
        )
    )
    mappings = {
        (m.part_number, m.device_model, m.kind, m.color): m.product_id
        for m in SupplyProductMapping.unscoped.filter(
            reseller_id=reseller_id, device_model__in=device_models
        )
    }
    return Catalog(products, mappings)


def supply_product_match(
    *, supply: Supply, device_model: str, catalog: Catalog
) -> tuple[Product | None, str]:
    """Part number first, then a remembered mapping, then model and colour (only when exactly
    one product fits: a guess between two would order the wrong cartridge)."""
    part = supply.part_number.strip().lower()
    if part:
        hits = catalog.by_part.get(part, [])
        if len(hits) == 1:
            return hits[0], SupplyForecast.Match.PART_NUMBER
    mapped = catalog.mappings.get((supply.part_number, device_model, supply.kind, supply.color))
    if mapped in catalog.by_pk:
        return catalog.by_pk[mapped], SupplyForecast.Match.MAPPING
    fits = [
        p
        for p in catalog.by_model_color.get((device_model, supply.color), [])
        if device_model and (not supply.kind or p.kind == supply.kind)
    ]
    if len(fits) == 1:
        return fits[0], SupplyForecast.Match.MODEL_COLOR
    return None, SupplyForecast.Match.NONE


def _critical_for(supply: Supply, alerts: list[Alert]) -> bool:
    """A printer's open critical alert names this supply (by kind and colour or key)."""
    for alert in alerts:
        text = f"{alert.code} {alert.description}".lower()
        names_kind = (supply.kind and supply.kind in text) or "supply" in text
        names_this = supply.supply_key.lower() in text or (supply.color and supply.color in text)
        if names_kind and names_this:
            return True
    return False


# --- Evaluation --------------------------------------------------------------------------------
#
# Incremental: each run reads only the readings after the supply's `folded_until`, folds them
# into the replacement detector and the daily series (SupplyLevelDay), and fits the forecast
# line again only when that series moved (forecast.refit_due: a point of level, or a new day).
# Between fits, days to empty count down from the stored line. A run over many supplies costs
# a fixed number of queries (asserted in tests/orders): lookups, readings, and set-based writes;
# only the rare events (a replacement, a new alert, an automatic order) cost queries of their own.

FORECAST_COLUMNS = (
    "supply_id",
    "reseller_id",
    "customer_id",
    "product_id",
    "match",
    "method",
    "is_coarse",
    "days_to_empty",
    "slope_per_day",
    "readings_used",
    "cartridge_since",
    "pages_at_install",
    "evaluated_observed_at",
    "computed_at",
    "empties_at",
    "fitted_at",
    "fitted_percent",
    "day_percent",
    "day_at",
    "day_steps",
    "folded_until",
    "detector",
)
DAY_COLUMNS = ("reseller_id", "supply_id", "day", "percent", "at", "steps")


_UNFITTED = fc.Forecast("insufficient", False, None, None, 0)


@dataclass
class _Run:
    """One supply in one evaluation."""

    supply: Supply
    device: Device
    previous: SupplyForecast | None
    readings: list[fc.Reading]
    detector: fc.Detector
    since: datetime | None  # the current cartridge's start as the last run knew it
    cartridge_since: datetime | None
    pages_at_install: Decimal | None
    newest: fc.DayPoint | None  # the daily series' newest point after this run
    folded_until: datetime | None
    at: datetime  # the moment days to empty are counted from
    refit: bool = False
    result: fc.Forecast = _UNFITTED
    product: Product | None = None
    match: str = ""


def supplies_evaluate(*, device_ids: list[int]) -> int:
    """Evaluate every supply of these devices in service; returns the number evaluated. A
    retired printer's readings are stored but not acted on (no alert, email or reorder)."""
    # System code (a task, the demo seed): each device names its own tenant.
    supplies = list(
        Supply.unscoped.filter(device_id__in=sorted(set(device_ids)), device__retired_at=None)
        .select_related("device", "device__reseller")
        .order_by("device_id", "supply_key")
    )
    by_reseller: dict[int, list[Supply]] = defaultdict(list)
    for supply in supplies:
        by_reseller[supply.reseller_id].append(supply)
    return sum(
        _evaluate(group[0].device.reseller, group) for _, group in sorted(by_reseller.items())
    )


def _evaluate(reseller: Reseller, supplies: list[Supply]) -> int:
    """Evaluate these supplies of one reseller (each loaded with its device)."""
    if not supplies:
        return 0
    moment = now()
    ctx = TenantContext.system(reseller=reseller)
    devices = {s.device_id: s.device for s in supplies}
    forecasts = {
        f.supply_id: f
        for f in SupplyForecast.unscoped.filter(supply_id__in=[s.pk for s in supplies])
    }
    catalog = catalog_load(
        reseller_id=reseller.pk, device_models={d.model for d in devices.values()}
    )
    criticals: dict[int, list[Alert]] = defaultdict(list)
    for alert in Alert.unscoped.filter(
        device_id__in=list(devices), cleared_at=None, severity=Alert.Severity.CRITICAL
    ):
        criticals[alert.device_id].append(alert)
    by_customer: dict[int, list[int]] = defaultdict(list)
    for device in devices.values():
        by_customer[device.customer_id].append(device.pk)
    policies = {
        device_id: policy
        for customer_id, ids in by_customer.items()
        for device_id, policy in catalog_services.policies_effective(
            ctx=ctx, customer_id=customer_id, device_ids=ids
        ).items()
        if device_id is not None
    }
    runs = [_run_start(s, forecasts.get(s.pk), moment) for s in supplies]
    _readings_attach(runs, moment)
    days: list[tuple[Any, ...]] = []
    for run in runs:
        run.product, run.match = supply_product_match(
            supply=run.supply, device_model=run.device.model, catalog=catalog
        )
        days += _run_fold(ctx, run)
    w = Writer()
    w.insert(
        "orders_supplylevelday",
        DAY_COLUMNS,
        days,
        conflict="ON CONFLICT (supply_id, day) DO UPDATE SET percent = EXCLUDED.percent, "
        "at = EXCLUDED.at, steps = EXCLUDED.steps",
    )
    _runs_fit([r for r in runs if r.refit], moment)
    w.insert(
        "orders_supplyforecast",
        FORECAST_COLUMNS,
        [_forecast_row(run, moment) for run in runs],
        conflict="ON CONFLICT (supply_id) DO UPDATE SET "
        + ", ".join(f"{c} = EXCLUDED.{c}" for c in FORECAST_COLUMNS[1:]),
    )
    open_alerts = set(
        SupplyAlert.unscoped.filter(supply_id__in=[r.supply.pk for r in runs])
        .exclude(status=SupplyAlert.Status.CLOSED)
        .values_list("supply_id", flat=True)
    )
    for run in runs:
        policy = policies[run.device.pk]
        reason = _reorder_reason(run.supply, run.result, criticals[run.device.pk], policy)
        if reason is not None and run.supply.pk not in open_alerts:
            _alert_raise(ctx, run.device, run.supply, run.result, reason, run.product, policy)
    return len(runs)


def _run_start(supply: Supply, previous: SupplyForecast | None, moment: datetime) -> _Run:
    state = previous.detector if previous is not None else None
    since = previous.cartridge_since if previous is not None else None
    newest = None
    if previous is not None and state is not None and previous.day_at is not None:
        newest = fc.DayPoint(
            previous.day_at.date(),
            previous.day_percent if previous.day_percent is not None else 0.0,
            previous.day_at,
            previous.day_steps or 0,
        )
    return _Run(
        supply=supply,
        device=supply.device,
        previous=previous,
        readings=[],
        detector=fc.Detector(
            levels=list(state["levels"]) if state else [], serial=state["serial"] if state else ""
        ),
        since=since,
        cartridge_since=since,
        pages_at_install=previous.pages_at_install if previous is not None else None,
        newest=newest,
        folded_until=previous.folded_until if state is not None and previous else None,
        at=supply.observed_at,
    )


def _readings_attach(runs: list[_Run], moment: datetime) -> None:
    """Each run's new readings: those after its `folded_until`, or, for a supply whose history
    was never folded (new, or forecast before the evaluation was incremental), those of the
    current cartridge (at most HISTORY back). Two queries whatever the number of supplies."""
    incremental = {id(r): (r, r.folded_until) for r in runs if r.folded_until is not None}
    fresh = {
        id(r): (r, (r.since or moment - HISTORY) - _TICK) for r in runs if r.folded_until is None
    }
    for group in (incremental, fresh):
        if not group:
            continue
        wanted = {(r.supply.device_id, r.supply.supply_key): (r, t) for r, t in group.values()}
        rows = (
            SupplyReading.unscoped.filter(
                device_id__in={d for d, _ in wanted},
                supply_key__in={k for _, k in wanted},
                collected_at__gt=min(t for _, t in wanted.values()),
            )
            .order_by("collected_at")
            .values_list("device_id", "supply_key", "collected_at", "percent", "serial")
        )
        for device_id, supply_key, at, percent, serial in rows:
            run, after = wanted.get((device_id, supply_key), (None, at))
            if run is not None and at > after:
                run.readings.append(fc.Reading(at, percent, serial))


# A reading at exactly the cartridge's start belongs to it (old `>=` semantics).
_TICK = timedelta(microseconds=1)


def _run_fold(ctx: TenantContext, run: _Run) -> list[tuple[Any, ...]]:
    """Fold the run's new readings into its detector and daily series, record replacements,
    and decide whether the line is fitted again; returns the day rows to write."""
    device, supply = run.device, run.supply
    for replacement in fc.replacements_fold(run.readings, run.detector):
        if run.since is not None and replacement.at <= run.since:
            continue
        pages = _pages_at(device.pk, replacement.at)
        _replacement_record(
            ctx, device, supply, replacement, run.pages_at_install, pages, run.product
        )
        run.cartridge_since, run.pages_at_install = replacement.at, pages
    touched = fc.days_fold(run.readings, run.newest)
    if touched:
        run.newest = touched[-1]
    if run.readings:
        last = run.readings[-1].at
        run.folded_until = max(run.folded_until or last, last)
        # Days from the supply's latest reading, not from now: history that arrives late (a
        # collector back online, a backfill) must not read as long overdue. Silence is the
        # offline sweep's job.
        run.at = max(supply.observed_at, last)
    previous = run.previous
    if (
        previous is not None
        and previous.detector is not None
        and run.cartridge_since == run.since
        and not fc.refit_due(
            fitted_at=previous.fitted_at, fitted_percent=previous.fitted_percent, newest=run.newest
        )
    ):
        run.result = fc.Forecast(
            previous.method,
            previous.is_coarse,
            fc.days_left(previous.empties_at, at=run.at),
            previous.slope_per_day,
            previous.readings_used,
            previous.empties_at,
        )
    else:
        run.refit = True
    return [(device.reseller_id, supply.pk, p.day, p.percent, p.at, p.steps) for p in touched]


def _runs_fit(runs: list[_Run], moment: datetime) -> None:
    """Fit the line of each run through its current cartridge's daily series (one query)."""
    if not runs:
        return
    starts = {r.supply.pk: r.cartridge_since or moment - HISTORY for r in runs}
    series: dict[int, list[fc.DayPoint]] = defaultdict(list)
    rows = (
        SupplyLevelDay.unscoped.filter(
            supply_id__in=list(starts), day__gte=min(starts.values()).date()
        )
        .order_by("day")
        .values_list("supply_id", "day", "percent", "at", "steps")
    )
    for supply_id, day, percent, at, steps in rows:
        if at >= starts[supply_id]:
            series[supply_id].append(fc.DayPoint(day, percent, at, steps))
    for run in runs:
        run.result = fc.forecast_days(series[run.supply.pk], at=run.at)


def _forecast_row(run: _Run, moment: datetime) -> tuple[Any, ...]:
    result, newest, device = run.result, run.newest, run.device
    previous = run.previous
    fitted_at = previous.fitted_at if previous is not None else None
    fitted_percent = previous.fitted_percent if previous is not None else None
    if run.refit:
        fitted_at = newest.at if newest is not None else run.at
        fitted_percent = newest.percent if newest is not None else None
    return (
        run.supply.pk,
        device.reseller_id,
        device.customer_id,
        run.product.pk if run.product is not None else None,
        run.match,
        result.method,
        result.is_coarse,
        result.days_to_empty,
        result.slope_per_day,
        result.readings_used,
        run.cartridge_since,
        run.pages_at_install,
        run.supply.observed_at,
        moment,
        result.empties_at,
        fitted_at,
        fitted_percent,
        newest.percent if newest is not None else None,
        newest.at if newest is not None else None,
        newest.steps if newest is not None else None,
        run.folded_until,
        {"levels": run.detector.levels, "serial": run.detector.serial},
    )


def _reorder_reason(
    supply: Supply,
    result: fc.Forecast,
    criticals: list[Alert],
    policy: catalog_services.EffectivePolicy,
) -> str | None:
    if _critical_for(supply, criticals):
        return SupplyAlert.Reason.CRITICAL
    if supply.percent is not None and supply.percent <= policy.threshold_percent:
        return SupplyAlert.Reason.REORDER_POINT
    if result.days_to_empty is not None and result.days_to_empty <= policy.lead_time_days:
        return SupplyAlert.Reason.REORDER_POINT
    return None


def _pages_at(device_id: int, moment: datetime) -> Decimal | None:
    value = (
        CounterReading.unscoped.filter(
            device_id=device_id, name=PAGE_COUNTER, collected_at__lte=moment
        )
        .order_by("-collected_at")
        .values_list("value", flat=True)
        .first()
    )
    return value


def _replacement_record(
    ctx: TenantContext,
    device: Device,
    supply: Supply,
    replacement: fc.Replacement,
    pages_at_install: Decimal | None,
    pages_at_removal: Decimal | None,
    product: Product | None,
) -> None:
    yielded = (
        pages_at_removal - pages_at_install
        if pages_at_install is not None and pages_at_removal is not None
        else None
    )
    try:
        with transaction.atomic():
            _, created = CartridgeReplacement.unscoped.get_or_create(
                supply=supply,
                detected_at=replacement.at,
                defaults={
                    "reseller_id": device.reseller_id,
                    "device": device,
                    "customer_id": device.customer_id,
                    "old_serial": replacement.old_serial,
                    "new_serial": replacement.new_serial,
                    "old_percent": replacement.old_percent,
                    "new_percent": replacement.new_percent,
                    "pages_at_install": pages_at_install,
                    "pages_at_removal": pages_at_removal,
                    "pages_yielded": yielded,
                    # Pages are compared with pages; an ink's rating in ml is not a page yield.
                    "rated_yield": (
                        product.rated_yield
                        if product and product.yield_unit == Product.YieldUnit.PAGES
                        else None
                    ),
                    "product": product,
                    "is_genuine": supply.is_genuine,
                },
            )
    except IntegrityError:
        return  # a concurrent evaluation recorded it
    if not created:
        return
    SupplyAlert.unscoped.filter(supply=supply).exclude(status=SupplyAlert.Status.CLOSED).update(
        status=SupplyAlert.Status.CLOSED, closed_at=now(), closed_reason="cartridge replaced"
    )
    services.order_lines_close_for_supply(ctx=ctx, supply_id=supply.pk)


def _alert_raise(
    ctx: TenantContext,
    device: Device,
    supply: Supply,
    result: fc.Forecast,
    reason: str,
    product: Product | None,
    policy: catalog_services.EffectivePolicy,
) -> None:
    # The caller found no open alert for the supply; a concurrent evaluation may have raised one.
    try:
        with transaction.atomic():
            alert = SupplyAlert.unscoped.create(
                reseller_id=device.reseller_id,
                supply=supply,
                device=device,
                customer_id=device.customer_id,
                reason=reason,
                percent=supply.percent,
                days_to_empty=result.days_to_empty,
            )
    except IntegrityError:
        return  # another evaluation raised it first: one open alert per supply
    alert_id = alert.pk
    transaction.on_commit(lambda: _alert_enqueue(alert_id))
    webhook_emit(
        reseller_id=device.reseller_id,
        event=Event.SUPPLY_LOW,
        data=lambda: supply_low_webhook_data(alert, device, supply),
    )
    if policy.mode != ReorderPolicy.Mode.ALERT and product is not None:
        _order_automatic(ctx, device, supply, product, policy)


def supply_low_webhook_data(alert: SupplyAlert, device: Device, supply: Supply) -> dict[str, Any]:
    return {
        "alert": {
            "id": alert.pk,
            "reason": alert.reason,
            "percent": alert.percent,
            "days_to_empty": alert.days_to_empty,
            "created_at": alert.created_at,
        },
        "device": {
            "id": device.pk,
            "serial": device.serial,
            "model": device.model,
            "customer": device.customer_id,
            "site": device.site_id,
        },
        "supply": {
            "id": supply.pk,
            "key": supply.supply_key,
            "kind": supply.kind,
            "color": supply.color,
            "description": supply.description,
            "part_number": supply.part_number,
        },
    }


def _order_automatic(
    ctx: TenantContext,
    device: Device,
    supply: Supply,
    product: Product,
    policy: catalog_services.EffectivePolicy,
) -> None:
    if OrderLine.unscoped.filter(supply=supply, is_open=True).exists():
        return
    try:
        with transaction.atomic():
            services.order_create(
                ctx=ctx,
                site_id=device.site_id,
                lines=[services.LineIn(product_id=product.pk, supply_id=supply.pk)],
                source=Order.Source.AUTOMATIC,
                note=f"Reorder policy: {supply.description or supply.supply_key} on {device}.",
                submit=policy.mode == ReorderPolicy.Mode.SUBMIT,
            )
    except ConflictError:
        return  # someone ordered it meanwhile


def _alert_enqueue(alert_id: int) -> None:
    from orders.tasks import supply_alert_notify_task

    try:
        supply_alert_notify_task.apply_async(kwargs={"alert_id": alert_id}, retry=False)
    except Exception:  # the sweep notifies it later
        log.warning("supply alert %s left to the sweep", alert_id, exc_info=True)


def supply_alert_notify(*, alert_id: int) -> bool:
    """Email the customer's supply contacts and the reseller's support inbox, once: the
    conditional UPDATE armed -> sent is the claim, in the transaction that logs the emails."""
    with transaction.atomic():
        # System code: the alert names its tenant; the claim is on its primary key.
        claimed = SupplyAlert.unscoped.filter(pk=alert_id, status=SupplyAlert.Status.ARMED).update(
            status=SupplyAlert.Status.SENT, sent_at=now()
        )
        if claimed != 1:
            return False
        alert = SupplyAlert.unscoped.select_related(
            "supply", "device", "device__site", "customer", "reseller"
        ).get(pk=alert_id)
        forecast = SupplyForecast.unscoped.filter(supply_id=alert.supply_id).first()
        kind = (
            EmailLog.Kind.PRINTER_CRITICAL
            if alert.reason == SupplyAlert.Reason.CRITICAL
            else EmailLog.Kind.SUPPLY_LOW
        )
        site = alert.device.site
        recipients = [site.contact_email] if site.contact_email else []
        recipients += email_services.customer_recipients(
            reseller_id=alert.reseller_id, customer_id=alert.customer_id, kind=kind
        )
        reseller: Reseller = alert.reseller
        if reseller.support_email:
            recipients.append(reseller.support_email)
        supply = alert.supply
        context = {
            "alert": alert,
            "supply": supply,
            "device": alert.device,
            "site": site,
            "customer": alert.customer,
            "reseller": reseller,
            "forecast": forecast,
            "url": settings.SITE_URL + reverse("order-create") + f"?supply_id={supply.pk}",
        }
        email_services.emails_queue(
            reseller_id=alert.reseller_id,
            customer_id=alert.customer_id,
            recipients=recipients,
            kind=kind,
            template="orders/email/supply_alert.txt",
            context=context,
            subject=lambda: (
                _("[Inkmeter] %(supply)s low on %(device)s (%(site)s)")
                % {"supply": labels.supply_label(supply), "device": alert.device, "site": site.name}
            ),
            supply_alert=alert,
            # The site's contact is the customer's; the support inbox is the reseller's.
            languages={site.contact_email: alert.customer.language} if site.contact_email else None,
        )
    return True


def supply_alert_rearm(*, ctx: TenantContext, alert_id: int) -> SupplyAlert:
    """Close a sent alert so that the next evaluation at the reorder point emails again."""
    require(ctx, ORDERING_ROLES, _("re-arm alerts"))
    with transaction.atomic():
        alert = SupplyAlert.objects.for_tenant(ctx).select_for_update().filter(pk=alert_id).first()
        if alert is None:
            raise NotFoundError(_("No such alert."))
        if alert.status != SupplyAlert.Status.SENT:
            raise ConflictError(
                _("This alert is %(lower)s; only a sent alert can be re-armed.")
                % {"lower": alert.get_status_display().lower()},
                code="alert_not_sent",
            )
        alert.status = SupplyAlert.Status.CLOSED
        alert.closed_at = now()
        alert.closed_reason = f"re-armed by {ctx.user.email if ctx.user else ctx.role}"
        alert.save(update_fields=["status", "closed_at", "closed_reason"])
        # The supply is due a fresh look: its evaluation date goes back so the sweep takes it.
        SupplyForecast.objects.for_tenant(ctx).filter(supply_id=alert.supply_id).update(
            evaluated_observed_at=F("evaluated_observed_at") - timedelta(seconds=1)
        )
        device_id = alert.device_id
        transaction.on_commit(lambda: supplies_evaluate_enqueue(device_ids=[device_id]))
    return alert


# --- Triggers and claims ------------------------------------------------------------------------
#
# Every accepted batch asks for an evaluation of its customer's supplies
# (`supplies_evaluate_request`, in the batch follow-up's transaction). The ask is a row per
# customer, SupplyEvaluationClaim: only the first ask after a run sends a task (`enqueued_at`),
# and a run first claims the row by a conditional UPDATE (`claimed_until`, a lease, committed
# before the work starts), so batches that arrive while a task waits or a run works add nothing
# but the ask, and the next run takes them all. A run evaluates only the supplies with readings
# newer than their last evaluation, so a sweep that finds a customer's work first leaves the
# task nothing to repeat. Nothing here is needed for correctness beyond the data: a lost task
# leaves an old ask, and a lost ask leaves supplies with newer readings; the beat's sweep finds
# both (`supplies_evaluate_sweep`).

# Supplies per run; a customer with more is evaluated by further runs, one after the other.
EVALUATE_SUPPLIES = 2000
# How long a run holds its customer: longer than the task's hard time limit.
CLAIM_LEASE = timedelta(seconds=330)
# Customers per sweep run; the rest waits for the next run.
SWEEP_CUSTOMERS = 200


def supplies_pending(*, customer_id: int | None = None, limit: int = SWEEP_DEVICES) -> list[int]:
    """Devices with a supply whose latest reading is newer than its last evaluation."""
    # Across tenants (the sweep) or for one customer: system code.
    ids = (
        _pending_supplies(customer_id)
        .order_by("device_id")
        .values_list("device_id", flat=True)
        .distinct()
    )
    return list(ids[:limit])


def _pending_supplies(customer_id: int | None) -> Any:
    qs = Supply.unscoped.filter(
        Q(forecast__isnull=True) | Q(observed_at__gt=F("forecast__evaluated_observed_at")),
        device__retired_at=None,  # pending again, with its newer readings, once back in service
    )
    return qs if customer_id is None else qs.filter(device__customer_id=customer_id)


def supplies_evaluate_request(*, reseller_id: int, customer_id: int) -> None:
    """Ask for an evaluation of the customer's supplies once the caller commits; the task is
    sent only when none is on its way and no run holds the customer (its end sends the next)."""
    moment = now()
    w = Writer()
    table = "orders_supplyevaluationclaim"
    rows = w.insert(
        table,
        ["customer_id", "reseller_id", "requested_at", "enqueued_at", "claimed_until"],
        [(customer_id, reseller_id, moment, moment, None)],
        conflict=(
            f"ON CONFLICT (customer_id) DO UPDATE SET "
            f"requested_at = COALESCE({table}.requested_at, EXCLUDED.requested_at), "
            f"enqueued_at = CASE WHEN {table}.enqueued_at IS NULL AND ({table}.claimed_until "
            f"IS NULL OR {table}.claimed_until < EXCLUDED.requested_at) "
            f"THEN EXCLUDED.enqueued_at ELSE {table}.enqueued_at END"
        ),
        returning="enqueued_at",
    )
    enqueued_at = rows[0][0] if rows else None
    if isinstance(enqueued_at, datetime) and enqueued_at.tzinfo is None:  # SQLite's RETURNING
        enqueued_at = enqueued_at.replace(tzinfo=UTC)
    if enqueued_at == moment:  # this ask set it: no task was on its way
        transaction.on_commit(lambda: _customer_enqueue(customer_id))


def _customer_enqueue(customer_id: int) -> None:
    from orders.tasks import supplies_evaluate_pending_task

    try:
        supplies_evaluate_pending_task.apply_async(
            kwargs={"customer_id": customer_id}, retry=False, ignore_result=True
        )
    except Exception:  # the ask stays in the database; supplies_evaluate_sweep finds it
        log.warning(
            "supply evaluation of customer %s left to the sweep", customer_id, exc_info=True
        )


def _claim(customer_id: int, *, asked_only: bool) -> bool:
    """Take the customer's lease. A task (`asked_only`) takes it only for an ask; when it
    cannot, its message is spent: a run holding the lease sends the next task when it lets go,
    and without an ask there is nothing to do. The sweep takes any free lease."""
    rows = SupplyEvaluationClaim.unscoped.filter(customer_id=customer_id)
    for _attempt in range(3):
        moment = now()
        free = Q(claimed_until__isnull=True) | Q(claimed_until__lte=moment)
        mine = rows.filter(free, requested_at__isnull=False) if asked_only else rows.filter(free)
        if mine.update(claimed_until=moment + CLAIM_LEASE, requested_at=None, enqueued_at=None):
            return True
        if not asked_only:
            return False
        busy_or_idle = Q(claimed_until__gt=moment) | Q(requested_at__isnull=True)
        if rows.filter(busy_or_idle).update(enqueued_at=None):
            return False
        # The lease was let go, or an ask came, between the two statements: try again.
    return False


def _release(customer_id: int, *, more: bool) -> None:
    """Let the lease go; send the next task if asks came meanwhile (or work was left)."""
    moment = now()
    rows = SupplyEvaluationClaim.unscoped.filter(customer_id=customer_id)
    if more:
        rows.filter(requested_at__isnull=True).update(requested_at=moment)
    rows.update(claimed_until=None)
    if rows.filter(requested_at__isnull=False, enqueued_at__isnull=True).update(enqueued_at=moment):
        transaction.on_commit(lambda: _customer_enqueue(customer_id))


def supplies_evaluate_customer(*, reseller_id: int, customer_id: int, asked_only: bool) -> int:
    """One run for one customer: claim, evaluate its pending supplies, let go; each step in a
    transaction of its own, so asks from new batches never wait for the evaluation."""
    with rls.tenant(reseller_id):
        if not asked_only:
            SupplyEvaluationClaim.unscoped.get_or_create(
                customer_id=customer_id, defaults={"reseller_id": reseller_id}
            )
        if not _claim(customer_id, asked_only=asked_only):
            return 0
    more = False
    try:
        with rls.tenant(reseller_id):
            supplies = list(
                _pending_supplies(customer_id)
                .select_related("device", "device__reseller")
                .order_by("device_id", "supply_key")[: EVALUATE_SUPPLIES + 1]
            )
            more = len(supplies) > EVALUATE_SUPPLIES
            supplies = supplies[:EVALUATE_SUPPLIES]
            count = _evaluate(supplies[0].device.reseller, supplies) if supplies else 0
    finally:
        with rls.tenant(reseller_id):
            _release(customer_id, more=more)
    return count


def supplies_evaluate_sweep(*, limit: int = SWEEP_CUSTOMERS) -> int:
    """Customers whose ask is older than the follow-up grace (its task was lost), and those
    with supplies pending but no ask on its way (a lost ask, readings written otherwise): one
    run each, under the same claim as the tasks. Returns the supplies evaluated."""
    cutoff = now() - timedelta(seconds=settings.TELEMETRY_FOLLOWUP_GRACE_SECONDS)
    with rls.system("the sweep finds asks and pending supplies of every reseller"):
        asks = SupplyEvaluationClaim.unscoped.filter(requested_at__isnull=False)
        lost = list(
            asks.filter(requested_at__lte=cutoff)
            .order_by("requested_at")
            .values_list("customer_id", "reseller_id")[:limit]
        )
        waiting = asks.filter(requested_at__gt=cutoff).values("customer_id")
        stray = list(
            _pending_supplies(None)
            .exclude(device__customer_id__in=waiting)
            .order_by("device__customer_id")
            .values_list("device__customer_id", "reseller_id")
            .distinct()[:limit]
        )
    work = dict.fromkeys([*lost, *stray])
    return sum(
        supplies_evaluate_customer(
            reseller_id=reseller_id, customer_id=customer_id, asked_only=False
        )
        for customer_id, reseller_id in work
    )


def supplies_evaluate_pending(*, customer_id: int | None = None) -> int:
    """The run a task asks for (one customer), or the sweep (None)."""
    if customer_id is None:
        return supplies_evaluate_sweep()
    reseller_id = rls.reseller_of(Customer, customer_id)
    if reseller_id is None:
        return 0
    return supplies_evaluate_customer(
        reseller_id=reseller_id, customer_id=customer_id, asked_only=True
    )


def supplies_evaluate_enqueue(*, device_ids: list[int]) -> None:
    """Schedule an evaluation of these devices once the caller commits; a lost task costs only
    latency, since the beat sweep finds the same supplies."""

    def enqueue() -> None:
        from orders.tasks import supplies_evaluate_task

        try:
            supplies_evaluate_task.apply_async(
                kwargs={"device_ids": device_ids}, retry=False, ignore_result=True
            )
        except Exception:  # left to supplies_evaluate_sweep
            log.warning("supply evaluation left to the sweep", exc_info=True)

    transaction.on_commit(enqueue)


def supply_alerts_notify_sweep(*, older_than_seconds: int = 120, limit: int = 500) -> int:
    """Armed alerts whose notification task was lost."""
    cutoff = now() - timedelta(seconds=older_than_seconds)
    pending = list(
        SupplyAlert.unscoped.filter(status=SupplyAlert.Status.ARMED, created_at__lte=cutoff)
        .order_by("pk")
        .values_list("pk", flat=True)[:limit]
    )
    return sum(supply_alert_notify(alert_id=pk) for pk in pending)
