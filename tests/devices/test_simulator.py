"""The demo fleet's simulated printers report the way real ones do, through real ingestion."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from devices.models import Alert
from devices.simulator import MODELS, Printer, history
from tests.devices.conftest import Post, Signed

pytestmark = pytest.mark.django_db

END = datetime.now(tz=UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)


def _idle_printer_low_on_black() -> Printer:
    printer = Printer(serial="SIMLOW0001", model=MODELS[0], ip="192.0.2.40", rng=random.Random(7))
    printer.levels["toner-black"] = 0.05  # below the 10 % at which the printer warns
    printer.usage = 0.0  # no pages printed: the level, and so the alert, stays
    return printer


def test_a_low_toner_alert_is_one_episode_while_the_toner_stays_low(
    post: Post, collector: Signed
) -> None:
    snaps = list(history([_idle_printer_low_on_black()], days=0.25, end=END))
    assert len(snaps) == 6  # hourly polls
    for snap in snaps:
        assert post(collector, [snap]).json()["accepted"] == 1

    alert = Alert.unscoped.get(code="supply.low.toner-black")
    assert alert.cleared_at is None
    assert (alert.first_seen_at, alert.last_seen_at) == (END - timedelta(hours=5), END)


def test_the_low_toner_alert_clears_once_the_cartridge_is_replaced(
    post: Post, collector: Signed
) -> None:
    printer = _idle_printer_low_on_black()
    first = list(history([printer], days=0.125, end=END - timedelta(hours=3)))
    printer.levels["toner-black"] = 0.98  # the customer swaps the cartridge
    second = list(history([printer], days=0.125, end=END))
    assert "alerts" in first[-1]
    assert "alerts" not in second[0]
    assert post(collector, first + second).json()["accepted"] == 6

    alert = Alert.unscoped.get(code="supply.low.toner-black")
    assert alert.cleared_at == END - timedelta(hours=2)
