"""How numbers, money and times read: one module for pages, documents and emails.

A person's locale says how numbers and dates are written (1,234.50 or 1.234,50; 12/31 or
31.12.) and their time zone when things happened. Pages use the signed-in user's choice
(accounts.User.locale and .time_zone, activated per request by PreferencesMiddleware); a user
who chose no locale gets the best match of the browser's languages. Documents and emails, which
are rendered once for whoever reads them, use the installation's DEFAULT_LOCALE and TIME_ZONE.

The filters of portal/templatetags/fmt.py call these functions; code that writes text for
people (subjects, messages) calls them too. Machine files (CSV, the API) keep ISO dates and
plain decimals.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from asgiref.local import Local
from django.conf import settings
from django.utils import dateformat, numberformat, timezone
from django.utils.translation import ngettext
from django.utils.translation.trans_real import parse_accept_lang_header

from portal.money import minor_units, round_money, round_places


@dataclass(frozen=True)
class Convention:
    """How one locale writes numbers, money and dates (CLDR's conventions, simplified)."""

    label: str
    decimal: str
    group: str
    date: str  # django.utils.dateformat: numeric, so no month names need translating
    time: str
    currency_before: bool  # €1,234.50 (True) or 1.234,50 € (False)
    percent_space: bool  # 42% or 42 %


NBSP = "\u00a0"
NARROW_NBSP = "\u202f"
APOSTROPHE = "\u2019"  # Swiss grouping: a right single quotation mark

# Name, decimal and group separators, date and time formats, symbol first, space before %.
CONVENTIONS: dict[str, Convention] = {
    code: Convention(*spec)
    for code, spec in {
        "en-us": ("English (US)", ".", ",", "m/d/Y", "g:i A", True, False),
        "en-gb": ("English (UK)", ".", ",", "d/m/Y", "H:i", True, False),
        "de-de": ("Deutsch (Deutschland)", ",", ".", "d.m.Y", "H:i", False, True),
        "de-at": ("Deutsch (Österreich)", ",", NBSP, "d.m.Y", "H:i", True, True),
        "de-ch": ("Deutsch (Schweiz)", ".", APOSTROPHE, "d.m.Y", "H:i", True, False),
        "fr-fr": ("Français (France)", ",", NARROW_NBSP, "d/m/Y", "H:i", False, True),
        "nl-nl": ("Nederlands (Nederland)", ",", ".", "d-m-Y", "H:i", True, False),
        "it-it": ("Italiano (Italia)", ",", ".", "d/m/Y", "H:i", False, False),
        "es-es": ("Español (España)", ",", ".", "d/m/Y", "H:i", False, True),
        "pl-pl": ("Polski (Polska)", ",", NBSP, "d.m.Y", "H:i", False, False),
        "sv-se": ("Svenska (Sverige)", ",", NBSP, "Y-m-d", "H:i", False, True),
    }.items()
}
# The language alone, for browsers that send "de" rather than "de-DE".
_BY_LANGUAGE = {"en": "en-us", "de": "de-de", "fr": "fr-fr", "nl": "nl-nl", "it": "it-it",
                "es": "es-es", "pl": "pl-pl", "sv": "sv-se"}  # fmt: skip

# Symbols where one is unambiguous; other currencies are written with their ISO code.
CURRENCY_SYMBOLS = {"EUR": "€", "USD": "$", "GBP": "£", "JPY": "¥"}

_state = Local()


def locale_code_valid(code: str) -> bool:
    return code in CONVENTIONS


def time_zone_valid(name: str) -> bool:
    return name in _time_zones()


def _time_zones() -> frozenset[str]:
    global _TIME_ZONES
    if _TIME_ZONES is None:
        _TIME_ZONES = frozenset(available_timezones())
    return _TIME_ZONES


_TIME_ZONES: frozenset[str] | None = None


def time_zone_choices() -> list[tuple[str, str]]:
    return [(name, name.replace("_", " ")) for name in sorted(_time_zones())]


def default_locale() -> str:
    code = str(getattr(settings, "DEFAULT_LOCALE", "en-us")).lower()
    return code if code in CONVENTIONS else "en-us"


def locale_from_accept_language(header: str) -> str | None:
    """The first of the browser's languages that has a convention here, or None."""
    for language, _ in parse_accept_lang_header(header or ""):
        code = language.lower()
        if code in CONVENTIONS:
            return code
        if code.split("-")[0] in _BY_LANGUAGE:
            return _BY_LANGUAGE[code.split("-")[0]]
    return None


def activate(locale: str) -> None:
    """Format numbers and dates by `locale` in this thread or task until `deactivate`."""
    _state.locale = locale if locale in CONVENTIONS else default_locale()


def deactivate() -> None:
    if hasattr(_state, "locale"):
        del _state.locale


def current_locale() -> str:
    return getattr(_state, "locale", None) or default_locale()


def convention() -> Convention:
    return CONVENTIONS[current_locale()]


@contextmanager
def override(*, locale: str | None = None, time_zone: str | None = None) -> Iterator[None]:
    """Format by another locale and time zone for a while: a document, an email."""
    previous = getattr(_state, "locale", None)
    activate(locale or default_locale())
    try:
        with timezone.override(ZoneInfo(time_zone or settings.TIME_ZONE)):
            yield
    finally:
        if previous is None:
            deactivate()
        else:
            _state.locale = previous


def zone_of(name: str) -> dt.tzinfo:
    try:
        return ZoneInfo(name or settings.TIME_ZONE)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(settings.TIME_ZONE)


# --- Numbers ------------------------------------------------------------------------------------


def _decimal(value: Any) -> Decimal | None:
    if value is None or value == "" or isinstance(value, bool):
        return None
    if isinstance(value, Decimal):
        return value if value.is_finite() else None
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None


def _decimal_places(value: Decimal) -> int:
    """The decimals a number needs without trailing zeros: 12.500 -> 1, 1600.0000 -> 0."""
    exponent = value.normalize().as_tuple().exponent
    return max(-exponent, 0) if isinstance(exponent, int) else 0


def _digits(value: Decimal, places: int) -> str:
    c = convention()
    text = numberformat.format(
        value,
        c.decimal,
        decimal_pos=places,
        grouping=3,
        thousand_sep=c.group,
        force_grouping=True,
    )
    return str(text)


FLOAT_PLACES = 6


def number(value: Any, places: int | None = None) -> str:
    """A number with the locale's separators: `places` decimals (rounded half-up), or as many
    as it has without trailing zeros (1600.0000 -> 1,600; 0.0125 -> 0.0125). "" for nothing."""
    amount = _decimal(value)
    if amount is None:
        return ""
    if places is None:
        if isinstance(value, float):
            # Binary fractions: 0.1 + 0.2 shows as 0.3, not 0.30000000000000004.
            amount = round_places(amount, FLOAT_PLACES)
        places = _decimal_places(amount)
    amount = round_places(amount, places)
    if amount == 0:
        amount = abs(amount)  # no "-0"
    return _digits(amount, places)


def percent(value: Any, places: int | None = 0) -> str:
    text = number(value, places)
    if not text:
        return ""
    return f"{text}{NBSP if convention().percent_space else ''}%"


def days(value: Any) -> str:
    """Whole days with their word: 1 day, 3 days (0.6 rounds to 1 day)."""
    amount = _decimal(value)
    if amount is None:
        return ""
    whole = round_places(amount, 0)
    return ngettext("%(days)s day", "%(days)s days", abs(int(whole))) % {"days": number(whole, 0)}


def money(value: Any, currency: str, *, places: int | None = None) -> str:
    """An amount with its currency, in the currency's minor unit (12.50, not 12.5 or
    12.50000000); a price finer than that keeps its significant decimals (0.0125 per page).
    Rounded half-up like statement lines (portal.money)."""
    amount = _decimal(value)
    if amount is None:
        return ""
    currency = (currency or "").upper()
    minor = minor_units(currency)
    if places is None:
        places = max(minor, _decimal_places(amount))
    amount = round_money(amount, currency) if places == minor else round_places(amount, places)
    sign = "-" if amount < 0 else ""
    digits = _digits(abs(amount), places)
    symbol = CURRENCY_SYMBOLS.get(currency, currency)
    c = convention()
    if not symbol:
        return f"{sign}{digits}"
    if c.currency_before:
        # English writes a sign against the digits ($12.50) and a code apart (CHF 12.50); the
        # other locales that put the symbol first always space it (nl: € 12,50).
        space = NBSP if symbol.isalpha() or not current_locale().startswith("en") else ""
        return f"{sign}{symbol}{space}{digits}"
    return f"{sign}{digits}{NBSP}{symbol}"


def currency_symbol(currency: str) -> str:
    return CURRENCY_SYMBOLS.get((currency or "").upper(), (currency or "").upper())


# --- Dates and times ----------------------------------------------------------------------------


def local(value: dt.datetime) -> dt.datetime:
    """An aware datetime in the active time zone (the user's, or the installation's)."""
    if timezone.is_naive(value):
        value = timezone.make_aware(value, dt.UTC)
    return timezone.localtime(value)


def date(value: Any) -> str:
    """A calendar day; a datetime is first moved into the active time zone."""
    if value is None or value == "":
        return ""
    if isinstance(value, dt.datetime):
        value = local(value).date()
    if not isinstance(value, dt.date):
        return str(value)
    return str(dateformat.format(value, convention().date))


def time(value: dt.datetime | None) -> str:
    if value is None:
        return ""
    return str(dateformat.format(local(value), convention().time))


def datetime(value: Any) -> str:
    """A moment, in the active time zone: 31/12/2025 14:30."""
    if value is None or value == "":
        return ""
    if not isinstance(value, dt.datetime):
        return date(value)
    c = convention()
    return str(dateformat.format(local(value), f"{c.date} {c.time}"))


def locale_choices() -> list[tuple[str, str]]:
    """Each locale with a sample of how it writes a price and a moment, for the settings form."""
    sample = dt.datetime(2025, 12, 31, 14, 30, tzinfo=dt.UTC)
    choices = []
    with timezone.override(dt.UTC):
        for code, c in CONVENTIONS.items():
            with override(locale=code, time_zone="UTC"):
                choices.append(
                    (code, f"{c.label}: {money(Decimal('1234.5'), 'EUR')} · {datetime(sample)}")
                )
    return choices


def time_zone_name() -> str:
    return str(timezone.get_current_timezone_name())
