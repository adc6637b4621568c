"""Timestamps read from PostgreSQL (portal/db.py): psycopg's own loader, in C where installed,
gives exactly what Django's Python one gave, on raw cursors and through the ORM."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from django.db import connection
from django.db.backends.postgresql.psycopg_any import register_tzloader
from psycopg.postgres import types
from psycopg.pq import Format

from devices.models import Device
from tests.conftest import Tenant
from tests.factories import DeviceFactory

pytestmark = pytest.mark.postgres

TIMESTAMPTZ = types["timestamptz"].oid

# Text as PostgreSQL might send it and instants at the edges: offsets of whole hours, of
# minutes and of seconds (historic zones), fractions, daylight-saving days, year 1 and 9999.
LITERALS = [
    "2026-12-06 18:22:56.123456+00",
    "2026-03-29 01:30:00+02",
    "2026-10-25 02:30:00.5+01",
    "1900-01-01 00:00:00+00:19:32",
    "1847-12-01 00:00:00-00:01:15",
    "2000-02-29 23:59:59.999999-09:30",
    "0001-01-01 00:00:00+00",
    "9999-12-31 23:59:59.999999+00",
]


def _select(literals: list[str], *, django_loader: bool) -> list[Any]:
    with connection.cursor() as cursor:
        if django_loader:  # what Django registers without portal/db.py
            register_tzloader(UTC, cursor.cursor)
        cursor.execute(
            "SELECT v::timestamptz FROM unnest(%s::text[]) WITH ORDINALITY AS t(v, n) ORDER BY n",
            [literals],
        )
        return [row[0] for row in cursor.fetchall()]


def test_connections_read_timestamps_with_psycopgs_loader(db: Any) -> None:
    connection.ensure_connection()
    loader = connection.connection.adapters.get_loader(TIMESTAMPTZ, Format.TEXT)
    assert loader is not None
    assert loader.__name__ == "UtcTimestamptzLoader"
    with connection.cursor() as cursor:  # Django's cursors keep it: same timezone
        assert cursor.cursor.adapters.get_loader(TIMESTAMPTZ, Format.TEXT) is loader


def test_the_values_are_those_djangos_loader_gave(db: Any) -> None:
    ours = _select(LITERALS, django_loader=False)
    djangos = _select(LITERALS, django_loader=True)
    assert ours == djangos
    assert all(value.tzinfo is UTC for value in ours)
    assert [value.utcoffset() for value in ours] == [timedelta(0)] * len(LITERALS)
    assert ours[1] == datetime(2026, 3, 28, 23, 30, tzinfo=UTC)
    assert ours[3] == datetime(1899, 12, 31, 23, 40, 28, tzinfo=UTC)


def test_null_and_infinity_as_before(db: Any) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT NULL::timestamptz")
        assert cursor.fetchone() == (None,)
    for django_loader in (False, True):
        with pytest.raises(Exception, match="infinity"):
            _select(["infinity"], django_loader=django_loader)


def test_an_orm_round_trip_keeps_the_instant(tenant: Tenant) -> None:
    moment = datetime(2026, 7, 1, 9, 30, 15, 250_000, tzinfo=timezone(timedelta(hours=-7)))
    device = DeviceFactory(site=tenant.site, created_at=moment)
    stored = Device.unscoped.values_list("created_at", flat=True).get(pk=device.pk)
    assert stored == moment
    assert stored.tzinfo is UTC
    assert stored.hour == 16
