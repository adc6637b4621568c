"""A task for the fault tests alone (the stack's worker loads it with `--include`): it runs for
as long as it is told, so that the broker can be taken away while a task is in flight, its
message delivered and not yet acknowledged (acks_late, as every product task)."""

from __future__ import annotations

import time
from pathlib import Path

from celery import shared_task

NAME = "tests.faults.held_task.hold"


@shared_task(name=NAME, acks_late=True)
def hold(marker: str, seconds: float) -> str:
    """Write `marker` when started, then keep the worker's child busy for `seconds`."""
    Path(marker).write_text("started")
    time.sleep(seconds)
    return marker
