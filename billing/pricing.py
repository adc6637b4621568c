"""The pure arithmetic of billing: periods, counter growth, estimates, tiers, allowances, fees.

No database here: the statement service feeds these functions the rows that the usage queries
return, and the property tests feed them generated fleets. Money is Decimal throughout and is
rounded only by `portal.money.round_money`, once per statement line.
"""

from __future__ import annotations

import calendar
import itertools
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal
from typing import NamedTuple

from django.core.exceptions import ValidationError
from django.core.validators import DecimalValidator

from portal.money import round_money

ZERO = Decimal(0)
# How far back before a window's start the daily average of a silent device is measured.
LOOKBACK = timedelta(days=30)
SECONDS_PER_DAY = Decimal(86400)
UNIT_STEP = Decimal("0.0001")  # counters are stored with four decimals


# --- Input limits -------------------------------------------------------------------------------


class Digits(NamedTuple):
    """The NUMERIC(max_digits, decimal_places) a value is stored in (billing/models.py)."""

    max_digits: int
    decimal_places: int


MONEY = Digits(14, 2)
UNITS = Digits(20, 4)  # counters are stored with four decimals (devices.CounterReading.value)
PRICE = Digits(16, 8)  # unit prices are fractions of a cent; amounts are rounded, prices not

# Periods are computed from the first day of a month to the first of the next; a day near
# date.max overflows that, and no contract bills outside these years.
FIRST_YEAR, LAST_YEAR = 2000, 2100


def number_problem(value: object, digits: Digits) -> str | None:
    """Why `value` is not an amount >= 0 that fits its column unrounded, or None.

    The one check of every number a plan stores, for the forms and the services alike: NaN,
    sNaN and infinities are refused before any comparison (comparing sNaN raises), and a value
    past the column's digits is refused rather than overflowing the database."""
    if not isinstance(value, Decimal) or not value.is_finite():
        return f"{value} is not a number."
    try:
        DecimalValidator(digits.max_digits, digits.decimal_places)(value)
    except ValidationError as error:
        return f"{value}: {' '.join(error.messages)}"
    if value < 0:
        return f"{value}: zero or more."
    return None


def period_day_problem(day: date) -> str | None:
    if not FIRST_YEAR <= day.year <= LAST_YEAR:
        return f"Choose a day between {FIRST_YEAR} and {LAST_YEAR}."
    return None


def validate_period_day(day: date) -> None:
    """period_day_problem as a validator of form and serializer fields."""
    problem = period_day_problem(day)
    if problem:
        raise ValidationError(problem, code="invalid_period")


# --- Periods ------------------------------------------------------------------------------------


def _add_months(day: date, months: int, anchor: int) -> date:
    month_index = day.year * 12 + day.month - 1 + months
    year, month = divmod(month_index, 12)
    return date(year, month + 1, min(anchor, calendar.monthrange(year, month + 1)[1]))


def period_containing(day: date, anchor_day: int) -> tuple[date, date]:
    """The monthly period [start, end) of a contract with `anchor_day` that contains `day`."""
    start = date(day.year, day.month, anchor_day)
    if day < start:
        start = _add_months(start, -1, anchor_day)
    return start, _add_months(start, 1, anchor_day)


def period_before(period_start: date, anchor_day: int) -> tuple[date, date]:
    return period_containing(period_start - timedelta(days=1), anchor_day)


def midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)


def overlap(
    start: date, end: date | None, other_start: date, other_end: date | None
) -> tuple[date, date] | None:
    """The intersection of two half-open date ranges (None end = open), or None if empty."""
    lo = max(start, other_start)
    ends = [e for e in (end, other_end) if e is not None]
    hi = min(ends) if ends else None
    if hi is None:
        raise ValueError("at least one range must be bounded")
    return (lo, hi) if lo < hi else None


def floor_units(value: Decimal) -> Decimal:
    """Down to the four decimals counters are stored with."""
    return (value / UNIT_STEP).to_integral_value(rounding=ROUND_FLOOR) * UNIT_STEP


def prorated_units(units: Decimal, days: int, period_days: int) -> Decimal:
    """A monthly allowance for `days` of a period of `period_days`, half-up to the four
    decimals counters are stored with (docs/billing.md). A whole period is exact."""
    exact = units * Decimal(days) / Decimal(period_days)
    return (exact / UNIT_STEP).to_integral_value(rounding=ROUND_HALF_UP) * UNIT_STEP


# --- Counter series -----------------------------------------------------------------------------


@dataclass(frozen=True, order=True)
class Point:
    """A reading (or a correction) of one counter. Sorted by (at, order, value): at one instant
    a board swap's new base (order 1) comes after the old board's last count (order 0)."""

    at: datetime
    order: int
    value: Decimal
    rebase: bool = False


@dataclass(frozen=True)
class Growth:
    start_at: datetime
    start_value: Decimal
    end_at: datetime
    end_value: Decimal
    measured: Decimal
    resets: int
    swaps: int
    window_points: int
    has_base: bool
    lookback_growth: Decimal
    lookback_seconds: int


def _delta(previous: Point, point: Point) -> tuple[Decimal, bool]:
    """Growth from one point to the next, and whether it was an unexpected drop."""
    if point.rebase:
        return ZERO, False
    if point.value < previous.value:
        return ZERO, True
    return point.value - previous.value, False


def series_growth(points: Iterable[Point], ws: datetime, we: datetime) -> Growth | None:
    """Growth of a cumulative counter over (ws, we] from the last point at or before ws.

    `points` must hold every point in [ws - LOOKBACK, we] and, if older, the last one before.
    None when no point lies at or before we."""
    ordered = sorted(p for p in points if p.at <= we)
    if not ordered:
        return None
    before = [p for p in ordered if p.at <= ws]
    inside = [p for p in ordered if p.at > ws]
    base = before[-1] if before else inside[0]
    measured, resets, swaps = ZERO, 0, 0
    previous = base
    for point in inside if before else inside[1:]:
        delta, dropped = _delta(previous, point)
        measured += delta
        resets += dropped
        swaps += point.rebase
        previous = point
    lookback = [p for p in before if p.at >= ws - LOOKBACK]
    lookback_growth = ZERO
    for previous_point, point in itertools.pairwise(lookback):
        lookback_growth += _delta(previous_point, point)[0]
    lookback_seconds = (
        int((lookback[-1].at - lookback[0].at).total_seconds()) if len(lookback) > 1 else 0
    )
    end = ordered[-1]
    return Growth(
        start_at=base.at,
        start_value=base.value,
        end_at=end.at,
        end_value=end.value,
        measured=measured,
        resets=resets,
        swaps=swaps,
        window_points=len(inside),
        has_base=bool(before),
        lookback_growth=lookback_growth,
        lookback_seconds=lookback_seconds,
    )


def estimate_units(*, lookback_growth: Decimal, lookback_seconds: int, window_days: int) -> Decimal:
    """The recent daily average of a silent counter times the days of the window."""
    if lookback_seconds < 86400:
        return ZERO
    # One division, so that flooring the quotient is exact (no earlier rounding to cross).
    return floor_units(lookback_growth * SECONDS_PER_DAY * window_days / Decimal(lookback_seconds))


@dataclass(frozen=True)
class BilledUsage:
    usage: Decimal
    outstanding: Decimal
    flags: tuple[str, ...]


def billed_usage(
    *,
    growth: Growth,
    estimate_missing: bool,
    window_days: int,
    prior_outstanding: Decimal = ZERO,
) -> BilledUsage:
    """What a period bills of a counter's measured growth.

    A counter without readings in the window is estimated (or carried: it bills nothing, and
    the growth lands in the period in which readings resume). Estimated units billed earlier
    are `prior_outstanding`: measured growth pays them off before anything is billed again."""
    flags: list[str] = []
    if growth.resets:
        flags.append("reset")
    if growth.swaps:
        flags.append("board_swap")
    if not growth.has_base and growth.window_points:
        flags.append("first_reading_in_window")
    if growth.window_points == 0:
        flags.append("no_readings")
        if not estimate_missing:
            flags.append("carried_forward")
            return BilledUsage(ZERO, prior_outstanding, tuple(flags))
        estimate = estimate_units(
            lookback_growth=growth.lookback_growth,
            lookback_seconds=growth.lookback_seconds,
            window_days=window_days,
        )
        flags.append("estimated")
        return BilledUsage(estimate, prior_outstanding + estimate, tuple(flags))
    offset = min(growth.measured, prior_outstanding)
    if offset:
        flags.append("estimate_offset")
    return BilledUsage(growth.measured - offset, prior_outstanding - offset, tuple(flags))


# --- Rates, tiers and allowances ---------------------------------------------------------------


@dataclass(frozen=True)
class Tier:
    from_units: Decimal
    to_units: Decimal | None
    unit_price: Decimal


@dataclass(frozen=True)
class Rate:
    key: int
    counter: str
    media_type: str
    color: str
    mode: str  # "graduated" | "volume"
    scope: str  # "device" | "pooled"
    included_units: Decimal
    tiers: tuple[Tier, ...]

    def matches(self, counter: str, media_type: str, color: str) -> bool:
        return (
            self.counter == counter
            and self.media_type in ("", media_type)
            and self.color in ("", color)
        )

    @property
    def specificity(self) -> tuple[bool, bool]:
        return (self.media_type != "", self.color != "")


def rate_for(rates: Sequence[Rate], counter: str, media_type: str, color: str) -> Rate | None:
    """The most specific rate for a counter: one naming its media type or colour wins."""
    matching = [r for r in rates if r.matches(counter, media_type, color)]
    return max(matching, key=lambda r: r.specificity) if matching else None


def tiers_valid(tiers: Sequence[Tier]) -> str | None:
    """Why a tier list is unusable, or None: numbers that fit their columns, in increasing
    order, contiguous from 0, the last one open-ended."""
    if not tiers:
        return "A rate needs at least one tier."
    for tier in tiers:
        for value, digits in (
            (tier.from_units, UNITS),
            (tier.to_units, UNITS),
            (tier.unit_price, PRICE),
        ):
            problem = None if value is None else number_problem(value, digits)
            if problem:
                return problem
    if tiers[0].from_units != 0:
        return "The first tier starts at 0."
    for tier, following in itertools.pairwise(tiers):
        if tier.to_units is None or following.from_units <= tier.from_units:
            return (
                f"Tier bounds must increase: {following.from_units.normalize():f} "
                f"comes after {tier.from_units.normalize():f}."
            )
        if tier.to_units != following.from_units:
            return "Tiers must follow each other without gaps or overlaps."
    last = tiers[-1]
    if last.to_units is not None:
        return "The last tier has no upper bound."
    return None


def tier_at(tiers: Sequence[Tier], units: Decimal) -> Tier:
    for tier in tiers:
        if tier.from_units <= units and (tier.to_units is None or units < tier.to_units):
            return tier
    return tiers[-1]


def graduated_cost(tiers: Sequence[Tier], lo: Decimal, hi: Decimal) -> Decimal:
    """The price of billable units [lo, hi) when each tier prices its own units."""
    cost = ZERO
    for tier in tiers:
        top = hi if tier.to_units is None else min(hi, tier.to_units)
        bottom = max(lo, tier.from_units)
        if top > bottom:
            cost += (top - bottom) * tier.unit_price
    return cost


@dataclass
class UsageItem:
    """One counter of one device in one statement, in the order lines are printed."""

    sort_key: tuple[object, ...]
    device_key: int
    counter: str
    media_type: str
    color: str
    usage: Decimal


@dataclass
class Priced:
    allowance: Decimal = ZERO
    billable: Decimal = ZERO
    amount: Decimal = ZERO
    unit_price: Decimal | None = None
    rate_label: str = ""
    rate: Rate | None = None
    flags: list[str] = field(default_factory=list)


def price_usage(
    items: Sequence[UsageItem],
    rates: Sequence[Rate],
    *,
    member_days: Mapping[int, int],
    period_days: int,
    currency: str,
) -> list[Priced]:
    """Price every item (same order in and out), each amount rounded once.

    Allowances and tiers apply to a group: one device (scope "device") or the whole statement
    (scope "pooled"). A group's allowance is the rate's included units prorated by the days its
    devices were members in the period (`member_days`, summed over each device's windows), and
    rounded once per group. Within a group the items, in line order (a device's windows in date
    order), fill the allowance first and then the tiers, so each line's amount is the price of
    its own slice of the group's usage and tiers apply once to the group's total."""
    result = [Priced() for _ in items]
    groups: dict[tuple[int, int | None], list[int]] = defaultdict(list)
    by_key: dict[int, Rate] = {}
    for index, item in enumerate(items):
        rate = rate_for(rates, item.counter, item.media_type, item.color)
        if rate is None:
            result[index].flags.append("no_rate")
            continue
        by_key[rate.key] = rate
        result[index].rate = rate
        groups[(rate.key, item.device_key if rate.scope == "device" else None)].append(index)
    pooled_days = sum(member_days.values())
    for (rate_key, device_key), indexes in groups.items():
        rate = by_key[rate_key]
        tiers = sorted(rate.tiers, key=lambda t: t.from_units)
        indexes.sort(key=lambda i: items[i].sort_key)
        days = pooled_days if device_key is None else member_days[device_key]
        allowance = prorated_units(rate.included_units, days, period_days)
        total = sum((items[i].usage for i in indexes), ZERO)
        volume_tier = tier_at(tiers, max(total - allowance, ZERO))
        position = ZERO
        for index in indexes:
            usage = items[index].usage
            covered = max(min(position + usage, allowance) - position, ZERO)
            lo = max(position - allowance, ZERO)
            hi = max(position + usage - allowance, ZERO)
            position += usage
            priced = result[index]
            priced.allowance = covered
            priced.billable = hi - lo
            if rate.mode == "volume":
                cost = priced.billable * volume_tier.unit_price
                priced.unit_price = volume_tier.unit_price
                priced.rate_label = "volume tier"
            else:
                cost = graduated_cost(tiers, lo, hi)
                low_tier = tier_at(tiers, lo)
                if priced.billable == 0 or tier_at(tiers, hi - UNIT_STEP) is low_tier:
                    priced.unit_price = low_tier.unit_price
                    priced.rate_label = "graduated"
                else:
                    priced.rate_label = "tiered"
            priced.amount = round_money(cost, currency)
    return result


def prorated(amount: Decimal, days: int, period_days: int, currency: str) -> Decimal:
    """A monthly amount for `days` of a period of `period_days`, rounded once."""
    return round_money(amount * Decimal(days) / Decimal(period_days), currency)


def tax_of(subtotal: Decimal, tax_rate: Decimal, currency: str) -> Decimal:
    return round_money(subtotal * tax_rate / Decimal(100), currency)
