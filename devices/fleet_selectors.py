"""Reads behind the fleet pages: device list and detail, supplies, open alerts, the dashboard.

Each takes the tenant context first. The big lists return a `Listing` (portal/pages.py): a
page's rows are found by a narrow query that filters and sorts, then loaded with their joins,
so a page costs the same few queries, and about the same time, at 10 devices or 10,000. The
per-row figures of the device list and the page charts read rows kept for them (DeviceState's
figures, the daily page rollups, the supplies' daily series), never every reading, supply or
alert of the fleet (issue 12).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, cast

from django.core.cache import cache
from django.db import connection
from django.db.models import (
    Case,
    CharField,
    Count,
    Exists,
    F,
    Func,
    OrderBy,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
    Sum,
    TextChoices,
    Value,
    When,
    Window,
)
from django.db.models.functions import Coalesce, RowNumber
from django.utils.timezone import now
from django.utils.translation import gettext_lazy as _

from accounts.models import Customer, Site
from devices.models import (
    Alert,
    CounterReading,
    CustomerPageDay,
    Device,
    DevicePageDay,
    DeviceState,
    Job,
    Supply,
)
from portal.errors import NotFoundError
from portal.pages import Listing
from portal.tenancy import TenantContext

# A supply under this percentage counts as low on the fleet pages. One figure for every tenant
# until resellers can set their own (reorder rules will own that number).
LOW_SUPPLY_PERCENT = 15.0


class DeviceStatus(TextChoices):
    """What the fleet pages show, derived from the device's hot state."""

    ONLINE = "online", _("Online")
    WARNING = "warning", _("Warning")
    ERROR = "error", _("Error")
    OFFLINE = "offline", _("Offline")
    NEVER = "never", _("Never reported")


class Lifecycle(TextChoices):
    """Which devices a list shows: the fleet in service by default."""

    ACTIVE = "active", _("In service")
    RETIRED = "retired", _("Retired")
    ALL = "all", _("In service and retired")


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
    "alerts": "reported_alerts",
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


# Sorts by a joined table's column: that table's own reseller condition, which lets PostgreSQL
# walk its (reseller, column) index and stop after a page, instead of sorting the fleet (the
# wall's policies are no index condition). Only inner joins: a LEFT JOIN's condition would
# drop the rows without a partner.
DEVICE_SORT_SCOPES = {"customer": "customer__reseller_id"}
SUPPLY_SORT_SCOPES = {
    "device": "device__reseller_id",
    "customer": "device__customer__reseller_id",
}


def _sort_scoped(rows: QuerySet[Any], ctx: TenantContext, sort: str, scopes: dict[str, str]) -> Any:
    scope = scopes.get(sort.lstrip("-"))
    return rows.filter(**{scope: ctx.reseller_id}) if scope else rows


# The status filter as conditions on the state's columns (what _status_expression decides),
# which PostgreSQL can estimate, rather than on the expression.
_ONLINE = Q(state__is_online=True)
STATUS_CONDITIONS = {
    DeviceStatus.NEVER.value: Q(state__isnull=True),
    DeviceStatus.OFFLINE.value: Q(state__is_online=False),
    DeviceStatus.ERROR.value: _ONLINE & Q(state__state=DeviceState.State.ERROR),
    DeviceStatus.WARNING.value: _ONLINE & Q(state__state=DeviceState.State.WARNING),
    DeviceStatus.ONLINE.value: _ONLINE
    & ~Q(state__state__in=[DeviceState.State.ERROR, DeviceState.State.WARNING]),
}


def _ordering(sort: str, sorts: dict[str, str], tiebreak: str) -> list[OrderBy]:
    descending = sort.startswith("-")
    column = sorts.get(sort.lstrip("-"), sorts[next(iter(sorts))])
    primary = F(column).desc(nulls_last=True) if descending else F(column).asc(nulls_last=True)
    return [primary, F(tiebreak).asc()]


# Between the fields a device search looks in (the ASCII unit separator).
_SEP = "\x1f"


class _Joined(Func):
    """Its arguments (none null) joined into one string: `||` on PostgreSQL and SQLite alike.
    (Concat wraps each pair in COALESCE and a cast, which costs as much as the match.)"""

    arg_joiner = " || "
    template = "(%(expressions)s)"
    output_field = CharField()


def device_list(*, ctx: TenantContext, f: DeviceFilter | None = None) -> Listing[Device]:
    """The fleet, filtered and sorted, each page's rows with state, customer, site and supplies
    joined or prefetched, plus each device's status, lowest supply level and open alerts.

    The figures to sort and filter by are columns of the device's state
    (DeviceState.lowest_supply_percent, .open_alert_count, kept by devices/rollup_services.py),
    so a sort or filter reads one row per device, not every supply and alert of the fleet. The
    open alerts shown are counted for the page's rows only, as the alert list counts them
    (snoozed ones left out until their snooze ends), which a stored count cannot follow."""
    f = f or DeviceFilter()
    rows = cast(
        "QuerySet[Device]",
        Device.objects.for_tenant(ctx).annotate(
            status=_status_expression(),
            lowest_supply=F("state__lowest_supply_percent"),
            reported_alerts=Coalesce(F("state__open_alert_count"), 0),
        ),
    )
    if f.lifecycle == Lifecycle.ACTIVE:
        rows = rows.filter(retired_at__isnull=True)
    elif f.lifecycle == Lifecycle.RETIRED:
        rows = rows.filter(retired_at__isnull=False)
    if f.customer_id is not None:
        rows = rows.filter(customer_id=f.customer_id)
    if f.site_id is not None:
        rows = rows.filter(site_id=f.site_id)
    if f.status in STATUS_CONDITIONS:
        rows = rows.filter(STATUS_CONDITIONS[f.status])
    if f.model:
        rows = rows.filter(model=f.model)
    if f.is_low_supply:
        rows = rows.filter(Q(lowest_supply__lt=LOW_SUPPLY_PERCENT))
    if f.search:
        # One match over the fields joined by a separator no search term holds: PostgreSQL
        # folds the case of one string per device instead of five (a third of the time).
        fields = [
            F("serial"),
            F("model"),
            F("name"),
            Coalesce(F("state__ip"), Value("")),  # none for a device that never reported
            Coalesce(F("state__hostname"), Value("")),
        ]
        searched = _Joined(*[part for field in fields for part in (field, Value(_SEP))])
        term = f.search.strip().replace(_SEP, "")
        rows = rows.annotate(searched=searched).filter(searched__icontains=term)

    rows = _sort_scoped(rows, ctx, f.sort, DEVICE_SORT_SCOPES)
    return Listing(rows.order_by(*_ordering(f.sort, DEVICE_SORTS, "serial")), _loader(ctx))


def _loader(ctx: TenantContext, *, forecasts: bool = False) -> Any:
    def load(page: QuerySet[Device]) -> QuerySet[Device]:
        supplies = Supply.objects.for_tenant(ctx).order_by("supply_key")
        if forecasts:
            supplies = supplies.select_related("forecast")
        # The alert belongs to the device, hence to the scope already applied to it.
        open_alerts = (
            Alert.unscoped.filter(alert_is_open(now()), device_id=OuterRef("pk"))
            .order_by()
            .values("device_id")
            .annotate(n=Count("pk"))
            .values("n")
        )
        return (
            page.select_related("state", "customer", "site")
            .prefetch_related(Prefetch("supplies", queryset=supplies))
            .annotate(open_alerts=Coalesce(Subquery(open_alerts), 0))
        )

    return load


def device_get(*, ctx: TenantContext, device_id: int) -> Device:
    """One device as the list shows it, retired or not (its page stays reachable), its
    supplies with their forecasts (the orders app's days to empty, beside each level)."""
    rows = device_list(ctx=ctx, f=DeviceFilter(lifecycle=Lifecycle.ALL)).rows
    found = Listing(rows, _loader(ctx, forecasts=True)).fetch([device_id])
    if not found:
        raise NotFoundError("No such device.")
    return found[0]


def device_model_choices(*, ctx: TenantContext) -> list[str]:
    """The models present in the fleet, for the model filter."""
    return list(
        Device.objects.for_tenant(ctx)
        .exclude(model="")
        .order_by("model")
        .values_list("model", flat=True)
        .distinct()
    )


def customer_choices(*, ctx: TenantContext) -> list[tuple[int, str]]:
    """(id, name) of the customers, for the customer filter."""
    return list(Customer.objects.for_tenant(ctx).order_by("name", "pk").values_list("pk", "name"))


def site_choices(*, ctx: TenantContext) -> list[tuple[int, str]]:
    """(id, "customer / site") of the sites, for the site filter."""
    rows = (
        Site.objects.for_tenant(ctx)
        .order_by("customer__name", "name", "pk")
        .values_list("pk", "customer__name", "name")
    )
    return [(pk, f"{customer} / {name}") for pk, customer, name in rows]


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
    """The latest value of each of the device's counters (name plus qualifiers).

    On PostgreSQL a skip scan of the counter series index: one index probe per counter, not a
    pass over the device's every reading (90 days of hourly polls are 2,000 per counter)."""
    if connection.vendor != "postgresql":
        return _device_counter_list_scan(ctx=ctx, device_id=device_id)
    # The keys walk devices_counter_series (device, name, media_type, color, collected_at):
    # each step finds the next counter after the last, then its latest reading.
    tenant = "reseller_id = %(reseller)s AND device_id = %(device)s"
    # A customer's view: the walk starts only on a device of the customer's.
    owner = (
        " AND EXISTS (SELECT 1 FROM devices_device d WHERE d.id = %(device)s"
        " AND d.customer_id = %(customer)s)"
        if ctx.customer_id is not None
        else ""
    )
    sql = f"""
        WITH RECURSIVE counters(name, media_type, color) AS (
            (SELECT name, media_type, color FROM devices_counterreading WHERE {tenant}{owner}
             ORDER BY name, media_type, color LIMIT 1)
            UNION ALL
            SELECT next.name, next.media_type, next.color FROM counters c,
            LATERAL (SELECT name, media_type, color FROM devices_counterreading
                     WHERE {tenant} AND (name, media_type, color) > (c.name, c.media_type, c.color)
                     ORDER BY name, media_type, color LIMIT 1) AS next
        )
        SELECT c.name, c.media_type, c.color, r.unit, r.value, r.collected_at FROM counters c,
        LATERAL (SELECT unit, value, collected_at FROM devices_counterreading
                 WHERE {tenant} AND name = c.name AND media_type = c.media_type
                 AND color = c.color ORDER BY collected_at DESC LIMIT 1) AS r
        ORDER BY c.name, c.media_type, c.color, r.unit
    """  # noqa: S608 - the tenant clause is ours; values are parameters
    params = {"reseller": ctx.reseller_id, "device": device_id, "customer": ctx.customer_id}
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [CounterValue(*row) for row in cursor.fetchall()]


def _device_counter_list_scan(*, ctx: TenantContext, device_id: int) -> list[CounterValue]:
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
    *, ctx: TenantContext, device_id: int, since: date
) -> dict[int, list[tuple[datetime, float | None]]]:
    """Each supply's level per day from `since` on, by supply id, in time order: the daily
    series the forecasts are fitted to (orders.SupplyLevelDay, the day's last level at the
    time it was first seen), a few rows per supply and day instead of the readings."""
    from orders.models import SupplyLevelDay

    rows = (
        SupplyLevelDay.objects.for_tenant(ctx)
        .filter(supply__device_id=device_id, day__gte=since)
        .order_by("supply_id", "day")
        .values_list("supply_id", "at", "percent")
    )
    history: dict[int, list[tuple[datetime, float | None]]] = defaultdict(list)
    for supply_id, at, percent in rows:
        history[supply_id].append((at, percent))
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


def _days(first_day: date, last_day: date) -> list[date]:
    return [first_day + timedelta(days=i) for i in range((last_day - first_day).days + 1)]


def device_pages_by_day(*, ctx: TenantContext, device_id: int, days: int = 30) -> dict[date, int]:
    """Pages the device printed on each of the last `days` (UTC) days, today included, from its
    daily page rollup (DevicePageDay)."""
    today = now().astimezone(UTC).date()
    per_day = dict.fromkeys(_days(today - timedelta(days=days - 1), today), 0)
    rows = (
        DevicePageDay.objects.for_tenant(ctx)
        .filter(device_id=device_id, day__gte=today - timedelta(days=days - 1), day__lte=today)
        .values_list("day", "pages")
    )
    for day, pages in rows:
        per_day[day] = int(pages)
    return per_day


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


def supply_list(*, ctx: TenantContext, f: SupplyFilter | None = None) -> Listing[Supply]:
    f = f or SupplyFilter()
    rows = Supply.objects.for_tenant(ctx).filter(device__retired_at__isnull=True)
    if f.kind:
        rows = rows.filter(kind=f.kind)
    if f.color:
        rows = rows.filter(color=f.color)
    if f.is_low:
        rows = rows.filter(percent__lt=LOW_SUPPLY_PERCENT)
    if f.is_at_reorder_point:
        from orders.models import SupplyAlert

        # The alert belongs to the supply, hence to the scope already applied to it.
        open_alert = SupplyAlert.unscoped.filter(supply_id=OuterRef("pk")).exclude(status="closed")
        rows = rows.filter(Exists(open_alert))
    if f.empties_within_days is not None:
        rows = rows.filter(forecast__days_to_empty__lte=f.empties_within_days)

    def load(page: QuerySet[Supply]) -> QuerySet[Supply]:
        return page.select_related("device", "device__customer", "device__site", "forecast")

    rows = _sort_scoped(rows, ctx, f.sort, SUPPLY_SORT_SCOPES)
    return Listing(rows.order_by(*_ordering(f.sort, SUPPLY_SORTS, "pk")), load)


# The kinds and colours of a fleet's supplies change when a new printer model joins it: the
# filter's choices are kept this long rather than read from every supply on each page view (a
# scan of the fleet's supplies, 15 ms at 40,000).
SUPPLY_CHOICES_SECONDS = 300


def supply_choices(*, ctx: TenantContext) -> tuple[list[str], list[str]]:
    """The supply kinds and colours present in the fleet, for the filters."""

    def read() -> tuple[list[str], list[str]]:
        pairs = Supply.objects.for_tenant(ctx).order_by().values_list("kind", "color").distinct()
        kinds, colors = set(), set()
        for kind, color in pairs:
            if kind:
                kinds.add(kind)
            if color:
                colors.add(color)
        return sorted(kinds), sorted(colors)

    key = f"devices:supply-choices:{ctx.reseller_id}:{ctx.customer_id or ''}"
    kinds, colors = cast(
        "tuple[list[str], list[str]]", cache.get_or_set(key, read, SUPPLY_CHOICES_SECONDS)
    )
    return list(kinds), list(colors)


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
    today = now().astimezone(UTC).date()
    month_start = today.replace(day=1)
    first_day = min(month_start, today - timedelta(days=days - 1))
    # The customers' daily page rollup (CustomerPageDay): a row per customer and day.
    per_day = dict.fromkeys(_days(first_day, today), 0)
    rows = (
        CustomerPageDay.objects.for_tenant(ctx)
        .filter(day__gte=first_day, day__lte=today)
        .order_by()
        .values("day")
        .annotate(pages=Sum("pages"))
        .values_list("day", "pages")
    )
    for day, pages in rows:
        per_day[day] = int(pages)
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
