"""Pure maths of supply levels: where a cartridge was replaced, whether the printer reports in
coarse steps, and when the current cartridge empties. No database; the services feed it."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

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


def replacements(readings: Sequence[Reading]) -> list[Replacement]:
    """Every point where the level jumps up or the serial changes, in time order.

    A jump is measured from the median of the last few known levels, so one glitched low
    reading followed by the true level is not taken for a new cartridge."""
    found: list[Replacement] = []
    recent: list[float] = []
    last_serial = ""
    for r in sorted(readings, key=lambda r: r.at):
        base = statistics.median(recent[-JUMP_BASE:]) if recent else None
        new_serial = bool(r.serial and last_serial and r.serial != last_serial)
        jumped = r.percent is not None and base is not None and r.percent - base >= REPLACEMENT_JUMP
        if new_serial or jumped:
            old = recent[-1] if recent else None
            found.append(Replacement(r.at, old, r.percent, last_serial, r.serial))
            recent = []
        if r.percent is not None:
            recent.append(r.percent)
        if r.serial:
            last_serial = r.serial
    return found


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


def forecast(readings: Sequence[Reading], *, at: datetime) -> Forecast:
    """Days to empty of the current cartridge, from `readings` since it was installed.

    Unknown and "some remaining" levels carry no number and are left out. It needs two distinct
    readings; a printer that reports coarse steps gets no forecast (the threshold decides)."""
    known = sorted(
        ((r.at, r.percent) for r in readings if r.percent is not None), key=lambda p: p[0]
    )[-MAX_READINGS:]
    percents = [p for _, p in known]
    distinct = {(t, p) for t, p in known}
    if len({t for t, _ in distinct}) < 2:
        return Forecast("insufficient", False, None, None, len(known))
    if is_coarse(percents):
        return Forecast("threshold", True, None, None, len(known))
    origin = known[-1][0]
    points = [((t - origin).total_seconds() / SECONDS_PER_DAY, p) for t, p in known]
    slope = theil_sen_slope(points)
    if slope is None or slope >= 0:
        return Forecast("stable", False, None, slope, len(known))
    # The level at the newest reading, as the robust line sees it (Theil-Sen's intercept).
    level = statistics.median(y - slope * x for x, y in points)
    empties_at = origin + timedelta(days=max(level, 0.0) / -slope)
    days = max((empties_at - at).total_seconds() / SECONDS_PER_DAY, 0.0)
    return Forecast("theil_sen", False, days, slope, len(known))
