"""CSV exports: streamed line by line, with spreadsheet formulas neutralised.

Every CSV the portal serves goes through `csv_lines`, so one guard covers them all: a text cell
that starts like a formula (= + - @, tab, carriage return) is prefixed with a quote, which a
spreadsheet shows as text instead of running it (CSV injection).
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from typing import Any

FORMULA_STARTS = frozenset("=+-@\t\r")


class _Echo:
    """A file-like object whose write returns the line, for csv.writer in a generator."""

    def write(self, value: str) -> str:
        return value


def safe_cell(value: Any) -> Any:
    if value.__class__ is str and value[:1] in FORMULA_STARTS:
        return "'" + value
    return value


def csv_lines(header: Iterable[str], rows: Iterable[Iterable[Any]]) -> Iterator[str]:
    """CSV text line by line, guarded. The check is inlined: it runs for every cell of
    100,000s of lines."""
    writer = csv.writer(_Echo())
    yield writer.writerow(list(header))
    formula = FORMULA_STARTS
    for row in rows:
        yield writer.writerow(
            ["'" + v if v.__class__ is str and v[:1] in formula else v for v in row]
        )
