"""docker-compose.yml is for users (no Docker engine runs here): check that it parses and
that each service runs what it should."""

from pathlib import Path

import yaml

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
