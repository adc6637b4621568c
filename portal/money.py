"""Money: Decimal amounts with a currency, rounded in this one place.

Rounding is half-up to the currency's minor unit, once per statement line (DESIGN.md). No
other module calls `.quantize` on money; a test keeps it that way.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

# ISO 4217 minor units of the currencies resellers bill in; two decimals unless listed.
_MINOR_UNITS = {"JPY": 0, "KRW": 0, "ISK": 0, "CLP": 0, "HUF": 2, "BHD": 3, "KWD": 3, "TND": 3}
CURRENCIES = (
    "EUR",
    "USD",
    "GBP",
    "CHF",
    "SEK",
    "NOK",
    "DKK",
    "PLN",
    "CZK",
    "HUF",
    "JPY",
    "AUD",
    "CAD",
)


class CurrencyMismatchError(ValueError):
    pass


def minor_units(currency: str) -> int:
    return _MINOR_UNITS.get(currency.upper(), 2)


def round_money(amount: Decimal, currency: str) -> Decimal:
    """Half-up to the currency's minor unit: 2.345 EUR -> 2.35, -2.345 EUR -> -2.35."""
    if not isinstance(amount, Decimal):
        raise TypeError(f"money must be Decimal, not {type(amount).__name__}")
    exponent = Decimal(1).scaleb(-minor_units(currency))
    return amount.quantize(exponent, rounding=ROUND_HALF_UP)


@dataclass(frozen=True, slots=True)
class Money:
    amount: Decimal
    currency: str

    def __post_init__(self) -> None:
        if not isinstance(self.amount, Decimal):
            raise TypeError(f"money must be Decimal, not {type(self.amount).__name__}")

    def __add__(self, other: Money) -> Money:
        if other.currency != self.currency:
            raise CurrencyMismatchError(f"{self.currency} + {other.currency}")
        return Money(self.amount + other.amount, self.currency)

    def rounded(self) -> Money:
        return Money(round_money(self.amount, self.currency), self.currency)

    def __str__(self) -> str:
        return f"{round_money(self.amount, self.currency):,} {self.currency}"


def round_places(value: Decimal, places: int) -> Decimal:
    """Half-up to `places` decimals, for showing a number (portal.formatting), never for money
    that is stored: 2.345 at 2 places -> 2.35."""
    return value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
