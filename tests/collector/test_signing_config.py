"""Signature vectors (computed with openssl, not with the collector) and configuration."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from inkmeter_collector import config
from inkmeter_collector.signing import signature, signed_headers

# printf 'v1\nPOST\n/api/v1/telemetry\n2026-11-21T23:00:00Z\n<sha256("hello")>' |
#   openssl dgst -sha256 -hmac s3cret
POST_VECTOR = "v1=3d61714de1d98940e4af84ca882428b0c4eddb8aac8334fccb0463701cec83bb"
# the same for GET /api/v1/collector/config and the SHA-256 of the empty body
GET_VECTOR = "v1=87cce313e8f2cf29210b266994812493695541c84593ef5fdac5762488d5d5d1"


def test_signature_vectors() -> None:
    stamp = "2026-11-21T23:00:00Z"
    assert (
        signature(
            secret="s3cret", method="POST", path="/api/v1/telemetry", timestamp=stamp, body=b"hello"
        )
        == POST_VECTOR
    )
    assert (
        signature(
            secret="s3cret",
            method="GET",
            path="/api/v1/collector/config",
            timestamp=stamp,
            body=b"",
        )
        == GET_VECTOR
    )


def test_signed_headers_carry_key_time_and_signature() -> None:
    headers = signed_headers(
        key_id="col_1",
        secret="s3cret",
        method="POST",
        path="/api/v1/telemetry",
        body=b"hello",
        now=datetime(2026, 11, 21, 23, 0, 0, tzinfo=UTC),
    )
    assert headers == {
        "X-Inkmeter-Key": "col_1",
        "X-Inkmeter-Timestamp": "2026-11-21T23:00:00Z",
        "X-Inkmeter-Signature": POST_VECTOR,
    }


TOML = """
[portal]
url = "https://portal.example.test/inkmeter"
key_id = "col_abc"
secret_file = "{secret_file}"
proxy = "http://proxy.example.test:3128"

[snmp]
communities = ["public", "office"]
versions = ["2c", "1"]
timeout_s = 2.5
retries = 2

[[snmp.v3_users]]
user = "inkmeter"
auth_protocol = "sha256"
auth_key = "authpass123"
priv_protocol = "aes"
priv_key = "privpass123"

[discovery]
ranges = ["127.0.0.0/29"]
rate_per_s = 20

[schedule]
poll_interval_minutes = 30

[[printers]]
address = "printer-7.example.test"
community = "office"
serial = "LABEL123"

[outbox]
path = "{outbox}"
max_mb = 5
"""


def test_toml_then_environment_then_secret_file(tmp_path: Path) -> None:
    secret_file = tmp_path / "secret"
    secret_file.write_text("from-file\n")
    path = tmp_path / "collector.toml"
    path.write_text(TOML.format(secret_file=secret_file, outbox=tmp_path / "o.sqlite3"))

    loaded = config.load(path, env={})
    assert loaded.portal_url == "https://portal.example.test/inkmeter"
    assert loaded.key_id == "col_abc"
    assert loaded.secret == "from-file"
    assert "from-file" not in repr(loaded)
    assert loaded.proxy == "http://proxy.example.test:3128"
    assert loaded.ranges == ("127.0.0.0/29",)
    assert loaded.poll_interval_minutes == 30
    assert loaded.snmp_timeout_s == 2.5
    assert loaded.outbox_max_mb == 5
    assert loaded.printers == (
        config.PrinterEntry("printer-7.example.test", 161, "office", "LABEL123"),
    )
    tried = [(c.version, c.user if c.version == "3" else c.community) for c in loaded.credentials()]
    assert tried == [
        ("3", "inkmeter"),
        ("2c", "public"),
        ("2c", "office"),
        ("1", "public"),
        ("1", "office"),
    ]
    v3 = loaded.credentials()[0]
    assert (v3.auth_protocol, v3.priv_protocol, v3.auth_key, v3.priv_key) == (
        "sha256",
        "aes",
        "authpass123",
        "privpass123",
    )

    overridden = config.load(
        path,
        env={
            "INKMETER_SECRET": "from-env",
            "INKMETER_KEY_ID": "col_env",
            "INKMETER_RANGES": "127.0.1.0/30, 127.0.2.0/30",
            "INKMETER_COMMUNITIES": "a,b",
            "INKMETER_OUTBOX": str(tmp_path / "env.sqlite3"),
        },
    )
    assert (overridden.secret, overridden.key_id) == ("from-env", "col_env")
    assert overridden.ranges == ("127.0.1.0/30", "127.0.2.0/30")
    assert overridden.communities == ("a", "b")
    assert overridden.outbox_path == tmp_path / "env.sqlite3"

    other_secret = tmp_path / "other"
    other_secret.write_text("from-env-file")
    by_file = config.load(path, env={"INKMETER_SECRET_FILE": str(other_secret)})
    assert by_file.secret == "from-env-file"


def test_config_path_from_environment_and_bad_values(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[discovery]\nranges = ["127.0.0.0/30"]\n')
    assert config.load(None, env={"INKMETER_CONFIG": str(path)}).ranges == ("127.0.0.0/30",)
    path.write_text('[discovery]\nranges = ["not-a-range"]\n')
    with pytest.raises(config.ConfigError, match="not-a-range"):
        config.load(path, env={})
    path.write_text('[portal]\nsecret_file = "/nonexistent/secret"\n')
    with pytest.raises(config.ConfigError, match="secret file"):
        config.load(path, env={})


def test_portal_configuration_applies_over_local() -> None:
    local = config.Config(ranges=("127.0.0.0/30",), communities=("public",))
    applied = config.apply_portal(
        local,
        {
            "config_version": 7,
            "ranges": ["127.0.0.0/29"],
            "communities": ["office"],
            "poll_interval_minutes": 5,
            "upload_interval_minutes": 20,
        },
    )
    assert applied.config_version == 7
    assert applied.ranges == ("127.0.0.0/29",)
    assert applied.communities == ("office",)
    assert applied.poll_interval_minutes == 15  # never below the portal's minimum
    assert applied.upload_interval_minutes == 20
    assert config.apply_portal(local, {}) == local
