import ast
from decimal import Decimal
from pathlib import Path

import pytest

from portal.money import CurrencyMismatchError, Money, round_money

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("amount", "currency", "expected"),
    [
        ("2.345", "EUR", "2.35"),
        ("2.344", "EUR", "2.34"),
        ("-2.345", "EUR", "-2.35"),
        ("0.005", "USD", "0.01"),
        ("1234.5", "JPY", "1235"),
        ("1.0005", "KWD", "1.001"),
    ],
)
def test_round_money_is_half_up_to_the_minor_unit(amount, currency, expected):
    assert round_money(Decimal(amount), currency) == Decimal(expected)


def test_floats_are_refused():
    with pytest.raises(TypeError):
        round_money(2.345, "EUR")
    with pytest.raises(TypeError):
        Money(1.5, "EUR")


def test_currencies_do_not_mix():
    with pytest.raises(CurrencyMismatchError):
        Money(Decimal(1), "EUR") + Money(Decimal(1), "USD")
    assert str(Money(Decimal("1234.565"), "EUR")) == "1,234.57 EUR"


def test_quantize_is_called_only_in_portal_money():
    offenders = []
    for app in ("portal", "accounts", "devices", "billing", "orders"):
        for path in (ROOT / app).rglob("*.py"):
            if path == ROOT / "portal" / "money.py" or "migrations" in path.parts:
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Attribute) and node.attr == "quantize":
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == [], "round money with portal.money.round_money: " + ", ".join(offenders)
