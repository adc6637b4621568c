"""Start and stop snmpsim-command-responder on loopback endpoints (tests and benchmark)."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Simulator:
    process: subprocess.Popen[bytes]
    workdir: Path
    log: Path

    def stop(self) -> None:
        """Stops the simulator itself, by its own PID (never by name)."""
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        shutil.rmtree(self.workdir, ignore_errors=True)


def _world_traversable(path: Path) -> bool:
    return all(p.stat().st_mode & stat.S_IXOTH for p in [path, *path.parents] if p.exists())


def venv() -> Path | None:
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
            [bash, str(script)], env=env, capture_output=True, text=True, timeout=600, check=True
        )
    except (subprocess.SubprocessError, OSError):
        return None
    path = Path(done.stdout.strip().splitlines()[-1])
    return path if (path / "bin" / "snmpsim-command-responder").exists() else None


def start(recordings: Path, endpoints: list[str], *, timeout_s: float = 180) -> Simulator:
    """Serve every recording on each `address:port` or `[::1]:port` (loopback only).
    Raises RuntimeError."""
    for endpoint in endpoints:
        if not endpoint.startswith(("127.", "[::1]:")):
            raise ValueError(f"{endpoint}: the simulator only listens on loopback here")
    path = venv()
    if path is None:
        raise RuntimeError("snmpsim is not available (collector/scripts/snmpsim-venv.sh failed)")
    workdir = Path(tempfile.mkdtemp(prefix="inkmeter-snmpsim-"))
    data = workdir / "data"
    shutil.copytree(recordings, data)  # readable by `nobody` wherever the clone is
    cache = workdir / "cache"
    cache.mkdir()
    log = workdir / "snmpsim.log"
    command = [
        str(path / "bin" / "snmpsim-command-responder"),
        f"--data-dir={data}",
        f"--cache-dir={cache}",
        *(
            f"--agent-udpv{6 if endpoint.startswith('[') else 4}-endpoint={endpoint}"
            for endpoint in endpoints
        ),
    ]
    if os.geteuid() == 0:
        for item in [workdir, cache, data, *data.iterdir()]:
            shutil.chown(item, "nobody", "nogroup")
        workdir.chmod(0o755)
        command += ["--process-user=nobody", "--process-group=nogroup"]
    with log.open("wb") as sink:
        process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT)  # noqa: S603
    simulator = Simulator(process, workdir, log)
    deadline = time.monotonic() + timeout_s  # the first start indexes 17,000 objects
    while time.monotonic() < deadline:
        text = log.read_text(errors="replace")
        if text.count("Listening at UDP/IPv") >= len(endpoints):
            return simulator
        if process.poll() is not None:
            break
        time.sleep(0.2)
    tail = log.read_text(errors="replace")[-2000:]
    simulator.stop()
    raise RuntimeError(f"snmpsim did not start: {tail}")
