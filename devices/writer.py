"""Bulk SQL for ingestion: one code path, a backend-specific way to move rows.

PostgreSQL appends reading rows with psycopg 3 COPY (about ten times `bulk_create`); SQLite (the
demo and unit tests) uses executemany. Inserts that dedupe and upserts use multi-row
`INSERT ... ON CONFLICT`, which both backends speak.

PostgreSQL refuses COPY FROM into a table under row-level security (portal/rls.py), so with the
wall up the reading rows are COPYed into a temporary twin and moved by one INSERT ... SELECT,
which the tenant policy checks like any other insert.

COPY data is written as one pre-built text buffer (`copy_text`), not row by row: psycopg's
`write_row` adapts every value through its generic dumpers, which cost more per batch than the
database spends storing the rows.
"""

from __future__ import annotations

import functools
import json
import uuid
import zlib
from collections.abc import Callable, Iterable, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.db import connection

from portal import rls

# SQLite allows 32766 parameters per statement, PostgreSQL 65535.
MAX_PARAMS = 30000
# From this many rows on, PostgreSQL inserts go through COPY into a staging table.
STAGE_FROM_ROWS = 8


class Writer:
    """The statements of one transaction (staging tables are emptied at its commit)."""

    def __init__(self) -> None:
        self.is_postgres = connection.vendor == "postgresql"
        self.cursor = connection.cursor()
        self.statements = 0
        # Staging tables this writer has created (they outlive it, for the session) and SQL
        # to send ahead of its next statement (`stages_declare`).
        self._stages: set[str] = set()
        self._filled: set[str] = set()
        self._prefix = ""

    # Values -------------------------------------------------------------------------------

    def adapt(self, row: Sequence[Any]) -> tuple[Any, ...]:
        if self.is_postgres:
            return tuple(_jsonb(v) if isinstance(v, dict) else v for v in row)
        return tuple(_sqlite(v) for v in row)

    def key(self, value: Any) -> Any:
        """How a value comes back from the database (RETURNING), for matching."""
        return value if self.is_postgres else _sqlite(value)

    def among(self, column: str, values: Sequence[Any]) -> tuple[str, list[Any]]:
        """`column` is one of `values`, as SQL and its parameters: one array parameter on
        PostgreSQL (a hundred placeholders cost more to bind than the query costs to run), an
        IN list on SQLite. Nothing matches an empty list."""
        if self.is_postgres:
            return f"{column} = ANY(%s)", [list(values)]
        if not values:
            return "FALSE", []
        return f"{column} IN ({', '.join(['%s'] * len(values))})", list(values)

    # Statements ---------------------------------------------------------------------------

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        self.statements += 1
        prefix, self._prefix = self._prefix, ""
        self.cursor.execute(prefix + sql, self.adapt(params))
        if self.is_postgres:
            while self.cursor.nextset():  # of several statements, the last one's result
                pass
        if self.cursor.description is None:
            return []
        return list(self.cursor.fetchall())

    def execute_fixed(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """`execute` for a statement whose text never changes (a stage's INSERT ... SELECT, the
        page-day fold): on PostgreSQL a prepared statement of the session, bound server-side,
        so that it is parsed and planned once per connection rather than once per batch."""
        if not self.is_postgres or self._prefix:
            return self.execute(sql, params)
        self.statements += 1
        return self._prepared(sql, params)

    def _prepared(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        import psycopg

        # Django's cursors bind client-side; this one, on the same connection and transaction,
        # binds server-side and lets psycopg keep the statement prepared.
        with psycopg.Cursor(connection.connection) as cursor:
            cursor.execute(sql, self.adapt(params), prepare=True)
            return list(cursor.fetchall()) if cursor.description is not None else []

    def before_next(self, sql: str) -> None:
        """Send `sql` (statements without results) ahead of the next statement, in its round
        trip."""
        self._prefix += sql + "; "

    def stages_declare(self, tables: Iterable[tuple[str, Sequence[str]]]) -> None:
        """Create (or empty) the staging tables of these (table, columns) with the next
        statement, in its round trip, rather than each with a statement before its first COPY."""
        if not self.is_postgres:
            return
        for table, columns in tables:
            stage = _stage_name(table, columns)
            if stage not in self._stages:
                self._stages.add(stage)
                self._prefix += _stage_create_sql(stage, table, columns)

    def insert(
        self,
        table: str,
        columns: Sequence[str],
        rows: Sequence[Sequence[Any]],
        *,
        conflict: str = "",
        returning: str = "",
    ) -> list[tuple[Any, ...]]:
        """Multi-row INSERT with an ON CONFLICT clause, chunked to the parameter limit."""
        results: list[tuple[Any, ...]] = []
        if not rows:
            return results
        if self.is_postgres and len(rows) >= STAGE_FROM_ROWS:
            return self._insert_staged(table, columns, rows, conflict, returning)
        per_row = "(" + ", ".join(["%s"] * len(columns)) + ")"
        chunk = max(1, MAX_PARAMS // len(columns))
        head = f"INSERT INTO {table} ({_names(columns)}) VALUES "  # noqa: S608 - our names
        tail = (f" {conflict}" if conflict else "") + (
            f" RETURNING {returning}" if returning else ""
        )
        for start in range(0, len(rows), chunk):
            part = rows[start : start + chunk]
            params = [value for row in part for value in row]
            sql = head + ", ".join([per_row] * len(part)) + tail  # table and columns are ours
            results.extend(self.execute(sql, params))
        return results

    def _insert_staged(
        self,
        table: str,
        columns: Sequence[str],
        rows: Sequence[Sequence[Any]],
        conflict: str,
        returning: str,
    ) -> list[tuple[Any, ...]]:
        """COPY into a temporary twin, then one INSERT ... SELECT: a statement with thousands of
        placeholders costs more to build in Python than the database spends on it."""
        stage = self._fill_stage(table, columns, copy_text(rows))
        self.statements += 1
        return self._prepared(
            from_stage_sql(stage, table, columns)
            + (f" {conflict}" if conflict else "")
            + (f" RETURNING {returning}" if returning else ""),
            (),
        )

    def _fill_stage(self, table: str, columns: Sequence[str], data: str) -> str:
        """COPY text into the empty temporary twin of `table` and return the twin's name.

        The twin lives as long as the connection; it is emptied at each commit (ON COMMIT
        DELETE ROWS, a truncation) and, before its first use by a writer (an earlier batch of
        the same transaction may have filled it: the demo seed, a test), by a DELETE sent with
        the writer's first statement (`stages_declare`) or with its creation."""
        stage = _stage_name(table, columns)
        if stage not in self._stages or stage in self._filled:
            self._stages.add(stage)
            self._prefix += _stage_create_sql(stage, table, columns)
        if self._prefix:
            self.statements += 1
            prefix, self._prefix = self._prefix, ""
            self.cursor.execute(prefix)
        self._filled.add(stage)
        self.statements += 1
        self._copy(stage, columns, data)
        return stage

    def stage(self, table: str, columns: Sequence[str], data: str) -> str:
        """PostgreSQL: COPY text into the (emptied) temporary twin of `table` with these columns
        and return the twin's name, for statements that read it (`execute`)."""
        return self._fill_stage(table, columns, data)

    def append_text(self, table: str, columns: Sequence[str], data: str) -> None:
        """PostgreSQL: `append` of rows already written as COPY text (`copy_str` on every free
        text), for the hottest shapes, where formatting value by value costs the most."""
        if not data:
            return
        if not rls.enabled():
            self.statements += 1
            self._copy(table, columns, data)
            return
        stage = self._fill_stage(table, columns, data)
        self.statements += 1
        self._prepared(from_stage_sql(stage, table, columns), ())

    def append(self, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
        """Rows that never conflict (append-only readings): COPY on PostgreSQL."""
        self.append_grouped(table, columns, [((), rows)])

    def append_grouped(
        self,
        table: str,
        columns: Sequence[str],
        groups: Iterable[tuple[Sequence[Any], Iterable[Sequence[Any]]]],
    ) -> None:
        """`append` for rows given as (leading values, rest of each row) groups, such as a
        snapshot's reseller, device and time before each of its readings: COPY formats the
        leading values once per group."""
        if self.is_postgres:
            # COPY FROM refuses tables under row-level security: with the wall up the rows go to
            # the temporary twin, and one INSERT ... SELECT moves them past the policy's check.
            self.append_text(table, columns, copy_text_grouped(groups))
            return
        adapted = [self.adapt((*head, *row)) for head, rows in groups for row in rows]
        if adapted:
            self.statements += 1
            values = ", ".join(["%s"] * len(columns))
            sql = f"INSERT INTO {table} ({_names(columns)}) VALUES ({values})"  # noqa: S608
            self.cursor.executemany(sql, adapted)

    def upsert_latest(
        self,
        table: str,
        columns: Sequence[str],
        rows: Sequence[Sequence[Any]],
        *,
        key: Sequence[str],
        order: Sequence[str],
        returning: str = "",
    ) -> list[tuple[Any, ...]]:
        """Insert, or overwrite the row when the new values are later by `order` (a tuple
        compared lexicographically): the stored state is that of the latest report, whatever
        the arrival order."""
        q = connection.ops.quote_name
        updates = ", ".join(f"{q(c)} = EXCLUDED.{q(c)}" for c in columns if c not in key)
        stored = ", ".join(f"{table}.{q(c)}" for c in order)
        incoming = ", ".join(f"EXCLUDED.{q(c)}" for c in order)
        conflict = (
            f"ON CONFLICT ({_names(key)}) DO UPDATE SET {updates} WHERE ({stored}) < ({incoming})"
        )
        return self.insert(table, columns, rows, conflict=conflict, returning=returning)

    @staticmethod
    def quote(name: str) -> str:
        return connection.ops.quote_name(name)

    def _copy(self, table: str, columns: Sequence[str], data: str) -> None:
        raw = self.cursor.cursor  # the psycopg cursor under Django's wrapper
        with raw.copy(f"COPY {table} ({_names(columns)}) FROM STDIN") as copy:
            copy.write(data.encode())

    def close(self) -> None:
        self.cursor.close()


# COPY text format (https://www.postgresql.org/docs/current/sql-copy.html#id-1.9.3.55.9.2).

_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def copy_str(value: str) -> str:
    """A text value as a COPY field (NUL cannot be stored; normalise.text drops it)."""
    if "\\" in value or "\t" in value or "\n" in value or "\r" in value:
        return value.translate(_COPY_ESCAPES)
    return value


def _copy_bool(value: bool) -> str:
    return "t" if value else "f"


NULL = "\\N"
COPY_BOOL = {True: "t", False: "f", None: NULL}


def copy_float(value: float | None) -> str:
    """A float (or None) as a COPY field: its shortest repr, which PostgreSQL reads back exactly."""
    return NULL if value is None else repr(value)


def _copy_json(value: dict[str, Any]) -> str:
    return copy_str(json.dumps(value, separators=(",", ":")))


# A batch names each snapshot's time and id on many rows (readings, current state): formatted once.
@functools.lru_cache(maxsize=4096)
def _copy_isoformat(value: date) -> str:
    return value.isoformat()


@functools.lru_cache(maxsize=4096)
def _copy_uuid(value: uuid.UUID) -> str:
    return str(value)


def _copy_bytes(value: bytes) -> str:
    return "\\\\x" + value.hex()  # bytea hex format, its backslash escaped for COPY


class _Formats(dict[type, Callable[[Any], str]]):
    """Formatter by exact type; a subclass (an IntEnum, say) resolves through its MRO once."""

    def __missing__(self, kind: type) -> Callable[[Any], str]:
        for base in kind.__mro__[1:]:
            if base in self:
                self[kind] = self[base]
                return self[base]
        raise TypeError(f"no COPY text format for {kind.__name__}")


_COPY_FORMATS = _Formats(
    {
        str: copy_str,
        int: int.__repr__,
        float: float.__repr__,
        bool: _copy_bool,
        Decimal: Decimal.__str__,
        uuid.UUID: _copy_uuid,
        datetime: _copy_isoformat,
        date: _copy_isoformat,
        dict: _copy_json,
        bytes: _copy_bytes,
    }
)


def _copy_field(value: Any) -> str:
    return "\\N" if value is None else _COPY_FORMATS[type(value)](value)


def copy_text(rows: Iterable[Sequence[Any]]) -> str:
    """Rows as COPY text: tab-separated fields, one line per row, \\N for NULL."""
    return copy_text_grouped([((), rows)])


def copy_text_grouped(groups: Iterable[tuple[Sequence[Any], Iterable[Sequence[Any]]]]) -> str:
    """COPY text of (leading values, rows) groups, each row prefixed by its group's values."""
    field, lines = _copy_field, []
    for head, rows in groups:
        prefix = "".join([field(v) + "\t" for v in head])
        lines += [prefix + "\t".join(map(field, row)) + "\n" for row in rows]
    return "".join(lines)


def _stage_name(table: str, columns: Sequence[str]) -> str:
    return f"stage_{table}_{zlib.crc32(','.join(columns).encode()):08x}"


def _stage_create_sql(stage: str, table: str, columns: Sequence[str]) -> str:
    """The stage, created unless an earlier transaction of the session did, and empty (the
    DELETE scans nothing unless this transaction filled it before)."""
    return (
        f"CREATE TEMP TABLE IF NOT EXISTS {stage} ON COMMIT DELETE ROWS AS "  # noqa: S608
        f"SELECT {_names(columns)} FROM {table} WITH NO DATA; DELETE FROM {stage}; "
    )


def from_stage_sql(stage: str, table: str, columns: Sequence[str]) -> str:
    names = _names(columns)
    return f"INSERT INTO {table} ({names}) SELECT {names} FROM {stage}"  # noqa: S608


def _names(columns: Sequence[str]) -> str:
    # Quoted: some column names ("user") are reserved words in PostgreSQL.
    return ", ".join(connection.ops.quote_name(c) for c in columns)


def _jsonb(value: dict[str, Any]) -> Any:
    from psycopg.types.json import Jsonb

    return Jsonb(value)


def _sqlite(value: Any) -> Any:
    # The representations Django's SQLite backend stores, so the ORM reads the rows back.
    if isinstance(value, uuid.UUID):
        return value.hex
    if isinstance(value, datetime):
        return connection.ops.adapt_datetimefield_value(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return json.dumps(value)
    return value
