"""Numbers, money and times, one way everywhere: by the locale and time zone of whoever reads
them (portal/formatting.py), on pages through the signed-in user's preferences."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
import time_machine

from portal import formatting
from tests.conftest import Tenant
from tests.factories import DeviceFactory, DeviceStateFactory

NBSP = "\u00a0"


@pytest.mark.parametrize(
    ("locale", "expected"),
    [
        ("en-us", ["1,234,567.5", "1,600", "0.0125", "0.00", "42%", "7.7%"]),
        ("en-gb", ["1,234,567.5", "1,600", "0.0125", "0.00", "42%", "7.7%"]),
        ("de-de", ["1.234.567,5", "1.600", "0,0125", "0,00", f"42{NBSP}%", f"7,7{NBSP}%"]),
        (
            "fr-fr",
            ["1\u202f234\u202f567,5", "1\u202f600", "0,0125", "0,00", f"42{NBSP}%", f"7,7{NBSP}%"],
        ),
        ("de-ch", ["1\u2019234\u2019567.5", "1\u2019600", "0.0125", "0.00", "42%", "7.7%"]),
    ],
)
def test_numbers_follow_the_locale_without_trailing_zeros(locale: str, expected: list[str]) -> None:
    with formatting.override(locale=locale):
        shown = [
            formatting.number(Decimal("1234567.5000")),
            formatting.number(Decimal("1600.0000")),
            formatting.number(Decimal("0.01250000")),
            formatting.number(Decimal("-0.0001"), 2),
            formatting.percent(42.4),
            formatting.percent(Decimal("7.70"), None),
        ]
    assert shown == expected


@pytest.mark.parametrize(
    ("locale", "eur", "chf", "negative", "unit_price", "yen"),
    [
        ("en-us", "€1,234.50", f"CHF{NBSP}12.50", "-€12.50", "€0.0125", "¥1,234"),
        (
            "de-de",
            f"1.234,50{NBSP}€",
            f"12,50{NBSP}CHF",
            f"-12,50{NBSP}€",
            f"0,0125{NBSP}€",
            f"1.234{NBSP}¥",
        ),
        (
            "nl-nl",
            f"€{NBSP}1.234,50",
            f"CHF{NBSP}12,50",
            f"-€{NBSP}12,50",
            f"€{NBSP}0,0125",
            f"¥{NBSP}1.234",
        ),
    ],
)
def test_money_has_its_symbol_and_the_currency_s_decimals(
    locale: str, eur: str, chf: str, negative: str, unit_price: str, yen: str
) -> None:
    with formatting.override(locale=locale):
        assert formatting.money(Decimal("1234.5"), "EUR") == eur
        assert formatting.money(Decimal("12.50000000"), "CHF") == chf
        assert formatting.money(Decimal("-12.5"), "EUR") == negative
        # A price per page finer than a cent keeps its digits.
        assert formatting.money(Decimal("0.01250000"), "EUR") == unit_price
        assert formatting.money(Decimal("1234"), "JPY") == yen


def test_money_rounded_to_cents_rounds_half_up_like_statement_lines() -> None:
    with formatting.override(locale="en-gb"):
        assert formatting.money(Decimal("2.345"), "EUR", places=2) == "€2.35"
        assert formatting.money(Decimal("-2.345"), "EUR", places=2) == "-€2.35"
        assert formatting.money(Decimal("-0.001"), "EUR", places=2) == "€0.00"
        assert formatting.money(None, "EUR") == ""


def test_days_are_counted_in_words() -> None:
    with formatting.override(locale="en-gb"):
        assert [formatting.days(v) for v in (0.6, 1, 1.4, 12, 1200)] == [
            "1 day",
            "1 day",
            "1 day",
            "12 days",
            "1,200 days",
        ]


def test_times_are_shown_in_the_active_time_zone() -> None:
    moment = dt.datetime(2026, 3, 29, 0, 30, tzinfo=dt.UTC)  # 01:30 in Berlin, DST starts at 2

    with formatting.override(locale="de-de", time_zone="Europe/Berlin"):
        assert formatting.datetime(moment) == "29.03.2026 01:30"
        assert formatting.datetime(moment + dt.timedelta(hours=2)) == "29.03.2026 04:30"
    with formatting.override(locale="en-us", time_zone="America/New_York"):
        assert formatting.datetime(moment) == "03/28/2026 8:30 PM"
        assert formatting.date(moment) == "03/28/2026"
    with formatting.override(locale="en-gb", time_zone="UTC"):
        assert formatting.date(dt.date(2026, 3, 1)) == "01/03/2026"


def test_a_browser_language_picks_the_locale_of_a_user_without_one() -> None:
    assert formatting.locale_from_accept_language("de-CH,de;q=0.9,en;q=0.5") == "de-ch"
    assert formatting.locale_from_accept_language("fr,en;q=0.5") == "fr-fr"
    assert formatting.locale_from_accept_language("xx-YY") is None


# --- On pages, by the user's preferences ---------------------------------------------------


@pytest.fixture
def reporting_device(tenant: Tenant) -> Any:
    device = DeviceFactory(site=tenant.site, serial="FMT-1")
    DeviceStateFactory(
        device=device,
        impressions_total=Decimal("1234567"),
        last_seen_at=dt.datetime(2026, 7, 1, 22, 15, tzinfo=dt.UTC),
    )
    return device


@pytest.mark.django_db
def test_a_page_uses_the_users_locale_and_time_zone(
    reporting_device: Any, alice: Any, login: Any
) -> None:
    alice.locale, alice.time_zone = "de-de", "Europe/Berlin"
    alice.save(update_fields=["locale", "time_zone"])

    with time_machine.travel(dt.datetime(2026, 7, 2, 0, 0, tzinfo=dt.UTC)):
        body = login(alice).get(f"/devices/{reporting_device.pk}/").content.decode()

    assert "1.234.567" in body  # the page count
    assert "02.07.2026 00:15" in body  # 22:15 UTC is a quarter past midnight in Berlin
    assert "UTC" not in body


@pytest.mark.django_db
def test_without_preferences_the_browser_language_and_the_default_zone_apply(
    reporting_device: Any, alice: Any, login: Any, settings: Any
) -> None:
    settings.TIME_ZONE = "UTC"

    with time_machine.travel(dt.datetime(2026, 7, 2, 0, 0, tzinfo=dt.UTC)):
        client = login(alice)
        english = client.get(f"/devices/{reporting_device.pk}/").content.decode()
        french = client.get(
            f"/devices/{reporting_device.pk}/", HTTP_ACCEPT_LANGUAGE="fr-FR,fr;q=0.9"
        ).content.decode()

    assert "1,234,567" in english
    assert "07/01/2026 10:15 PM" in english
    assert "1\u202f234\u202f567" in french
    assert "01/07/2026 22:15" in french


@pytest.mark.django_db
def test_the_api_keeps_utc_whatever_the_users_zone(tenant: Tenant, alice: Any, login: Any) -> None:
    client = login(alice)
    url = f"/api/v1/customers/{tenant.customer.pk}"
    before = client.get(url).json()

    alice.time_zone = "Asia/Tokyo"
    alice.save(update_fields=["time_zone"])
    after = client.get(url).json()

    assert after == before
    assert before["created_at"].endswith(("Z", "+00:00"))
