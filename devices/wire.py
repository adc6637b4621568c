"""The telemetry wire contract (protocol/telemetry-v1.md) as compiled msgspec validators.

The Structs mirror telemetry-v1.schema.json field by field; tests/devices/test_wire.py checks
their verdict against `jsonschema` on the official schema. The envelope is decoded first with the
snapshots left raw, then each snapshot on its own, so that a bad snapshot is rejected with its
reasons without stopping the good ones.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType

SCHEMA_NAME = "inkmeter.telemetry/1"

# The deepest a legitimate batch nests is about six levels (envelope, snapshots, snapshot, jobs,
# job, ink_ml); media sources are free-form objects, so leave them room. A hostile body nested a
# thousand deep would exhaust the decoder's recursion limit (RecursionError, a 500), so the
# depth is checked before anything recurses.
MAX_DEPTH = 32
SCHEMA_PATH = Path(__file__).resolve().parent / "protocol" / "telemetry-v1.schema.json"

# JSON Schema's "uuid" format: the hyphenated form only (msgspec's UUID type also takes 32 hex).
UUID_PATTERN = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"

Uuid = Annotated[str, Meta(pattern=UUID_PATTERN)]


Text32 = Annotated[str, Meta(max_length=32)]
Text64 = Annotated[str, Meta(max_length=64)]
Text128 = Annotated[str, Meta(max_length=128)]
Text200 = Annotated[str, Meta(max_length=200)]
Text255 = Annotated[str, Meta(max_length=255)]
Text512 = Annotated[str, Meta(max_length=512)]
Text1000 = Annotated[str, Meta(max_length=1000)]
Key128 = Annotated[str, Meta(min_length=1, max_length=128)]


NonNegative = Annotated[float, Meta(ge=0)]


class Source(Struct, kw_only=True):
    kind: Literal["collector", "direct", "simulator", "other"] | UnsetType = UNSET
    agent: Text200 = ""
    host: Text255 = ""
    # Added compatibly: a collector's health (the portal's collector health page).
    outbox_backlog: Annotated[int, Meta(ge=0, le=2**31 - 1)] | UnsetType = UNSET
    last_discovery_at: datetime | UnsetType = UNSET


class Envelope(Struct, kw_only=True):
    schema: Literal["inkmeter.telemetry/1"]
    batch_id: Uuid
    sent_at: datetime | UnsetType = UNSET
    source: Source | UnsetType = UNSET
    snapshots: Annotated[list[msgspec.Raw], Meta(min_length=1, max_length=1000)]


class DeviceIdentity(Struct, kw_only=True):
    serial: Key128
    manufacturer: Text128 = ""
    model: Text255 = ""
    product_number: Text128 = ""
    firmware: Text128 = ""
    ip: Text64 = ""
    hostname: Text255 = ""
    mac: Text64 = ""


State = Literal["idle", "printing", "warmup", "error", "warning", "offline", "sleep", "unknown"]


class Status(Struct, kw_only=True):
    state: State | UnsetType = UNSET
    detail: Text1000 = ""


class Counter(Struct, kw_only=True):
    name: Annotated[str, Meta(pattern=r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$", max_length=100)]
    value: NonNegative
    unit: Text32 = ""
    media_type: Text128 = ""
    color: Text64 = ""


SupplyKind = Literal[
    "toner",
    "ink",
    "printhead",
    "drum",
    "developer",
    "waste",
    "fuser",
    "transfer",
    "maintenance",
    "staples",
    "media",
    "other",
]
LevelState = Literal["ok", "unknown", "some_remaining", "unlimited"]
# normalise.COLOR_FAMILIES; tests/devices/test_contract.py keeps the two equal.
ColorFamily = Literal[
    "black",
    "cyan",
    "magenta",
    "yellow",
    "gray",
    "red",
    "green",
    "blue",
    "orange",
    "violet",
    "white",
    "clear",
    "tri-colour",
]


class Supply(Struct, kw_only=True):
    id: Key128
    kind: SupplyKind | UnsetType = UNSET
    color: Text64 = ""
    color_family: ColorFamily | UnsetType = UNSET
    description: Text255 = ""
    part_number: Text128 = ""
    serial: Text128 = ""
    manufacturer: Text128 = ""
    genuine: bool | UnsetType = UNSET
    unit: Text32 = ""
    max_capacity: float | None = None
    level: float | None = None
    level_state: LevelState | UnsetType = UNSET
    status: Text64 = ""
    expires_on: date | None = None


class Alert(Struct, kw_only=True):
    # The sender's identity of this raise of the alert (protocol: "Alert identity").
    id: Text128 = ""
    code: Text128
    severity: Literal["critical", "warning", "info"]
    description: Text1000 = ""
    raised_at: datetime | UnsetType = UNSET
    cleared_at: datetime | None = None


# JSON Schema's "integer" includes 2.0; msgspec's int does not, so integers are checked after.
Count = int | float


class Job(Struct, kw_only=True):
    uuid: Text128
    type: Literal["print", "scan", "copy"]
    name: Text512 = ""
    status: Text64 = ""
    source: Text64 = ""
    submitted_at: datetime | UnsetType = UNSET
    completed_at: datetime | UnsetType = UNSET
    pages: Count | UnsetType = UNSET
    copies: Count | UnsetType = UNSET
    print_quality: Text64 = ""
    media_type: Text128 = ""
    media_area_m2: NonNegative | UnsetType = UNSET
    printed_area_m2: NonNegative | UnsetType = UNSET
    media_length_m: NonNegative | UnsetType = UNSET
    ink_ml: dict[str, NonNegative] | UnsetType = UNSET
    user: Text255 = ""
    account_id: Text255 = ""
    project_id: Text255 = ""
    application_category: Text128 = ""


class Snapshot(Struct, kw_only=True):
    snapshot_id: Uuid
    collected_at: datetime
    device: DeviceIdentity
    status: Status | UnsetType = UNSET
    counters: Annotated[list[Counter], Meta(max_length=500)] = []
    supplies: Annotated[list[Supply], Meta(max_length=200)] = []
    media_sources: Annotated[list[dict[str, Any]], Meta(max_length=100)] = []
    alerts: Annotated[list[Alert], Meta(max_length=200)] = []
    jobs: Annotated[list[Job], Meta(max_length=10000)] = []


_envelope_decoder = msgspec.json.Decoder(Envelope)
_snapshot_decoder = msgspec.json.Decoder(Snapshot)


class WireError(ValueError):
    """The body breaks the contract; `errors` are the reasons, for the caller."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors


def decode_envelope(raw: bytes) -> Envelope:
    """The envelope with its snapshots left raw, or WireError; the whole body's depth is checked."""
    if nesting_exceeds(raw, MAX_DEPTH):
        raise WireError([f"JSON nested deeper than {MAX_DEPTH} levels"])
    try:
        envelope = _envelope_decoder.decode(raw)
    except msgspec.ValidationError as error:
        raise WireError([str(error)]) from error
    except msgspec.DecodeError as error:
        raise WireError([f"not JSON: {error}"]) from error
    errors = _check_datetime("$.sent_at", envelope.sent_at)
    if errors:
        raise WireError(errors)
    return envelope


_STRUCTURE = b'"[]{}'
_ALL_BYTES = bytes(range(256))
_NOT_STRUCTURE = bytes(b for b in _ALL_BYTES if b not in _STRUCTURE)
_BRACKETS = bytes.maketrans(b"[]{}", b"()()")


def nesting_exceeds(raw: bytes, limit: int) -> bool:
    """Whether a JSON text nests arrays and objects deeper than `limit`, brackets in strings aside.

    Without recursion and in C-speed passes: drop escapes, keep only quotes and brackets, drop
    strings, then peel the innermost pairs, one level a pass. When no pair is left to peel, the
    openings left over (an unbalanced text) are levels a decoder would still descend.
    """
    if b"\\" in raw:
        raw = raw.replace(b"\\\\", b"").replace(b'\\"', b"")
    kept = raw.translate(None, _NOT_STRUCTURE)
    # Quotes now pair up, and every second piece between quotes is a string's content. Two
    # adjacent quotes close one string and open the next or are an empty string: dropping them
    # leaves what lies outside the strings as it was, and leaves few pieces to split (most
    # strings hold no bracket).
    kept = kept.replace(b'""', b"")
    brackets = b"".join(kept.split(b'"')[::2]).translate(_BRACKETS)
    depth = 0
    while brackets and depth <= limit:
        # A run of openings longer than the levels left settles it at once (the plain attack).
        if b"(" * (limit - depth + 1) in brackets:
            return True
        peeled = brackets.replace(b"()", b"")
        if len(peeled) == len(brackets):
            return depth + brackets.count(b"(") > limit
        brackets, depth = peeled, depth + 1
    return depth > limit


def decode_snapshot(raw: msgspec.Raw) -> Snapshot:
    """A validated snapshot, or WireError with its reasons."""
    try:
        snapshot = _snapshot_decoder.decode(raw)
    except msgspec.ValidationError as error:
        raise WireError([str(error)]) from error
    errors = _snapshot_errors(snapshot)
    if errors:
        raise WireError(errors)
    return snapshot


def _check_datetime(path: str, value: datetime | UnsetType | None) -> list[str]:
    # RFC 3339 (JSON Schema "date-time") needs an offset; msgspec accepts naive times too.
    if isinstance(value, datetime) and value.tzinfo is None:
        return [f"{path}: a date-time needs a UTC offset or Z"]
    return []


def _check_count(path: str, value: float | UnsetType) -> list[str]:
    if isinstance(value, UnsetType):
        return []
    if isinstance(value, float) and not value.is_integer():
        return [f"{path}: expected an integer"]
    if value < 0:
        return [f"{path}: expected >= 0"]
    return []


def _snapshot_errors(snapshot: Snapshot) -> list[str]:
    errors = _check_datetime("$.collected_at", snapshot.collected_at)
    for i, alert in enumerate(snapshot.alerts):
        errors += _check_datetime(f"$.alerts[{i}].raised_at", alert.raised_at)
        errors += _check_datetime(f"$.alerts[{i}].cleared_at", alert.cleared_at)
    for i, job in enumerate(snapshot.jobs):
        errors += _check_datetime(f"$.jobs[{i}].submitted_at", job.submitted_at)
        errors += _check_datetime(f"$.jobs[{i}].completed_at", job.completed_at)
        errors += _check_count(f"$.jobs[{i}].pages", job.pages)
        errors += _check_count(f"$.jobs[{i}].copies", job.copies)
    return errors


def json_schema() -> dict[str, Any]:
    """The official JSON Schema of a batch (a copy of protocol/telemetry-v1.schema.json)."""
    schema: dict[str, Any] = json.loads(SCHEMA_PATH.read_text())
    return schema
