"""Uploads: gzip, HMAC signature, one batch per request, retries with backoff.

Answers (protocol/telemetry-v1.md): 2xx acknowledges the batch (rejected snapshots in it are
logged); 408, 429, 5xx and network errors retry the same batch_id later; 401/403 say the
credential or clock is wrong, not the batch, so the batch waits and the pass stops; any other 4xx
means the batch will never be accepted: it is quarantined, kept on disk and logged.
"""

from __future__ import annotations

import gzip
import json
import logging
import random
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx

from inkmeter_collector import AGENT
from inkmeter_collector.outbox import Batch, Outbox, utcnow
from inkmeter_collector.printer import rfc3339
from inkmeter_collector.signing import signed_headers

log = logging.getLogger(__name__)

TELEMETRY_PATH = "/api/v1/telemetry"
CONFIG_PATH = "/api/v1/collector/config"
RETRY_STATUSES = frozenset({408, 429})
CREDENTIAL_STATUSES = frozenset({401, 403})


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with jitter: base, 2 x base, 4 x base ... capped at max_s."""

    base_s: float = 5.0
    max_s: float = 300.0
    jitter: float = 0.2

    def delay(self, attempts: int) -> float:
        raw = min(self.max_s, self.base_s * 2.0 ** max(0, attempts - 1))
        spread = raw * self.jitter
        return max(0.0, raw - spread + random.random() * 2 * spread)  # noqa: S311


@dataclass(frozen=True)
class FlushReport:
    sent: int = 0
    acked: int = 0
    retried: int = 0
    quarantined: int = 0
    upload_bytes: int = 0
    stopped: str | None = None


class Portal:
    """The portal's collector API, signed with the collector credential."""

    def __init__(
        self,
        *,
        url: str,
        key_id: str,
        secret: str,
        proxy: str | None = None,
        verify: bool | str = True,
        timeout_s: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base = url.rstrip("/")
        self.key_id = key_id
        self._secret = secret
        self._client = httpx.Client(
            proxy=proxy,
            verify=verify,
            timeout=timeout_s,
            transport=transport,
            headers={"User-Agent": AGENT},
        )

    def close(self) -> None:
        self._client.close()

    def _url_and_path(self, path: str) -> tuple[str, str]:
        url = self.base + path
        return url, urlsplit(url).path

    def encode(self, batch: Batch, *, now: datetime, health: dict[str, Any] | None = None) -> bytes:
        source = {"kind": "collector", "agent": AGENT, "host": socket.gethostname()[:255]}
        body = {
            "schema": "inkmeter.telemetry/1",
            "batch_id": batch.batch_id,
            "sent_at": rfc3339(now),
            "source": source | (health or {}),
            "snapshots": batch.snapshots,
        }
        raw = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
        return gzip.compress(raw, mtime=0)

    def post_batch(
        self, batch: Batch, *, now: datetime, health: dict[str, Any] | None = None
    ) -> tuple[httpx.Response, int]:
        url, path = self._url_and_path(TELEMETRY_PATH)
        body = self.encode(batch, now=now, health=health)
        headers = signed_headers(
            key_id=self.key_id, secret=self._secret, method="POST", path=path, body=body, now=now
        )
        headers |= {"Content-Type": "application/json", "Content-Encoding": "gzip"}
        return self._client.post(url, content=body, headers=headers), len(body)

    def fetch_config(self, *, now: datetime | None = None) -> dict[str, Any]:
        url, path = self._url_and_path(CONFIG_PATH)
        headers = signed_headers(
            key_id=self.key_id,
            secret=self._secret,
            method="GET",
            path=path,
            body=b"",
            now=now or utcnow(),
        )
        response = self._client.get(url, headers=headers)
        response.raise_for_status()
        answer = response.json()
        if not isinstance(answer, dict):
            raise ValueError("portal configuration is not an object")
        return answer


def _retry_after(response: httpx.Response) -> float:
    try:
        return max(0.0, float(response.headers.get("Retry-After", "0")))
    except ValueError:
        return 0.0


def flush(
    outbox: Outbox,
    portal: Portal,
    *,
    backoff: Backoff = Backoff(),
    max_snapshots: int = 200,
    now: datetime | None = None,
) -> FlushReport:
    """Seal loose snapshots into batches and send every batch that is due, oldest first."""
    outbox.seal(max_snapshots=max_snapshots, now=now)
    sent = acked = retried = quarantined = upload_bytes = 0
    for batch in outbox.due_batches(now=now):
        moment = now or utcnow()
        if not batch.snapshots:  # emptied by the size bound
            outbox.mark_acked(batch.batch_id, {"dropped": True})
            continue
        try:
            response, size = portal.post_batch(batch, now=moment, health=outbox.health())
        except httpx.HTTPError as error:
            delay = backoff.delay(batch.attempts + 1)
            outbox.mark_retry(
                batch.batch_id, f"network: {error}", moment + timedelta(seconds=delay)
            )
            log.warning("upload of %s failed (%s); retry in %.0f s", batch.batch_id, error, delay)
            return FlushReport(sent, acked, retried + 1, quarantined, upload_bytes, str(error))
        sent += 1
        upload_bytes += size
        status = response.status_code
        if 200 <= status < 300:
            answer = response.json() if response.content else {}
            for rejected in answer.get("rejected", []) if isinstance(answer, dict) else []:
                log.warning(
                    "portal rejected snapshot %s of %s: %s",
                    rejected.get("index"),
                    batch.batch_id,
                    rejected.get("errors"),
                )
            outbox.mark_acked(batch.batch_id, answer if isinstance(answer, dict) else {})
            acked += 1
        elif status >= 500 or status in RETRY_STATUSES or status in CREDENTIAL_STATUSES:
            delay = max(backoff.delay(batch.attempts + 1), _retry_after(response))
            outbox.mark_retry(
                batch.batch_id,
                f"HTTP {status}: {response.text[:300]}",
                moment + timedelta(seconds=delay),
            )
            retried += 1
            if status in CREDENTIAL_STATUSES:
                outbox.warn(
                    f"portal refused the credential (HTTP {status}): check key id, "
                    "secret and clock; uploads wait"
                )
            log.warning("upload of %s got HTTP %s; retry in %.0f s", batch.batch_id, status, delay)
            # The portal is struggling or refusing us: leave the other batches for later.
            return FlushReport(sent, acked, retried, quarantined, upload_bytes, f"HTTP {status}")
        else:
            outbox.quarantine(batch.batch_id, f"HTTP {status}: {response.text[:500]}")
            quarantined += 1
    return FlushReport(sent, acked, retried, quarantined, upload_bytes)
