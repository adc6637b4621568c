"""Pure maths of supply levels: where a cartridge was replaced, whether the printer reports in
coarse steps, and when the current cartridge empties. No database; the services feed it.

The evaluation is incremental (orders/supply_services.py): each run folds only the readings that
arrived since the last one into a running state (`Detector` for replacements, `DayPoint` for the
daily series), and fits the line again only when the series changed enough to matter
(`refit_due`). Folding readings in several runs gives the same result as one run over all of
them, which the tests check against the one-pass functions.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

# A level that rises by this many points between two readings is a new cartridge; smaller
# rises are noise (printers re-estimate levels after a calibration).
REPLACEMENT_JUMP = 20.0
# ...measured from the median of this many previous levels.
JUMP_BASE = 3
# Printers that report in steps put every level on one of these grids.
COARSE_STEPS = (10.0, 25.0, 50.0, 100.0)
# Theil-Sen is quadratic in the readings; the newest ones say the most about the trend.
MAX_READINGS = 200
SECONDS_PER_DAY = 86400.0
# A level that moved this many points since the last fit makes the line worth fitting again;
# smaller moves only shift the line within its noise. A new day of the series always does.
REFIT_POINTS = 1.0
# Bit i set: the level lies on the grid COARSE_STEPS[i].
ALL_STEPS = (1 << len(COARSE_STEPS)) - 1


@dataclass(frozen=True, slots=True)
class Reading:
    at: datetime
    percent: float | None  # None when the level is unknown or "some remaining"
    serial: str = ""


@dataclass(frozen=True, slots=True)
class Replacement:
    at: datetime
    old_percent: float | None
    new_percent: float | None
    old_serial: str
    new_serial: str


@dataclass(frozen=True, slots=True)
class Forecast:
    method: str  # theil_sen, threshold, stable, insufficient (SupplyForecast.Method)
    is_coarse: bool
    days_to_empty: float | None
    slope_per_day: float | None
    readings_used: int
    # Where the fitted line reaches zero: days to empty at a later moment without a new fit.
    empties_at: datetime | None = None


@dataclass(slots=True)
class Detector:
    """The running state of `replacements` over one supply's readings: the last few known
    levels since the current cartridge went in, and the last serial reported."""

    levels: list[float]
    serial: str = ""


@dataclass(frozen=True, slots=True)
class DayPoint:
    """A supply's level on one (UTC) day: the last level of the day, first seen at `at`, and
    the coarse grids (bits of COARSE_STEPS) that every level of the day lies on."""

    day: date
    percent: float
    at: datetime
    steps: int


def replacements(readings: Sequence[Reading]) -> list[Replacement]:
    """Every point where the level jumps up or the serial changes, in time order.

    A jump is measured from the median of the last few known levels, so one glitched low
    reading followed by the true level is not taken for a new cartridge."""
    return replacements_fold(readings, Detector(levels=[]))


def replacements_fold(readings: Sequence[Reading], state: Detector) -> list[Replacement]:
    """`replacements` continued from `state` (which it advances) over later readings."""
    found: list[Replacement] = []
    recent = state.levels
    last_serial = state.serial
    for r in sorted(readings, key=lambda r: r.at):
        base = statistics.median(recent[-JUMP_BASE:]) if recent else None
        new_serial = bool(r.serial and last_serial and r.serial != last_serial)
        jumped = r.percent is not None and base is not None and r.percent - base >= REPLACEMENT_JUMP
        if new_serial or jumped:
            old = recent[-1] if recent else None
            found.append(Replacement(r.at, old, r.percent, last_serial, r.serial))
            recent = []
        if r.percent is not None:
            recent = [*recent[-(JUMP_BASE - 1) :], r.percent]
        if r.serial:
            last_serial = r.serial
    state.levels, state.serial = recent, last_serial
    return found


def step_bits(percent: float) -> int:
    """The coarse grids that `percent` lies on, as bits of COARSE_STEPS."""
    bits = 0
    for i, step in enumerate(COARSE_STEPS):
        if abs(percent / step - round(percent / step)) < 1e-6:
            bits |= 1 << i
    return bits


def days_fold(readings: Sequence[Reading], current: DayPoint | None) -> list[DayPoint]:
    """The daily series continued from its newest point `current` over later readings: the
    points that changed or were added, oldest first (the last one is the new newest point).
    Readings of a day before `current` (late history) are left out of the series."""
    touched: list[DayPoint] = []
    for r in sorted(readings, key=lambda r: r.at):
        if r.percent is None:
            continue
        day = r.at.date()
        if current is not None and day == current.day:
            if r.percent == current.percent:
                continue
            current = DayPoint(day, r.percent, r.at, current.steps & step_bits(r.percent))
        elif current is None or day > current.day:
            current = DayPoint(day, r.percent, r.at, step_bits(r.percent))
        else:
            continue
        if touched and touched[-1].day == day:
            touched[-1] = current
        else:
            touched.append(current)
    return touched


def refit_due(
    *, fitted_at: datetime | None, fitted_percent: float | None, newest: DayPoint | None
) -> bool:
    """Whether the daily series moved enough since the last fit to fit the line again: its
    level by REFIT_POINTS or more, or a new day (so every supply is fitted at least daily)."""
    if newest is None:
        return fitted_at is None
    if fitted_at is None or fitted_percent is None:
        return True
    return newest.day > fitted_at.date() or abs(newest.percent - fitted_percent) >= REFIT_POINTS


def days_left(empties_at: datetime | None, *, at: datetime) -> float | None:
    """Days from `at` until the fitted line reaches zero (never negative)."""
    if empties_at is None:
        return None
    return max((empties_at - at).total_seconds() / SECONDS_PER_DAY, 0.0)


def forecast_days(points: Sequence[DayPoint], *, at: datetime) -> Forecast:
    """`forecast` over the daily series of the current cartridge: one point per day, the
    coarse test from each day's grids rather than from readings that are no longer read."""
    used = sorted(points, key=lambda p: p.at)[-MAX_READINGS:]
    steps = ALL_STEPS
    for p in used:
        steps &= p.steps
    return forecast(
        [Reading(p.at, p.percent) for p in used], at=at, coarse=bool(used) and steps != 0
    )


def is_coarse(percents: Sequence[float]) -> bool:
    """True when every level lies on a 10 % (or coarser) grid: the printer reports steps."""
    return bool(percents) and any(
        all(abs(p / step - round(p / step)) < 1e-6 for p in percents) for step in COARSE_STEPS
    )


def theil_sen_slope(points: Sequence[tuple[float, float]]) -> float | None:
    """The median of the slopes between every pair of points with distinct x."""
    slopes = [
        (y2 - y1) / (x2 - x1)
        for i, (x1, y1) in enumerate(points)
        for x2, y2 in points[i + 1 :]
        if x2 != x1
    ]
    return statistics.median(slopes) if slopes else None


def forecast(readings: Sequence[Reading], *, at: datetime, coarse: bool | None = None) -> Forecast:
    """Days to empty of the current cartridge, from `readings` since it was installed.

    Unknown and "some remaining" levels carry no number and are left out. It needs two distinct
    readings; a printer that reports coarse steps gets no forecast (the threshold decides).
    `coarse` overrides the coarse test when the caller knows more readings than it passes."""
    known = sorted(
        ((r.at, r.percent) for r in readings if r.percent is not None), key=lambda p: p[0]
    )[-MAX_READINGS:]
    percents = [p for _, p in known]
    distinct = {(t, p) for t, p in known}
    if len({t for t, _ in distinct}) < 2:
        return Forecast("insufficient", False, None, None, len(known))
    if coarse if coarse is not None else is_coarse(percents):
        return Forecast("threshold", True, None, None, len(known))
    origin = known[-1][0]
    points = [((t - origin).total_seconds() / SECONDS_PER_DAY, p) for t, p in known]
    slope = theil_sen_slope(points)
    if slope is None or slope >= 0:
        return Forecast("stable", False, None, slope, len(known))
    # The level at the newest reading, as the robust line sees it (Theil-Sen's intercept).
    level = statistics.median(y - slope * x for x, y in points)
    empties_at = origin + timedelta(days=max(level, 0.0) / -slope)
    return Forecast("theil_sen", False, days_left(empties_at, at=at), slope, len(known), empties_at)
