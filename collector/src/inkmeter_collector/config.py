"""Configuration: one TOML file, then environment variables over it, then what the portal says.

Environment variables (each overrides the file):
INKMETER_CONFIG (path of the TOML file), INKMETER_PORTAL_URL, INKMETER_KEY_ID, INKMETER_SECRET,
INKMETER_SECRET_FILE, INKMETER_PROXY, INKMETER_RANGES and INKMETER_COMMUNITIES (comma
separated), INKMETER_OUTBOX (path of the SQLite outbox).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inkmeter_collector.ranges import RangeError, parse_range
from inkmeter_collector.snmp import AUTH_PROTOCOLS, PRIV_PROTOCOLS, Credentials

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

log = logging.getLogger(__name__)


class ConfigError(ValueError):
    pass


@dataclass(frozen=True)
class PrinterEntry:
    """A printer added by address or DNS name, outside any sweep."""

    address: str
    port: int = 161
    community: str | None = None
    serial: str | None = None  # for a printer that exposes none: its label's serial


@dataclass(frozen=True)
class Config:
    portal_url: str | None = None
    key_id: str | None = None
    secret: str | None = field(default=None, repr=False)
    proxy: str | None = None
    ca_file: str | None = None
    ranges: tuple[str, ...] = ()
    communities: tuple[str, ...] = ("public",)
    snmp_versions: tuple[str, ...] = ("2c",)
    v3_users: tuple[Credentials, ...] = ()
    snmp_port: int = 161
    snmp_timeout_s: float = 1.0
    snmp_retries: int = 1
    discovery_rate_per_s: float = 50.0
    discovery_time_limit_s: float = 900.0
    discovery_interval_hours: float = 24.0
    poll_interval_minutes: float = 60.0
    upload_interval_minutes: float = 15.0
    config_interval_minutes: float = 60.0
    concurrency: int = 16
    printers: tuple[PrinterEntry, ...] = ()
    outbox_path: Path = field(default_factory=lambda: default_state_dir() / "outbox.sqlite3")
    outbox_max_mb: float = 200.0
    batch_max_snapshots: int = 200
    config_version: int | None = None
    # From the portal (its reorder policies): a supply crossing its threshold uploads at once.
    reorder_threshold_percent: float | None = None
    reorder_thresholds: tuple[tuple[str, float], ...] = ()  # (device serial, percent)

    def reorder_threshold(self, serial: str | None) -> float | None:
        """The threshold of this printer: its own override, else the customer's."""
        for candidate, percent in self.reorder_thresholds:
            if candidate == serial:
                return percent
        return self.reorder_threshold_percent

    def credentials(self) -> list[Credentials]:
        """Every SNMP identity to try, v3 users first (they are the most specific)."""
        tried = list(self.v3_users)
        for version in self.snmp_versions:
            tried.extend(Credentials(version=version, community=c) for c in self.communities)
        return tried

    @property
    def can_upload(self) -> bool:
        return bool(self.portal_url and self.key_id and self.secret)


def default_state_dir() -> Path:
    if sys.platform == "win32":
        return Path(os.environ.get("LOCALAPPDATA", Path.home())) / "inkmeter-collector"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / "inkmeter-collector"
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "inkmeter-collector"


def _split(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _check_ranges(ranges: tuple[str, ...]) -> tuple[str, ...]:
    """Local ranges, normalised; a bad one stops the start (the operator is there to fix it)."""
    try:
        return tuple(parse_range(entry).text for entry in ranges)
    except RangeError as error:
        raise ConfigError(f"discovery.ranges: {error.message}") from error


def _v3_user(entry: Mapping[str, Any]) -> Credentials:
    auth = str(entry.get("auth_protocol", "sha" if entry.get("auth_key") else "none")).lower()
    priv = str(entry.get("priv_protocol", "aes" if entry.get("priv_key") else "none")).lower()
    if auth not in AUTH_PROTOCOLS or priv not in PRIV_PROTOCOLS:
        raise ConfigError(f"unknown SNMPv3 protocol {auth!r}/{priv!r}")
    if "user" not in entry:
        raise ConfigError("an [[snmp.v3_users]] entry needs a user")
    return Credentials(
        version="3",
        user=str(entry["user"]),
        auth_protocol=auth,
        auth_key=str(entry.get("auth_key", "")),
        priv_protocol=priv,
        priv_key=str(entry.get("priv_key", "")),
        context=str(entry.get("context", "")),
    )


def _read_secret_file(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8").strip()
    except OSError as error:
        raise ConfigError(f"cannot read the secret file {path}: {error}") from error


def load(path: Path | None = None, env: Mapping[str, str] | None = None) -> Config:
    env = os.environ if env is None else env
    if path is None and env.get("INKMETER_CONFIG"):
        path = Path(env["INKMETER_CONFIG"])
    data: dict[str, Any] = {}
    if path is not None:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as error:
            raise ConfigError(f"cannot read {path}: {error}") from error
    portal = data.get("portal", {})
    snmp = data.get("snmp", {})
    discovery = data.get("discovery", {})
    schedule = data.get("schedule", {})
    outbox = data.get("outbox", {})

    secret = portal.get("secret")
    secret_file = env.get("INKMETER_SECRET_FILE") or portal.get("secret_file")
    if env.get("INKMETER_SECRET"):
        secret = env["INKMETER_SECRET"]
    elif secret_file:
        secret = _read_secret_file(str(secret_file))

    config = Config(
        portal_url=env.get("INKMETER_PORTAL_URL") or portal.get("url"),
        key_id=env.get("INKMETER_KEY_ID") or portal.get("key_id"),
        secret=secret,
        proxy=env.get("INKMETER_PROXY") or portal.get("proxy"),
        ca_file=portal.get("ca_file"),
        ranges=_check_ranges(
            _split(env["INKMETER_RANGES"])
            if env.get("INKMETER_RANGES")
            else tuple(discovery.get("ranges", ()))
        ),
        communities=(
            _split(env["INKMETER_COMMUNITIES"])
            if env.get("INKMETER_COMMUNITIES")
            else tuple(snmp.get("communities", ("public",)))
        ),
        snmp_versions=tuple(str(v) for v in snmp.get("versions", ("2c",))),
        v3_users=tuple(_v3_user(entry) for entry in snmp.get("v3_users", ())),
        snmp_port=int(snmp.get("port", 161)),
        snmp_timeout_s=float(snmp.get("timeout_s", 1.0)),
        snmp_retries=int(snmp.get("retries", 1)),
        discovery_rate_per_s=float(discovery.get("rate_per_s", 50)),
        discovery_time_limit_s=float(discovery.get("time_limit_s", 900)),
        discovery_interval_hours=float(discovery.get("interval_hours", 24)),
        poll_interval_minutes=float(schedule.get("poll_interval_minutes", 60)),
        upload_interval_minutes=float(schedule.get("upload_interval_minutes", 15)),
        config_interval_minutes=float(schedule.get("config_interval_minutes", 60)),
        concurrency=int(snmp.get("concurrency", 16)),
        printers=tuple(
            PrinterEntry(
                address=str(entry["address"]),
                port=int(entry.get("port", snmp.get("port", 161))),
                community=entry.get("community"),
                serial=entry.get("serial"),
            )
            for entry in data.get("printers", ())
        ),
        outbox_path=Path(
            env.get("INKMETER_OUTBOX")
            or outbox.get("path")
            or default_state_dir() / "outbox.sqlite3"
        ),
        outbox_max_mb=float(outbox.get("max_mb", 200)),
        batch_max_snapshots=min(1000, int(outbox.get("batch_max_snapshots", 200))),
    )
    for version in config.snmp_versions:
        if version not in ("1", "2c"):
            raise ConfigError(f"snmp.versions holds {version!r}; use '1' and '2c' (v3: v3_users)")
    return config


def _log_warning(message: str) -> None:
    log.warning("%s", message)


def apply_portal(
    config: Config,
    answer: Mapping[str, Any],
    *,
    on_warning: Callable[[str], None] = _log_warning,
) -> Config:
    """The portal's collector configuration over the local one (fields it sends win).

    What cannot be applied is skipped with a warning naming it; the rest still applies, so one
    bad range never costs the interval or the communities.
    """
    changes: dict[str, Any] = {}
    if isinstance(answer.get("config_version"), int):
        changes["config_version"] = answer["config_version"]
    if isinstance(answer.get("ranges"), list):
        good: list[str] = []
        for entry in answer["ranges"]:
            try:
                good.append(parse_range(str(entry)).text)
            except RangeError as error:
                on_warning(f"portal configuration: range skipped: {error.message}")
        # An empty list means "the host's own subnet"; a list of only bad ranges does not.
        if good or not answer["ranges"]:
            changes["ranges"] = tuple(good)
        else:
            on_warning("portal configuration: no range applies; keeping the local ranges")
    if isinstance(answer.get("communities"), list) and answer["communities"]:
        changes["communities"] = tuple(str(c) for c in answer["communities"])
    poll = answer.get("poll_interval_minutes")
    if isinstance(poll, int | float) and not isinstance(poll, bool):
        changes["poll_interval_minutes"] = max(15.0, float(poll))
    upload = answer.get("upload_interval_minutes")
    if isinstance(upload, int | float) and not isinstance(upload, bool) and upload > 0:
        changes["upload_interval_minutes"] = float(upload)
    if "reorder_threshold_percent" in answer:
        threshold = _percent(answer["reorder_threshold_percent"])
        if threshold is None:
            on_warning(
                "portal configuration: reorder_threshold_percent skipped: "
                f"{answer['reorder_threshold_percent']!r} is not a percentage"
            )
        else:
            changes["reorder_threshold_percent"] = threshold
    overrides = answer.get("reorder_thresholds")
    if isinstance(overrides, dict):
        known: list[tuple[str, float]] = []
        for serial, value in overrides.items():
            percent = _percent(value)
            if percent is None:
                on_warning(
                    f"portal configuration: reorder threshold of {serial} skipped: {value!r}"
                    " is not a percentage"
                )
            else:
                known.append((str(serial), percent))
        changes["reorder_thresholds"] = tuple(known)
    return dataclasses.replace(config, **changes)


def _percent(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if 0 <= value <= 100 else None
