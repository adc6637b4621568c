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
from hypothesis import HealthCheck, settings

from devices.models import Device, Snapshot, TelemetryBatch
from devices.simulator import signed_headers
from tests.devices.conftest import Signed
from tests.openapi import openapi_document

EXAMPLES = int(os.environ.get("INKMETER_FUZZ_EXAMPLES", "1000"))


schema = schemathesis.openapi.from_dict(openapi_document()).include(path="/api/v1/telemetry")


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
