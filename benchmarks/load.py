"""Load test: mixed traffic for a bounded time against a whole Inkmeter deployment on loopback.

How to run
    .venv/bin/python benchmarks/load.py                   # 10 minutes, as issue #7 asks
    .venv/bin/python benchmarks/load.py --duration 60     # a short check while developing
    .venv/bin/python benchmarks/load.py --smoke           # CI: the smallest of everything

It starts a throwaway stack (benchmarks/stack.py: its own PostgreSQL cluster with fsync on, its
own Redis, gunicorn, a Celery worker and beat, an SMTP sink; the shared servers are not touched),
seeds it through the product's own code (`manage.py seed_demo`, then more customers of both
resellers with simulated fleets sent as signed telemetry, contracts, statements of two periods
with the older one finalised, catalog and orders), and then, all at once for `--duration`:

- collectors POST signed gzip batches of 100 snapshots (the ingest benchmark's shape: 8 supplies
  and 12 counters each, plus the jobs and alerts the simulator gives) at a fixed target rate,
  each batch paced on a clock; a late batch goes out at once but is never made up later;
- the demo's portal users, signed in through the real login form (CSRF, and the TOTP second
  factor for admins and finance), browse like people: dashboard, device list with paging,
  filters and sorting swapped in by htmx, device detail, supplies, alerts, statement list and
  detail, order list and detail, customers; a think time between clicks;
- a customer buyer places an order now and then through the order form;
- finance exports one statement as CSV and as PDF a quarter into the run (a big statement's
  PDF renders on the pdf queue: the test then follows its state as the page does).

What it measures, and what the figures mean
- Per route: requests per second over the run, latency percentiles p50/p95/p99 (from sending
  the request to the last byte of the answer, on loopback, so the client's own queueing on a
  shared 2-core machine is in it), and errors: any unexpected status, a refused snapshot, a
  timeout or a dropped connection. The goal is zero; the first few error bodies are printed.
- Telemetry: snapshots acknowledged by 202 answers, then the same snapshot ids looked up in the
  database after the run. Every acknowledged snapshot must be there, and no snapshot of the
  load's collectors may be stored twice.
- Memory: the resident set of every process of the stack (PostgreSQL is its cluster summed,
  shared buffers counted in each backend that touched them) at the start, every `--sample`
  seconds and at the end. A least-squares line through each process's samples gives its growth
  in MB per minute, over the whole run and over the settled part from 40 % of the run on (the
  start is imports and warming caches, and the one export loads WeasyPrint at 25 %); the
  verdict calls the settled line flat when it climbs at most max(2 MB, 2 % of the process) per
  10 minutes. A process whose pid disappears was restarted (a gunicorn worker timeout, a
  crashed pool child) and is reported as such.
- The load average at the start, in every progress line and at the end: on a shared machine,
  latency figures only mean something next to it.
- Tasks: the Celery queues' lengths in every progress line, after the traffic stops how long
  the worker takes to empty them, and per task name (from the worker's log) runs, mean, max
  and total seconds: a queue that only grows means the worker cannot keep up with the
  follow-ups of ingestion at this rate, and the table says which tasks hold it.
- Logs: error and traceback lines that gunicorn, Celery and the rest logged during the run, and
  PostgreSQL's statement errors counted by message (shown, not failures by themselves: races
  the application expects and handles, such as a unique key lost to a concurrent insert, are
  logged there too).

The exit status is 1 when any request errored, an acknowledged snapshot is missing or stored
twice, or a process of the stack logged an error; 0 otherwise.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.stack import Stack  # noqa: E402

# The demo's published password (portal/management/commands/seed_demo.py).
DEMO_PASSWORD = "inkmeter-demo"  # noqa: S105
TELEMETRY_PATH = "/api/v1/telemetry"
SNAPSHOTS_PER_BATCH = 100
HTTP_TIMEOUT_S = 60
ERROR_SAMPLES = 3
TOTP_PERIOD_S = 30
# How long finance waits for a statement PDF rendered on the pdf queue.
PDF_WAIT_S = 300
# The export comes a quarter into the run, and the memory verdict fits the samples from 40 %
# on: a process's first PDF loads WeasyPrint and its fonts once, a step, not a trend.
EXPORT_AT = 0.25
SETTLED_FROM = 0.4
# Issue 12.5's budget: what people wait for in the portal (pages, htmx swaps, their forms), not
# the collectors' telemetry POSTs nor the statement exports, which have budgets of their own.
PAGES_P95_BUDGET_S = 0.5
NOT_PAGES = (f"POST {TELEMETRY_PATH}", "GET .../statement.csv", "GET .../statement.pdf")
# Reasons for a log line to count as the stack's own error.
LOG_ERROR = re.compile(rb"\b(ERROR|CRITICAL)\b|^Traceback")
PG_ERROR = re.compile(rb"\] ((?:ERROR|FATAL|PANIC):.*)")


# --- Seeding (runs inside `manage.py shell`, with the stack's environment) -------------------

# More customers for each reseller, beside the demo's: town names with a trade each.
EXTRA_CUSTOMERS = {
    "northwind": ("DE", ["Altona", "Barmbek", "Eppendorf", "Harburg", "Ottensen", "Wandsbek",
                         "Bergedorf", "Eimsbuettel", "Winterhude", "Lokstedt", "Rahlstedt"]),
    "southpoint": ("GB", ["Bath", "Clevedon", "Filton", "Keynsham", "Portishead", "Redland",
                          "Stroud", "Thornbury", "Weston", "Yate", "Nailsea"]),
}  # fmt: skip
TRADES = ["Dental Practice", "Law Office", "Logistics", "Grammar School", "Pharmacy", "Engineers"]


def _resellers() -> list[Any]:
    from accounts.models import Reseller
    from portal import rls

    with rls.system("the resellers are named by their slugs"):
        return [Reseller.objects.get(slug=slug) for slug in EXTRA_CUSTOMERS]


def seed_customers(per_reseller: int, printers: int, days: int) -> None:
    """Customers with a site each for both resellers, their printers' history uploaded as signed
    telemetry through the ingestion view, and for the second reseller (which the demo leaves
    without a fleet) a fleet at its demo site, the catalog with its orders, and contracts with
    statements. Safe to run again: what exists is left alone. Scoped like seed_demo: each
    reseller's writes in its own tenant, the uploads by the ingestion's own scoping."""
    from django.db.models import Q

    from accounts import services as account_services
    from accounts.models import Customer, Site
    from billing.services import seed_demo_billing
    from devices.models import Device
    from devices.simulator import fleet_simulate
    from portal import rls
    from portal.tenancy import TenantContext

    for reseller in _resellers():
        country, towns = EXTRA_CUSTOMERS[reseller.slug]
        ctx = TenantContext.system(reseller=reseller)
        with rls.tenant(reseller.pk):
            for n, town in enumerate(towns[:per_reseller]):
                name = f"{town} {TRADES[n % len(TRADES)]}"
                if Customer.objects.for_tenant(ctx).filter(name=name).exists():
                    continue
                customer = account_services.customer_create(
                    ctx=ctx,
                    name=name,
                    account_number=f"{reseller.slug[:2].upper()}-{2001 + n}",
                    billing_email=f"accounts@{town.lower()}.demo",
                )
                account_services.site_create(
                    ctx=ctx,
                    customer_id=customer.pk,
                    name="Main office",
                    address_line1=f"{n + 1} High Street",
                    city=town,
                    country=country,
                )
            # The first reseller's demo sites get their fleet from seed_demo; the second's here.
            sites = list(
                Site.objects.for_tenant(ctx)
                .filter(Q(name="Main office") | Q(customer__name="Avon Dental Practice"))
                .select_related("customer")
                .order_by("pk")
            )
            bare = [s for s in sites if not Device.objects.for_tenant(ctx).filter(site=s).exists()]
        for site in bare:
            report = fleet_simulate(
                site_id=site.pk, devices=printers, days=days, interval_minutes=240, seed=site.pk
            )
            if report.failures:
                raise SystemExit(f"simulated fleet refused: {report.failures[:3]}")
            print(f"  {reseller.slug} / {site.customer.name}: {report.accepted} snapshots")
        if reseller.slug != "northwind":  # the demo's seed covers the first reseller
            with rls.tenant(reseller.pk):
                _catalog_and_orders(ctx, sites)
                seed_demo_billing(reseller)


def _catalog_and_orders(ctx: Any, sites: list[Any]) -> None:
    """The demo's catalog and a submitted order for each site. (orders/demo.py walks orders
    through every state as the demo's customer users, and the second reseller has none.)"""
    from orders import services as order_services
    from orders.demo import seed_demo_catalog
    from orders.models import Product

    if Product.objects.for_tenant(ctx).exists():
        return
    seed_demo_catalog(ctx, currency="GBP")
    products = list(Product.objects.for_tenant(ctx).order_by("pk"))
    for n, site in enumerate(sites):
        order_services.order_create(
            ctx=ctx,
            site_id=site.pk,
            lines=[
                order_services.LineIn(product_id=products[n % len(products)].pk, quantity=1 + n % 3)
            ],
            note="Seeded by the load test.",
            submit=True,
        )


def seed_statements_and_collectors(collectors: int) -> None:
    """The period before each contract's last one computed and finalised, and one collector
    credential per load collector at the extra customers' sites, alternating resellers; prints
    the credentials as one JSON line."""
    from django.utils.timezone import now

    from accounts.models import Site
    from billing import statement_services
    from billing.models import Contract, Statement
    from billing.pricing import period_before, period_containing
    from devices.services import credential_create
    from portal import rls
    from portal.tenancy import TenantContext

    credentials: list[dict[str, str]] = []
    resellers = _resellers()
    for reseller in resellers:
        ctx = TenantContext.system(reseller=reseller)
        with rls.tenant(reseller.pk):
            for contract in Contract.objects.for_tenant(ctx).order_by("pk"):
                current, _ = period_containing(now().date(), contract.anchor_day)
                last, _ = period_before(current, contract.anchor_day)
                older, _ = period_before(last, contract.anchor_day)
                statements = Statement.objects.for_tenant(ctx)
                if statements.filter(contract=contract, period_start=older).exists():
                    continue
                statement = statement_services.statement_compute(
                    ctx=ctx, contract_id=contract.pk, period_start=older
                )
                statement_services.statement_finalise(ctx=ctx, statement_id=statement.pk, by=None)
    for n in range(collectors):
        reseller = resellers[n % len(resellers)]
        ctx = TenantContext.system(reseller=reseller)
        with rls.tenant(reseller.pk):
            sites = list(
                Site.objects.for_tenant(ctx).filter(name="Main office").order_by("customer__name")
            )
            site = sites[(n // len(resellers)) % len(sites)]
            credential, secret = credential_create(
                ctx=ctx, kind="collector", name=f"Load collector {n}", site_id=site.pk
            )
        credentials.append({"key_id": credential.key_id, "secret": secret})
    print("CREDENTIALS " + json.dumps(credentials))


def _manage(stack: Stack, *args: str, debug: bool = False, timeout: float = 1800) -> str:
    """manage.py with the stack's environment; DEBUG=True only for the demo's helpers, which
    refuse to create well-known passwords or print codes in production."""
    env = stack.env | ({"DEBUG": "True"} if debug else {})
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if result.returncode != 0:
        raise SystemExit(
            f"manage.py {args[0]} failed:\n{result.stdout[-3000:]}{result.stderr[-3000:]}"
        )
    return result.stdout


def _shell(stack: Stack, call: str) -> str:
    out = _manage(stack, "shell", "-c", f"from benchmarks import load; load.{call}")
    # Django's shell announces its automatic imports on stdout.
    return "".join(line for line in out.splitlines(True) if "imported automatically" not in line)


def seed(stack: Stack, args: argparse.Namespace) -> list[dict[str, str]]:
    """The demo twice around the extra customers: the first run makes resellers, users, the
    catalog and orders; the second gives the first reseller's demo sites their fleet and bills
    every customer of it that has printers by then."""
    started = time.monotonic()
    _manage(stack, "seed_demo", "--no-fleet", debug=True)
    print(_shell(stack, f"seed_customers({args.customers}, {args.printers}, {args.days})"), end="")
    _manage(stack, "seed_demo", "--days", str(args.days), debug=True)
    out = _shell(stack, f"seed_statements_and_collectors({args.collectors})")
    line = next(line for line in out.splitlines() if line.startswith("CREDENTIALS "))
    print(f"seeded in {time.monotonic() - started:.0f} s")
    return list(json.loads(line.removeprefix("CREDENTIALS ")))


def seeded_counts(stack: Stack) -> list[str]:
    """What the pages have to show, per reseller, read as the database owner."""
    import psycopg

    query = """
        SELECT r.slug,
            (SELECT count(*) FROM accounts_customer c WHERE c.reseller_id = r.id),
            (SELECT count(*) FROM devices_device d WHERE d.reseller_id = r.id),
            (SELECT count(*) FROM devices_snapshot s WHERE s.reseller_id = r.id),
            (SELECT count(*) FROM billing_statement s WHERE s.reseller_id = r.id),
            (SELECT count(*) FROM billing_statement s
                WHERE s.reseller_id = r.id AND s.status = 'final'),
            (SELECT count(*) FROM orders_order o WHERE o.reseller_id = r.id)
        FROM accounts_reseller r ORDER BY r.slug
    """
    with psycopg.connect(stack.postgres.url) as conn:
        rows = conn.execute(query).fetchall()
    return [
        f"{slug}: {customers} customers, {devices} devices, {snapshots:,} snapshots, "
        f"{statements} statements ({final} final), {orders} orders"
        for slug, customers, devices, snapshots, statements, final, orders in rows
    ]


def queued(stack: Stack) -> dict[str, int]:
    """Tasks waiting in the broker, per queue of portal/celery.py."""
    import redis

    from portal.celery import QUEUES

    with redis.Redis.from_url(stack.redis.url) as client:
        return {name: int(client.llen(name)) for name in QUEUES}


def queued_text(queues: dict[str, int]) -> str:
    busy = ", ".join(f"{name} {n}" for name, n in queues.items() if n)
    return f"{sum(queues.values())}" + (f" ({busy})" if busy else "")


def queue_drain(stack: Stack, timeout: float) -> tuple[int, float]:
    """Wait until the worker has taken every queued task; returns what is left at the timeout
    and the seconds waited."""
    started = time.monotonic()
    while (left := sum(queued(stack).values())) and time.monotonic() - started < timeout:
        time.sleep(1)
    return left, time.monotonic() - started


# --- Recording --------------------------------------------------------------------------------


@dataclass
class Route:
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    samples: list[str] = field(default_factory=list)


class Recorder:
    """Every request's route, latency and outcome, shared by all threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.routes: dict[str, Route] = {}
        self.events: list[tuple[float, float, bool]] = []  # (monotonic end, seconds, ok)

    def record(self, route: str, seconds: float, error: str | None = None) -> None:
        with self.lock:
            stats = self.routes.setdefault(route, Route())
            stats.latencies.append(seconds)
            self.events.append((time.monotonic(), seconds, error is None))
            if error is not None:
                stats.errors += 1
                if len(stats.samples) < ERROR_SAMPLES:
                    stats.samples.append(error)

    def since(self, moment: float) -> list[tuple[float, float, bool]]:
        with self.lock:
            return [event for event in self.events if event[0] >= moment]


def percentile(ordered: list[float], fraction: float) -> float:
    """Nearest-rank percentile of a sorted list."""
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, max(0, int(len(ordered) * fraction + 0.5) - 1))]


# --- HTTP ---------------------------------------------------------------------------------------


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    cookies: list[str]
    body: bytes

    def text(self) -> str:
        return self.body.decode(errors="replace")


def http_send(
    port: int, method: str, path: str, body: bytes | None, headers: dict[str, str]
) -> Answer:
    """One request on its own connection: gunicorn's sync workers close after each answer."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=HTTP_TIMEOUT_S)
    try:
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        payload = response.read()
        pairs = response.getheaders()
    finally:
        conn.close()
    return Answer(
        status=response.status,
        headers={name.lower(): value for name, value in pairs},
        cookies=[value for name, value in pairs if name.lower() == "set-cookie"],
        body=payload,
    )


def _error(answer: Answer, method: str, path: str) -> str:
    return f"{answer.status} {method} {path}: {answer.body[:300]!r}"


class LoginFailed(Exception):
    pass


class Browser:
    """One signed-in person: a cookie jar shared by their tabs, CSRF tokens read from forms."""

    def __init__(self, *, port: int, recorder: Recorder, email: str) -> None:
        self.port, self.recorder, self.email = port, recorder, email
        self.cookies: dict[str, str] = {}
        self.lock = threading.Lock()

    def call(
        self,
        method: str,
        path: str,
        *,
        route: str,
        form: dict[str, str] | None = None,
        htmx: bool = False,
        expect: tuple[int, ...] = (200,),
        check: Callable[[Answer], str | None] | None = None,
    ) -> Answer | None:
        """The request, recorded under `route`; None when it failed (and was counted)."""
        headers = {"User-Agent": "inkmeter-load"}
        with self.lock:
            if self.cookies:
                headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        body = None
        if form is not None:
            body = urlencode(form).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        if htmx:
            headers |= {"HX-Request": "true", "HX-Current-URL": f"http://127.0.0.1{path}"}
        started = time.perf_counter()
        try:
            answer = http_send(self.port, method, path, body, headers)
        except (OSError, http.client.HTTPException) as error:
            seconds = time.perf_counter() - started
            self.recorder.record(route, seconds, f"{method} {path}: {type(error).__name__} {error}")
            return None
        seconds = time.perf_counter() - started
        self._keep(answer.cookies)
        problem = _error(answer, method, path) if answer.status not in expect else None
        if problem is None and check is not None:
            problem = check(answer)
        self.recorder.record(route, seconds, problem)
        return None if problem else answer

    def _keep(self, set_cookies: list[str]) -> None:
        with self.lock:
            for header in set_cookies:
                name, _, rest = header.partition("=")
                value = rest.split(";", 1)[0]
                if value and "max-age=0" not in header.lower():
                    self.cookies[name.strip()] = value
                else:
                    self.cookies.pop(name.strip(), None)

    def login(self, totp: Callable[[str], str]) -> None:
        """The login form, then the second factor if the account has one."""
        page = self.call("GET", "/accounts/login/", route="GET /accounts/login/")
        if page is None:
            raise LoginFailed(self.email)
        answer = self.call(
            "POST",
            "/accounts/login/",
            route="POST /accounts/login/",
            form={
                "csrfmiddlewaretoken": csrf_token(page),
                "login": self.email,
                "password": DEMO_PASSWORD,
            },
            expect=(302,),
        )
        if answer is None:
            raise LoginFailed(self.email)
        location = urlsplit(answer.headers.get("location", "")).path
        if "/2fa/authenticate" in location:
            page = self.call("GET", location, route="GET /accounts/2fa/authenticate/")
            if page is None:
                raise LoginFailed(self.email)
            code = totp(self.email)
            answer = self.call(
                "POST",
                location,
                route="POST /accounts/2fa/authenticate/",
                form={"csrfmiddlewaretoken": csrf_token(page), "code": code},
                expect=(302,),
            )
            if answer is None:
                raise LoginFailed(self.email)
            location = urlsplit(answer.headers.get("location", "")).path
        if location != "/":
            raise LoginFailed(f"{self.email}: signed in to {location!r}")


def csrf_token(page: Answer) -> str:
    found = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text())
    return found.group(1) if found else ""


def ids(page: Answer | None, pattern: str) -> list[int]:
    return [int(n) for n in re.findall(pattern, page.text())] if page else []


def options(page: Answer, select: str) -> list[str]:
    """The non-empty option values of a <select name=...>."""
    found = re.search(rf'<select name="{select}"[^>]*>(.*?)</select>', page.text(), re.DOTALL)
    return [v for v in re.findall(r'value="([^"]*)"', found.group(1)) if v] if found else []


def last_page(page: Answer | None) -> int:
    found = re.search(r"Page \d+ of (\d+)", page.text()) if page else None
    return int(found.group(1)) if found else 1


# --- Portal users -------------------------------------------------------------------------------


@dataclass
class Person:
    email: str
    role: str
    # Weighted actions, by name (see Visit).
    actions: dict[str, int]


STAFF = {"dashboard": 2, "devices": 3, "device_filter": 3, "device_page": 2, "device": 4,
         "supplies": 1, "alerts": 1, "statements": 2, "statement": 2, "orders": 2, "order": 2,
         "customers": 1}  # fmt: skip
PEOPLE = [
    Person("support@northwind.demo", "reseller support",
           {**STAFF, "statements": 0, "statement": 0, "orders": 3, "order": 3}),
    Person("admin@northwind.demo", "reseller admin", STAFF),
    Person("finance@northwind.demo", "reseller finance",
           {"dashboard": 1, "statements": 4, "statement_filter": 2, "statement": 5, "devices": 1,
            "device": 1}),
    Person("admin@southpoint.demo", "reseller admin (second reseller)", STAFF),
    Person("office@harbour.demo", "customer admin",
           {"dashboard": 2, "devices": 2, "device_filter": 1, "device": 3, "supplies": 1,
            "statements": 1, "statement": 1, "orders": 2, "order": 2}),
    Person("buyer@kessler.demo", "customer buyer",
           {"dashboard": 1, "devices": 1, "device": 2, "orders": 3, "order": 3}),
]  # fmt: skip
DEVICE_FILTERS = [
    {"status": "online"},
    {"status": "offline"},
    {"status": "warning"},
    {"low": "1"},
    {"q": "DesignJet"},
    {"q": "LaserJet"},
    {"sort": "-last_seen"},
    {"sort": "status"},
    {"sort": "customer"},
]


class Visit:
    """What one tab of a person does: pick an action by weight, follow links it has seen."""

    def __init__(self, browser: Browser, person: Person, rng: random.Random) -> None:
        self.browser, self.person, self.rng = browser, person, rng
        self.devices: list[int] = []
        self.statements: list[int] = []
        self.orders: list[int] = []
        self.device_pages = 1
        self.customers: list[str] = []

    def step(self) -> None:
        names = list(self.person.actions)
        name = self.rng.choices(names, weights=[self.person.actions[n] for n in names])[0]
        getattr(self, f"do_{name}")()

    def get(self, path: str, route: str, htmx: bool = False) -> Answer | None:
        return self.browser.call("GET", path, route=route, htmx=htmx)

    def _seen_devices(self, page: Answer | None) -> None:
        found = ids(page, r'href="/devices/(\d+)/"')
        if found:
            self.devices = found
        self.device_pages = max(self.device_pages, last_page(page)) if page else self.device_pages

    def do_dashboard(self) -> None:
        self.get("/", "GET /")

    def do_devices(self) -> None:
        page = self.get("/devices/", "GET /devices/")
        self._seen_devices(page)
        if page is not None:
            self.customers = options(page, "customer")

    def do_device_filter(self) -> None:
        query = dict(self.rng.choice(DEVICE_FILTERS))
        if self.customers and self.rng.random() < 0.3:
            query = {"customer": self.rng.choice(self.customers)}
        self._seen_devices(
            self.get(f"/devices/?{urlencode(query)}", "GET /devices/?filter (htmx)", htmx=True)
        )

    def do_device_page(self) -> None:
        number = self.rng.randint(1, self.device_pages)
        self._seen_devices(
            self.get(f"/devices/?page={number}", "GET /devices/?page= (htmx)", htmx=True)
        )

    def do_device(self) -> None:
        if not self.devices:
            return self.do_devices()
        self.get(f"/devices/{self.rng.choice(self.devices)}/", "GET /devices/<id>/")

    def do_supplies(self) -> None:
        self.get("/supplies/", "GET /supplies/")

    def do_alerts(self) -> None:
        self.get("/alerts/", "GET /alerts/")

    def do_customers(self) -> None:
        self.get("/customers/", "GET /customers/")

    def do_statements(self) -> None:
        page = self.get("/billing/statements/", "GET /billing/statements/")
        self.statements = ids(page, r'href="/billing/statements/(\d+)/"') or self.statements

    def do_statement_filter(self) -> None:
        query = self.rng.choice([{"status": "draft"}, {"status": "final"}])
        page = self.get(
            f"/billing/statements/?{urlencode(query)}", "GET /billing/statements/?status="
        )
        self.statements = ids(page, r'href="/billing/statements/(\d+)/"') or self.statements

    def do_statement(self) -> None:
        if not self.statements:
            return self.do_statements()
        self.get(
            f"/billing/statements/{self.rng.choice(self.statements)}/",
            "GET /billing/statements/<id>/",
        )

    def do_orders(self) -> None:
        page = self.get("/orders/", "GET /orders/")
        self.orders = ids(page, r'href="/orders/(\d+)/"') or self.orders

    def do_order(self) -> None:
        if not self.orders:
            return self.do_orders()
        self.get(f"/orders/{self.rng.choice(self.orders)}/", "GET /orders/<id>/")

    def place_order(self) -> None:
        """The buyer's order form: a product for one of their sites, placed at once."""
        form = self.get("/orders/new/", "GET /orders/new/")
        if form is None:
            return
        sites, products = options(form, "site"), options(form, "product")
        if not sites or not products:
            self.browser.recorder.record(
                "POST /orders/new/", 0.0, "order form without sites or products"
            )
            return
        answer = self.browser.call(
            "POST",
            "/orders/new/",
            route="POST /orders/new/",
            form={
                "csrfmiddlewaretoken": csrf_token(form),
                "site": self.rng.choice(sites),
                "product": self.rng.choice(products),
                "quantity": str(self.rng.randint(1, 3)),
                "note": "Placed by the load test.",
                "place": "1",
            },
            expect=(302,),
        )
        if answer is not None:
            self.get(urlsplit(answer.headers["location"]).path, "GET /orders/<id>/")

    def export_statement(self) -> None:
        """One statement as CSV and as PDF, as finance sends it to a customer."""
        if not self.statements:
            self.do_statements()
        if not self.statements:
            self.browser.recorder.record("GET statement.csv", 0.0, "no statement to export")
            return
        base = f"/billing/statements/{self.statements[0]}"

        def is_csv(answer: Answer) -> str | None:
            ok = (
                answer.headers.get("content-type", "").startswith("text/csv")
                and b"," in answer.body
            )
            return None if ok else f"not a CSV: {answer.headers} {answer.body[:200]!r}"

        def is_pdf(answer: Answer) -> str | None:
            ok = answer.body.startswith(b"%PDF")
            return None if ok else f"not a PDF: {answer.headers} {answer.body[:200]!r}"

        self.browser.call(
            "GET", f"{base}/statement.csv", route="GET .../statement.csv", check=is_csv
        )
        pdf = f"{base}/statement.pdf"
        answer = self.browser.call(
            "GET",
            pdf,
            route="GET .../statement.pdf",
            expect=(200, 202),
            check=lambda answer: None if answer.status == 202 else is_pdf(answer),
        )
        if answer is not None and answer.status == 202:
            self._pdf_follow(pdf, is_pdf)

    def _pdf_follow(self, pdf: str, is_pdf: Callable[[Answer], str | None]) -> None:
        """A big statement renders on the pdf queue: poll its state as the page does (htmx,
        every 2 s), then download it."""
        deadline = time.monotonic() + PDF_WAIT_S
        while time.monotonic() < deadline:
            time.sleep(2)
            state = self.browser.call("GET", pdf, route="GET .../statement.pdf (state)", htmx=True)
            if state is None:  # counted by call()
                return
            if 'data-state="failed"' in state.text():
                self.browser.recorder.record("PDF rendering", 0.0, f"failed: {state.text()[:300]}")
                return
            if 'data-state="ready"' in state.text():
                self.browser.call("GET", pdf, route="GET .../statement.pdf", check=is_pdf)
                return
        self.browser.recorder.record("PDF rendering", 0.0, f"not ready in {PDF_WAIT_S} s")


@dataclass
class Chore:
    """Something a tab does besides browsing: first at `due`, then every `every` s (0: once)."""

    due: float
    every: float
    action: Callable[[], None]


def browse(visit: Visit, *, stop: threading.Event, think: float, chores: list[Chore]) -> None:
    """One tab until `stop`: a click, a think time, and each chore when it is due."""
    while not stop.is_set():
        now = time.monotonic()
        for chore in chores:
            if chore.due <= now:
                chore.action()
                chore.due = now + chore.every if chore.every else float("inf")
        visit.step()
        stop.wait(think * visit.rng.uniform(0.5, 1.5))


# --- Collectors ----------------------------------------------------------------------------------


@dataclass
class Batch:
    body: bytes
    snapshot_ids: list[str]


def batches_build(collector: int, count: int) -> list[Batch]:
    """`count` gzip batches of one poll of 100 large-format printers each (the ingest
    benchmark's shape), in time order, ending an hour ago."""
    from devices import simulator

    model = simulator.MODELS[3]
    fleet = [
        simulator.Printer(
            serial=f"LOAD{collector:02d}{n:04d}",
            model=model,
            ip=f"10.{200 + collector}.0.{n + 1}",
            rng=random.Random(collector * 1000 + n),
        )
        for n in range(SNAPSHOTS_PER_BATCH)
    ]
    end = datetime.now(tz=UTC) - timedelta(hours=1)
    built: list[Batch] = []
    # Offline spells leave a poll short; the next poll's first snapshots fill the batch.
    snapshots = simulator.history(fleet, days=count / 24 * 1.3 + 1, interval_minutes=60, end=end)
    for chunk in simulator.batches(snapshots, SNAPSHOTS_PER_BATCH):
        if len(chunk) < SNAPSHOTS_PER_BATCH or len(built) == count:
            break
        built.append(Batch(simulator.encode_batch(chunk), [s["snapshot_id"] for s in chunk]))
    return built


@dataclass
class Telemetry:
    lock: threading.Lock = field(default_factory=threading.Lock)
    batches: int = 0
    acked_batches: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    acked_ids: list[str] = field(default_factory=list)
    late: int = 0


def collect(
    *,
    port: int,
    credential: dict[str, str],
    batches: list[Batch],
    period: float,
    phase: float,
    stop: threading.Event,
    recorder: Recorder,
    telemetry: Telemetry,
) -> None:
    """One collector: a signed batch every `period` seconds on its own clock."""
    from devices.simulator import signed_headers

    route = f"POST {TELEMETRY_PATH}"
    next_at = time.monotonic() + phase
    for batch in batches:
        if stop.wait(max(0.0, next_at - time.monotonic())):
            return
        now = time.monotonic()
        if now - next_at > period / 2:
            with telemetry.lock:
                telemetry.late += 1
        next_at = max(next_at + period, now)
        headers = signed_headers(
            key_id=credential["key_id"],
            secret=credential["secret"],
            method="POST",
            path=TELEMETRY_PATH,
            body=batch.body,
        )
        headers |= {"Content-Type": "application/json", "Content-Encoding": "gzip"}
        started = time.perf_counter()
        try:
            answer = http_send(port, "POST", TELEMETRY_PATH, batch.body, headers)
        except (OSError, http.client.HTTPException) as error:
            recorder.record(route, time.perf_counter() - started, f"{type(error).__name__} {error}")
            with telemetry.lock:
                telemetry.batches += 1
            continue
        seconds = time.perf_counter() - started
        problem = None if answer.status == 202 else _error(answer, "POST", TELEMETRY_PATH)
        with telemetry.lock:
            telemetry.batches += 1
            if problem is None:
                result = json.loads(answer.body)
                refused = {item["index"] for item in result["rejected"]}
                telemetry.acked_batches += 1
                telemetry.accepted += result["accepted"]
                telemetry.duplicates += result["duplicates"]
                telemetry.rejected += len(refused)
                telemetry.acked_ids += [
                    sid for i, sid in enumerate(batch.snapshot_ids) if i not in refused
                ]
                if refused:
                    problem = f"202 with {len(refused)} snapshots refused: {result['rejected'][:2]}"
        recorder.record(route, seconds, problem)
    if not stop.is_set():
        print(f"collector {credential['key_id']}: ran out of batches before the end", flush=True)


def snapshots_in_db(stack: Stack, acked: list[str], key_ids: list[str]) -> tuple[int, int]:
    """(acknowledged snapshot ids found, snapshots stored from the load's collectors)."""
    import psycopg

    with psycopg.connect(stack.postgres.url) as conn:
        conn.execute("CREATE TEMP TABLE acked (id uuid)")
        with conn.cursor().copy("COPY acked (id) FROM STDIN") as copy:
            for snapshot_id in acked:
                copy.write_row((snapshot_id,))
        found = conn.execute(
            "SELECT count(DISTINCT a.id) FROM acked a JOIN devices_snapshot s"
            " ON s.snapshot_id = a.id"
        ).fetchone()
        stored = conn.execute(
            "SELECT count(*) FROM devices_snapshot s"
            " JOIN devices_telemetrybatch b ON b.id = s.batch_id"
            " JOIN devices_credential c ON c.id = b.credential_id WHERE c.key_id = ANY(%s)",
            [key_ids],
        ).fetchone()
    return int(found[0]) if found else 0, int(stored[0]) if stored else 0


# --- Machine and memory -------------------------------------------------------------------------


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def private_bytes(pid: int) -> int:
    """Anonymous resident memory (Linux RssAnon): a process's own, without shared pages."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def memory(stack: Stack) -> dict[str, int]:
    """The stack's RSS per process, plus PostgreSQL's private memory: each backend's RSS counts
    the shared buffers it has touched, so the cluster's summed RSS climbs while they fill (up
    to shared_buffers per backend) even when no backend holds on to memory of its own."""
    return stack.rss() | {
        "postgres private": sum(private_bytes(pid) for pid in stack.postgres.pids())
    }


def rss_self() -> int:
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE")


Sample = tuple[float, dict[str, int]]  # (seconds into the run, {process: RSS bytes})


def _slope(points: list[tuple[float, float]]) -> float | None:
    """MB per minute of a least-squares line through (minute, MB) points."""
    if len(points) < 3:
        return None
    return statistics.linear_regression(*zip(*points, strict=True)).slope


def memory_report(samples: list[Sample], settled_s: float) -> tuple[list[str], int]:
    """A row per process: start, a few samples between, end, the slope over the whole run and
    over the settled part (from `settled_s` on), and a verdict on the latter; and how many
    processes grow."""
    names = list(dict.fromkeys(name for _, rss in samples for name in rss))
    picks = sorted({round(i * (len(samples) - 1) / 5) for i in range(6)})
    shown = [samples[i] for i in picks]
    head = "".join(f"{f't+{t / 60:.1f}m':>9}" for t, _ in shown)
    lines = [f"{'process':<24}{head}  {'MB/min':>7}{f'from {settled_s / 60:.1f}m':>11}  verdict"]
    growing = 0
    for name in names:
        points = [(t / 60, rss[name] / 2**20) for t, rss in samples if name in rss]
        cells = "".join(
            f"{rss[name] / 2**20:>9.1f}" if name in rss else f"{'-':>9}" for _, rss in shown
        )
        whole = _slope(points)
        settled = [p for p in points if p[0] * 60 >= settled_s]
        slope = _slope(settled)
        if slope is None:
            verdict = "too few samples"
        else:
            level = statistics.fmean(mb for _, mb in settled)
            flat = slope * 10 <= max(2.0, 0.02 * level)
            verdict = "flat" if flat else "GROWS"
            growing += not flat
        if name not in samples[-1][1]:
            verdict = "GONE before the end (restarted?)"
        elif name not in samples[0][1]:
            verdict += ", new during the run"
        slopes = "".join(
            f"{'-' if value is None else f'{value:.2f}':>{width}}"
            for value, width in ((whole, 7), (slope, 11))
        )
        lines.append(f"{name:<24}{cells}  {slopes}  {verdict}")
    return lines, growing


def log_errors(stack: Stack, offsets: dict[Path, int]) -> tuple[list[str], Counter[str]]:
    """What the stack logged since `offsets`: the error and traceback lines of gunicorn, Celery
    and the rest, and PostgreSQL's statement errors counted by message. The latter are not
    failures by themselves: a race the application expects (two tasks inserting the same
    forecast row, one losing on the unique key and moving on) is logged there too."""
    app: list[str] = []
    database: Counter[str] = Counter()
    for path, offset in offsets.items():
        try:
            with path.open("rb") as f:
                f.seek(offset)
                text = f.read()
        except OSError:
            continue
        for line in text.splitlines():
            if path == stack.postgres.log:
                found = PG_ERROR.search(line)
                if found:
                    database[re.sub(r"\d+", "N", found.group(1).decode(errors="replace"))] += 1
            elif LOG_ERROR.search(line):
                app.append(f"{path.name}: {line.decode(errors='replace')[:300]}")
    return app, database


TASK_DONE = re.compile(rb"Task ([\w.]+)\[[^\]]+\] succeeded in ([0-9.]+)s")


def task_times(stack: Stack, offsets: dict[Path, int]) -> list[str]:
    """Per task name, from the worker's log since `offsets`: runs, mean, max and total seconds.
    Says which tasks hold the worker when the queue grows."""
    path = stack.worker.log
    with path.open("rb") as f:
        f.seek(offsets.get(path, 0))
        done = TASK_DONE.findall(f.read())
    times: dict[str, list[float]] = {}
    for name, seconds in done:
        times.setdefault(name.decode(), []).append(float(seconds))
    lines = [f"{'task':<48}{'runs':>6}{'mean s':>9}{'max s':>9}{'total s':>9}"]
    for name, values in sorted(times.items(), key=lambda item: -sum(item[1])):
        lines.append(
            f"{name:<48}{len(values):>6}{statistics.fmean(values):>9.2f}{max(values):>9.2f}"
            f"{sum(values):>9.0f}"
        )
    return lines


def log_offsets(stack: Stack) -> dict[Path, int]:
    paths = [*sorted(stack.logs.glob("*.log")), stack.postgres.log]
    return {p: p.stat().st_size for p in paths if p.exists()}


# --- The run -------------------------------------------------------------------------------------


def totp_for(stack: Stack) -> Callable[[str], str]:
    """The current code from `manage.py totp_code`, taken early in its 30-s window: allauth
    accepts a code in its own window only, and only once per user."""

    def code(email: str) -> str:
        # manage.py takes seconds to start on a busy machine: a code whose window ended while
        # it started (or that has less than 5 s left to reach the server) is taken again.
        while True:
            left = TOTP_PERIOD_S - time.time() % TOTP_PERIOD_S
            if left < 10:
                time.sleep(left + 0.5)
            window = int(time.time()) // TOTP_PERIOD_S
            value = _manage(stack, "totp_code", email, debug=True).strip()
            now = time.time()
            if int(now) // TOTP_PERIOD_S == window and TOTP_PERIOD_S - now % TOTP_PERIOD_S > 5:
                return value

    return code


def progress(
    *,
    started: float,
    duration: float,
    every: float,
    stop: threading.Event,
    recorder: Recorder,
    telemetry: Telemetry,
    stack: Stack,
    samples: list[Sample],
) -> None:
    """A line and an RSS sample every `every` seconds until `stop`."""
    last = started
    while not stop.wait(every - (time.monotonic() - started) % every):
        now = time.monotonic()
        events = recorder.since(last)
        ordered = sorted(seconds for _, seconds, _ in events)
        errors = sum(not ok for _, _, ok in recorder.since(started))
        rss = memory(stack)
        samples.append((now - started, rss))
        with telemetry.lock:
            acked, batches = len(telemetry.acked_ids), telemetry.batches
        tasks = queued_text(queued(stack))
        print(
            f"[{now - started:5.0f}/{duration:.0f} s] {len(events) / (now - last):5.1f} req/s, "
            f"p95 {percentile(ordered, 0.95) * 1000:4.0f} ms, errors {errors}, "
            f"batches {batches}, snapshots acked {acked:,}, tasks queued {tasks}, "
            f"RSS {(sum(rss.values()) - rss['postgres private']) / 2**20:,.0f} MB, "
            f"load {loadavg()}",
            flush=True,
        )
        last = now


def run(
    stack: Stack, args: argparse.Namespace, credentials: list[dict[str, str]]
) -> tuple[Recorder, Telemetry, list[Sample], float]:
    """Sign everybody in, build the batches, then the timed phase; returns what was recorded."""
    port = urlsplit(stack.web.base_url).port or 80
    recorder, telemetry = Recorder(), Telemetry()
    per_collector = int(args.duration * args.batches_per_second / len(credentials) * 1.2) + 10
    print(f"building {len(credentials)} x {per_collector} telemetry batches ...", flush=True)
    batches = [batches_build(n, per_collector) for n in range(len(credentials))]

    totp = totp_for(stack)
    browsers = []
    for person in PEOPLE:
        browser = Browser(port=port, recorder=recorder, email=person.email)
        browser.login(totp)
        browsers.append(browser)
    print(f"signed in {len(browsers)} people: " + ", ".join(p.email for p in PEOPLE), flush=True)

    stop = threading.Event()
    period = len(credentials) / args.batches_per_second
    threads = [
        threading.Thread(
            target=collect,
            kwargs={
                "port": port,
                "credential": credential,
                "batches": mine,
                "period": period,
                "phase": period * n / len(credentials),
                "stop": stop,
                "recorder": recorder,
                "telemetry": telemetry,
            },
            name=f"collector-{n}",
        )
        for n, (credential, mine) in enumerate(zip(credentials, batches, strict=True))
    ]
    started = time.monotonic()
    for n, (person, browser) in enumerate(zip(PEOPLE, browsers, strict=True)):
        for tab in range(args.tabs):
            visit = Visit(browser, person, random.Random(n * 100 + tab))
            chores: list[Chore] = []
            if person.role == "customer buyer" and tab == 0:
                chores.append(
                    Chore(started + args.order_every / 2, args.order_every, visit.place_order)
                )
            if person.role == "reseller finance" and tab == 0:
                chores.append(Chore(started + args.duration * EXPORT_AT, 0, visit.export_statement))
            threads.append(
                threading.Thread(
                    target=browse,
                    args=(visit,),
                    kwargs={"stop": stop, "think": args.think, "chores": chores},
                    name=f"{person.email}-{tab}",
                )
            )
    samples: list[Sample] = [(0.0, memory(stack))]
    monitor = threading.Thread(
        target=progress,
        kwargs={
            "started": started,
            "duration": args.duration,
            "every": args.sample,
            "stop": stop,
            "recorder": recorder,
            "telemetry": telemetry,
            "stack": stack,
            "samples": samples,
        },
    )
    for thread in [*threads, monitor]:
        thread.start()
    stop.wait(args.duration)
    stop.set()
    for thread in [*threads, monitor]:
        thread.join(timeout=HTTP_TIMEOUT_S + 10)
    elapsed = time.monotonic() - started
    samples.append((elapsed, memory(stack)))
    return recorder, telemetry, samples, elapsed


def route_table(recorder: Recorder, seconds: float) -> list[str]:
    lines = [
        f"{'route':<38}{'requests':>9}{'req/s':>8}{'p50 ms':>8}{'p95 ms':>8}{'p99 ms':>8}"
        f"{'max ms':>8}{'errors':>7}"
    ]
    total, pages = Route(), Route()
    for name in sorted(recorder.routes):
        stats = recorder.routes[name]
        for summed in (total, pages) if is_page(name) else (total,):
            summed.latencies += stats.latencies
            summed.errors += stats.errors
        lines.append(_route_line(name, stats, seconds))
    lines.append(_route_line("portal pages (people)", pages, seconds))
    lines.append(_route_line("all routes", total, seconds))
    return lines


def is_page(route: str) -> bool:
    return not route.startswith(NOT_PAGES)


def pages_p95(recorder: Recorder) -> float:
    latencies = [s for name, r in recorder.routes.items() if is_page(name) for s in r.latencies]
    return percentile(sorted(latencies), 0.95)


def _route_line(name: str, stats: Route, seconds: float) -> str:
    ordered = sorted(stats.latencies)
    ms = [percentile(ordered, q) * 1000 for q in (0.5, 0.95, 0.99, 1.0)]
    return (
        f"{name:<38}{len(ordered):>9}{len(ordered) / seconds:>8.2f}"
        + "".join(f"{value:>8.0f}" for value in ms)
        + f"{stats.errors:>7}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=600, help="seconds of traffic")
    parser.add_argument("--collectors", type=int, default=4, help="collectors posting telemetry")
    parser.add_argument(
        "--batches-per-second", type=float, default=2.0, help="target rate of all collectors"
    )
    parser.add_argument("--tabs", type=int, default=2, help="browser tabs per portal user")
    parser.add_argument("--think", type=float, default=1.0, help="mean seconds between clicks")
    parser.add_argument("--order-every", type=float, default=60, help="seconds between orders")
    parser.add_argument("--sample", type=float, default=30, help="seconds between RSS samples")
    parser.add_argument("--web-workers", type=int, default=3, help="gunicorn sync workers")
    parser.add_argument("--celery-concurrency", type=int, default=2)
    parser.add_argument("--customers", type=int, default=10, help="extra customers per reseller")
    parser.add_argument("--printers", type=int, default=5, help="printers per extra customer")
    parser.add_argument("--days", type=int, default=70, help="days of seeded fleet history")
    parser.add_argument(
        "--drain", type=float, default=300, help="seconds to wait for the task queue after"
    )
    parser.add_argument("--keep", action="store_true", help="keep the stack's working directory")
    parser.add_argument(
        "--smoke", action="store_true", help="CI: every kind of traffic once, a tiny stack"
    )
    args = parser.parse_args()
    if args.smoke:
        # Same verdict, smallest sizes: 20 s of traffic with an order and the export in it.
        args.duration, args.collectors, args.batches_per_second = 20, 1, 0.5
        args.tabs, args.think, args.order_every, args.sample = 1, 0.5, 8, 5
        args.web_workers, args.celery_concurrency = 1, 1
        args.customers, args.printers, args.days, args.drain = 1, 1, 3, 120

    print(f"load average before: {loadavg()} ({os.cpu_count()} cores)", flush=True)
    workdir = Path(tempfile.mkdtemp(prefix="inkmeter-load-"))
    with Stack(
        workdir,
        web_workers=args.web_workers,
        celery_concurrency=args.celery_concurrency,
        beat=True,
        keep_workdir=args.keep,
    ) as stack:
        print(f"stack up at {stack.web.base_url} (workdir {workdir}); seeding ...", flush=True)
        credentials = seed(stack, args)
        counts = seeded_counts(stack)
        left, waited = queue_drain(stack, timeout=600)
        print(
            f"seed follow-up tasks: the worker took {waited:.0f} s more ({left} left)", flush=True
        )
        offsets = log_offsets(stack)
        smtp_before = len(stack.smtp.paths())
        load_start = loadavg()
        recorder, telemetry, samples, seconds = run(stack, args, credentials)
        load_end = loadavg()
        backlog = queued(stack)
        left, drained = queue_drain(stack, timeout=args.drain)
        found, stored = snapshots_in_db(
            stack, telemetry.acked_ids, [c["key_id"] for c in credentials]
        )
        logged, database_errors = log_errors(stack, offsets)
        tasks = task_times(stack, offsets)
        emails = len(stack.smtp.paths()) - smtp_before

    rate = args.batches_per_second * SNAPSHOTS_PER_BATCH
    acked = len(telemetry.acked_ids)
    errors = sum(r.errors for r in recorder.routes.values())
    print()
    print(f"== Inkmeter load test: {seconds:.0f} s of mixed traffic ==")
    print(
        f"load average: {load_start} at the start, {load_end} at the end ({os.cpu_count()} cores)"
    )
    print(
        f"stack: gunicorn {args.web_workers} sync workers, Celery worker concurrency "
        f"{args.celery_concurrency} + beat, own PostgreSQL 15 (fsync on) and Redis, SMTP sink"
    )
    print("seeded: " + "\n        ".join(counts))
    print(
        f"traffic: {len(credentials)} collectors x 100 printers, target {args.batches_per_second:g}"
        f" batches/s = {rate:,.0f} snapshots/s (sent {telemetry.batches / seconds:.2f}/s, "
        f"{telemetry.late} batches late by more than half a period); {len(PEOPLE)} people x "
        f"{args.tabs} tabs, think {args.think:g} s; an order every {args.order_every:g} s; "
        f"one statement export at t+{args.duration * EXPORT_AT:.0f} s"
    )
    print()
    print("\n".join(route_table(recorder, seconds)))
    print()
    missing = acked - found
    print(
        f"telemetry: {telemetry.acked_batches}/{telemetry.batches} batches acknowledged; "
        f"snapshots accepted {telemetry.accepted:,}, duplicates {telemetry.duplicates}, "
        f"refused {telemetry.rejected}; acknowledged {acked:,}, found in the database "
        f"{found:,} (missing {missing}); stored from the load's collectors {stored:,}"
    )
    print(
        f"tasks: {queued_text(backlog)} queued when the traffic stopped, drained in "
        f"{drained:.0f} s ({left} left after --drain {args.drain:g} s); {emails} emails sent"
    )
    print()
    print("tasks the worker ran during the run and the drain (from its log):")
    print("\n".join(tasks))
    print()
    print(
        "memory (RSS MB; postgres is the cluster's RSS summed, postgres private its processes'"
        " own memory without shared buffers):"
    )
    lines, growing = memory_report(samples, settled_s=args.duration * SETTLED_FROM)
    print("\n".join(lines))
    print(f"load generator itself: {rss_self() / 2**20:.0f} MB")
    if errors:
        print()
        print("first errors per route:")
        for name, stats in sorted(recorder.routes.items()):
            for sample in stats.samples:
                print(f"  {name}: {sample}")
    if logged:
        print()
        print(f"error lines in the stack's logs ({len(logged)}), the first ten:")
        for line in logged[:10]:
            print(f"  {line}")
    if database_errors:
        print()
        print("PostgreSQL statement errors during the run (see log_errors), by message:")
        for message, count in database_errors.most_common(10):
            print(f"  {count:>6} x {message[:200]}")
    failed = errors > 0 or missing > 0 or stored != acked or bool(logged)
    print()
    p95 = pages_p95(recorder)
    print(
        f"portal pages p95 {p95 * 1000:.0f} ms (budget {PAGES_P95_BUDGET_S * 1000:.0f} ms: "
        f"{'met' if p95 < PAGES_P95_BUDGET_S else 'NOT met'}) while collectors sent "
        f"{telemetry.accepted / seconds:,.0f} snapshots/s; queue drained in {drained:.0f} s"
    )
    print(
        f"verdict: {'FAIL' if failed else 'PASS'} ({errors} request errors, {missing} "
        f"acknowledged snapshots missing, {stored - acked:+d} stored beyond the acknowledged, "
        f"{len(logged)} logged errors); memory grows in {growing} processes"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
