"""CSV exports: streamed line by line, with spreadsheet formulas neutralised.

Every CSV the portal serves goes through `csv_lines`, so one guard covers them all: a text cell
that starts like a formula (= + - @, tab, carriage return) is prefixed with a quote, which a
spreadsheet shows as text instead of running it (CSV injection).

An export big enough to have PostgreSQL format it (`COPY (...) TO STDOUT WITH (FORMAT csv)`,
billing's usage export) applies the same guard in its SQL: `sql_text_cell` and `copy_csv_line`
give the bytes `csv_lines` would.
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


# The guard as SQL, built from the same characters.
_SQL_FORMULA_STARTS = ", ".join(f"chr({ord(c)})" for c in sorted(FORMULA_STARTS))


def sql_text_cell(expression: str) -> str:
    """SQL for a text cell of a CSV that PostgreSQL formats, as `csv_lines` writes it: guarded
    like `safe_cell`, and an empty text as NULL, which COPY writes as nothing (it quotes an
    empty string, which csv.writer does not)."""
    return (
        f"CASE WHEN left({expression}, 1) IN ({_SQL_FORMULA_STARTS})"
        f" THEN chr(39) || {expression} ELSE nullif({expression}, '') END"
    )


def copy_csv_line(data: bytes | memoryview) -> str:
    """One row of `COPY ... TO STDOUT WITH (FORMAT csv)` as `csv_lines` ends it: COPY quotes
    as csv.writer does (a field with a comma, quote, CR or LF), but ends rows with LF alone."""
    return bytes(data)[:-1].decode() + "\r\n"
