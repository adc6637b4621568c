"""A whole Inkmeter deployment on loopback that a test may restart, stop and kill: its own
PostgreSQL cluster, its own Redis, gunicorn, a Celery worker (and optionally beat) and an SMTP
sink, all in one working directory, none of them the shared servers at 5432/6379.

    with Stack(tmp_path / "stack") as stack:
        stack.postgres.restart()
        stack.redis.stop(); stack.redis.start()
        stack.worker.kill()
        stack.web.base_url, stack.smtp.messages(), stack.rss()

Entering the block starts everything and migrates the database; leaving it stops everything
and removes the working directory, also when the block raised. Every wait has a timeout. The
fault tests (tests/faults/) and the load test use it; benchmarks/ingest.py uses its gunicorn.
"""

from __future__ import annotations

import contextlib
import email
import email.message
import email.policy
import http.client
import os
import pwd
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import IO

ROOT = Path(__file__).resolve().parent.parent
PG_BIN = Path("/usr/lib/postgresql/15/bin")
VENV_BIN = ROOT / ".venv/bin"
DB_NAME = "inkmeter"
START_TIMEOUT_S = 60
STOP_TIMEOUT_S = 30
LOG_TAIL_BYTES = 4000


class StackError(RuntimeError):
    """A process of the stack did not start or stop in time; the message has its log's tail."""


# --- Small helpers --------------------------------------------------------------------------


def free_port() -> int:
    """A port nobody listens on now (the kernel's pick; a race is possible but rare)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(condition: Callable[[], bool], *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise StackError(f"{what}: not within {timeout:.0f} s")


def port_open(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


def children(pid: int) -> list[int]:
    """Direct children of a process (Linux /proc)."""
    found: list[int] = []
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError):
                found += [int(p) for p in (task / "children").read_text().split()]
    return found


def alive(pid: int) -> bool:
    """Running, not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def rss_bytes(pid: int) -> int:
    try:
        pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return 0
    return pages * os.sysconf("SC_PAGE_SIZE")


def log_tail(path: Path) -> str:
    try:
        with path.open("rb") as f:
            f.seek(max(0, path.stat().st_size - LOG_TAIL_BYTES))
            return f.read().decode(errors="replace")
    except OSError:
        return ""


class Process:
    """A child in its own session (so that its whole group can be signalled), logging to a file
    of the working directory, or to our own stdout when `log` is None."""

    def __init__(
        self, name: str, command: Sequence[str], *, env: dict[str, str], log: Path | None
    ) -> None:
        self.name, self.command, self.env, self.log = name, list(command), env, log
        self.popen: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        out: IO[bytes] | None = None
        if self.log is not None:
            self.log.parent.mkdir(parents=True, exist_ok=True)
            out = self.log.open("ab")
        try:
            self.popen = subprocess.Popen(
                self.command,
                cwd=ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT if out else None,
                start_new_session=True,
            )
        finally:
            if out is not None:
                out.close()

    @property
    def pid(self) -> int:
        if self.popen is None:
            raise StackError(f"{self.name} is not running")
        return self.popen.pid

    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def check(self) -> None:
        """Raise with the log's tail if the process has exited."""
        if self.popen is not None and self.popen.poll() is not None:
            raise StackError(f"{self.name} exited with {self.popen.returncode}:\n{self.tail()}")

    def tail(self) -> str:
        return log_tail(self.log) if self.log else ""

    def signal_group(self, sig: int) -> None:
        if self.popen is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, sig)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = STOP_TIMEOUT_S) -> None:
        """Signal the process (not its group: each server stops its own children) and wait;
        past the timeout, SIGKILL the whole group."""
        if self.popen is None:
            return
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.popen.send_signal(sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(timeout=timeout)
        self.signal_group(signal.SIGKILL)  # leftovers (a child the main did not reap)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=5)
        self.popen = None


# --- TLS ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Certificate:
    """A self-signed certificate for 127.0.0.1 and localhost: gunicorn serves HTTPS with it and
    clients trust exactly it, so production settings (secure cookies, the HTTPS redirect, HSTS)
    stay on without a proxy that pretends."""

    cert: Path
    key: Path

    @classmethod
    def create(cls, directory: Path) -> Certificate:
        import ipaddress

        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        directory.mkdir(parents=True, exist_ok=True)
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
        moment = datetime.now(UTC)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(moment - timedelta(minutes=5))
            .not_valid_after(moment + timedelta(days=2))
            .add_extension(
                x509.SubjectAlternativeName(
                    [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
                ),
                critical=False,
            )
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256())
        )
        paths = cls(cert=directory / "cert.pem", key=directory / "key.pem")
        paths.cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        paths.key.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        paths.key.chmod(0o600)
        return paths

    def context(self) -> ssl.SSLContext:
        """A client context that trusts this certificate only."""
        return ssl.create_default_context(cafile=str(self.cert))


# --- PostgreSQL -----------------------------------------------------------------------------


class Postgres:
    """An own cluster: initdb'd as the `postgres` OS user (the server refuses to run as root),
    listening on 127.0.0.1 only, its unix socket in the working directory, fsync on."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.data = directory / "data"
        self.sockets = directory / "sockets"
        # Beside the data, not in workdir/logs: the server writes it as `postgres`.
        self.log = directory / "postgres.log"
        self.port = free_port()
        self.admin_url = f"postgres://postgres@127.0.0.1:{self.port}/postgres"
        self.url = f"postgres://postgres@127.0.0.1:{self.port}/{DB_NAME}"

    def _as_postgres(self, *command: str, timeout: float) -> None:
        result = subprocess.run(
            ["runuser", "-u", "postgres", "--", *command],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if result.returncode != 0:
            raise StackError(f"{command[0]} failed:\n{result.stdout}\n{result.stderr}")

    def init(self) -> None:
        postgres = pwd.getpwnam("postgres")
        for path in (self.directory, self.data, self.sockets):
            path.mkdir(mode=0o700, exist_ok=True)
            os.chown(path, postgres.pw_uid, postgres.pw_gid)
        self.log.touch()
        os.chown(self.log, postgres.pw_uid, postgres.pw_gid)
        self._as_postgres(
            str(PG_BIN / "initdb"),
            "--pgdata",
            str(self.data),
            "--username=postgres",
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C.UTF-8",
            "--no-instructions",
            "--no-sync",  # of initdb's own files only; the server runs with fsync on
            timeout=120,
        )
        options = {
            "listen_addresses": "127.0.0.1",
            "port": str(self.port),
            "unix_socket_directories": str(self.sockets),
            "fsync": "on",
            "max_connections": "200",
            "logging_collector": "off",
        }
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write("\n# benchmarks/stack.py\n")
            conf.writelines(f"{key} = '{value}'\n" for key, value in options.items())

    def _pg_ctl(self, action: str, *extra: str) -> None:
        self._as_postgres(
            str(PG_BIN / "pg_ctl"),
            action,
            "--pgdata",
            str(self.data),
            "--log",
            str(self.log),
            "--wait",
            f"--timeout={START_TIMEOUT_S}",
            *extra,
            timeout=START_TIMEOUT_S + 10,
        )

    def start(self) -> None:
        try:
            self._pg_ctl("start")
        except StackError as error:
            raise StackError(f"{error}\n{log_tail(self.log)}") from None

    def stop(self, mode: str = "fast") -> None:
        """Stop the cluster: `fast` disconnects clients and shuts down cleanly; `immediate` is
        a crash (recovery from the WAL at the next start)."""
        if self.postmaster_pid() is not None:
            self._pg_ctl("stop", f"--mode={mode}")

    def restart(self, mode: str = "fast", *, down_s: float = 0) -> None:
        """Stop, stay down `down_s` seconds (clients meet a refused connection, not only a cut
        one), start."""
        self.stop(mode)
        time.sleep(down_s)
        self.start()

    def postmaster_pid(self) -> int | None:
        try:
            pid = int((self.data / "postmaster.pid").read_text().split()[0])
        except (OSError, IndexError, ValueError):
            return None
        return pid if alive(pid) else None

    def pids(self) -> list[int]:
        """The postmaster and every backend and auxiliary process."""
        pid = self.postmaster_pid()
        return [] if pid is None else [pid, *children(pid)]

    def database_create(self) -> None:
        import psycopg

        with psycopg.connect(self.admin_url, autocommit=True, connect_timeout=10) as conn:
            conn.execute(f"CREATE DATABASE {DB_NAME}")


# --- Redis ----------------------------------------------------------------------------------


class Redis:
    """An own redis-server without persistence: stopping it loses every queued message, as a
    crashed broker would."""

    def __init__(self, directory: Path, *, env: dict[str, str], log_dir: Path) -> None:
        self.directory = directory
        self.port = free_port()
        # Our own server, so db 0 is nobody else's; the shared server's rule does not apply.
        self.url = f"redis://127.0.0.1:{self.port}/0"
        directory.mkdir(parents=True, exist_ok=True)
        command = [
            "redis-server",
            "--bind",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(directory),
        ]
        self.process = Process("redis", command, env=env, log=log_dir / "redis.log")

    def start(self) -> None:
        self.process.start()
        wait_until(self._answers, timeout=START_TIMEOUT_S, what="redis-server start")

    def _answers(self) -> bool:
        self.process.check()
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        self.process.stop()

    def pids(self) -> list[int]:
        return [self.process.pid] if self.process.running() else []


# --- SMTP sink ------------------------------------------------------------------------------


class Smtp:
    """benchmarks/smtp_sink.py: stores each message after the final "." of its DATA."""

    def __init__(self, directory: Path, *, env: dict[str, str], log_dir: Path) -> None:
        from benchmarks import smtp_sink

        self._sink = smtp_sink
        self.directory = directory
        self.port = free_port()
        self.url = f"smtp://127.0.0.1:{self.port}"
        command = [
            sys.executable,
            str(ROOT / "benchmarks/smtp_sink.py"),
            "--port",
            str(self.port),
            "--dir",
            str(directory),
        ]
        self.process = Process("smtp", command, env=env, log=log_dir / "smtp.log")

    def start(self) -> None:
        self.process.start()

        def listening() -> bool:
            self.process.check()
            return port_open(self.port)

        wait_until(listening, timeout=START_TIMEOUT_S, what="SMTP sink start")

    def stop(self) -> None:
        self.process.stop()

    def pids(self) -> list[int]:
        return [self.process.pid] if self.process.running() else []

    def paths(self) -> list[Path]:
        if not self.directory.is_dir():
            return []
        return sorted(self.directory.glob(f"*{self._sink.MESSAGE_SUFFIX}"))

    def messages(self) -> list[email.message.EmailMessage]:
        """Every stored message, in the order they were accepted."""
        return [
            email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            for path in self.paths()
        ]

    def stall(self, on: bool = True) -> None:
        """While on, every session waits before answering DATA (the sender has sent the
        envelope, the message is not stored); off lets the waiting sessions go on."""
        flag = self.directory / self._sink.STALL_FLAG
        if on:
            flag.touch()
        else:
            flag.unlink(missing_ok=True)

    def waiting(self) -> int:
        """Sessions waiting at DATA now."""
        return len(list(self.directory.glob(f"{self._sink.WAITING_PREFIX}*")))


# --- gunicorn -------------------------------------------------------------------------------


class Web:
    """gunicorn serving portal.wsgi on 127.0.0.1 (also used alone by benchmarks/ingest.py)."""

    def __init__(
        self,
        *,
        env: dict[str, str],
        workers: int = 2,
        threads: int = 1,
        port: int | None = None,
        log: Path | None = None,
        log_level: str = "warning",
        tls: Certificate | None = None,
    ) -> None:
        self.port = port or free_port()
        self.tls = tls
        self.base_url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"
        command = [
            str(VENV_BIN / "gunicorn"),
            "portal.wsgi",
            "--bind",
            f"127.0.0.1:{self.port}",
            "--workers",
            str(workers),
            *(["--threads", str(threads)] if threads > 1 else []),
            "--log-level",
            log_level,
            # A worker stuck on a dead database is replaced instead of holding a sender forever.
            "--timeout",
            "60",
            *(["--certfile", str(tls.cert), "--keyfile", str(tls.key)] if tls else []),
        ]
        self.process = Process("gunicorn", command, env=env, log=log)

    def start(self) -> None:
        self.launch()
        self.wait_ready()

    def launch(self) -> None:
        self.process.start()

    def wait_ready(self) -> None:
        wait_until(self._answers, timeout=START_TIMEOUT_S, what="gunicorn start")

    def _answers(self) -> bool:
        self.process.check()
        try:
            conn = (
                http.client.HTTPSConnection(
                    "127.0.0.1", self.port, timeout=5, context=self.tls.context()
                )
                if self.tls
                else http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
            )
            conn.request("GET", "/healthz")
            ok = conn.getresponse().status == 200
            conn.close()
        except OSError:
            return False
        return ok

    def stop(self) -> None:
        self.process.stop()

    def restart(self) -> None:
        """A full stop and start on the same port (a new arbiter and new workers)."""
        self.stop()
        self.start()

    def pids(self) -> list[int]:
        """The arbiter and its workers."""
        if not self.process.running():
            return []
        return [self.process.pid, *self.worker_pids()]

    def worker_pids(self) -> list[int]:
        return children(self.process.pid) if self.process.running() else []


# --- Celery ---------------------------------------------------------------------------------


class Worker:
    """`celery -A portal worker` with the prefork pool."""

    def __init__(
        self,
        *,
        env: dict[str, str],
        concurrency: int,
        queues: list[str] | None,
        log: Path,
        name: str = "stack",
        include: list[str] | None = None,
    ) -> None:
        command = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "portal",
            "worker",
            "--pool=prefork",
            f"--concurrency={concurrency}",
            "--without-gossip",
            "--without-mingle",
            "--loglevel=INFO",
            f"--hostname={name}@%h",
            *(["--queues", ",".join(queues)] if queues else []),
            # Modules of tasks beyond the product's (a test's own).
            *(["--include", ",".join(include)] if include else []),
        ]
        self.log = log
        self.process = Process("celery worker", command, env=env, log=log)
        self._log_offset = 0

    def start(self) -> None:
        """Start and wait until the worker consumes (its "ready" log line)."""
        self.launch()
        self.wait_ready()

    def launch(self) -> None:
        self._log_offset = self.log.stat().st_size if self.log.exists() else 0
        self.process.start()

    def wait_ready(self) -> None:
        def ready() -> bool:
            self.process.check()
            try:
                with self.log.open("rb") as f:
                    f.seek(self._log_offset)
                    return b"ready." in f.read()
            except OSError:
                return False

        wait_until(ready, timeout=START_TIMEOUT_S, what="celery worker start")

    def stop(self) -> None:
        """Warm shutdown: running tasks finish first."""
        self.process.stop(signal.SIGTERM, timeout=STOP_TIMEOUT_S)

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """SIGKILL the main process and its pool children at once (a machine or container
        dying); any other signal goes to the main process only, which handles it as Celery
        does. Returns when every process of the worker is gone."""
        if not self.process.running():
            return
        pids = self.pids()
        if sig == signal.SIGKILL:
            self.process.signal_group(sig)
        else:
            os.kill(self.process.pid, sig)
        # alive() counts the unreaped main process (a zombie) as gone.
        wait_until(
            lambda: not any(alive(pid) for pid in pids),
            timeout=STOP_TIMEOUT_S,
            what="celery worker exit",
        )
        self.process.stop(signal.SIGKILL, timeout=5)

    def pids(self) -> list[int]:
        """The main process and its pool children."""
        if not self.process.running():
            return []
        return [self.process.pid, *children(self.process.pid)]


class Beat:
    """`celery -A portal beat` with its schedule file in the working directory."""

    def __init__(self, *, env: dict[str, str], directory: Path, log: Path) -> None:
        command = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "portal",
            "beat",
            "--loglevel=INFO",
            f"--schedule={directory / 'celerybeat-schedule'}",
            f"--pidfile={directory / 'celerybeat.pid'}",
        ]
        self.process = Process("celery beat", command, env=env, log=log)

    def start(self) -> None:
        self.process.start()
        time.sleep(0.5)
        self.process.check()

    def stop(self) -> None:
        self.process.stop()

    def pids(self) -> list[int]:
        return [self.process.pid] if self.process.running() else []


# --- Printers and the collector -------------------------------------------------------------


class Snmpsim:
    """snmpsim-command-responder serving one recording per loopback endpoint (an SNMP engine of
    its own each), all under one community. Each recording is copied into the working
    directory, so a test may change a value there: snmpsim re-reads a file whose mtime moved.
    The directory is its own under the system's temporary folder, readable by `nobody` (whom
    snmpsim becomes when started as root): under pytest's basetemp it was not, whenever another
    pytest session on the machine reset /tmp/pytest-of-<user> to 0700.

        Snmpsim(venv=venv, community="acc", printers={"127.0.2.1": recording_path}, port=p)
    """

    def __init__(
        self,
        *,
        venv: Path,
        community: str,
        printers: Mapping[str, Path],
        port: int,
        env: dict[str, str],
        log_dir: Path,
    ) -> None:
        for address in printers:
            if not address.startswith("127."):
                raise ValueError(f"{address}: the simulator only listens on loopback here")
        directory = Path(tempfile.mkdtemp(prefix="inkmeter-snmpsim-"))
        directory.chmod(0o755)
        self.directory = directory
        self.community = community
        self.port = port
        self.addresses = list(printers)
        self.files: dict[str, Path] = {}
        cache = directory / "cache"
        cache.mkdir(parents=True, exist_ok=True)
        command = [str(venv / "bin" / "snmpsim-command-responder"), f"--cache-dir={cache}"]
        for number, (address, recording) in enumerate(printers.items()):
            data = directory / f"engine-{number}"
            data.mkdir(exist_ok=True)
            self.files[address] = data / f"{community}.snmprec"
            shutil.copyfile(recording, self.files[address])
            command += [
                "--v3-engine-id=auto",
                f"--data-dir={data}",
                f"--agent-udpv4-endpoint={address}:{port}",
            ]
        if os.geteuid() == 0:
            # snmpsim drops to `nobody`, who must read the data and write the index cache.
            for path in [directory, *directory.rglob("*")]:
                shutil.chown(path, "nobody", "nogroup")
            command += ["--process-user=nobody", "--process-group=nogroup"]
        self.log = log_dir / "snmpsim.log"
        self.process = Process("snmpsim", command, env=env, log=self.log)

    def start(self) -> None:
        self.process.start()

        def listening() -> bool:
            self.process.check()
            text = self.log.read_text(errors="replace") if self.log.exists() else ""
            return text.count("Listening at UDP/IPv4 endpoint") >= len(self.addresses)

        wait_until(listening, timeout=START_TIMEOUT_S * 3, what="snmpsim start")

    def stop(self) -> None:
        self.process.stop()
        shutil.rmtree(self.directory, ignore_errors=True)

    def set_value(self, address: str, oid: str, value: str) -> None:
        """Serve `value` for `oid` (an existing line of the recording) from now on."""
        path = self.files[address]
        lines = path.read_text(encoding="latin-1").splitlines()
        prefix = oid + "|"
        hits = [i for i, line in enumerate(lines) if line.startswith(prefix)]
        if len(hits) != 1:
            raise StackError(f"{oid} is not one line of {path.name}")
        tag = lines[hits[0]].split("|")[1]
        lines[hits[0]] = f"{oid}|{tag}|{value}"
        path.write_text("\n".join(lines) + "\n", encoding="latin-1")
        # snmpsim rebuilds its index when the file is newer than the index it built.
        later = time.time() + 2
        os.utime(path, (later, later))


class Collector:
    """The real `inkmeter-collector` CLI in a subprocess: `run` until stopped (SIGTERM stops it
    cleanly), with its TOML config and outbox in `directory`."""

    def __init__(self, directory: Path, *, config: str, env: dict[str, str], log: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.config = directory / "collector.toml"
        self.config.write_text(config, encoding="utf-8")
        self.outbox = directory / "outbox.sqlite3"
        self.log = log
        self.env = env
        self.process: Process | None = None

    def command(self, *args: str) -> list[str]:
        return [
            str(VENV_BIN / "inkmeter-collector"),
            "--config",
            str(self.config),
            "--outbox",
            str(self.outbox),
            *args,
        ]

    def start(self) -> None:
        self.process = Process("collector", self.command("run"), env=self.env, log=self.log)
        self.process.start()

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()

    def check(self) -> None:
        if self.process is not None:
            self.process.check()

    def poll_now(self) -> None:
        """`inkmeter-collector poll-now`: the running service polls every printer at once
        (SIGUSR1); it uploads at once only when the urgent rule fires."""
        result = self.cli("poll-now", timeout=30)
        if result.returncode != 0:
            raise StackError(f"poll-now exited with {result.returncode}: {result.stderr}")

    def cli(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.command(*args),
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


# --- The stack ------------------------------------------------------------------------------


def base_env() -> dict[str, str]:
    """Our environment without anything that names another deployment's services."""
    dropped = {
        "DATABASE_URL",
        "DATABASE_OWNER_URL",  # migrate would log in to the shared server as its owner
        "REDIS_URL",
        "EMAIL_URL",
        "SECRET_KEY_FILE",  # it would win over the stack's SECRET_KEY
        "INKMETER_REQUIRE_SERVICES",
    }
    return {k: v for k, v in os.environ.items() if k not in dropped and not k.startswith("PYTEST")}


class Stack:
    """The whole deployment; see the module's docstring."""

    def __init__(
        self,
        workdir: Path,
        *,
        web_workers: int = 2,
        web_threads: int = 1,
        celery_concurrency: int = 2,
        queues: list[str] | None = None,
        worker_include: list[str] | None = None,
        extra_env: dict[str, str] | None = None,
        beat: bool = False,
        keep_workdir: bool = False,
        tls: bool = False,
    ) -> None:
        self.workdir = Path(workdir).resolve()
        self.timings: dict[str, float] = {}
        self.keep_workdir = keep_workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.logs = self.workdir / "logs"
        self.logs.mkdir(exist_ok=True)
        self._pg_home = self._postgres_home()
        self.postgres = Postgres(self._pg_home)
        plain = base_env()
        self.redis = Redis(self.workdir / "redis", env=plain, log_dir=self.logs)
        self.smtp = Smtp(self.workdir / "mail", env=plain, log_dir=self.logs)
        # With TLS, gunicorn speaks HTTPS itself and the production defaults stay: the HTTPS
        # redirect, HSTS and secure cookies. Without, plain HTTP needs them off.
        self.certificate = Certificate.create(self.workdir / "tls") if tls else None
        web_port = free_port()
        scheme = "https" if tls else "http"
        plain_http = {} if tls else {"SECURE_SSL_REDIRECT": "False", "SECURE_HSTS_SECONDS": "0"}
        self.env: dict[str, str] = plain | {
            "DATABASE_URL": self.postgres.url,
            "REDIS_URL": self.redis.url,
            "EMAIL_URL": self.smtp.url,
            "DEBUG": "False",
            "SECRET_KEY": "stack-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz",
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "SITE_URL": f"{scheme}://127.0.0.1:{web_port}",
            **plain_http,
            "INKMETER_VAR_DIR": str(self.workdir / "var"),
            "DJANGO_SETTINGS_MODULE": "portal.settings",
            "LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1",
            **(extra_env or {}),
        }
        self.web = Web(
            env=self.env,
            workers=web_workers,
            threads=web_threads,
            port=web_port,
            log=self.logs / "gunicorn.log",
            tls=self.certificate,
        )
        self.worker = Worker(
            env=self.env,
            concurrency=celery_concurrency,
            queues=queues,
            log=self.logs / "celery-worker.log",
            include=worker_include,
        )
        self.beat: Beat | None = (
            Beat(env=self.env, directory=self.workdir, log=self.logs / "celery-beat.log")
            if beat
            else None
        )

    def _postgres_home(self) -> Path:
        """workdir/postgres, or, where the `postgres` user cannot reach workdir (pytest's
        tmp_path is under a 0700 directory of root), a directory in /tmp that workdir links to.
        """
        inside = self.workdir / "postgres"
        self._outside: Path | None = None
        reachable = subprocess.run(
            ["runuser", "-u", "postgres", "--", "test", "-x", str(self.workdir)],
            check=False,
            timeout=30,
        )
        if reachable.returncode == 0:
            return inside
        self._outside = Path(tempfile.mkdtemp(prefix="inkmeter-stack-pg-", dir="/tmp"))
        os.chmod(self._outside, 0o755)  # noqa: S103 - postgres must enter it
        inside.symlink_to(self._outside, target_is_directory=True)
        return self._outside / "cluster"

    # Lifecycle ---------------------------------------------------------------------------

    def __enter__(self) -> Stack:
        try:
            self.start()
        except BaseException:
            self.close(failed=True)
            raise
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close(failed=kind is not None)

    def start(self) -> None:
        """Start everything; `timings` keeps the seconds of each step (a slow start is
        mostly migrate on a busy machine)."""
        # gunicorn and the worker boot (import Django, fork) while migrate runs: neither
        # touches the database before a request or a task, and none comes before we return.
        steps: list[tuple[str, Callable[[], object]]] = [
            ("initdb", self.postgres.init),
            ("postgres", self.postgres.start),
            ("createdb", self.postgres.database_create),
            ("redis", self.redis.start),
            ("smtp", self.smtp.start),
            ("launch", self._launch),
            ("migrate", lambda: self.manage("migrate", "--noinput", "-v0")),
            ("gunicorn", self.web.wait_ready),
            ("celery worker", self.worker.wait_ready),
        ]
        if self.beat is not None:
            steps.append(("celery beat", self.beat.start))
        for name, step in steps:
            started = time.monotonic()
            step()
            self.timings[name] = time.monotonic() - started

    def _launch(self) -> None:
        self.web.launch()
        self.worker.launch()

    def close(self, *, failed: bool = False) -> None:
        """Stop everything (each step on its own, so that one failure stops no other), print
        the logs' tails when the block failed, and remove the working directory."""
        steps: list[Callable[[], None]] = [
            *([self.beat.stop] if self.beat else []),
            self.worker.stop,
            self.web.stop,
            self.smtp.stop,
            self.redis.stop,
            self._postgres_stop,
        ]
        for step in steps:
            try:
                step()
            except Exception as error:  # the next steps must still run
                print(f"stack: {error}", file=sys.stderr)
        if failed:
            for log in [*sorted(self.logs.glob("*.log")), self.postgres.log]:
                tail = log_tail(log)
                if tail:
                    print(f"--- {log.name} (tail) ---\n{tail}", file=sys.stderr)
        if not self.keep_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)
            if self._outside is not None:
                shutil.rmtree(self._outside, ignore_errors=True)

    def _postgres_stop(self) -> None:
        try:
            self.postgres.stop("fast")
        except (StackError, subprocess.TimeoutExpired):
            self.postgres.stop("immediate")

    # Use ---------------------------------------------------------------------------------

    def manage(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """`manage.py <args>` with the stack's environment; raises on a non-zero exit."""
        result = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if result.returncode != 0:
            raise StackError(
                f"manage.py {' '.join(args)} exited with {result.returncode}:\n"
                f"{result.stdout[-LOG_TAIL_BYTES:]}\n{result.stderr[-LOG_TAIL_BYTES:]}"
            )
        return result

    def rss(self) -> dict[str, int]:
        """Resident memory in bytes: the PostgreSQL cluster summed, every other process on its
        own (`gunicorn worker <pid>`, `celery child <pid>`)."""
        memory: dict[str, int] = {"postgres": sum(rss_bytes(p) for p in self.postgres.pids())}
        for name, pids in (("redis", self.redis.pids()), ("smtp", self.smtp.pids())):
            memory[name] = sum(rss_bytes(p) for p in pids)
        if self.web.process.running():
            memory["gunicorn master"] = rss_bytes(self.web.process.pid)
            for pid in self.web.worker_pids():
                memory[f"gunicorn worker {pid}"] = rss_bytes(pid)
        if self.worker.process.running():
            memory["celery main"] = rss_bytes(self.worker.process.pid)
            for pid in children(self.worker.process.pid):
                memory[f"celery child {pid}"] = rss_bytes(pid)
        if self.beat is not None and self.beat.process.running():
            memory["celery beat"] = rss_bytes(self.beat.process.pid)
        return memory


@contextlib.contextmanager
def web_only(env: dict[str, str], **options: object) -> Iterator[Web]:
    """gunicorn alone, against whatever services `env` names (benchmarks/ingest.py)."""
    web = Web(env=env, **options)  # type: ignore[arg-type]
    web.start()
    try:
        yield web
    finally:
        web.stop()
