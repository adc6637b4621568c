"""What the acceptance tests share: bounded waits that say what they wait for, the recordings,
and the messages in the SMTP sink."""

from __future__ import annotations

import email.message
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from benchmarks.stack import Stack
from tests.collector.support import PRINTERS, require_service

REPO = Path(__file__).resolve().parents[2]
T = TypeVar("T")


def recordings() -> Path:
    """The printer recordings: in the repository once they live there, else beside it."""
    for candidate in (REPO / "tests" / "data" / "printers" / "snmprec", PRINTERS / "snmprec"):
        if candidate.is_dir():
            return candidate
    require_service(f"printer recordings not found (tests/data/printers, {PRINTERS})")
    raise AssertionError("unreachable")


def wait_for(what: str, probe: Callable[[], T | None], *, timeout: float, every: float = 1.0) -> T:
    """Poll `probe` until it returns something truthy; say what is awaited and how long it took,
    and fail with `what` past the deadline."""
    print(f"waiting up to {timeout:.0f} s for {what}", flush=True)
    started = time.monotonic()
    deadline = started + timeout
    while True:
        value = probe()
        if value:
            print(f"  ... {what}: after {time.monotonic() - started:.1f} s", flush=True)
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)


def mail_to(stack: Stack, address: str) -> list[email.message.EmailMessage]:
    """The messages the sink holds for `address` (To or Cc), oldest first."""
    return [
        m
        for m in stack.smtp.messages()
        if address in " ".join(str(m.get(h, "")) for h in ("To", "Cc"))
    ]


def body(message: email.message.EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    return part.get_content() if part is not None else ""
