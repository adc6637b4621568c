"""What the collector's tests share: where the recordings are, and the fail-or-skip rule."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
COLLECTOR_SRC = REPO / "collector" / "src"
SHARED = Path(os.environ.get("INKMETER_SHARED") or Path(__file__).resolve().parents[3] / "shared")
PRINTERS = SHARED / "printers"
SNMP_PORT = 1161
MAIN_ADDRESS = "127.0.0.1"
SWEEP_ADDRESSES = ("127.0.1.1", "127.0.1.2", "127.0.1.3", "127.0.1.4")


def require_service(reason: str) -> None:
    """Fail where services are promised (CI), skip elsewhere."""
    if os.environ.get("INKMETER_REQUIRE_SERVICES") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


def expected_printers() -> dict[str, dict[str, object]]:
    path = PRINTERS / "expected.json"
    if not path.exists():
        return {}
    data: dict[str, dict[str, object]] = json.loads(path.read_text(encoding="utf-8"))
    return data
