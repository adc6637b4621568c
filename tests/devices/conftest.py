"""Fixtures of the devices tests: credentials of the fixed trio's tenants and a signed sender."""

from __future__ import annotations

import gzip
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.test import Client

from devices import services
from devices.models import Credential
from devices.simulator import rfc3339, signed_headers
from tests.conftest import Tenant

TELEMETRY = "/api/v1/telemetry"


@dataclass
class Signed:
    credential: Credential
    secret: str


@pytest.fixture
def collector(tenant: Tenant) -> Signed:
    credential, secret = services.credential_create(
        ctx=tenant.ctx(), kind="collector", site_id=tenant.site.pk
    )
    return Signed(credential, secret)


@pytest.fixture
def foreign_collector(foreign_tenant: Tenant) -> Signed:
    credential, secret = services.credential_create(
        ctx=foreign_tenant.ctx(), kind="collector", site_id=foreign_tenant.site.pk
    )
    return Signed(credential, secret)


Post = Callable[..., Any]


@pytest.fixture
def post(client: Client) -> Post:
    """POST a batch with a real signature; returns the response."""

    def _post(
        signed: Signed,
        snapshots: list[dict[str, Any]] | None = None,
        *,
        batch_id: str | None = None,
        body: bytes | None = None,
        compress: bool = True,
        secret: str | None = None,
        key_id: str | None = None,
        at: datetime | None = None,
        extra: dict[str, str] | None = None,
        content_type: str = "application/json",
    ) -> Any:
        if body is None:
            document = {
                "schema": "inkmeter.telemetry/1",
                "batch_id": batch_id or str(uuid.uuid4()),
                "snapshots": snapshots or [],
            }
            body = json.dumps(document).encode()
            if compress:
                body = gzip.compress(body)
        headers = signed_headers(
            key_id=key_id or signed.credential.key_id,
            secret=secret or signed.secret,
            method="POST",
            path=TELEMETRY,
            body=body,
            at=at,
        )
        if compress:
            headers["Content-Encoding"] = "gzip"
        headers |= extra or {}
        return client.post(
            TELEMETRY,
            data=body,
            content_type=content_type,
            headers=headers,
            REMOTE_ADDR="192.0.2.7",
        )

    return _post


def snapshot(
    serial: str = "CN0001",
    *,
    at: datetime | None = None,
    snapshot_id: str | None = None,
    total: float = 1000,
    cyan: float = 52,
    firmware: str = "2416A",
    ip: str = "192.0.2.15",
    alerts: list[dict[str, Any]] | None = None,
    jobs: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A valid snapshot of a colour large-format printer."""
    at = at or datetime.now(tz=UTC) - timedelta(minutes=5)
    snap: dict[str, Any] = {
        "snapshot_id": snapshot_id or str(uuid.uuid4()),
        "collected_at": rfc3339(at),
        "device": {
            "serial": serial,
            "manufacturer": "HP",
            "model": "HP DesignJet T830",
            "firmware": firmware,
            "ip": ip,
        },
        "status": {"state": "idle", "detail": "Ready"},
        "counters": [
            {"name": "impressions.total", "value": total, "unit": "impressions"},
            {"name": "media.area", "value": total / 10, "unit": "m2", "media_type": "Coated Paper"},
            {"name": "ink.used", "value": total / 100, "unit": "ml", "color": "Cyan"},
        ],
        "supplies": [
            {
                "id": "ink-cyan",
                "kind": "ink",
                "color": "cyan",
                "unit": "ml",
                "max_capacity": 130,
                "level": cyan,
                "level_state": "ok",
            }
        ],
    }
    if alerts is not None:
        snap["alerts"] = alerts
    if jobs is not None:
        snap["jobs"] = jobs
    return snap
