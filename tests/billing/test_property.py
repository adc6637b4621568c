"""Property-based: generated fleets (random readings, resets, board swaps, gaps, late arrivals,
mid-period joins, leaves and rejoins, tiers and allowances) priced by the statement service must
match a small reference implementation written here in plain Python, straight from DESIGN.md
and docs/billing.md; and an adjustment of a finalised statement must be exactly the reference's
difference between the period with and without the data that arrived after finalising.

The reference shares no code with billing: it walks the readings by hand, uses Fractions for
estimates and a cumulative tier function for prices, and rounds with Decimal half-up itself.
On PostgreSQL the same test exercises the set-based SQL; on SQLite the Python fallback."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal
from fractions import Fraction

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing import services, statement_services
from billing.models import CounterCorrection, PlanRate, Statement
from billing.pricing import Tier
from devices.models import CounterReading
from portal.tenancy import TenantContext
from tests.factories import CustomerFactory, DeviceFactory, ResellerFactory, SiteFactory

pytestmark = pytest.mark.django_db

PS, PE = date(2026, 2, 1), date(2026, 3, 1)
WS0 = datetime(2026, 2, 1, tzinfo=UTC)
COUNTERS = ("impressions.color", "impressions.mono")
PRICES = [Decimal(p) for p in ("0", "0.0035", "0.0100", "0.0125", "0.0333", "0.0650", "0.1")]


# --- Scenario ------------------------------------------------------------------------------------


@dataclass
class RefReading:
    at: datetime
    value: int
    late: bool


@dataclass
class RefSwap:
    at: datetime
    old_value: int
    new_value: int


@dataclass
class RefDevice:
    serial: str
    # Membership windows [joined, left), in date order: a device may leave and rejoin.
    windows: list[tuple[date, date | None]]
    readings: dict[str, list[RefReading]]
    swap: RefSwap | None


@dataclass
class RefRate:
    counter: str
    mode: str
    scope: str
    included: int
    tiers: list[tuple[int, int | None, Decimal]]


@dataclass
class Scenario:
    devices: list[RefDevice]
    rates: list[RefRate]
    fee: Decimal
    minimum: Decimal
    tax: Decimal
    estimate: bool
    notes: list[str] = field(default_factory=list)


def _moment(offset_minutes: int) -> datetime:
    return WS0 + timedelta(minutes=offset_minutes)


@st.composite
def series(draw: st.DrawFn) -> list[RefReading]:
    count = draw(st.integers(0, 7))
    # From 45 days before the period to 3 days after it, on whole minutes.
    # Boundaries (lookback start, period start and end) come up on purpose.
    moment = st.one_of(
        st.integers(-45 * 1440, 31 * 1440), st.sampled_from([-30 * 1440, -1, 0, 1, 28 * 1440])
    )
    times = sorted(draw(st.lists(moment, min_size=count, max_size=count)))
    value = draw(st.integers(0, 5000))
    readings = []
    for minutes in times:
        if draw(st.integers(0, 9)) == 0:
            value = draw(st.integers(0, 60))  # a reset or an unrecorded board swap
        else:
            value += draw(st.integers(0, 400))
        readings.append(RefReading(_moment(minutes), value, draw(st.booleans())))
    return readings


@st.composite
def tiers(draw: st.DrawFn) -> list[tuple[int, int | None, Decimal]]:
    bounds = sorted(set(draw(st.lists(st.integers(1, 1500), max_size=2))))
    starts = [0, *bounds]
    return [
        (start, starts[i + 1] if i + 1 < len(starts) else None, draw(st.sampled_from(PRICES)))
        for i, start in enumerate(starts)
    ]


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    devices = []
    for n in range(draw(st.integers(1, 3))):
        joined = PS + timedelta(days=draw(st.integers(-20, 27)))
        left = None
        if draw(st.booleans()):
            left = joined + timedelta(days=draw(st.integers(1, 40)))
        windows = [(joined, left)]
        if left is not None and draw(st.booleans()):
            # Leaves and rejoins, the same day or up to two weeks later.
            rejoined = left + timedelta(days=draw(st.integers(0, 14)))
            left_again = None
            if draw(st.booleans()):
                left_again = rejoined + timedelta(days=draw(st.integers(1, 20)))
            windows.append((rejoined, left_again))
        swap = None
        if draw(st.integers(0, 3)) == 0:
            swap = RefSwap(
                _moment(draw(st.integers(-3 * 1440, 27 * 1440))),
                draw(st.integers(0, 9000)),
                draw(st.integers(0, 90000)),
            )
        devices.append(
            RefDevice(
                serial=f"P{n}",
                windows=windows,
                readings={c: draw(series()) for c in COUNTERS},
                swap=swap,
            )
        )
    rates = [
        RefRate(
            counter=counter,
            mode=draw(st.sampled_from(["graduated", "volume"])),
            scope=draw(st.sampled_from(["device", "pooled"])),
            included=draw(st.sampled_from([0, 0, 50, 300, 1000])),
            tiers=draw(tiers()),
        )
        for counter in COUNTERS
        if counter == "impressions.mono" or draw(st.booleans())
    ]
    return Scenario(
        devices=devices,
        rates=rates,
        fee=Decimal(draw(st.integers(0, 3000))) / 100,
        minimum=Decimal(draw(st.sampled_from([0, 0, 2500, 9999]))) / 100,
        tax=draw(st.sampled_from([Decimal(0), Decimal("7.70"), Decimal(19), Decimal(20)])),
        estimate=draw(st.booleans()),
    )


# --- The reference ---------------------------------------------------------------------------


def half_up(amount: Decimal | Fraction) -> Decimal:
    if isinstance(amount, Fraction):
        amount = Decimal(amount.numerator) / Decimal(amount.denominator)
    return amount.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def ref_points(device: RefDevice, counter: str) -> list[tuple[datetime, int, int, bool]]:
    """(at, order, value, is_new_base): a swap's old count, then its new base, at one instant."""
    points = [(r.at, 0, r.value, False) for r in device.readings[counter]]
    if device.swap is not None and counter == "impressions.mono":
        points.append((device.swap.at, 0, device.swap.old_value, False))
        points.append((device.swap.at, 1, device.swap.new_value, True))
    return sorted(points)


def ref_counter(points, ws: datetime, we: datetime, days: int, estimate: bool):
    """(start, end, measured, billed usage, flags) or None if the counter is not billed."""
    lookback_start = ws - timedelta(days=30)
    if not any(lookback_start <= p[0] <= we for p in points):
        return None
    upto = [p for p in points if p[0] <= we]
    before = [p for p in upto if p[0] <= ws]
    inside = [p for p in upto if p[0] > ws]
    chain = ([before[-1]] if before else []) + inside
    measured, resets, swaps = 0, 0, 0
    for previous, point in itertools.pairwise(chain):
        if point[3]:
            swaps += 1
        elif point[2] < previous[2]:
            resets += 1
        else:
            measured += point[2] - previous[2]
    flags = []
    if resets:
        flags.append("reset")
    if swaps:
        flags.append("board_swap")
    if not before and inside:
        flags.append("first_reading_in_window")
    start, end = chain[0], upto[-1]
    if inside:
        return start, end, measured, Fraction(measured), flags
    flags.append("no_readings")
    if not estimate:
        return start, end, 0, Fraction(0), [*flags, "carried_forward"]
    recent = [p for p in before if p[0] >= lookback_start]
    growth = 0
    for previous, point in itertools.pairwise(recent):
        if not point[3] and point[2] >= previous[2]:
            growth += point[2] - previous[2]
    seconds = int((recent[-1][0] - recent[0][0]).total_seconds()) if len(recent) > 1 else 0
    usage = Fraction(0)
    if seconds >= 86400:
        exact = Fraction(growth * 86400 * days, seconds)
        usage = Fraction(int(exact * 10000), 10000)  # floor to four decimals
    return start, end, 0, usage, [*flags, "estimated"]


def cumulative_cost(tier_list, units: Fraction) -> Fraction:
    """What the first `units` billable units cost when each tier prices its own units."""
    total = Fraction(0)
    for start, stop, price in tier_list:
        width = (Fraction(stop) if stop is not None else units) - start
        total += Fraction(price) * max(Fraction(0), min(units - start, width))
    return total


def prorated_allowance(included: int, days: int) -> Fraction:
    """included * days / 28, half-up to four decimals (docs/billing.md)."""
    exact = Fraction(included * days, 28) * 10000
    return Fraction(int(exact + Fraction(1, 2)), 10000)


def reference(scenario: Scenario) -> tuple[list[tuple], Decimal, Decimal]:
    """Lines (kind, serial, counter, window start, usage, allowance, billable, amount, flags),
    subtotal and tax of the period."""
    members = []  # (device, window start, window end), by serial and then date
    for device in sorted(scenario.devices, key=lambda d: d.serial):
        for joined, left in device.windows:
            lo = max(joined, PS, date(2026, 1, 1))
            hi = min(left or PE, PE)
            if lo < hi:
                members.append((device, lo, hi))
    lines: list[list] = []
    usage_items = []  # (line index, device serial, counter, usage)
    member_days: dict[str, int] = {}
    # Estimated units of a device's counter not yet backed by readings, and the end of the
    # window that estimated them: a later window whose growth starts at or before that end
    # covers the estimated days and pays them off first; one that starts later settles them.
    owed: dict[tuple[str, str], tuple[Fraction, datetime]] = {}
    for device, lo, hi in members:
        days = (hi - lo).days
        member_days[device.serial] = member_days.get(device.serial, 0) + days
        ws = datetime(lo.year, lo.month, lo.day, tzinfo=UTC)
        we = datetime(hi.year, hi.month, hi.day, tzinfo=UTC)
        fee = half_up(scenario.fee * days / 28)
        counters = {
            c: ref_counter(ref_points(device, c), ws, we, days, scenario.estimate) for c in COUNTERS
        }
        fee_flags = [] if any(counters.values()) else ["no_readings"]
        if days < 28:
            fee_flags.append("prorated")
        zero = Fraction(0)
        lines.append(["fee", device.serial, "", lo, zero, zero, zero, fee, fee_flags])
        for counter in COUNTERS:
            result = counters[counter]
            if result is None or not any(r.counter == counter for r in scenario.rates):
                continue
            start, _, measured, usage, flags = result
            units, left_by = owed.get((device.serial, counter), (Fraction(0), we))
            if start[0] > left_by:
                units = Fraction(0)
            if "no_readings" in flags:
                units += usage  # an estimate (nothing when carried forward)
            else:
                offset = min(Fraction(measured), units)
                if offset:
                    flags = [*flags, "estimate_offset"]
                usage, units = usage - offset, units - offset
            owed[(device.serial, counter)] = (units, we)
            usage_items.append((len(lines), device.serial, counter, usage))
            lines.append(["usage", device.serial, counter, lo, usage, None, None, None, flags])
    for rate in scenario.rates:
        # A device's windows, in date order, share its allowance and climb its tiers together.
        groups: dict[str | None, list] = {}
        for item in usage_items:
            if item[2] == rate.counter:
                groups.setdefault(item[1] if rate.scope == "device" else None, []).append(item)
        for key, items in groups.items():
            days = member_days[key] if key is not None else sum(member_days.values())
            allowance = prorated_allowance(rate.included, days)
            total = sum((i[3] for i in items), Fraction(0))
            billable_total = max(Fraction(0), total - allowance)
            volume_price = next(
                p
                for s, e, p in rate.tiers
                if s <= billable_total and (e is None or billable_total < e)
            )
            used = Fraction(0)
            for index, _, _, usage in items:
                covered = min(used + usage, allowance) - min(used, allowance)
                lo_b, hi_b = max(used - allowance, 0), max(used + usage - allowance, 0)
                used += usage
                if rate.mode == "volume":
                    cost = (hi_b - lo_b) * Fraction(volume_price)
                else:
                    cost = cumulative_cost(rate.tiers, hi_b) - cumulative_cost(rate.tiers, lo_b)
                lines[index][5:8] = [covered, hi_b - lo_b, half_up(cost)]
    subtotal = sum((line[7] for line in lines), Decimal(0))
    minimum = half_up(scenario.minimum)
    if minimum > subtotal:
        zero = Fraction(0)
        lines.append(["minimum", "", "", None, zero, zero, zero, minimum - subtotal, []])
        subtotal = minimum
    tax = half_up(Fraction(subtotal) * Fraction(scenario.tax) / 100)
    return [tuple(line) for line in lines], subtotal, tax


# --- Driving the real thing ----------------------------------------------------------------------


@dataclass
class Built:
    ctx: TenantContext
    contract_id: int
    late: list[CounterReading]


def build(scenario: Scenario) -> Built:
    """The plan, contract, memberships and corrections, and the readings not marked late;
    the late ones are returned, for the caller to store when it means them to arrive."""
    reseller = ResellerFactory()
    ctx = TenantContext.system(reseller=reseller)
    site = SiteFactory(customer=CustomerFactory(reseller=reseller))
    plan = services.plan_create(
        ctx=ctx,
        name="Generated",
        currency="EUR",
        terms=services.Terms(
            effective_from=date(2026, 1, 1),
            monthly_fee_per_device=scenario.fee,
            minimum_monthly=scenario.minimum,
            tax_rate=scenario.tax,
            rates=tuple(
                services.RateSpec(
                    counter=r.counter,
                    mode=r.mode,
                    scope=r.scope,
                    included_units=Decimal(r.included),
                    tiers=tuple(
                        Tier(Decimal(s), None if e is None else Decimal(e), p)
                        for s, e, p in r.tiers
                    ),
                )
                for r in scenario.rates
            ),
        ),
    )
    contract = services.contract_create(
        ctx=ctx,
        customer_id=site.customer_id,
        plan_id=plan.pk,
        reference="G",
        starts_on=date(2026, 1, 1),
        missing_data="estimate" if scenario.estimate else "carry",
    )
    late: list[CounterReading] = []
    early: list[CounterReading] = []
    for spec in scenario.devices:
        device = DeviceFactory(site=site, serial=spec.serial)
        for joined, left in spec.windows:
            membership = services.contract_device_add(
                ctx=ctx, contract_id=contract.pk, device_id=device.pk, joined_on=joined
            )
            if left is not None:
                services.contract_device_remove(
                    ctx=ctx, contract_device_id=membership.pk, left_on=left
                )
        if spec.swap is not None:
            services.correction_create(
                ctx=ctx,
                device_id=device.pk,
                counter="impressions.mono",
                kind=CounterCorrection.Kind.BOARD_SWAP,
                effective_at=spec.swap.at,
                old_value=Decimal(spec.swap.old_value),
                value=Decimal(spec.swap.new_value),
                note="generated",
            )
        for counter, readings in spec.readings.items():
            for r in readings:
                row = CounterReading(
                    reseller=reseller,
                    device=device,
                    collected_at=r.at,
                    name=counter,
                    value=Decimal(r.value),
                )
                (late if r.late else early).append(row)
    CounterReading.unscoped.bulk_create(early)
    return Built(ctx, contract.pk, late)


def build_and_compute(scenario: Scenario) -> Statement:
    built = build(scenario)
    first = statement_services.statement_compute(
        ctx=built.ctx, contract_id=built.contract_id, period_start=PS
    )
    # Late arrivals after the draft was computed: the recomputed draft must not remember them.
    CounterReading.unscoped.bulk_create(built.late)
    again = statement_services.statement_compute(
        ctx=built.ctx, contract_id=built.contract_id, period_start=PS
    )
    assert again.pk == first.pk
    return again


def as_decimal(value: Fraction) -> Decimal:
    return (Decimal(value.numerator) / Decimal(value.denominator)).quantize(
        Decimal("0.0001"), rounding=ROUND_FLOOR
    )


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(scenario=scenarios())
def test_statements_match_the_reference_implementation(scenario: Scenario) -> None:
    sid = transaction.savepoint()
    try:
        statement = build_and_compute(scenario)
        expected_lines, subtotal, tax = reference(scenario)
        got = [
            (
                line.kind,
                line.device.serial if line.device else "",
                line.counter,
                line.window_start,
                line.usage,
                line.allowance,
                line.billable,
                line.amount,
                line.flags,
            )
            for line in statement.lines.select_related("device").order_by("position")
        ]
        want = [
            (kind, serial, counter, ws, as_decimal(u), as_decimal(a), as_decimal(b), amount, flags)
            for kind, serial, counter, ws, u, a, b, amount, flags in expected_lines
        ]
        assert got == want
        assert (statement.subtotal, statement.tax, statement.total) == (
            subtotal,
            tax,
            subtotal + tax,
        )
        assert statement.plan_version.effective_from == date(2026, 1, 1)
    finally:
        transaction.savepoint_rollback(sid)


def without_late_readings(scenario: Scenario) -> Scenario:
    devices = [
        replace(d, readings={c: [r for r in rs if not r.late] for c, rs in d.readings.items()})
        for d in scenario.devices
    ]
    return replace(scenario, devices=devices)


Figures = tuple[Decimal, Decimal, Decimal, Decimal]  # usage, allowance, billable, amount


def reference_lines(scenario: Scenario) -> tuple[dict[tuple, Figures], Decimal, Decimal]:
    lines, subtotal, tax = reference(scenario)
    by_key = {
        (kind, serial, counter, ws): (as_decimal(u), as_decimal(a), as_decimal(b), amount)
        for kind, serial, counter, ws, u, a, b, amount, _ in lines
    }
    assert len(by_key) == len(lines)  # a line is known by its device, counter and window
    return by_key, subtotal, tax


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(scenario=scenarios())
def test_adjustments_are_the_reference_difference_line_by_line(scenario: Scenario) -> None:
    """Finalise the period without the late readings; an adjustment then is exactly zero; the
    late readings arrive; the next adjustment is the recomputed period minus the final one,
    line by line, and its tax the recomputed tax minus the tax billed."""
    sid = transaction.savepoint()
    try:
        built = build(scenario)
        draft = statement_services.statement_compute(
            ctx=built.ctx, contract_id=built.contract_id, period_start=PS
        )
        final = statement_services.statement_finalise(ctx=built.ctx, statement_id=draft.pk, by=None)
        nothing = statement_services.statement_adjust(ctx=built.ctx, statement_id=final.pk)
        assert list(nothing.lines.all()) == []
        assert (nothing.subtotal, nothing.tax, nothing.total) == (0, 0, 0)

        CounterReading.unscoped.bulk_create(built.late)
        adjustment = statement_services.statement_adjust(ctx=built.ctx, statement_id=final.pk)

        before, subtotal_before, tax_before = reference_lines(without_late_readings(scenario))
        after, subtotal_after, tax_after = reference_lines(scenario)
        zero: Figures = (Decimal(0),) * 4
        want = {}
        for key in after.keys() | before.keys():
            new, old = after.get(key, zero), before.get(key, zero)
            if new != old:
                want[key] = tuple(n - o for n, o in zip(new, old, strict=True))
        got = {
            (
                line.kind,
                line.device.serial if line.device else "",
                line.counter,
                line.window_start,
            ): (
                line.usage,
                line.allowance,
                line.billable,
                line.amount,
            )
            for line in adjustment.lines.select_related("device")
        }
        assert got == want
        assert all("adjustment" in line.flags for line in adjustment.lines.all())
        assert (adjustment.subtotal, adjustment.tax, adjustment.total) == (
            subtotal_after - subtotal_before,
            tax_after - tax_before,
            subtotal_after + tax_after - subtotal_before - tax_before,
        )
    finally:
        transaction.savepoint_rollback(sid)


def test_the_reference_itself_on_a_hand_checked_fleet() -> None:
    """A guard against a reference that agrees with anything: exact figures by hand."""
    device = RefDevice(
        serial="P0",
        windows=[(date(2026, 2, 15), None)],  # 14 of 28 days
        readings={
            "impressions.mono": [
                RefReading(_moment(-60), 1000, False),  # carry-in
                RefReading(_moment(15 * 1440), 1500, False),
                RefReading(_moment(20 * 1440), 20, False),  # reset
                RefReading(_moment(27 * 1440), 1020, False),
            ],
            "impressions.color": [],
        },
        swap=None,
    )
    scenario = hand_checked_plan([device])
    lines, subtotal, tax = reference(scenario)
    # 1000 -> 1500 (+500), reset to 20, -> 1020 (+1000): 1500 pages; 100 * 14/28 = 50
    # included; 1000 at 0.01 + 450 at 0.005 = 12.25; fee 20 * 14/28 = 10.00.
    assert [(line[5], line[7]) for line in lines] == [(0, Decimal("10.00")), (50, Decimal("12.25"))]
    assert lines[1][8] == ["reset"]
    assert (subtotal, tax) == (Decimal("22.25"), Decimal("4.23"))
    assert PlanRate.Mode.VOLUME == "volume"


def test_the_reference_itself_on_a_device_that_left_and_rejoined() -> None:
    device = RefDevice(
        serial="P0",
        # 1-7 and 15-28 February: 21 of 28 days, so 75 of the 100 pages are included.
        windows=[(date(2026, 2, 1), date(2026, 2, 8)), (date(2026, 2, 15), None)],
        readings={
            "impressions.mono": [
                RefReading(_moment(-60), 1000, False),  # carry-in
                RefReading(_moment(6 * 1440), 1300, False),
                RefReading(_moment(13 * 1440), 1400, False),  # between the windows
                RefReading(_moment(26 * 1440), 2000, False),
            ],
            "impressions.color": [],
        },
        swap=None,
    )
    lines, subtotal, tax = reference(hand_checked_plan([device]))
    # Window 1: 1000 -> 1300, 75 included, 225 at 0.01. Window 2: from the last reading before
    # it (1400) to 2000, all 600 billable at 0.01 (225 + 600 stays in the first tier).
    assert [(line[0], line[3], line[4], line[5], line[7]) for line in lines] == [
        ("fee", date(2026, 2, 1), 0, 0, Decimal("5.00")),
        ("usage", date(2026, 2, 1), 300, 75, Decimal("2.25")),
        ("fee", date(2026, 2, 15), 0, 0, Decimal("10.00")),
        ("usage", date(2026, 2, 15), 600, 0, Decimal("6.00")),
    ]
    assert (subtotal, tax) == (Decimal("23.25"), Decimal("4.42"))


def hand_checked_plan(devices: list[RefDevice]) -> Scenario:
    return Scenario(
        devices=devices,
        rates=[
            RefRate(
                "impressions.mono",
                "graduated",
                "device",
                100,
                [(0, 1000, Decimal("0.01")), (1000, None, Decimal("0.005"))],
            )
        ],
        fee=Decimal(20),
        minimum=Decimal(0),
        tax=Decimal(19),
        estimate=True,
    )
