"""Reads behind the fleet pages: device list and detail, supplies, open alerts, the dashboard.

Each takes the tenant context first. List selectors return querysets with their joins and
per-row figures (lowest supply, open alerts) already in the one SQL statement, so a page of the
device list costs the same few queries at 10 devices or 10,000.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo
from decimal import Decimal
from typing import Any, cast

from django.db.models import (
    Case,
    CharField,
    Count,
    Exists,
    F,
    Min,
    OrderBy,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
    TextChoices,
    Value,
    When,
    Window,
)
from django.db.models.functions import RowNumber
from django.utils.timezone import get_current_timezone, now

from accounts.models import Customer, Site
from devices.models import Alert, CounterReading, Device, DeviceState, Job, Supply, SupplyReading
from portal.errors import NotFoundError
from portal.tenancy import TenantContext

# A supply under this percentage counts as low on the fleet pages. One figure for every tenant
# until resellers can set their own (reorder rules will own that number).
LOW_SUPPLY_PERCENT = 15.0
# The counter that says how many pages a device has printed (protocol/telemetry-v1.md).
PAGE_COUNTER = "impressions.total"


class DeviceStatus(TextChoices):
    """What the fleet pages show, derived from the device's hot state."""

    ONLINE = "online", "Online"
    WARNING = "warning", "Warning"
    ERROR = "error", "Error"
    OFFLINE = "offline", "Offline"
    NEVER = "never", "Never reported"


class Lifecycle(TextChoices):
    """Which devices a list shows: the fleet in service by default."""

    ACTIVE = "active", "In service"
    RETIRED = "retired", "Retired"
    ALL = "all", "In service and retired"


def alert_is_open(moment: datetime, prefix: str = "") -> Q:
    """Open and not snoozed at `moment`: what the alert list and every open count show. An
    acknowledged alert is still open: someone has seen it, the printer has not cleared it."""
    return Q(**{f"{prefix}cleared_at__isnull": True}) & (
        Q(**{f"{prefix}snoozed_until__isnull": True}) | Q(**{f"{prefix}snoozed_until__lte": moment})
    )


@dataclass(frozen=True, kw_only=True)
class DeviceFilter:
    lifecycle: str = Lifecycle.ACTIVE
    customer_id: int | None = None
    site_id: int | None = None
    status: str = ""
    model: str = ""
    is_low_supply: bool = False
    search: str = ""
    sort: str = "serial"


# Sort keys of the device list (a leading "-" reverses); the serial breaks ties.
DEVICE_SORTS: dict[str, str] = {
    "serial": "serial",
    "model": "model",
    "customer": "customer__name",
    "site": "site__name",
    "status": "status",
    "last_seen": "state__last_seen_at",
    "supply": "lowest_supply",
    "alerts": "open_alerts",
}


def _status_expression() -> Case:
    return Case(
        When(state__isnull=True, then=Value(DeviceStatus.NEVER.value)),
        When(state__is_online=False, then=Value(DeviceStatus.OFFLINE.value)),
        When(state__state=DeviceState.State.ERROR, then=Value(DeviceStatus.ERROR.value)),
        When(state__state=DeviceState.State.WARNING, then=Value(DeviceStatus.WARNING.value)),
        default=Value(DeviceStatus.ONLINE.value),
        output_field=CharField(),
    )


def _ordering(sort: str, sorts: dict[str, str], tiebreak: str) -> list[OrderBy]:
    descending = sort.startswith("-")
    column = sorts.get(sort.lstrip("-"), sorts[next(iter(sorts))])
    primary = F(column).desc(nulls_last=True) if descending else F(column).asc(nulls_last=True)
    return [primary, F(tiebreak).asc()]


def device_list(*, ctx: TenantContext, f: DeviceFilter | None = None) -> QuerySet[Device]:
    """The fleet, filtered and sorted, with state, customer, site and supplies joined or
    prefetched, plus each device's lowest supply level and number of open alerts."""
    f = f or DeviceFilter()
    # The per-row figures aggregate over the device's own relations: those rows belong to the
    # device, hence to the scope already applied to it. (Correlated subqueries through
    # Supply.objects.for_tenant made SQLite walk the reseller's whole supply index per device.)
    # The joins multiply rows, which Min ignores and the distinct count undoes.
    qs = cast(
        "QuerySet[Device]",
        Device.objects.for_tenant(ctx)
        .select_related("state", "customer", "site")
        .prefetch_related(
            Prefetch(
                "supplies",
                # The forecast (orders app) shows days to empty beside each level.
                queryset=Supply.objects.for_tenant(ctx)
                .select_related("forecast")
                .order_by("supply_key"),
            )
        )
        .annotate(
            status=_status_expression(),
            lowest_supply=Min("supplies__percent"),
            open_alerts=Count("alerts", filter=alert_is_open(now(), "alerts__"), distinct=True),
        ),
    )
    if f.lifecycle == Lifecycle.ACTIVE:
        qs = qs.filter(retired_at__isnull=True)
    elif f.lifecycle == Lifecycle.RETIRED:
        qs = qs.filter(retired_at__isnull=False)
    if f.customer_id is not None:
        qs = qs.filter(customer_id=f.customer_id)
    if f.site_id is not None:
        qs = qs.filter(site_id=f.site_id)
    if f.status:
        qs = qs.filter(Q(status=f.status))
    if f.model:
        qs = qs.filter(model=f.model)
    if f.is_low_supply:
        qs = qs.filter(Q(lowest_supply__lt=LOW_SUPPLY_PERCENT))
    if f.search:
        term = f.search.strip()
        qs = qs.filter(
            Q(serial__icontains=term)
            | Q(model__icontains=term)
            | Q(name__icontains=term)
            | Q(state__ip__icontains=term)
            | Q(state__hostname__icontains=term)
        )
    return qs.order_by(*_ordering(f.sort, DEVICE_SORTS, "serial"))


def device_get(*, ctx: TenantContext, device_id: int) -> Device:
    """One device, retired or not (its page stays reachable)."""
    device = (
        device_list(ctx=ctx, f=DeviceFilter(lifecycle=Lifecycle.ALL)).filter(pk=device_id).first()
    )
    if device is None:
        raise NotFoundError("No such device.")
    return device


def device_model_choices(*, ctx: TenantContext) -> list[str]:
    """The models present in the fleet, for the model filter."""
    return list(
        Device.objects.for_tenant(ctx)
        .exclude(model="")
        .order_by("model")
        .values_list("model", flat=True)
        .distinct()
    )


def customer_choices(*, ctx: TenantContext) -> QuerySet[Customer]:
    return Customer.objects.for_tenant(ctx).order_by("name", "pk")


def site_choices(*, ctx: TenantContext) -> QuerySet[Site]:
    return (
        Site.objects.for_tenant(ctx).select_related("customer").order_by("customer__name", "name")
    )


# --- Device detail ------------------------------------------------------------------------------


@dataclass(frozen=True)
class CounterValue:
    name: str
    media_type: str
    color: str
    unit: str
    value: Decimal
    collected_at: datetime


def device_counter_list(*, ctx: TenantContext, device_id: int) -> list[CounterValue]:
    """The latest value of each of the device's counters (name plus qualifiers)."""
    latest_first = Window(
        RowNumber(),
        partition_by=[F("name"), F("media_type"), F("color"), F("unit")],
        order_by=F("collected_at").desc(),
    )
    rows = (
        CounterReading.objects.for_tenant(ctx)
        .filter(device_id=device_id)
        .annotate(position=latest_first)
        .filter(position=1)
        .order_by("name", "media_type", "color", "unit")
        .values_list("name", "media_type", "color", "unit", "value", "collected_at")
    )
    return [CounterValue(*row) for row in rows]


def device_supply_history(
    *, ctx: TenantContext, device_id: int, since: datetime
) -> dict[str, list[tuple[datetime, float | None]]]:
    """Each supply's percentage over time since `since`, by supply key, in time order."""
    rows = (
        SupplyReading.objects.for_tenant(ctx)
        .filter(device_id=device_id, collected_at__gte=since)
        .order_by("supply_key", "collected_at")
        .values_list("supply_key", "collected_at", "percent")
    )
    history: dict[str, list[tuple[datetime, float | None]]] = defaultdict(list)
    for supply_key, collected_at, percent in rows.iterator(chunk_size=2000):
        history[supply_key].append((collected_at, percent))
    return dict(history)


def device_alert_list(*, ctx: TenantContext, device_id: int, is_open: bool) -> QuerySet[Alert]:
    """The device's open alerts newest first, or its cleared ones most recently cleared first."""
    qs = (
        Alert.objects.for_tenant(ctx)
        .filter(device_id=device_id, cleared_at__isnull=is_open)
        .select_related("acknowledged_by", "snoozed_by")
    )
    if is_open:
        return qs.order_by("-first_seen_at", "-pk")
    return qs.order_by("-cleared_at", "-pk")


def device_job_list(*, ctx: TenantContext, device_id: int) -> QuerySet[Job]:
    return (
        Job.objects.for_tenant(ctx)
        .filter(device_id=device_id)
        .order_by(F("submitted_at").desc(nulls_last=True), "-observed_at", "-pk")
    )


def _page_counts(
    *,
    ctx: TenantContext,
    first_day: date,
    moment: datetime,
    device_id: int | None = None,
    tz: tzinfo = UTC,
) -> tuple[list[date], list[tuple[Any, ...]]]:
    """Each device's page count at every midnight (in `tz`) from `first_day` on and at `moment`.

    One index seek per device and boundary (the counter series index leads with the device), so
    the cost follows the number of devices and days, never the number of readings: a fleet that
    reports hourly has 24 readings a day that a scan of the window would have to read.
    """
    days = [first_day + timedelta(days=i) for i in range((moment.date() - first_day).days + 1)]
    boundaries = [datetime(d.year, d.month, d.day, tzinfo=tz) for d in days] + [moment]
    readings = CounterReading.objects.for_tenant(ctx).filter(
        device=OuterRef("pk"), name=PAGE_COUNTER, media_type="", color=""
    )
    counts = {
        f"count_{i}": Subquery(
            readings.filter(collected_at__lte=boundary)
            .order_by("-collected_at")
            .values("value")[:1]
        )
        for i, boundary in enumerate(boundaries)
    }
    devices = Device.objects.for_tenant(ctx).order_by()
    if device_id is not None:
        devices = devices.filter(pk=device_id)
    rows = list(devices.annotate(**counts).values_list("pk", *counts))
    return days, rows


def pages_by_day(days: list[date], rows: list[tuple[Any, ...]]) -> dict[date, int]:
    """Pages printed per day: a device's count at the day's end minus its count at its start.

    A device without a count at the start of a day (not reporting yet) adds nothing that day,
    and a drop (a counter reset after a board swap) counts as nothing rather than as negative.
    """
    totals = dict.fromkeys(days, 0)
    for _, *counts in rows:
        for day, start, end in zip(days, counts, counts[1:], strict=False):
            if start is not None and end is not None and end > start:
                totals[day] += int(end - start)
    return totals


def device_pages_by_day(*, ctx: TenantContext, device_id: int, days: int = 30) -> dict[date, int]:
    """Pages per calendar day of the active time zone (the user's), the last `days` days."""
    tz = get_current_timezone()
    moment = now().astimezone(tz)
    first_day = moment.date() - timedelta(days=days - 1)
    return pages_by_day(
        *_page_counts(ctx=ctx, first_day=first_day, moment=moment, device_id=device_id, tz=tz)
    )


# --- Supplies and alerts across the fleet ----------------------------------------------------


SUPPLY_SORTS: dict[str, str] = {
    "level": "percent",
    "device": "device__serial",
    "customer": "device__customer__name",
    "kind": "kind",
    "color": "color",
    "observed": "observed_at",
    "days": "forecast__days_to_empty",
}


@dataclass(frozen=True, kw_only=True)
class SupplyFilter:
    kind: str = ""
    color: str = ""
    is_low: bool = False
    # An open low-supply alert (orders app): the supply reached its reorder point.
    is_at_reorder_point: bool = False
    # Forecast to run empty within this many days.
    empties_within_days: int | None = None
    sort: str = "level"


def supply_list(*, ctx: TenantContext, f: SupplyFilter | None = None) -> QuerySet[Supply]:
    f = f or SupplyFilter()
    qs = (
        Supply.objects.for_tenant(ctx)
        .filter(device__retired_at__isnull=True)
        .select_related("device", "device__customer", "device__site", "forecast")
    )
    if f.kind:
        qs = qs.filter(kind=f.kind)
    if f.color:
        qs = qs.filter(color=f.color)
    if f.is_low:
        qs = qs.filter(percent__lt=LOW_SUPPLY_PERCENT)
    if f.is_at_reorder_point:
        from orders.models import SupplyAlert

        # The alert belongs to the supply, hence to the scope already applied to it.
        open_alert = SupplyAlert.unscoped.filter(supply_id=OuterRef("pk")).exclude(status="closed")
        qs = qs.filter(Exists(open_alert))
    if f.empties_within_days is not None:
        qs = qs.filter(forecast__days_to_empty__lte=f.empties_within_days)
    return qs.order_by(*_ordering(f.sort, SUPPLY_SORTS, "pk"))


def supply_choices(*, ctx: TenantContext) -> tuple[list[str], list[str]]:
    """The supply kinds and colours present in the fleet, for the filters."""
    pairs = Supply.objects.for_tenant(ctx).order_by().values_list("kind", "color").distinct()
    kinds, colors = set(), set()
    for kind, color in pairs:
        if kind:
            kinds.add(kind)
        if color:
            colors.add(color)
    return sorted(kinds), sorted(colors)


def alert_list(
    *, ctx: TenantContext, severity: str = "", is_snoozed: bool = False
) -> QuerySet[Alert]:
    """Open alerts of the devices in service, newest first; or, with `is_snoozed`, the open
    alerts whose snooze has not ended yet."""
    moment = now()
    qs = Alert.objects.for_tenant(ctx).filter(device__retired_at__isnull=True)
    if is_snoozed:
        qs = qs.filter(cleared_at__isnull=True, snoozed_until__gt=moment)
    else:
        qs = qs.filter(alert_is_open(moment))
    qs = qs.select_related(
        "device", "device__customer", "device__site", "acknowledged_by", "snoozed_by"
    )
    if severity:
        qs = qs.filter(severity=severity)
    return qs.order_by("-first_seen_at", "-pk")


# --- Dashboard -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class FleetSummary:
    devices: int
    online: int
    offline: int
    never_reported: int
    open_alerts: int
    critical_alerts: int
    low_supplies: int
    pages_this_month: int
    pages_per_day: dict[date, int] = field(default_factory=dict)
    supply_levels: list[tuple[str, int]] = field(default_factory=list)
    low_supply_percent: float = LOW_SUPPLY_PERCENT
    month_start: date | None = None


# Buckets of the supply-level histogram: label, lower bound (inclusive), upper (exclusive).
SUPPLY_BUCKETS = [
    ("<5%", 0.0, 5.0),
    (f"5-{LOW_SUPPLY_PERCENT:.0f}%", 5.0, LOW_SUPPLY_PERCENT),
    (f"{LOW_SUPPLY_PERCENT:.0f}-50%", LOW_SUPPLY_PERCENT, 50.0),
    ("50-80%", 50.0, 80.0),
    ("80-100%", 80.0, 100.1),
]


def fleet_summary(*, ctx: TenantContext, days: int = 30) -> FleetSummary:
    """The dashboard's figures: device states, open alerts, low supplies and pages printed
    this calendar month, with pages per day over the last `days` days. Months and days are
    those of the active time zone (the user's): a day's pages are the ones they saw printed."""
    devices = (
        Device.objects.for_tenant(ctx)
        .filter(retired_at__isnull=True)
        .aggregate(
            total=Count("pk"),
            online=Count("pk", filter=Q(state__is_online=True)),
            offline=Count("pk", filter=Q(state__is_online=False)),
            never=Count("pk", filter=Q(state__isnull=True)),
        )
    )
    # Counted over the alert list's own query: the tile and the list it links to agree.
    alerts = (
        alert_list(ctx=ctx)
        .order_by()
        .aggregate(
            total=Count("pk"), critical=Count("pk", filter=Q(severity=Alert.Severity.CRITICAL))
        )
    )
    buckets = {
        f"bucket_{i}": Count("pk", filter=Q(percent__gte=low, percent__lt=high))
        for i, (_, low, high) in enumerate(SUPPLY_BUCKETS)
    }
    levels = (
        Supply.objects.for_tenant(ctx)
        .filter(device__retired_at__isnull=True)
        .aggregate(low=Count("pk", filter=Q(percent__lt=LOW_SUPPLY_PERCENT)), **buckets)
    )
    tz = get_current_timezone()
    moment = now().astimezone(tz)
    today = moment.date()
    month_start = today.replace(day=1)
    first_day = min(month_start, today - timedelta(days=days - 1))
    per_day = pages_by_day(*_page_counts(ctx=ctx, first_day=first_day, moment=moment, tz=tz))
    chart_start = today - timedelta(days=days - 1)
    return FleetSummary(
        devices=devices["total"],
        online=devices["online"],
        offline=devices["offline"],
        never_reported=devices["never"],
        open_alerts=alerts["total"],
        critical_alerts=alerts["critical"],
        low_supplies=levels["low"],
        pages_this_month=sum(n for day, n in per_day.items() if day >= month_start),
        pages_per_day={day: n for day, n in per_day.items() if day >= chart_start},
        supply_levels=[
            (label, levels[f"bucket_{i}"]) for i, (label, _, _) in enumerate(SUPPLY_BUCKETS)
        ],
        month_start=month_start,
    )
