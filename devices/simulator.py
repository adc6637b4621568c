"""A fleet simulator: realistic printers, their history, and signed uploads of it.

Used by `manage.py simulate_fleet`, the demo seed, the tests and benchmarks/ingest.py. The fleet
is deterministic for a seed: laser (mono and colour) and large-format inkjet printers, weekday
usage, supplies that deplete and get replaced, the odd counter reset (a board swap), offline
spells, alerts and jobs. Uploads are real signed requests (protocol/telemetry-v1.md): over HTTP
to any portal URL, or in-process through the telemetry view when no server runs.
"""

from __future__ import annotations

import gzip
import hashlib
import hmac
import json
import random
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

TELEMETRY_PATH = "/api/v1/telemetry"


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def sign(*, secret: str, method: str, path: str, body: bytes, timestamp: str) -> str:
    body_hash = hashlib.sha256(body).hexdigest()
    message = "\n".join(("v1", method, path, timestamp, body_hash))
    return "v1=" + hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def signed_headers(
    *, key_id: str, secret: str, method: str, path: str, body: bytes, at: datetime | None = None
) -> dict[str, str]:
    timestamp = rfc3339(at or datetime.now(tz=UTC))
    return {
        "X-Inkmeter-Key": key_id,
        "X-Inkmeter-Timestamp": timestamp,
        "X-Inkmeter-Signature": sign(
            secret=secret, method=method, path=path, body=body, timestamp=timestamp
        ),
    }


def encode_batch(snapshots: list[dict[str, Any]], *, batch_id: str | None = None) -> bytes:
    """A gzip-compressed batch body."""
    body = {
        "schema": "inkmeter.telemetry/1",
        "batch_id": batch_id or str(uuid.uuid4()),
        "sent_at": rfc3339(datetime.now(tz=UTC)),
        "source": {"kind": "simulator", "agent": "inkmeter-simulator/1", "host": "sim"},
        "snapshots": snapshots,
    }
    return gzip.compress(json.dumps(body, separators=(",", ":")).encode(), mtime=0)


# --- Printers -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Model:
    manufacturer: str
    name: str
    product_number: str
    kind: str  # mono_laser, color_laser, large_format
    pages_per_day: float
    supplies: tuple[tuple[str, str, str, float], ...]  # id, kind, color, capacity (pages or ml)
    unit: str


MODELS = (
    Model(
        "HP",
        "HP LaserJet Enterprise M611",
        "7PS84A",
        "mono_laser",
        180,
        (
            ("toner-black", "toner", "black", 11000),
            ("fuser", "fuser", "", 225000),
        ),
        "percent",
    ),
    Model(
        "Brother",
        "Brother HL-L6210DW",
        "HLL6210DW",
        "mono_laser",
        90,
        (("toner-black", "toner", "black", 3000), ("drum", "drum", "", 75000)),
        "percent",
    ),
    Model(
        "HP",
        "HP Color LaserJet Enterprise M554",
        "7ZU81A",
        "color_laser",
        140,
        (
            ("toner-black", "toner", "black", 7000),
            ("toner-cyan", "toner", "cyan", 6000),
            ("toner-magenta", "toner", "magenta", 6000),
            ("toner-yellow", "toner", "yellow", 6000),
            ("waste", "waste", "", 100000),
        ),
        "percent",
    ),
    Model(
        "HP",
        "HP DesignJet T830",
        "F9A30A",
        "large_format",
        12,
        (
            ("ink-cyan", "ink", "cyan", 130),
            ("ink-magenta", "ink", "magenta", 130),
            ("ink-yellow", "ink", "yellow", 130),
            ("ink-matte-black", "ink", "matte black", 130),
            ("ink-photo-black", "ink", "photo black", 130),
            ("ink-gray", "ink", "gray", 130),
            ("printhead", "printhead", "", 4000),
            ("maintenance", "maintenance", "", 2000),
        ),
        "ml",
    ),
)
LARGE_FORMAT_MEDIA = ("Coated Paper", "Bond Paper")


@dataclass
class Printer:
    """One simulated printer and its running state."""

    serial: str
    model: Model
    ip: str
    rng: random.Random
    firmware: str = "2401A"
    counters: dict[tuple[str, str, str], float] = field(default_factory=dict)
    levels: dict[str, float] = field(default_factory=dict)
    cartridge: dict[str, int] = field(default_factory=dict)
    usage: float = 1.0
    offline_until: datetime | None = None
    jam_until: datetime | None = None
    jam_since: datetime | None = None
    # When each supply went low: a printer reports an active alert in every snapshot with the
    # time it was raised, which is what makes it one episode (alerts are keyed by it).
    low_since: dict[str, datetime] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.usage = self.rng.lognormvariate(0, 0.5)
        for supply_id, _, _, _ in self.model.supplies:
            self.levels[supply_id] = self.rng.uniform(0.3, 1.0)
            self.cartridge[supply_id] = 1
        start = self.rng.randint(1_000, 200_000) * (
            1 if self.model.kind != "large_format" else 0.05
        )
        self.counters[("impressions.total", "", "")] = float(int(start))
        # Every counter the model has is reported from the first poll on, at zero if unused.
        kind = self.model.kind
        names = [("impressions.color", "", "")] if kind != "mono_laser" else []
        if kind != "large_format":
            names += [("impressions.mono", "", ""), ("sheets.total", "", "")]
        else:
            names += [("ink.used", "", c) for _, k, c, _ in self.model.supplies if k == "ink"]
            names += [
                (n, m, "") for n in ("media.area", "media.length") for m in LARGE_FORMAT_MEDIA
            ]
        for key in names:
            self.counters.setdefault(key, 0.0)

    def advance(self, start: datetime, end: datetime) -> list[dict[str, Any]]:
        """Print for the time between two polls; returns the jobs printed."""
        hours = (end - start).total_seconds() / 3600
        weekday = start.weekday() < 5 and 7 <= start.hour <= 19
        rate = self.model.pages_per_day * self.usage / (12 if weekday else 400)
        pages = int(self.rng.expovariate(1 / max(rate * hours, 0.01))) if rate else 0
        if pages == 0:
            return []
        kind = self.model.kind
        color_share = 0.0 if kind == "mono_laser" else self.rng.uniform(0.2, 0.6)
        color_pages = int(pages * color_share)
        self._add("impressions.total", pages)
        if kind != "large_format":
            self._add("impressions.mono", pages - color_pages)
            self._add("sheets.total", int(pages * 0.7) + 1)
        if kind != "mono_laser":
            self._add("impressions.color", color_pages)
        for supply_id, supply_kind, color, capacity in self.model.supplies:
            if supply_kind == "ink":
                used_ml = pages * self.rng.uniform(0.3, 0.9) * (0.5 if color == "gray" else 1.0)
                self._add("ink.used", used_ml, color=color)
                self.levels[supply_id] -= used_ml / capacity
            elif color and color != "black":
                self.levels[supply_id] -= color_pages / capacity * self.rng.uniform(0.7, 1.3)
            else:
                self.levels[supply_id] -= pages / capacity * self.rng.uniform(0.7, 1.3)
            if self.levels[supply_id] < 0.02:  # the customer swaps the cartridge
                self.levels[supply_id] = self.rng.uniform(0.97, 1.0)
                self.cartridge[supply_id] += 1
        jobs = []
        if kind == "large_format":
            for media in LARGE_FORMAT_MEDIA:
                area = (
                    pages
                    * self.rng.uniform(0.2, 0.9)
                    * (1.0 if media == LARGE_FORMAT_MEDIA[0] else 0.4)
                )
                self._add("media.area", area, media_type=media)
                self._add("media.length", area / 0.914, media_type=media)
            for n in range(min(pages, 3)):
                jobs.append(
                    {
                        "uuid": str(uuid.UUID(int=self.rng.getrandbits(128), version=4)),
                        "type": "print",
                        "name": f"Site plan {self.rng.randint(1, 400)} rev {n}.pdf",
                        "status": "printed",
                        "submitted_at": rfc3339(end - timedelta(minutes=30 - n)),
                        "completed_at": rfc3339(end - timedelta(minutes=25 - n)),
                        "pages": 1,
                        "copies": self.rng.randint(1, 3),
                        "media_area_m2": round(self.rng.uniform(0.3, 1.2), 3),
                        "user": self.rng.choice(["anna", "ben", "chen", "dora"]),
                        "application_category": "cad",
                    }
                )
        return jobs

    def _add(self, name: str, amount: float, *, media_type: str = "", color: str = "") -> None:
        key = (name, media_type, color)
        self.counters[key] = self.counters.get(key, 0.0) + amount

    def board_swap(self) -> None:
        """A replaced formatter board starts counting again from nearly zero."""
        for key in self.counters:
            self.counters[key] = float(self.rng.randint(0, 50))

    def snapshot(self, at: datetime) -> dict[str, Any]:
        counters = []
        for (name, media_type, color), value in sorted(self.counters.items()):
            entry: dict[str, Any] = {"name": name, "value": round(value, 2)}
            unit = {
                "media.area": "m2",
                "media.length": "m",
                "ink.used": "ml",
                "sheets.total": "sheets",
            }.get(name, "impressions")
            entry["unit"] = unit
            if media_type:
                entry["media_type"] = media_type
            if color:
                entry["color"] = color
            counters.append(entry)
        supplies = []
        alerts = []
        for supply_id, kind, color, capacity in self.model.supplies:
            level = max(0.0, self.levels[supply_id])
            supply: dict[str, Any] = {
                "id": supply_id,
                "kind": kind,
                "description": f"{self.model.manufacturer} {kind} {color}".strip(),
                "serial": f"{self.serial}-{supply_id}-{self.cartridge[supply_id]}",
                "genuine": True,
                "level_state": "ok",
            }
            if color:
                supply["color"] = color
            if self.model.unit == "ml" and kind == "ink":
                supply |= {
                    "unit": "ml",
                    "max_capacity": capacity,
                    "level": round(level * capacity, 1),
                }
            else:
                supply |= {"unit": "percent", "max_capacity": 100, "level": round(level * 100)}
            supplies.append(supply)
            if level < 0.1:
                alerts.append(
                    {
                        "code": f"supply.low.{supply_id}",
                        "severity": "warning",
                        "description": f"{supply['description']} is low",
                        "raised_at": rfc3339(self.low_since.setdefault(supply_id, at)),
                    }
                )
            else:
                self.low_since.pop(supply_id, None)
        if self.jam_until and at < self.jam_until:
            alerts.append(
                {
                    "code": "media.jam",
                    "severity": "critical",
                    "description": "Paper jam",
                    "raised_at": rfc3339(self.jam_since or at),
                }
            )
        state = "error" if self.jam_until and at < self.jam_until else "idle"
        snap: dict[str, Any] = {
            "snapshot_id": str(uuid.UUID(int=self.rng.getrandbits(128), version=4)),
            "collected_at": rfc3339(at),
            "device": {
                "serial": self.serial,
                "manufacturer": self.model.manufacturer,
                "model": self.model.name,
                "product_number": self.model.product_number,
                "firmware": self.firmware,
                "ip": self.ip,
                "hostname": f"prn-{self.serial[-4:].lower()}",
            },
            "status": {"state": state, "detail": "Paper jam" if state == "error" else "Ready"},
            "counters": counters,
            "supplies": supplies,
        }
        if alerts:
            snap["alerts"] = alerts
        if self.model.kind == "large_format":
            snap["media_sources"] = [
                {"id": "roll-1", "status": "loaded", "media_type": "Coated Paper", "width_mm": 914}
            ]
        return snap


def fleet_build(*, devices: int, seed: int = 0, prefix: str = "SIM") -> list[Printer]:
    rng = random.Random(seed)  # noqa: S311 - simulated usage, not secrets
    fleet = []
    for n in range(devices):
        model = MODELS[n % len(MODELS)]
        fleet.append(
            Printer(
                serial=f"{prefix}{seed:03d}{n:06d}",
                model=model,
                ip=f"10.{(n // 250) % 250}.{n % 250}.{10 + rng.randint(0, 200)}",
                rng=random.Random(rng.getrandbits(64)),  # noqa: S311
            )
        )
    return fleet


def history(
    fleet: list[Printer], *, days: float, interval_minutes: int = 60, end: datetime | None = None
) -> Iterator[dict[str, Any]]:
    """Snapshots of the whole fleet in time order, one per printer per poll, with offline
    spells (no snapshots), paper jams, firmware updates and rare board swaps."""
    end = (end or datetime.now(tz=UTC)).replace(second=0, microsecond=0)
    step = timedelta(minutes=interval_minutes)
    polls = max(1, int(days * 24 * 60 / interval_minutes))
    at = end - step * (polls - 1)
    for _ in range(polls):
        for printer in fleet:
            rng = printer.rng
            jobs = printer.advance(at - step, at)
            if printer.offline_until and at < printer.offline_until:
                continue
            roll = rng.random()
            if roll < 0.0015:  # about one offline spell per printer per month
                printer.offline_until = at + timedelta(hours=rng.uniform(3, 72))
                continue
            if roll < 0.002:
                printer.jam_until = at + timedelta(minutes=rng.uniform(30, 300))
                printer.jam_since = at
            if roll > 0.99995:
                printer.board_swap()
            if roll > 0.9997:
                printer.firmware = f"{int(printer.firmware[:4]) + 1}A"
            snap = printer.snapshot(at)
            if jobs:
                snap["jobs"] = jobs
            yield snap
        at += step


def batches(snapshots: Iterator[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    chunk: list[dict[str, Any]] = []
    for snap in snapshots:
        chunk.append(snap)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


# --- Sending ------------------------------------------------------------------------------------

Sender = Callable[[bytes], tuple[int, dict[str, Any]]]


def http_sender(*, url: str, key_id: str, secret: str, timeout: float = 60) -> Sender:
    """POST signed gzip batches to a running portal."""
    import http.client

    parts = urlsplit(url.rstrip("/") + TELEMETRY_PATH)
    connection_class = (
        http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    )

    def send(body: bytes) -> tuple[int, dict[str, Any]]:
        headers = signed_headers(
            key_id=key_id, secret=secret, method="POST", path=parts.path, body=body
        )
        headers |= {"Content-Type": "application/json", "Content-Encoding": "gzip"}
        conn = connection_class(parts.netloc, timeout=timeout)
        try:
            conn.request("POST", parts.path, body=body, headers=headers)
            response = conn.getresponse()
            payload = response.read()
        finally:
            conn.close()
        return response.status, json.loads(payload) if payload else {}

    return send


def in_process_sender(*, key_id: str, secret: str) -> Sender:
    """The same signed request, handed to the telemetry view without a server."""
    from django.test import RequestFactory

    from devices.ingest import telemetry
    from portal import rls

    factory = RequestFactory()

    def send(body: bytes) -> tuple[int, dict[str, Any]]:
        headers = signed_headers(
            key_id=key_id, secret=secret, method="POST", path=TELEMETRY_PATH, body=body
        )
        request = factory.post(
            TELEMETRY_PATH,
            data=body,
            content_type="application/json",
            headers=headers | {"Content-Encoding": "gzip"},
            REMOTE_ADDR="127.0.0.1",
        )
        with rls.request():  # what TenantMiddleware gives a request on a server
            response = telemetry(request)
        return response.status_code, json.loads(response.content)

    return send


@dataclass
class SimulationReport:
    key_id: str
    devices: int
    batches: int = 0
    snapshots: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    failures: list[str] = field(default_factory=list)


def fleet_simulate(
    *,
    site_id: int,
    devices: int = 20,
    days: float = 90,
    batch_size: int = 100,
    interval_minutes: int = 60,
    url: str | None = None,
    seed: int = 0,
    end: datetime | None = None,
) -> SimulationReport:
    """Register a collector for the site, build a fleet and upload its history.

    Without `url` the batches go through the telemetry view in-process (the demo seed);
    with it, as HTTP requests to that portal. Returns what the portal answered."""
    from accounts.models import Site
    from devices.services import credential_create
    from portal import rls
    from portal.tenancy import TenantContext

    # A management command acting for the site's reseller.
    reseller_id = rls.reseller_of(Site, site_id)
    with rls.tenant(reseller_id or 0):
        site = Site.unscoped.select_related("reseller").get(pk=site_id)
        ctx = TenantContext.system(reseller=site.reseller)
        credential, secret = credential_create(
            ctx=ctx, kind="collector", name=f"Simulated collector (seed {seed})", site_id=site.pk
        )
    send = (
        http_sender(url=url, key_id=credential.key_id, secret=secret)
        if url
        else in_process_sender(key_id=credential.key_id, secret=secret)
    )
    report = SimulationReport(key_id=credential.key_id, devices=devices)
    fleet = fleet_build(devices=devices, seed=seed, prefix=f"S{site.pk}X")
    for chunk in batches(
        history(fleet, days=days, interval_minutes=interval_minutes, end=end), batch_size
    ):
        status, answer = send(encode_batch(chunk))
        report.batches += 1
        report.snapshots += len(chunk)
        if status != 202:
            report.failures.append(f"HTTP {status}: {answer}")
            continue
        report.accepted += answer["accepted"]
        report.duplicates += answer["duplicates"]
        report.rejected += len(answer["rejected"])
    return report
