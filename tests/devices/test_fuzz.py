"""Schemathesis fuzzing of POST /api/v1/telemetry from the OpenAPI document, in-process.

Every generated body is sent with a valid signature (the fuzzer's own headers are replaced),
so the cases get past authentication and exercise validation and storage. The endpoint must
never answer 5xx, and a refused request (4xx) must leave nothing stored.
"""

from __future__ import annotations

import json
import os
from typing import Any

import pytest
import schemathesis
from django.test import Client
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, settings

from devices.models import Device, Snapshot, TelemetryBatch
from devices.simulator import signed_headers
from tests.devices.conftest import Signed

EXAMPLES = int(os.environ.get("INKMETER_FUZZ_EXAMPLES", "1000"))


# Arrays are capped for the fuzzer (not for the endpoint): cases of a few items exercise the same
# code paths, and 1,000 of them then fit the CI budget. Size limits have their own tests.
FUZZ_MAX_ITEMS = 3


def _cap_arrays(node: Any) -> Any:
    if isinstance(node, dict):
        if "maxItems" in node:
            node["maxItems"] = min(node["maxItems"], FUZZ_MAX_ITEMS)
        for value in node.values():
            _cap_arrays(value)
    elif isinstance(node, list):
        for value in node:
            _cap_arrays(value)
    return node


def _openapi() -> dict[str, Any]:
    document: dict[str, Any] = SchemaGenerator().get_schema(request=None, public=True)
    # Round-trip through JSON: the generator leaves lazy strings and enum members in place.
    return _cap_arrays(json.loads(json.dumps(document, default=str)))


schema = schemathesis.openapi.from_dict(_openapi()).include(path="/api/v1/telemetry")


def _stored() -> tuple[int, int, int]:
    return (TelemetryBatch.unscoped.count(), Snapshot.unscoped.count(), Device.unscoped.count())


@pytest.mark.django_db
@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
)
def test_telemetry_never_fails_and_refusals_store_nothing(case: Any, collector: Signed) -> None:
    document: Any = case.body if isinstance(case.body, dict | list | str | int | float) else None
    body = b"" if document is None else json.dumps(document).encode()
    headers = signed_headers(
        key_id=collector.credential.key_id,
        secret=collector.secret,
        method="POST",
        path="/api/v1/telemetry",
        body=body,
    )
    before = _stored()

    response = Client().post(
        "/api/v1/telemetry", data=body, content_type="application/json", headers=headers
    )

    assert response.status_code < 500, response.content
    if response.status_code >= 400:
        assert _stored() == before
        assert set(response.json()["error"]) == {"code", "message", "fields"}
    else:
        assert response.status_code == 202
        answer = response.json()
        batch = TelemetryBatch.unscoped.get(batch_id=answer["batch_id"])
        assert batch.answer == answer
        if batch.body == body:  # new batch (a repeated batch_id is answered as the first time)
            counted = answer["accepted"] + answer["duplicates"] + len(answer["rejected"])
            assert counted == len(document["snapshots"])
