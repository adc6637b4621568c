"""docker-compose.yml is for users (no Docker engine runs here): check that it parses, that each
service runs what it should, and that its healthchecks pass against a production-settings
deployment and fail when what they check is down."""

import os
import re
import secrets
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from benchmarks.stack import (
    VENV_BIN,
    Postgres,
    Process,
    Redis,
    base_env,
    free_port,
    log_tail,
    port_open,
    wait_until,
)

ROOT = Path(__file__).resolve().parents[2]


def _compose():
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def _command(service):
    command = service.get("command", "")
    return " ".join(command) if isinstance(command, list) else command


def test_compose_names_every_service():
    services = _compose()["services"]

    assert set(services) >= {"postgres", "redis", "web", "worker", "beat"}
    assert services["postgres"]["image"].startswith("postgres:")
    assert services["redis"]["image"].startswith("redis:")


def test_app_services_use_the_repository_dockerfile_and_run_the_right_command():
    services = _compose()["services"]
    assert (ROOT / "Dockerfile").is_file()

    web = _command(services["web"])
    assert "migrate" in web
    assert "gunicorn" in web
    assert "portal.wsgi" in web
    assert "celery -A portal worker" in _command(services["worker"])
    assert "celery -A portal beat" in _command(services["beat"])
    for name in ("web", "worker", "beat"):
        build = services[name].get("build") or {}
        context = build if isinstance(build, str) else build.get("context", "")
        assert context in (".", "./"), name
        env = services[name]["environment"]
        assert env["DATABASE_URL"].startswith("postgres://")
        assert env["REDIS_URL"].startswith("redis://")


def test_dockerfile_installs_from_the_lock():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "requirements.lock" in dockerfile
    assert "collectstatic" in dockerfile


# --- The healthchecks, run against the production settings (issue 11, point 6) ------------
#
# No Docker engine here, so each container is played by a process: the Dockerfile's ENV, the
# compose file's `environment` interpolated with the README's `.env`, the database and Redis of
# a throwaway pair on free loopback ports (benchmarks/stack.py) in place of the `postgres` and
# `redis` services, the INKMETER_VAR_DIR volume in a temporary directory and gunicorn's port
# 8000 on a free port (each container has its own network namespace; this machine has one).
# Then the exact commands of the compose file: `web` migrates and serves, `worker` and `beat`
# run theirs, and each healthcheck's `test` is run as Docker runs it.

START_S = 300  # migrate of an empty database on a busy 2-core machine


def _dockerfile_env() -> dict[str, str]:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    env: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("ENV "):
            env.update(pair.split("=", 1) for pair in shlex.split(line[4:]))
    return env


def _readme_dotenv() -> dict[str, str]:
    """The `.env` of the README's Docker Compose section, its <placeholders> filled in."""
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"cat > \.env <<'ENV'\n(.*?)\nENV\n", readme, re.S)
    assert block, "the README shows the .env for docker compose"
    values = dict(line.split("=", 1) for line in block.group(1).splitlines())
    return {
        k: "compose-test-" + secrets.token_urlsafe(32) if v.startswith("<") else v
        for k, v in values.items()
    }


def _interpolate(value: str, dotenv: dict[str, str]) -> str:
    """Compose's variable substitution: ${X}, ${X:-default}, ${X:?error}, and $$ for $."""

    def one(match: re.Match[str]) -> str:
        name, op, arg = match.group(1), match.group(2), match.group(3)
        if dotenv.get(name):
            return dotenv[name]
        assert op != "?", f"compose refuses to start without {name}: {arg}"
        return arg or ""

    value = re.sub(r"(?<!\$)\$\{(\w+)(?::([-?])([^}]*))?\}", one, value)
    return value.replace("$$", "$")


@dataclass
class Deployment:
    workdir: Path
    env: dict[str, str]
    port: int
    var_dir: str  # the volume's path inside the container (the Dockerfile's INKMETER_VAR_DIR)
    processes: list[Process]

    def localise(self, text: str) -> str:
        """A command of the compose file as it runs here: the volume and the port mapped."""
        text = text.replace(self.var_dir, str(self.workdir / "var"))
        return text.replace("0.0.0.0:8000", f"127.0.0.1:{self.port}").replace(
            "127.0.0.1:8000", f"127.0.0.1:{self.port}"
        )

    def start(self, service: str) -> Process:
        command = _interpolate(_command(_compose()["services"][service]), {})
        argv = shlex.split(self.localise(command))
        process = Process(service, argv, env=self.env, log=self.workdir / f"{service}.log")
        process.start()
        self.processes.append(process)
        return process

    def healthcheck(self, service: str) -> subprocess.CompletedProcess[str]:
        """The service's healthcheck `test`, run as Docker runs it (CMD: the argv as is;
        CMD-SHELL: through /bin/sh), within its `timeout`."""
        test = [
            _interpolate(part, {})
            for part in _compose()["services"][service]["healthcheck"]["test"]
        ]
        kind, rest = test[0], [self.localise(part) for part in test[1:]]
        argv = rest if kind == "CMD" else ["sh", "-c", rest[0]]
        assert kind in ("CMD", "CMD-SHELL"), test
        return subprocess.run(  # noqa: S603 - the compose file's own commands
            argv, env=self.env, cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
        )

    def healthy_in_time(self, service: str) -> subprocess.CompletedProcess[str]:
        """Run the check as Docker does until it passes, for as long as Docker would before
        it calls the container unhealthy: start_period, then `retries` more intervals."""
        check = _compose()["services"][service]["healthcheck"]
        budget = _seconds(check.get("start_period", "0s")) + check.get("retries", 3) * _seconds(
            check.get("interval", "30s")
        )
        deadline = time.monotonic() + budget
        while True:
            result = self.healthcheck(service)
            if result.returncode == 0 or time.monotonic() > deadline:
                return result
            time.sleep(1)


def _seconds(duration: str) -> float:
    """A compose duration: 90s, 2m, 1m30s."""
    parts = re.fullmatch(r"(?:(\d+)m)?(?:(\d+)s)?", duration)
    assert duration, duration
    assert parts, duration
    return int(parts.group(1) or 0) * 60 + int(parts.group(2) or 0)


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    workdir = tmp_path_factory.mktemp("compose")
    plain = base_env()
    # Outside pytest's 0700 temporary directory: the cluster runs as the `postgres` user.
    pg_home = Path(tempfile.mkdtemp(prefix="inkmeter-compose-pg-", dir="/tmp"))
    pg_home.chmod(0o755)
    postgres = Postgres(pg_home / "cluster")
    redis = Redis(workdir / "redis", env=plain, log_dir=workdir)
    compose_env = {
        name: _interpolate(str(value), _readme_dotenv())
        for name, value in _compose()["x-app"]["environment"].items()
    }
    dockerfile = _dockerfile_env()
    env = (
        plain
        | dockerfile
        | compose_env
        | {
            # The compose network's `postgres` and `redis` are the throwaway pair here, and mail
            # stays on this machine (the README's smtp.example.com is nobody's).
            "DATABASE_URL": postgres.url,
            "REDIS_URL": redis.url,
            "EMAIL_URL": "consolemail://",
            "INKMETER_VAR_DIR": str(workdir / "var"),
            "HOSTNAME": socket.gethostname(),  # Docker sets it to the container's hostname
            "PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}",
        }
    )
    assert env["DEBUG"] == "False"
    assert env["ALLOWED_HOSTS"] == "portal.example.com"
    (workdir / "var").mkdir()
    deployment = Deployment(
        workdir=workdir,
        env=env,
        port=free_port(),
        var_dir=dockerfile["INKMETER_VAR_DIR"],
        processes=[],
    )
    try:
        postgres.init()
        postgres.start()
        postgres.database_create()
        redis.start()
        web = deployment.start("web")

        # gunicorn listens once `migrate` has finished (the command chains them).
        def migrated_and_serving() -> bool:
            web.check()  # raises with the log's tail if migrate or gunicorn exited
            return port_open(deployment.port)

        wait_until(migrated_and_serving, timeout=START_S, what="web: migrate, then gunicorn")
        yield deployment
    finally:
        for process in reversed(deployment.processes):
            process.stop()
        redis.stop()
        postgres.stop("immediate")
        shutil.rmtree(pg_home, ignore_errors=True)


def _log(deployment: Deployment, service: str) -> str:
    return log_tail(deployment.workdir / f"{service}.log")


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.faults
def test_web_healthcheck_passes_once_migrated_and_fails_when_gunicorn_is_down(deployment):
    web = deployment.processes[0]
    result = deployment.healthy_in_time("web")
    assert result.returncode == 0, f"{result.stderr}\n{_log(deployment, 'web')}"
    # Healthy means migrated: what worker and beat wait for.
    check = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--check"],
        env=deployment.env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert check.returncode == 0, check.stdout + check.stderr

    web.stop()
    result = deployment.healthcheck("web")
    assert result.returncode != 0
    assert "Connection refused" in result.stderr


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.faults
def test_worker_healthcheck_pings_this_worker_and_fails_when_it_is_down(deployment):
    worker = deployment.start("worker")
    result = deployment.healthy_in_time("worker")
    assert result.returncode == 0, f"{result.stdout}{result.stderr}\n{_log(deployment, 'worker')}"
    assert f"celery@{socket.gethostname()}: OK" in result.stdout

    worker.stop()
    result = deployment.healthcheck("worker")
    assert result.returncode != 0, result.stdout


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.faults
def test_beat_healthcheck_reads_a_fresh_schedule_and_fails_on_a_stale_one(deployment):
    var = deployment.workdir / "var"
    assert not list(var.glob("celerybeat-schedule*"))
    result = deployment.healthcheck("beat")
    assert result.returncode != 0  # beat has not started: no schedule yet

    beat = deployment.start("beat")
    result = deployment.healthy_in_time("beat")
    assert result.returncode == 0, f"{result.stderr}\n{_log(deployment, 'beat')}"

    # Beat stops; its schedule file is then not written any more. Six minutes later (the
    # files' clocks set back here instead of waiting) the check fails.
    beat.stop()
    stale = time.time() - 6 * 60 - 30
    for path in var.glob("celerybeat-schedule*"):
        os.utime(path, (stale, stale))
    result = deployment.healthcheck("beat")
    assert result.returncode != 0


def test_worker_and_beat_wait_for_the_migrations_and_have_healthchecks():
    services = _compose()["services"]
    assert "migrate" in _command(services["web"])
    for name in ("worker", "beat"):
        assert services[name]["depends_on"]["web"] == {"condition": "service_healthy"}, name
        assert services[name]["depends_on"]["postgres"] == {"condition": "service_healthy"}
        assert services[name]["depends_on"]["redis"] == {"condition": "service_healthy"}
    for name in ("web", "worker", "beat"):
        assert services[name]["healthcheck"]["test"][0] in ("CMD", "CMD-SHELL"), name
