"""POST /api/v1/telemetry through real signed requests: what is stored, and what is refused."""

from __future__ import annotations

import gzip
import json
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from devices.models import (
    AuthFailure,
    CounterReading,
    Device,
    DeviceState,
    Snapshot,
    Supply,
    SupplyReading,
    TelemetryBatch,
)
from tests.devices.conftest import Post, Signed, snapshot

pytestmark = pytest.mark.django_db


def _stored_counts() -> dict[str, int]:
    models = [TelemetryBatch, Snapshot, Device, DeviceState, CounterReading, SupplyReading, Supply]
    return {m.__name__: m.unscoped.count() for m in models}


def test_accepted_batch_is_stored_and_answered(post: Post, collector: Signed) -> None:
    batch_id = str(uuid.uuid4())
    response = post(collector, [snapshot(total=1200.5, cyan=39)], batch_id=batch_id)

    assert response.status_code == 202
    assert response.json() == {
        "batch_id": batch_id,
        "accepted": 1,
        "duplicates": 0,
        "rejected": [],
    }
    device = Device.unscoped.get()
    assert (device.serial, device.site_id, device.customer_id) == (
        "CN0001",
        collector.credential.site_id,
        collector.credential.customer_id,
    )
    assert device.model == "HP DesignJet T830"
    state = DeviceState.unscoped.get()
    assert (state.state, state.firmware, state.impressions_total) == (
        "idle",
        "2416A",
        Decimal("1200.5000"),
    )
    readings = {(r.name, r.media_type, r.color): r.value for r in CounterReading.unscoped.all()}
    assert readings == {
        ("impressions.total", "", ""): Decimal("1200.5000"),
        ("media.area", "Coated Paper", ""): Decimal("120.0500"),
        ("ink.used", "", "cyan"): Decimal("12.0050"),
    }
    supply = Supply.unscoped.get()
    assert (supply.supply_key, supply.level, supply.percent) == ("ink-cyan", 39, 30.0)
    batch = TelemetryBatch.unscoped.get()
    assert json.loads(gzip.decompress(bytes(batch.body)))["batch_id"] == batch_id
    collector.credential.refresh_from_db()
    assert collector.credential.last_seen_ip == "192.0.2.7"
    assert collector.credential.last_seen_at is not None


@pytest.mark.parametrize(
    "odd",
    ["tab\there", "line\nbreak\r", "back\\slash \\N", "nul\x00byte", "plain text"],
)
def test_free_texts_are_stored_as_sent_whatever_they_hold(
    post: Post, collector: Signed, odd: str
) -> None:
    # PostgreSQL writes these rows as COPY text, escaped unless the body has no backslash.
    snap = snapshot()
    snap["counters"][1]["media_type"] = odd
    snap["counters"][1]["unit"] = odd
    supply = snap["supplies"][0]
    for key in ("description", "part_number", "serial", "manufacturer", "unit", "status"):
        supply[key] = odd
    supply["id"] = odd
    assert post(collector, [snap]).json()["accepted"] == 1

    kept = odd.replace("\x00", "")
    counter = CounterReading.unscoped.get(name="media.area")
    assert (counter.media_type, counter.unit) == (kept, kept)
    stored = Supply.unscoped.get()
    assert stored.supply_key == kept
    assert [
        stored.description,
        stored.part_number,
        stored.serial,
        stored.manufacturer,
        stored.unit,
        stored.status,
    ] == [kept] * 6
    reading = SupplyReading.unscoped.get()
    assert (reading.supply_key, reading.serial) == (kept, kept)


@pytest.mark.parametrize("raw", ["\t", "\n", "\r", "\x00"])
def test_a_raw_control_character_in_a_string_is_refused_and_nothing_is_stored(
    post: Post, collector: Signed, raw: str
) -> None:
    """A body without a backslash goes into COPY text unchecked (batch_ingest's `plain`), which
    is safe only because the decoder refuses these characters unescaped: a raw tab would
    otherwise shift a reading's columns."""
    snap = snapshot()
    snap["supplies"][0]["description"] = "TAB"
    document = {
        "schema": "inkmeter.telemetry/1",
        "batch_id": str(uuid.uuid4()),
        "snapshots": [snap],
    }
    body = json.dumps(document).replace("TAB", f"a{raw}b").encode()
    assert b"\\" not in body

    response = post(collector, body=gzip.compress(body))

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_batch"
    assert Snapshot.unscoped.count() == 0
    assert SupplyReading.unscoped.count() == 0


def test_plain_body_without_gzip_is_accepted(post: Post, collector: Signed) -> None:
    response = post(collector, [snapshot()], compress=False)
    assert response.status_code == 202
    assert response.json()["accepted"] == 1


def test_bad_snapshot_is_rejected_with_reasons_and_good_ones_stored(
    post: Post, collector: Signed
) -> None:
    bad = snapshot("CN0002")
    del bad["collected_at"]
    worse = snapshot("CN0003")
    worse["counters"][0]["value"] = -1
    response = post(collector, [snapshot("CN0001"), bad, worse])

    answer = response.json()
    assert response.status_code == 202
    assert answer["accepted"] == 1
    assert [r["index"] for r in answer["rejected"]] == [1, 2]
    assert "collected_at" in answer["rejected"][0]["errors"][0]
    assert "counters[0].value" in answer["rejected"][1]["errors"][0]
    assert list(Device.unscoped.values_list("serial", flat=True)) == ["CN0001"]


def test_snapshot_from_the_future_is_rejected(post: Post, collector: Signed) -> None:
    future = snapshot(at=datetime.now(tz=UTC) + timedelta(hours=1))
    answer = post(collector, [future]).json()
    assert answer["accepted"] == 0
    assert answer["rejected"][0]["errors"] == ["$.collected_at: in the future"]
    assert Snapshot.unscoped.count() == 0


@pytest.mark.parametrize(
    "change",
    [
        {"key_id": "col_0000000000000000"},
        {"secret": "not-the-secret"},
        {"skew": timedelta(minutes=-6)},
        {"skew": timedelta(minutes=6)},
    ],
    ids=["unknown-key", "bad-signature", "stale", "future"],
)
def test_authentication_failures_look_alike_and_store_nothing(
    post: Post, collector: Signed, change: dict[str, Any]
) -> None:
    before = _stored_counts()
    if "skew" in change:  # the clock is read now, not when the module was collected
        change = {"at": datetime.now(tz=UTC) + change["skew"]}
    response = post(collector, [snapshot()], **change)

    assert response.status_code == 401
    assert response.json() == {
        "error": {
            "code": "unauthenticated",
            "message": "Key, signature or timestamp not accepted. Check the key id, the "
            "secret and the sender's clock.",
            "fields": {},
        }
    }
    assert _stored_counts() == before


def test_known_key_failures_are_logged_for_the_reseller(post: Post, collector: Signed) -> None:
    post(collector, [snapshot()], secret="wrong")
    post(collector, [snapshot()], at=datetime.now(tz=UTC) - timedelta(hours=1))
    post(collector, [snapshot()], key_id="col_ffffffffffffffff")

    failures = AuthFailure.unscoped.order_by("pk")
    assert [(f.credential_id, f.reason, f.ip) for f in failures] == [
        (collector.credential.pk, "bad_signature", "192.0.2.7"),
        (collector.credential.pk, "stale_timestamp", "192.0.2.7"),
    ]


def test_body_signed_with_tampered_content_is_refused(post: Post, collector: Signed) -> None:
    body = gzip.compress(b'{"schema":"inkmeter.telemetry/1"}')
    headers_for_other_body = post(collector, body=body)
    assert headers_for_other_body.status_code == 400  # signed correctly, but not a batch
    from django.test import Client

    from devices.simulator import signed_headers

    headers = signed_headers(
        key_id=collector.credential.key_id,
        secret=collector.secret,
        method="POST",
        path="/api/v1/telemetry",
        body=b"something else",
    )
    response = Client().post(
        "/api/v1/telemetry", data=body, content_type="application/json", headers=headers
    )
    assert response.status_code == 401


def test_gzip_bomb_gets_413_and_stores_nothing(
    post: Post, collector: Signed, settings: Any
) -> None:
    settings.TELEMETRY_MAX_DECOMPRESSED_BYTES = 1024 * 1024
    bomb = gzip.compress(b"[" + b" " * (64 * 1024 * 1024) + b"]")
    assert len(bomb) < settings.TELEMETRY_MAX_BODY_BYTES

    response = post(collector, body=bomb)

    assert response.status_code == 413
    assert response.json()["error"]["code"] == "too_large"
    assert TelemetryBatch.unscoped.count() == 0


def test_oversized_body_gets_413(post: Post, collector: Signed, settings: Any) -> None:
    settings.TELEMETRY_MAX_BODY_BYTES = 1000
    response = post(collector, body=b"x" * 1001, compress=False)
    assert response.status_code == 413


@pytest.mark.parametrize(
    ("body", "encoding", "status", "code"),
    [
        (b"not gzip at all", "gzip", 400, "bad_encoding"),
        (gzip.compress(b"{}", mtime=0)[:-5], "gzip", 400, "bad_encoding"),
        (b"{}", "br", 415, "unsupported_encoding"),
        (b"{not json", "", 400, "invalid_batch"),
        (
            b'{"schema":"inkmeter.telemetry/2","batch_id":"x","snapshots":[]}',
            "",
            400,
            "invalid_batch",
        ),
    ],
)
def test_bad_envelopes_are_refused_whole(
    post: Post, collector: Signed, body: bytes, encoding: str, status: int, code: str
) -> None:
    response = post(collector, body=body, compress=False, extra={"Content-Encoding": encoding})
    assert response.status_code == status
    assert response.json()["error"]["code"] == code
    assert TelemetryBatch.unscoped.count() == 0


def test_get_is_not_allowed(client: Any) -> None:
    response = client.get("/api/v1/telemetry")
    assert response.status_code == 405


def test_collector_cannot_report_another_customers_printer(
    post: Post, collector: Signed, tenant: Any
) -> None:
    from devices import services
    from tests.factories import CustomerFactory, SiteFactory

    other_site: Any = SiteFactory(customer=CustomerFactory(reseller=tenant.reseller))
    credential, secret = services.credential_create(
        ctx=tenant.ctx(), kind="collector", site_id=other_site.pk
    )
    post(Signed(credential, secret), [snapshot("SHARED1")])
    answer = post(collector, [snapshot("SHARED1"), snapshot("MINE1")]).json()

    assert answer["accepted"] == 1
    assert answer["rejected"] == [
        {"index": 0, "errors": ["$.device.serial: 'SHARED1' belongs to another customer"]}
    ]
    assert Device.unscoped.get(serial="SHARED1").customer_id == other_site.customer_id
    assert Snapshot.unscoped.filter(device__serial="SHARED1").count() == 1


def test_same_serial_at_another_reseller_is_another_device(
    post: Post, collector: Signed, foreign_collector: Signed
) -> None:
    post(foreign_collector, [snapshot("SHARED1")])
    assert post(collector, [snapshot("SHARED1")]).json()["accepted"] == 1
    assert Device.unscoped.filter(serial="SHARED1").count() == 2


def test_direct_credential_writes_only_its_own_device(post: Post, tenant: Any) -> None:
    from devices import services

    credential, secret = services.credential_create(
        ctx=tenant.ctx(), kind="direct", serial="DIRECT1", site_id=tenant.site.pk
    )
    signed = Signed(credential, secret)
    answer = post(signed, [snapshot("DIRECT1"), snapshot("OTHER")]).json()

    assert answer["accepted"] == 1
    assert answer["rejected"][0]["index"] == 1
    assert list(Device.unscoped.values_list("serial", flat=True)) == ["DIRECT1"]


def test_revoked_credential_is_refused(post: Post, collector: Signed, tenant: Any) -> None:
    from devices import services

    services.credential_revoke(ctx=tenant.ctx(), credential_id=collector.credential.pk)
    response = post(collector, [snapshot()])
    assert response.status_code == 401
    assert Snapshot.unscoped.count() == 0
    assert AuthFailure.unscoped.get().reason == "revoked"
