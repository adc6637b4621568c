"""Configuration from the environment, checked in fresh interpreters so the real module runs."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION = {
    "DEBUG": "False",
    "SECRET_KEY": "x7!k2@qZ9#mP4$wL8^rT6&yU1*oI3(eA5)sD0_fG2+hJ7=kL9-zX4",
    "ALLOWED_HOSTS": "portal.example.com",
    "DATABASE_URL": "postgres://inkmeter@db.example.com:5432/inkmeter",
    "REDIS_URL": "redis://cache.example.com:6379/0",
    "EMAIL_URL": "smtp+tls://mailer:secret@smtp.example.com:587",
}


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {
        k: v for k, v in os.environ.items() if k not in PRODUCTION and k != "DJANGO_SETTINGS_MODULE"
    }
    return subprocess.run(  # noqa: S603 - our own interpreter and manage.py
        [sys.executable, *args],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _settings(env: dict[str, str], *names: str) -> dict[str, object]:
    code = (
        "import json, django; from django.conf import settings; django.setup();"
        f"print(json.dumps({{n: getattr(settings, n) for n in {list(names)!r}}}, default=str))"
    )
    result = _run(["-c", code], {"DJANGO_SETTINGS_MODULE": "portal.settings", **env})
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_check_deploy_is_clean_with_production_values():
    result = _run(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], PRODUCTION)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_check_deploy_warns_with_the_demo_defaults():
    result = _run(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], {"DEBUG": "False"})

    assert result.returncode != 0
    assert "security.W009" in result.stderr + result.stdout  # the demo SECRET_KEY


def test_without_redis_celery_runs_eagerly_and_the_cache_is_local():
    values = _settings({}, "CELERY_TASK_ALWAYS_EAGER", "CACHES", "DATABASES")

    assert values["CELERY_TASK_ALWAYS_EAGER"] is True
    assert values["CACHES"]["default"]["BACKEND"].endswith("LocMemCache")
    assert values["DATABASES"]["default"]["ENGINE"] == "django.db.backends.sqlite3"


def test_redis_url_makes_redis_the_broker_result_backend_and_cache():
    values = _settings(
        PRODUCTION,
        "CELERY_TASK_ALWAYS_EAGER",
        "CELERY_BROKER_URL",
        "CELERY_RESULT_BACKEND",
        "CACHES",
        "DATABASES",
        "EMAIL_HOST",
        "SESSION_COOKIE_SECURE",
        "CSRF_COOKIE_SECURE",
    )

    assert values["CELERY_TASK_ALWAYS_EAGER"] is False
    assert values["CELERY_BROKER_URL"] == PRODUCTION["REDIS_URL"]
    assert values["CELERY_RESULT_BACKEND"] == PRODUCTION["REDIS_URL"]
    assert values["CACHES"]["default"]["BACKEND"].endswith("RedisCache")
    assert values["DATABASES"]["default"]["ENGINE"] == "django.db.backends.postgresql"
    assert values["EMAIL_HOST"] == "smtp.example.com"
    assert values["SESSION_COOKIE_SECURE"] is True
    assert values["CSRF_COOKIE_SECURE"] is True


def test_secret_key_can_come_from_a_file(tmp_path):
    secret = tmp_path / "secret_key"
    secret.write_text("from-a-file-0123456789-abcdefghijklmnopqrstuvwxyz-ABCDEFG\n")

    values = _settings({"SECRET_KEY_FILE": str(secret)}, "SECRET_KEY")

    assert values["SECRET_KEY"] == "from-a-file-0123456789-abcdefghijklmnopqrstuvwxyz-ABCDEFG"


@pytest.mark.parametrize("name", ["DATABASE_URL", "REDIS_URL"])
def test_every_setting_is_documented_in_the_readme(name):
    readme = (ROOT / "README.md").read_text()
    for setting in [
        "DATABASE_URL",
        "REDIS_URL",
        "SECRET_KEY",
        "ALLOWED_HOSTS",
        "EMAIL_URL",
        "DEBUG",
    ]:
        assert f"`{setting}`" in readme
