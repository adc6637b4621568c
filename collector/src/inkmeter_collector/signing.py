"""Request signing of protocol/telemetry-v1.md: HMAC-SHA256 over method, path, time and body."""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime

from inkmeter_collector.printer import rfc3339


def signature(*, secret: str, method: str, path: str, timestamp: str, body: bytes) -> str:
    message = "\n".join(("v1", method, path, timestamp, hashlib.sha256(body).hexdigest()))
    digest = hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()
    return f"v1={digest}"


def signed_headers(
    *, key_id: str, secret: str, method: str, path: str, body: bytes, now: datetime
) -> dict[str, str]:
    timestamp = rfc3339(now)
    return {
        "X-Inkmeter-Key": key_id,
        "X-Inkmeter-Timestamp": timestamp,
        "X-Inkmeter-Signature": signature(
            secret=secret, method=method, path=path, timestamp=timestamp, body=body
        ),
    }
