"""Hostile telemetry bodies: each is refused with a 4xx and the error body, and stores nothing."""

from __future__ import annotations

import gzip
import json
import uuid
from typing import Any

import pytest

from devices import wire
from devices.models import Snapshot, TelemetryBatch
from tests.devices.conftest import Post, Signed, snapshot

pytestmark = pytest.mark.django_db


def _envelope(snapshots: list[Any]) -> bytes:
    document = {"schema": "inkmeter.telemetry/1", "batch_id": str(uuid.uuid4()), "snapshots": []}
    text = json.dumps(document)
    return text.replace('"snapshots": []', '"snapshots": [' + ", ".join(snapshots) + "]").encode()


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def _assert_refused(response: Any, status: int, code: str) -> None:
    assert response.status_code == status, response.content
    error = response.json()["error"]
    assert error["code"] == code
    assert error["message"]
    assert TelemetryBatch.unscoped.count() == 0
    assert Snapshot.unscoped.count() == 0


@pytest.mark.parametrize("depth", [wire.MAX_DEPTH + 1, 1_000, 100_000])
@pytest.mark.parametrize("compress", [False, True])
def test_deeply_nested_snapshot_gets_400(
    post: Post, collector: Signed, depth: int, compress: bool
) -> None:
    body = _envelope([_nested(depth)])
    response = post(collector, body=gzip.compress(body) if compress else body, compress=compress)

    _assert_refused(response, 400, "invalid_batch")
    assert response.json()["error"]["fields"] == {
        "body": [f"JSON nested deeper than {wire.MAX_DEPTH} levels"]
    }


def test_deep_nesting_inside_a_free_form_media_source_gets_400(
    post: Post, collector: Signed
) -> None:
    snap = snapshot()
    snap["media_sources"] = [{"id": "roll-1", "extra": "NESTED"}]
    text = json.dumps(snap).replace('"NESTED"', "{" + '"a": {' * 999 + "}" * 1000)

    _assert_refused(post(collector, body=_envelope([text]), compress=False), 400, "invalid_batch")


def test_brackets_inside_strings_do_not_count_as_nesting(post: Post, collector: Signed) -> None:
    snap = snapshot()
    snap["status"]["detail"] = '[{"\\' * 100 + "]}" * 100
    snap["supplies"][0]["description"] = "\\" + "[" * 200

    response = post(collector, [snap], compress=False)

    assert response.status_code == 202, response.content
    assert response.json()["accepted"] == 1


def test_nesting_at_the_limit_is_accepted(post: Post, collector: Signed) -> None:
    # Envelope, snapshots, snapshot, media_sources, source: five levels; the rest nests inside.
    snap = snapshot()
    snap["media_sources"] = [{"id": "roll-1", "extra": "NESTED"}]
    inner = wire.MAX_DEPTH - 5
    text = json.dumps(snap).replace('"NESTED"', "[" * inner + "]" * inner)

    response = post(collector, body=_envelope([text]), compress=False)

    assert response.status_code == 202, response.content
    assert response.json()["accepted"] == 1


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "application/xml", "", "application/jsonx"],
)
def test_body_not_sent_as_json_gets_415(post: Post, collector: Signed, content_type: str) -> None:
    response = post(collector, [snapshot()], content_type=content_type)

    _assert_refused(response, 415, "unsupported_media_type")
    assert "application/json" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    "content_type", ["application/json; charset=utf-8", "Application/JSON", "application/json"]
)
@pytest.mark.parametrize("compress", [False, True])
def test_json_with_parameters_and_gzip_is_accepted(
    post: Post, collector: Signed, content_type: str, compress: bool
) -> None:
    response = post(collector, [snapshot()], content_type=content_type, compress=compress)

    assert response.status_code == 202, response.content
    assert response.json()["accepted"] == 1


def test_openapi_documents_the_content_type_and_depth_refusals(client: Any) -> None:
    document = client.get("/api/v1/schema", {"format": "json"}).json()
    responses = document["paths"]["/api/v1/telemetry"]["post"]["responses"]

    assert "application/json" in responses["415"]["description"]
    assert f"nested deeper than {wire.MAX_DEPTH} levels" in responses["400"]["description"]
    assert responses["415"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/TelemetryError"
    }


def test_protocol_document_states_the_limits() -> None:
    text = " ".join((wire.SCHEMA_PATH.parent / "telemetry-v1.md").read_text().split())
    assert f"at most {wire.MAX_DEPTH} levels deep" in text
    assert "415 unsupported_media_type" in text
