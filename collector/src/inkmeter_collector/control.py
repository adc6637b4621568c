"""The running service's pid file, and `poll-now`, which asks that service to poll at once.

`run` keeps its process id in `<outbox>.pid` (beside the outbox: one service per outbox) and
holds an exclusive lock on that file for as long as it runs. The lock, not the file, says that a
service runs: the kernel drops it when the process ends however it ends, so a file left by a
killed service (whose pid may be another program's by now) is never signalled. A second `run` on
the same outbox finds the lock taken and refuses to start.

`poll-now` sends SIGUSR1 to the pid in a locked file; the service polls every printer at once on
SIGUSR1 and uploads at once only what the urgent rule asks for (urgent.py). POSIX only: Windows
has no SIGUSR1 and no flock, so there `run` keeps no pid file and `poll-now` says so.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from pathlib import Path

if sys.platform != "win32":
    import fcntl

SUPPORTED = sys.platform != "win32"
POLL_SIGNAL_NAME = "SIGUSR1"
# A `poll-now` holds a shared lock for an instant while it checks; a starting service waits
# that long rather than mistaking it for another service.
LOCK_RETRIES = 20
LOCK_RETRY_S = 0.05


class AlreadyRunning(RuntimeError):
    def __init__(self, pid: int | None, path: Path) -> None:
        self.pid, self.path = pid, path
        who = f"pid {pid}" if pid is not None else "pid unknown"
        super().__init__(f"another inkmeter-collector already runs with this outbox ({who}; {path})")


class NotRunning(RuntimeError):
    pass


def pid_path(outbox_path: Path) -> Path:
    """`outbox.sqlite3` -> `outbox.pid`, in the same directory."""
    return outbox_path.with_suffix(".pid")


def _read_pid(fd: int) -> int | None:
    os.lseek(fd, 0, os.SEEK_SET)
    text = os.read(fd, 64).decode("ascii", "replace").strip()
    return int(text) if text.isdigit() else None


class PidFile:
    """Held by the running service: `acquire()` at start, `release()` at exit."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self) -> None:
        """Lock the file and write our pid; raises AlreadyRunning while another service holds it.
        A no-op where the platform has no flock (Windows)."""
        if not SUPPORTED:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        for attempt in range(LOCK_RETRIES):
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if attempt == LOCK_RETRIES - 1:
                    pid = _read_pid(fd)
                    os.close(fd)
                    raise AlreadyRunning(pid, self.path) from None
                time.sleep(LOCK_RETRY_S)
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, f"{os.getpid()}\n".encode())
        os.fsync(fd)
        self._fd = fd

    def release(self) -> None:
        """Empty the file and drop the lock. The file stays: removing it could race a new
        service that has just opened it."""
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            os.ftruncate(self._fd, 0)
        os.close(self._fd)  # closing drops the lock
        self._fd = None


def request_poll(path: Path) -> int:
    """Ask the service holding `path` to poll now (SIGUSR1); returns its pid.
    Raises NotRunning when no service holds the file's lock."""
    if not SUPPORTED:
        raise NotRunning("poll-now needs SIGUSR1, which Windows does not have")
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        raise NotRunning(f"no collector is running with this outbox ({path} not found)") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = _read_pid(fd)  # locked: the service is alive, and the pid is its own
        else:
            fcntl.flock(fd, fcntl.LOCK_UN)
            raise NotRunning(f"no collector is running with this outbox ({path} is not locked)")
    finally:
        os.close(fd)
    if pid is None:  # the service has locked the file but not yet written its pid
        raise NotRunning(f"the collector is starting ({path} has no pid yet); try again")
    os.kill(pid, signal.SIGUSR1)
    return pid
