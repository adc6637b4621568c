"""A stand-in for the portal's collector API on 127.0.0.1, written from protocol/telemetry-v1.md
alone (it does not import the collector's signing code): it checks the key, timestamp and HMAC
signature of every request, validates each body against the JSON Schema and keeps what it
accepted, once per batch_id and once per snapshot_id, as the portal promises."""

from __future__ import annotations

import gzip
import hashlib
import hmac
import json
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jsonschema

KEY_ID = "col_test_1"
SECRET = "s3cret-shown-once"


class StubPortal:
    def __init__(self, *, schema: dict[str, Any]) -> None:
        self.validator = jsonschema.Draft202012Validator(
            schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
        )
        self.lock = threading.Lock()
        self.statuses: list[int] = []  # answers to give before the default 202, in order
        self.delay_s = 0.0  # pause after storing a batch, before answering
        self.config_answer: dict[str, Any] | None = {
            "config_version": 3,
            "ranges": ["127.0.1.0/29"],
            "communities": ["sharp"],
            "poll_interval_minutes": 30,
            "upload_interval_minutes": 10,
        }
        self.posts: list[dict[str, Any]] = []
        self.gets: list[dict[str, Any]] = []
        self.stored: dict[str, dict[str, Any]] = {}  # snapshot_id -> snapshot
        self.accepted_batches: Counter[str] = Counter()  # batch_id -> times stored (must be 1)
        self.acks: Counter[str] = Counter()  # batch_id -> 202 answers sent
        self.stored_event = threading.Event()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # --- protocol checks -------------------------------------------------------------------

    @staticmethod
    def expected_signature(method: str, path: str, timestamp: str, body: bytes) -> str:
        message = f"v1\n{method}\n{path}\n{timestamp}\n{hashlib.sha256(body).hexdigest()}"
        return "v1=" + hmac.new(SECRET.encode(), message.encode(), hashlib.sha256).hexdigest()

    def verify(self, method: str, path: str, headers: Any, body: bytes) -> str | None:
        if headers.get("X-Inkmeter-Key") != KEY_ID:
            return "unknown key"
        timestamp = headers.get("X-Inkmeter-Timestamp", "")
        try:
            sent = datetime.strptime(timestamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        except ValueError:
            return "bad timestamp"
        if abs((datetime.now(UTC) - sent).total_seconds()) > 300:
            return "stale timestamp"
        signature = headers.get("X-Inkmeter-Signature", "")
        if not hmac.compare_digest(
            signature, self.expected_signature(method, path, timestamp, body)
        ):
            return "bad signature"
        return None

    # --- handler -----------------------------------------------------------------------------

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return

            def _answer(self, status: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                problem = stub.verify("GET", path, self.headers, b"")
                stub.gets.append({"path": path, "problem": problem})
                if problem:
                    self._answer(401, {"error": {"code": "signature", "message": problem}})
                elif path == "/api/v1/collector/config" and stub.config_answer is not None:
                    self._answer(200, stub.config_answer)
                else:
                    self._answer(404, {"error": {"code": "not_found"}})

            def do_POST(self) -> None:
                path = self.path.split("?", 1)[0]
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                record: dict[str, Any] = {"path": path, "bytes": len(body)}
                stub.posts.append(record)
                record["problem"] = stub.verify("POST", path, self.headers, body)
                if record["problem"]:
                    self._answer(401, {"error": {"code": "signature"}})
                    return
                raw = (
                    gzip.decompress(body)
                    if self.headers.get("Content-Encoding") == "gzip"
                    else body
                )
                batch = json.loads(raw)
                record["batch_id"] = batch.get("batch_id")
                record["source"] = batch.get("source")
                record["snapshot_ids"] = [s.get("snapshot_id") for s in batch.get("snapshots", [])]
                record["schema_errors"] = [e.message for e in stub.validator.iter_errors(batch)]
                with stub.lock:
                    status = stub.statuses.pop(0) if stub.statuses else 202
                record["status"] = status
                if status != 202:
                    self._answer(status, {"error": {"code": f"http_{status}"}})
                    return
                if record["schema_errors"]:
                    self._answer(400, {"error": {"code": "schema"}})
                    return
                accepted = duplicates = 0
                with stub.lock:
                    if batch["batch_id"] not in stub.accepted_batches:
                        stub.accepted_batches[batch["batch_id"]] += 1
                        for snapshot in batch["snapshots"]:
                            if snapshot["snapshot_id"] in stub.stored:
                                duplicates += 1
                            else:
                                stub.stored[snapshot["snapshot_id"]] = snapshot
                                accepted += 1
                stub.stored_event.set()
                if stub.delay_s:
                    time.sleep(stub.delay_s)
                with stub.lock:
                    stub.acks[batch["batch_id"]] += 1
                self._answer(
                    202,
                    {
                        "batch_id": batch["batch_id"],
                        "accepted": accepted,
                        "duplicates": duplicates,
                        "rejected": [],
                    },
                )

        return Handler
