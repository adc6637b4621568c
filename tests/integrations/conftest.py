"""Webhook fixtures: a real HTTP receiver on loopback (the network edge is not mocked), which
records what it gets and answers as told, and an endpoint of `tenant` pointing at it."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from integrations import services
from integrations.models import SUBSCRIBABLE, WebhookEndpoint
from tests.conftest import Tenant


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    url: str
    received: list[Received] = field(default_factory=list)
    # (status, body, seconds to wait before answering), one per request; then 200 "ok".
    answers: list[tuple[int, bytes, float]] = field(default_factory=list)

    def answer(self, status: int, body: bytes = b"", delay: float = 0.0) -> None:
        self.answers.append((status, body, delay))


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    holder: dict[str, Receiver] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            me = holder["receiver"]
            me.received.append(Received(self.path, dict(self.headers.items()), body))
            status, text, delay = me.answers.pop(0) if me.answers else (200, b"ok", 0.0)
            time.sleep(delay)
            try:
                self.send_response(status)
                self.send_header("Content-Length", str(len(text)))
                self.end_headers()
                self.wfile.write(text)
            except OSError:
                pass  # the sender gave up waiting (the timeout tests)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    holder["receiver"] = Receiver(url=f"http://127.0.0.1:{server.server_port}/hooks")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield holder["receiver"]
    server.shutdown()
    server.server_close()


@pytest.fixture
def private_urls_allowed(settings: Any) -> None:
    """The receiver listens on loopback, which production refuses (SSRF): allowed explicitly."""
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True


@dataclass
class Hooked:
    endpoint: WebhookEndpoint
    secret: str


@pytest.fixture
def hooked(tenant: Tenant, receiver: Receiver, private_urls_allowed: None) -> Hooked:
    endpoint, secret = services.webhook_endpoint_create(
        ctx=tenant.ctx(), url=receiver.url, events=list(SUBSCRIBABLE), description="ERP"
    )
    return Hooked(endpoint=endpoint, secret=secret)
