"""Fixtures for the collector: the recordings, one SNMP simulator for the session, a stub portal.

snmpsim serves every recording in shared/printers/snmprec on loopback only (127.0.0.1 and
127.0.1.1-4, UDP 1161). Without it the live tests fail when INKMETER_REQUIRE_SERVICES=1 and
skip otherwise.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
COLLECTOR_SRC = REPO / "collector" / "src"
if str(COLLECTOR_SRC) not in sys.path:
    # Lets the tests run from a clone where the collector is not pip-installed.
    sys.path.insert(0, str(COLLECTOR_SRC))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from portal_stub import StubPortal  # noqa: E402

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


@pytest.fixture(scope="session")
def expected() -> dict[str, dict[str, object]]:
    data = expected_printers()
    if not data:
        require_service(f"recordings not found under {PRINTERS} (set INKMETER_SHARED)")
    return data


@pytest.fixture(scope="session")
def telemetry_schema() -> dict[str, object]:
    path = SHARED / "protocol" / "telemetry-v1.schema.json"
    if not path.exists():
        require_service(f"protocol schema not found at {path}")
    schema: dict[str, object] = json.loads(path.read_text(encoding="utf-8"))
    return schema


def _world_traversable(path: Path) -> bool:
    return all(p.stat().st_mode & stat.S_IXOTH for p in [path, *path.parents] if p.exists())


def _snmpsim_venv() -> Path | None:
    env = dict(os.environ)
    if os.geteuid() == 0 and not _world_traversable(REPO):
        # snmpsim drops to `nobody`, who must be able to read its interpreter and libraries.
        env.setdefault(
            "INKMETER_SNMPSIM_VENV", str(Path(tempfile.gettempdir()) / "inkmeter-venv-snmpsim")
        )
    script = REPO / "collector" / "scripts" / "snmpsim-venv.sh"
    bash = shutil.which("bash") or "/bin/bash"
    try:
        done = subprocess.run(  # noqa: S603
            [bash, str(script)],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=True,
        )
    except (subprocess.SubprocessError, OSError):
        return None
    venv = Path(done.stdout.strip().splitlines()[-1])
    return venv if (venv / "bin" / "snmpsim-command-responder").exists() else None


def _wait_listening(log: Path, process: subprocess.Popen[bytes], count: int) -> bool:
    deadline = time.monotonic() + 180  # first start indexes 17,000 objects
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        text = log.read_text(errors="replace") if log.exists() else ""
        if text.count("Listening at UDP/IPv4 endpoint") >= count:
            return True
        time.sleep(0.2)
    return False


@pytest.fixture(scope="session")
def snmpsim() -> Iterator[dict[str, object]]:
    """One snmpsim-command-responder for the whole session; stopped by its own PID."""
    if not (PRINTERS / "snmprec").is_dir():
        require_service(f"recordings not found under {PRINTERS}")
    venv = _snmpsim_venv()
    if venv is None:
        require_service("snmpsim is not available (collector/scripts/snmpsim-venv.sh failed)")
        return
    workdir = Path(tempfile.mkdtemp(prefix="inkmeter-snmpsim-"))
    data = workdir / "data"
    shutil.copytree(PRINTERS / "snmprec", data)  # readable by `nobody` wherever the clone is
    cache = workdir / "cache"
    cache.mkdir()
    log = workdir / "snmpsim.log"
    endpoints = [MAIN_ADDRESS, *SWEEP_ADDRESSES]
    command = [
        str(venv / "bin" / "snmpsim-command-responder"),
        f"--data-dir={data}",
        f"--cache-dir={cache}",
        *(f"--agent-udpv4-endpoint={address}:{SNMP_PORT}" for address in endpoints),
    ]
    if os.geteuid() == 0:
        shutil.chown(workdir, "nobody", "nogroup")
        for path in [cache, data, *data.iterdir()]:
            shutil.chown(path, "nobody", "nogroup")
        workdir.chmod(0o755)
        command += ["--process-user=nobody", "--process-group=nogroup"]
    with log.open("wb") as sink:
        process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT)  # noqa: S603
    try:
        if not _wait_listening(log, process, len(endpoints)):
            require_service(f"snmpsim did not start: {log.read_text(errors='replace')[-2000:]}")
        yield {
            "port": SNMP_PORT,
            "address": MAIN_ADDRESS,
            "sweep": SWEEP_ADDRESSES,
            "pid": process.pid,
        }
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def portal(telemetry_schema: dict[str, object]) -> Iterator[StubPortal]:
    stub = StubPortal(schema=telemetry_schema)
    stub.start()
    try:
        yield stub
    finally:
        stub.stop()
