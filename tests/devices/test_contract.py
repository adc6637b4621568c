"""The compiled validator, the OpenAPI document and normalisation against the official contract."""

from __future__ import annotations

import copy
import json
import re
from datetime import datetime
from decimal import Decimal
from typing import Any

import jsonschema
import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from devices import normalise, openapi, wire
from tests.devices.conftest import snapshot

SCHEMA = wire.json_schema()
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")
checker = jsonschema.FormatChecker()


@checker.checks("date-time")
def _date_time(value: object) -> bool:
    # jsonschema checks date-time only with an optional package; RFC 3339 needs an offset.
    return not isinstance(value, str) or bool(RFC3339.match(value))


VALIDATOR = jsonschema.Draft202012Validator(SCHEMA, format_checker=checker)


def _batch(*snapshots: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "schema": "inkmeter.telemetry/1",
        "batch_id": "7d0c7d0c-7d0c-4d0c-8d0c-7d0c7d0c7d0c",
        "snapshots": list(snapshots),
    } | extra


def _msgspec_accepts(document: Any) -> bool:
    try:
        envelope = wire.decode_envelope(json.dumps(document).encode())
        for raw in envelope.snapshots:
            wire.decode_snapshot(raw)
    except wire.WireError:
        return False
    return True


def _mutations() -> list[tuple[str, Any]]:
    good = snapshot(jobs=[{"uuid": "j", "type": "print", "pages": 2}])
    good["alerts"] = [{"code": "x", "severity": "info", "raised_at": "2026-01-01T00:00:00Z"}]
    cases: list[tuple[str, Any]] = [("valid", _batch(good))]

    def variant(name: str, change: Any) -> None:
        snap = copy.deepcopy(good)
        change(snap)
        cases.append((name, _batch(snap)))

    variant("no serial", lambda s: s["device"].pop("serial"))
    variant("empty serial", lambda s: s["device"].update(serial=""))
    variant("long serial", lambda s: s["device"].update(serial="x" * 129))
    variant("serial 128", lambda s: s["device"].update(serial="x" * 128))
    variant("bad uuid", lambda s: s.update(snapshot_id="not-a-uuid"))
    variant("uuid without dashes", lambda s: s.update(snapshot_id="0" * 32))
    variant("naive time", lambda s: s.update(collected_at="2026-01-01T00:00:00"))
    variant("offset time", lambda s: s.update(collected_at="2026-01-01T00:00:00+02:00"))
    variant("negative counter", lambda s: s["counters"][0].update(value=-1))
    variant("bool counter", lambda s: s["counters"][0].update(value=True))
    variant("string counter", lambda s: s["counters"][0].update(value="12"))
    variant("upper-case name", lambda s: s["counters"][0].update(name="Impressions"))
    variant("unknown state", lambda s: s["status"].update(state="burning"))
    variant("null state", lambda s: s["status"].update(state=None))
    variant("unknown kind", lambda s: s["supplies"][0].update(kind="paint"))
    variant("color family", lambda s: s["supplies"][0].update(color_family="black"))
    variant("unknown color family", lambda s: s["supplies"][0].update(color_family="beige"))
    variant("null color family", lambda s: s["supplies"][0].update(color_family=None))
    variant("null level", lambda s: s["supplies"][0].update(level=None))
    variant("null genuine", lambda s: s["supplies"][0].update(genuine=None))
    variant("expires date", lambda s: s["supplies"][0].update(expires_on="2027-06-01"))
    variant("expires datetime", lambda s: s["supplies"][0].update(expires_on="2027-06-01T00:00Z"))
    variant("integer-valued pages", lambda s: s["jobs"][0].update(pages=2.0))
    variant("fractional pages", lambda s: s["jobs"][0].update(pages=2.5))
    variant("negative pages", lambda s: s["jobs"][0].update(pages=-1))
    variant("bad job type", lambda s: s["jobs"][0].update(type="fax"))
    variant("negative ink", lambda s: s["jobs"][0].update(ink_ml={"cyan": -1}))
    variant("bad severity", lambda s: s["alerts"][0].update(severity="fatal"))
    variant("null cleared", lambda s: s["alerts"][0].update(cleared_at=None))
    variant("unknown field", lambda s: s.update(vendor_extension={"a": 1}))
    variant("media source not object", lambda s: s.update(media_sources=[1]))
    variant("counters not list", lambda s: s.update(counters={}))
    cases += [
        ("no snapshots", _batch()),
        ("wrong schema", _batch(good) | {"schema": "inkmeter.telemetry/2"}),
        ("null sent_at", _batch(good, sent_at=None)),
        ("bad source kind", _batch(good, source={"kind": "robot"})),
        ("snapshot not object", _batch(good, "x")),
        ("batch is a list", [good]),
    ]
    return cases


@pytest.mark.parametrize(("name", "document"), _mutations(), ids=[n for n, _ in _mutations()])
def test_msgspec_agrees_with_the_json_schema(name: str, document: Any) -> None:
    assert _msgspec_accepts(document) == VALIDATOR.is_valid(document), name


def test_the_samples_include_both_verdicts() -> None:
    verdicts = {VALIDATOR.is_valid(document) for _, document in _mutations()}
    assert verdicts == {True, False}


def _back_to_json_schema(node: Any) -> Any:
    """The inverse of devices.openapi.to_openapi."""
    if isinstance(node, list):
        return [_back_to_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "$ref":
            name = value.rsplit("/", 1)[1].removeprefix(openapi.PREFIX)
            out["$ref"] = "#/$defs/" + name[:1].lower() + name[1:]
        elif (
            key == "enum"
            and len(value) == 1
            and node.get("type") is None
            and isinstance(value[0], str)
            and value[0].startswith("inkmeter.")
        ):
            out["const"] = value[0]
        elif key == "nullable":
            continue
        elif key == "type" and node.get("nullable"):
            out["type"] = [value, "null"]
        else:
            out[key] = _back_to_json_schema(value)
    return out


def test_openapi_request_body_is_the_json_schema(client: Any) -> None:
    document = client.get("/api/v1/schema", {"format": "json"}).json()
    operation = document["paths"]["/api/v1/telemetry"]["post"]
    ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    components = document["components"]["schemas"]
    batch = components[ref.rsplit("/", 1)[1]]

    expected = {k: v for k, v in SCHEMA.items() if k not in ("$schema", "$id", "$defs", "title")}
    assert _back_to_json_schema(batch) == expected
    for name, definition in SCHEMA["$defs"].items():
        assert _back_to_json_schema(components[openapi.component_name(name)]) == definition


pytestmark = pytest.mark.django_db


# --- Normalisation properties -------------------------------------------------------------------

finite = st.floats(allow_nan=False, allow_infinity=False)


@given(level=st.one_of(st.none(), finite), capacity=st.one_of(st.none(), finite))
def test_supply_percent_is_between_0_and_100_or_unknown(
    level: float | None, capacity: float | None
) -> None:
    state = normalise.level_state(level, None)
    percent = normalise.supply_percent(level, capacity, state)
    assert percent is None or 0 <= percent <= 100
    if percent is not None:
        assert state == "ok"
        assert level is not None
        assert capacity is not None
        assert capacity > 0


@given(capacity=st.floats(min_value=1, max_value=1e6), a=st.floats(0, 1), b=st.floats(0, 1))
def test_more_ink_never_shows_less_percent(capacity: float, a: float, b: float) -> None:
    low, high = sorted((a * capacity, b * capacity))
    assert normalise.supply_percent(low, capacity, "ok") <= normalise.supply_percent(  # type: ignore[operator]
        high, capacity, "ok"
    )


@given(special=st.sampled_from([-1.0, -2.0, -3.0]), capacity=finite)
def test_rfc3805_special_levels_are_states_not_percentages(special: float, capacity: float) -> None:
    state = normalise.level_state(special, None)
    assert state in {"unlimited", "unknown", "some_remaining"}
    assert normalise.supply_percent(special, capacity, state) is None


@given(value=st.floats(min_value=0, max_value=1e15))
def test_counter_values_keep_four_decimals_and_order(value: float) -> None:
    stored = normalise.counter_value(value)
    assert stored is not None
    assert stored.as_tuple().exponent == -4
    assert abs(stored - Decimal(repr(value))) <= Decimal("0.00005")
    assert normalise.counter_value(float(stored)) == stored  # normalising twice changes nothing


@given(
    value=st.one_of(st.floats(max_value=-1e-9), st.floats(min_value=1e16), st.just(float("inf")))
)
def test_impossible_counter_values_are_refused(value: float) -> None:
    assert normalise.counter_value(value) is None


@given(text=st.text())
def test_colour_normalisation_is_idempotent_and_storable(text: str) -> None:
    once = normalise.color(text)
    assert normalise.color(once) == once
    assert "\x00" not in once
    assert once == once.strip().lower()


def test_colour_spellings_meet() -> None:
    assert {normalise.color(c) for c in ("Cyan", " cyan ", "C", "CYAN")} == {"cyan"}


@given(value=st.text(min_size=1), mode=st.sampled_from(["store", "hash", "drop"]))
def test_personal_data_policy(value: str, mode: str) -> None:
    stored = normalise.personal(value, mode=mode, key=b"k")
    if mode == "drop":
        assert stored == ""
    elif mode == "hash":
        assert stored == normalise.personal(value, mode="hash", key=b"k")
        assert stored.startswith("sha256:")
        assert stored != normalise.personal(value, mode="hash", key=b"other")
    else:
        assert stored == value.replace("\x00", "")


def test_wire_decoder_rejects_naive_datetimes_not_in_schema_terms() -> None:
    with pytest.raises(wire.WireError):
        wire.decode_snapshot(
            msgspec.Raw(json.dumps(snapshot() | {"collected_at": "2026-01-01T00:00:00"}).encode())
        )
    assert datetime.fromisoformat("2026-01-01T00:00:00+00:00")


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    return 0


# Strings full of what the nesting check must see through: brackets, quotes, backslashes.
_tricky_text = st.text(alphabet='[]{}"\\ ab', max_size=6)
_json_values = st.recursive(
    st.none() | st.integers() | _tricky_text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_tricky_text, inner, max_size=3),
    max_leaves=30,
)


@given(value=_json_values, limit=st.integers(min_value=0, max_value=8))
def test_nesting_check_measures_what_a_decoder_would_descend(value: Any, limit: int) -> None:
    raw = json.dumps(value, separators=(",", ":")).encode()
    assert wire.nesting_exceeds(raw, limit) == (_depth(value) > limit)


@given(value=st.floats(min_value=0, max_value=2e16) | st.integers(0, 2**60).map(float))
def test_counter_values_of_whole_numbers_are_those_of_the_decimal_route(value: float) -> None:
    exact = Decimal(repr(value))
    expected = round(exact, 4) if exact < normalise.COUNTER_MAX else None
    if expected is not None and expected >= normalise.COUNTER_MAX:
        expected = None
    stored = normalise.counter_value(value)
    assert stored == expected
    if stored is not None:
        assert stored.as_tuple().exponent == -4
