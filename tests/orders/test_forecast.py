"""The forecast maths, through its public functions: replacements, coarse steps, Theil-Sen."""

from datetime import UTC, datetime, timedelta

import pytest

from orders.forecast import Reading, forecast, is_coarse, replacements

T0 = datetime(2026, 11, 1, tzinfo=UTC)


def series(*percents: float | None, step_hours: float = 24, serial: str = "") -> list[Reading]:
    return [
        Reading(T0 + timedelta(hours=i * step_hours), p, serial) for i, p in enumerate(percents)
    ]


def test_a_steady_decline_empties_when_the_line_reaches_zero():
    readings = series(60, 58, 56, 54, 52, 50)  # 2 % a day, 50 % left

    result = forecast(readings, at=readings[-1].at)

    assert result.method == "theil_sen"
    assert result.is_coarse is False
    assert result.slope_per_day == pytest.approx(-2.0)
    assert result.days_to_empty == pytest.approx(25.0)
    assert result.readings_used == 6


def test_days_are_counted_from_now_not_from_the_last_reading():
    readings = series(60, 58, 56, 54, 52, 50)

    result = forecast(readings, at=readings[-1].at + timedelta(days=5))

    assert result.days_to_empty == pytest.approx(20.0)


def test_one_wild_reading_does_not_move_the_forecast():
    readings = series(60, 58, 56, 3, 52, 50, 48, 46, 44)

    result = forecast(readings, at=readings[-1].at)

    assert result.slope_per_day == pytest.approx(-2.0)
    assert result.days_to_empty == pytest.approx(22.0)


def test_unknown_and_some_remaining_levels_are_left_out():
    readings = series(61, None, 59, None, 57, 56, 55)

    result = forecast(readings, at=readings[-1].at)

    assert result.readings_used == 5
    assert result.slope_per_day == pytest.approx(-1.0)
    assert result.days_to_empty == pytest.approx(55.0)


@pytest.mark.parametrize(
    "percents",
    [(), (40,), (None, None, 40), (40, None, None)],
)
def test_fewer_than_two_known_readings_give_no_forecast(percents):
    result = forecast(series(*percents), at=T0 + timedelta(days=10))

    assert result.method == "insufficient"
    assert result.days_to_empty is None


def test_two_readings_at_the_same_moment_are_one_reading():
    readings = [Reading(T0, 40.5), Reading(T0, 39.5)]

    assert forecast(readings, at=T0).method == "insufficient"


@pytest.mark.parametrize(
    "percents",
    [(100, 100, 0), (100, 75, 75, 50), (60, 50, 50, 40, 30), (100, 50, 50, 50)],
)
def test_coarse_steps_fall_back_to_the_threshold(percents):
    result = forecast(series(*percents), at=T0 + timedelta(days=10))

    assert result.method == "threshold"
    assert result.is_coarse is True
    assert result.days_to_empty is None


def test_fine_levels_are_not_coarse():
    assert is_coarse([60.0, 58.5, 57.0]) is False
    assert is_coarse([60.0, 50.0, 40.0]) is True


def test_a_level_that_does_not_fall_has_no_empty_date():
    readings = series(41, 43, 42, 41, 43)

    result = forecast(readings, at=readings[-1].at)

    assert result.method == "stable"
    assert result.days_to_empty is None


def test_a_jump_up_is_a_replacement_and_a_glitch_is_not():
    # 2 -> 36 alone would look like a new cartridge; against the recent median it is not.
    readings = series(40, 38, 2, 36, 34, 99, 97)

    found = replacements(readings)

    assert [(r.at, r.old_percent, r.new_percent) for r in found] == [
        (T0 + timedelta(days=5), 34, 99)
    ]


def test_a_new_serial_is_a_replacement_even_without_a_jump():
    readings = [
        Reading(T0, 12, "A1"),
        Reading(T0 + timedelta(days=1), 11, "A1"),
        Reading(T0 + timedelta(days=2), 15, "B2"),
    ]

    found = replacements(readings)

    assert [(r.old_serial, r.new_serial) for r in found] == [("A1", "B2")]


def test_the_forecast_restarts_with_the_new_cartridge():
    readings = series(30, 20, 10, 100, 99, 98)
    since = replacements(readings)[-1].at

    result = forecast([r for r in readings if r.at >= since], at=readings[-1].at)

    assert result.slope_per_day == pytest.approx(-1.0)
    assert result.days_to_empty == pytest.approx(98.0)


def test_folding_readings_in_parts_finds_what_one_pass_finds():
    from orders.forecast import DayPoint, Detector, days_fold, replacements_fold

    readings = series(40, 38, 2, 36, 34, 99, 97, 96, 30, 95, step_hours=7, serial="A")
    whole = replacements(readings)
    state = Detector(levels=[])
    parts = [replacements_fold(readings[i : i + 3], state) for i in range(0, len(readings), 3)]

    assert [r for part in parts for r in part] == whole
    days: list[DayPoint] = []
    newest = None
    for i in range(0, len(readings), 4):
        touched = days_fold(readings[i : i + 4], newest)
        days = [d for d in days if d.day not in {t.day for t in touched}] + touched
        newest = touched[-1] if touched else newest
    assert days == days_fold(readings, None)
    assert [d.day for d in days] == sorted({r.at.date() for r in readings})


def test_a_day_point_is_the_days_last_level_first_seen_and_its_grids():
    from orders.forecast import days_fold

    day = [Reading(T0 + timedelta(hours=h), p) for h, p in ((1, 60), (2, 50), (3, 50), (4, None))]

    (point,) = days_fold(day, None)

    assert (point.percent, point.at) == (50, T0 + timedelta(hours=2))
    assert point.steps == 0b0001  # both levels on the 10 % grid, not on 25, 50 or 100
