"""Page benchmark (issue 12, point 3): server time and queries of the portal pages of one big
reseller, against the budget of DESIGN.md (any portal list page at 10,000 devices: p95 < 100 ms,
a query count that does not grow with the fleet).

It builds, on PostgreSQL with the schema, row-level security and monthly partitions exactly as
`migrate` creates them, one reseller with (by default) 10,000 devices of 400 customers on
about 530 sites, four toner supplies per reporting device (39,800; 50 devices never reported),
open and cleared alerts, 10,000 orders with their lines, a catalog, a contract per customer
and three months of statements, and 90 days of history. Then, signed in as the reseller admin
(with the second factor given in the session, as the pages require of that role), it requests
each page `--requests` times, round-robin so that the load of the shared machine falls on all
alike, and prints p50 and p95 of the server time beside the 100 ms bound, with the page's
queries and the load average.

**What history is built, and why.** 90 days of hourly snapshots of 40,000 supplies are 86 M
supply readings (and 130 M counter readings): more than this 2-core box can build and hold
for a benchmark. The pages do not need them: since issue 12 the device detail and the
dashboard read daily rollups, not raw readings. So the benchmark builds:

- for every supply, its daily series for 90 days (`orders_supplylevelday`, what the forecasts
  are fitted to and what the supply chart draws);
- for every device, its page counter per day for 90 days (`devices_devicepageday`) and the
  customers' pages per day (`devices_customerpageday`), by the same rebuild that the migration
  runs over an installation's readings (`devices.rollup_services.page_days_rebuild`), from
- raw page-counter readings: one a day for the whole fleet (what the rebuild and the billing
  code read), and hourly readings of every counter and supply for the `--detail-devices`
  devices whose detail pages are requested, with their jobs.

A page that read raw readings would therefore look faster here than at full density for the
fleet, except on the detail devices, which have their full 2,160 hourly snapshots' worth of
rows; docs/scale.md ("Portal pages") says which pages read what.

The server time is measured in this process, around Django's test Client (the whole request:
middleware, session, tenant context and second factor, the view, the template), with
DEBUG=False against the benchmark's own PostgreSQL cluster (benchmarks/stack.py), or the
database at `--url`; query counts come from a first, untimed pass. No cache server: Django's
local-memory cache, as without REDIS_URL.

    .venv/bin/python benchmarks/pages.py [--devices 10000] [--requests 20]
    .venv/bin/python benchmarks/pages.py --url postgres://postgres@127.0.0.1:5432/h_x [--keep]
    .venv/bin/python benchmarks/pages.py --smoke      # a small fleet, a few seconds of requests

The full run exits non-zero when a page's p95 is over the budget or a page does not answer
200; the smoke run only when a page fails.
"""

# The SQL of this module is put together from its own constants; every value is a parameter.
# ruff: noqa: S608

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

BUDGET_MS = 100.0
# What a request spends on its transaction and its row-level-security scope (portal/rls.py), as
# tests/conftest.py leaves out of query budgets: the queries counted are the rest.
BOOKKEEPING = re.compile(r"^\s*(?:(?:RELEASE |ROLLBACK TO )?SAVEPOINT |SELECT was\.reseller)")
MODELS = [
    "HP LaserJet Enterprise M507",
    "HP Color LaserJet Enterprise M555",
    "HP Color LaserJet Pro M454",
    "HP LaserJet Pro M404",
    "HP Color LaserJet Enterprise MFP M578",
    "HP LaserJet Enterprise MFP M528",
    "Kyocera ECOSYS P3155dn",
    "Kyocera ECOSYS M5526cdw",
    "Brother HL-L6400DW",
    "Brother MFC-L8900CDW",
    "Lexmark MS826de",
    "Lexmark CX825",
]
COLOURS = ["black", "cyan", "magenta", "yellow"]
# Counters of the hourly history, as shares of the page counter.
COUNTERS = [
    ("impressions.total", 1.0),
    ("impressions.mono", 0.7),
    ("impressions.color", 0.3),
    ("sheets.total", 0.6),
    ("scans.total", 0.1),
    ("copies.total", 0.05),
]


def loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


@dataclass(frozen=True)
class Size:
    devices: int
    customers: int
    days: int
    detail_devices: int
    orders: int

    @property
    def never(self) -> int:
        """Devices that never reported: the last ones by serial."""
        return max(1, self.devices // 200)


# --- Database -----------------------------------------------------------------------------------


def recreate_database(url: str) -> None:
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def setup_django(url: str, var_dir: Path) -> None:
    os.environ.update(
        {
            "DATABASE_URL": url,
            "DEBUG": "False",
            "SECRET_KEY": "benchmark-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz",
            "ALLOWED_HOSTS": "testserver,127.0.0.1,localhost",
            "SECURE_SSL_REDIRECT": "False",
            "SECURE_HSTS_SECONDS": "0",
            "CONN_MAX_AGE": "600",
            "LOG_LEVEL": "WARNING",
            "INKMETER_VAR_DIR": str(var_dir),
            "DJANGO_SETTINGS_MODULE": "portal.settings",
        }
    )
    for name in ("REDIS_URL", "EMAIL_URL", "DATABASE_OWNER_URL", "SECRET_KEY_FILE"):
        os.environ.pop(name, None)
    import django

    django.setup()


def migrate() -> None:
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)


# --- The fleet ----------------------------------------------------------------------------------


def sql(statement: str, params: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(statement, params or {})
        return list(cursor.fetchall()) if cursor.description else []


def timed(timings: dict[str, float], what: str, step: Callable[[], Any]) -> Any:
    started = time.perf_counter()
    result = step()
    timings[what] = time.perf_counter() - started
    print(f"  built  {what:<58} {timings[what]:7.1f} s", flush=True)
    return result


def build(size: Size) -> None:
    """Everything, as the tables' owner (a superuser, so the wall does not apply to the bulk
    writes; the pages are then read as the application role, behind it)."""
    from portal import rls

    timings: dict[str, float] = {}
    reseller_id, user_id, plan_version_id = timed(timings, "reseller, admin, plan", _tenant)
    with rls.owner():
        from devices import partitions

        today = datetime.now(UTC).date()
        first = today - timedelta(days=size.days + 1)
        months = (today.year - first.year) * 12 + today.month - first.month
        timed(
            timings,
            "monthly partitions",
            lambda: partitions.partitions_ensure(today=first, ahead=months + 3),
        )
        p = {
            "r": reseller_id,
            "user": user_id,
            "version": plan_version_id,
            "n": size.devices,
            "c": size.customers,
            "d": size.days,
            "never": size.never,
            "detail": size.detail_devices,
            "orders": size.orders,
            "models": MODELS,
        }
        from django.db import transaction

        with transaction.atomic():
            for what, statements in STEPS:
                timed(timings, what, lambda s=statements: [sql(x, p) for x in s])  # type: ignore[misc]
        rebuild = _rollup_rebuild()
        if rebuild is not None:
            with transaction.atomic():
                timed(timings, "page rollups and device figures (as the migration)", rebuild)
        timed(timings, "VACUUM ANALYZE", lambda: sql("VACUUM ANALYZE"))
        counts = sql(
            "SELECT (SELECT count(*) FROM devices_device), (SELECT count(*) FROM devices_supply),"
            " (SELECT count(*) FROM orders_supplylevelday), (SELECT count(*) FROM"
            " devices_counterreading), (SELECT count(*) FROM devices_supplyreading),"
            " (SELECT count(*) FROM devices_alert), (SELECT count(*) FROM orders_order),"
            " (SELECT count(*) FROM billing_statement)"
        )[0]
        print(
            "  rows: {:,} devices, {:,} supplies, {:,} supply days, {:,} counter readings, "
            "{:,} supply readings, {:,} alerts, {:,} orders, {:,} statements".format(*counts)
        )
    print(f"  built in {sum(timings.values()):.0f} s", flush=True)


def _rollup_rebuild() -> Callable[[], Any] | None:
    """What the migration that added the page rollups and the device figures runs, over the
    whole history, where this version of the code has them."""
    try:
        from devices import rollup_services  # type: ignore[attr-defined,unused-ignore]
    except ImportError:
        return None

    def rebuild() -> None:
        rollup_services.page_days_rebuild()
        rollup_services.device_figures_rebuild()

    return rebuild


def _tenant() -> tuple[int, int, int]:
    from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret

    from accounts.models import Membership, Reseller, User
    from billing import services
    from billing.models import PlanVersion
    from portal import rls
    from portal.tenancy import Role, TenantContext

    with rls.system("the benchmark creates its reseller and admin"):
        reseller = Reseller.objects.create(
            name="Bench Printing", slug="bench-pages", support_email="support@bench.test"
        )
        user = User.objects.create_user(email="admin@bench.test", password="bench-password-1")  # noqa: S106
        TOTP.activate(user, generate_totp_secret())
        Membership.unscoped.create(reseller=reseller, user=user, role=Role.RESELLER_ADMIN)
    ctx = TenantContext.system(reseller=reseller)
    with rls.tenant(reseller.pk):
        plan = services.plan_create(
            ctx=ctx,
            name="Bench plan",
            currency="EUR",
            terms=services.plan_terms_demo(date(2025, 1, 1)),
        )
        version = PlanVersion.objects.for_tenant(ctx).get(plan=plan)
    return reseller.pk, user.pk, version.pk


# Each device's serial number n (SN0000042 is 42) drives its pseudo-random properties, so the
# fleet is the same at every run. The last `never` serials never reported.
_N = "substr(d.serial, 3)::int"
# Pages a device prints on day k (of 0..days): fewer at weekends.
_PAGES_A_DAY = f"(40 + mod({_N} * 37, 400)) * CASE WHEN mod(k, 7) IN (5, 6) THEN 0.15 ELSE 1 END"
# A supply's level on (fractional) day t: used at `rate` percent a day from `phase`, replaced
# at empty (a saw tooth).
_RATE = "(0.4 + mod(s.id * 37, 260) / 100.0)"
_PHASE = "mod(s.id * 7919, 100)"


def _level(t: str) -> str:
    used = f"({_PHASE} + ({t}) * {_RATE})"
    return f"round((100 - ({used} - 100 * floor({used} / 100)))::numeric, 1)::float"


# The day k of the history (0 = the first, days = today) at midnight UTC.
_DAY = "((current_date - %(d)s + k)::timestamp AT TIME ZONE 'UTC')"
_DETAIL = (
    f"{_N} < %(n)s - %(never)s AND mod({_N}, GREATEST(1, (%(n)s - %(never)s) / %(detail)s)) = 0"
)

STEPS: list[tuple[str, list[str]]] = [
    (
        "customers, sites, devices, device states",
        [
            "INSERT INTO accounts_customer (reseller_id, name, account_number, billing_email,"
            " notes, created_at, billing_address)"
            " SELECT %(r)s, 'Customer ' || lpad(c::text, 5, '0'), 'K' || lpad(c::text, 5, '0'),"
            " 'billing' || c || '@customer.test', '', now() - interval '400 days', ''"
            " FROM generate_series(0, %(c)s - 1) c",
            "INSERT INTO accounts_site (reseller_id, customer_id, name, address_line1,"
            " address_line2, postal_code, city, country, contact_name, contact_email,"
            " contact_phone, created_at)"
            " SELECT c.reseller_id, c.id, s.name, '', '', '', 'Hamburg', 'DE', '',"
            " 'office' || c.id || '@customer.test', '', now() - interval '400 days'"
            " FROM accounts_customer c CROSS JOIN (VALUES ('HQ', 0), ('Branch', 1)) s(name, n)"
            " WHERE c.reseller_id = %(r)s AND (s.n = 0 OR mod(c.id, 3) = 0)",
            "WITH cust AS (SELECT id, row_number() OVER (ORDER BY id) - 1 AS c"
            "   FROM accounts_customer WHERE reseller_id = %(r)s),"
            " site AS (SELECT id, customer_id,"
            "   row_number() OVER (PARTITION BY customer_id ORDER BY id) - 1 AS k,"
            "   count(*) OVER (PARTITION BY customer_id) AS ks"
            "   FROM accounts_site WHERE reseller_id = %(r)s)"
            " INSERT INTO devices_device (reseller_id, customer_id, site_id, serial, manufacturer,"
            " model, product_number, name, report_interval_minutes, created_at)"
            " SELECT %(r)s, cust.id, site.id, 'SN' || lpad(n::text, 7, '0'),"
            " split_part((%(models)s::text[])[1 + mod(n * 7, 12)], ' ', 1),"
            " (%(models)s::text[])[1 + mod(n * 7, 12)], '',"
            " CASE WHEN mod(n, 10) = 0 THEN 'Printer ' || n ELSE '' END, 60,"
            " now() - interval '400 days'"
            " FROM generate_series(0, %(n)s - 1) n"
            " JOIN cust ON cust.c = mod(n, %(c)s)"
            " JOIN site ON site.customer_id = cust.id AND site.k = mod(n / %(c)s, site.ks)",
            # 4% offline, 3% in error, 5% with a warning; ip, hostname, mac as reported.
            "INSERT INTO devices_devicestate (device_id, reseller_id, customer_id, last_seen_at,"
            " last_snapshot_id, state, detail, firmware, ip, hostname, mac, impressions_total,"
            " is_online, offline_since)"
            f" SELECT d.id, d.reseller_id, d.customer_id,"
            f" CASE WHEN mod({_N}, 25) = 0 THEN now() - interval '3 days'"
            f"   ELSE now() - mod({_N}, 55) * interval '1 minute' END,"
            f" gen_random_uuid(),"
            f" CASE WHEN mod({_N}, 33) = 0 THEN 'error' WHEN mod({_N}, 20) = 0 THEN 'warning'"
            f"   WHEN mod({_N}, 3) = 0 THEN 'printing' ELSE 'idle' END,"
            f" '', '2409A', '10.' || ({_N} / 65536) || '.' || mod({_N} / 256, 256) || '.'"
            f"   || mod({_N}, 256), 'printer-' || {_N} || '.customer.test',"
            f" '00:1b:78:' || lpad(to_hex(mod({_N}, 256)), 2, '0') || ':00:01', NULL,"
            f" mod({_N}, 25) <> 0,"
            f" CASE WHEN mod({_N}, 25) = 0 THEN now() - interval '2 days' END"
            f" FROM devices_device d WHERE d.reseller_id = %(r)s AND {_N} < %(n)s - %(never)s",
        ],
    ),
    (
        "catalog, supplies, forecasts, supply alerts",
        [
            "INSERT INTO orders_product (reseller_id, sku, part_number, name, kind, color,"
            " rated_yield, yield_unit, compatible_models, price, currency, is_active, created_at)"
            " SELECT %(r)s, 'T' || m || '-' || upper(left(c, 1)), 'W' || m || upper(left(c, 1)),"
            " (%(models)s::text[])[m] || ' ' || c || ' toner', 'toner', c, 6000, 'pages',"
            " jsonb_build_array((%(models)s::text[])[m]), 79 + m, 'EUR', true, now()"
            " FROM generate_series(1, 12) m"
            " CROSS JOIN unnest(ARRAY['black', 'cyan', 'magenta', 'yellow']) c",
            "INSERT INTO devices_supply (reseller_id, device_id, supply_key, kind, color,"
            " color_family, description, part_number, serial, manufacturer, is_genuine, unit,"
            " max_capacity, level, level_state, percent, status, expires_on, observed_at,"
            " observed_snapshot_id)"
            " SELECT d.reseller_id, d.id, 'toner-' || c, 'toner', c, c,"
            " initcap(c) || ' toner cartridge', 'W' || (1 + mod(" + _N + " * 7, 12))"
            " || upper(left(c, 1)), 'CRT' || d.id || left(c, 1), 'HP', true, 'percent', 100,"
            " 0, 'ok', 0, 'ok', NULL, st.last_seen_at, st.last_snapshot_id"
            " FROM devices_device d JOIN devices_devicestate st ON st.device_id = d.id"
            " CROSS JOIN unnest(ARRAY['black', 'cyan', 'magenta', 'yellow']) c"
            " WHERE d.reseller_id = %(r)s",
            f"UPDATE devices_supply s SET percent = {_level('%(d)s')},"
            f" level = {_level('%(d)s')} WHERE s.reseller_id = %(r)s",
            f"INSERT INTO orders_supplyforecast (supply_id, reseller_id, customer_id, product_id,"
            f" match, method, is_coarse, days_to_empty, slope_per_day, readings_used,"
            f" cartridge_since, pages_at_install, evaluated_observed_at, computed_at, empties_at,"
            f" fitted_at, fitted_percent, day_percent, day_at, day_steps, folded_until, detector)"
            f" SELECT s.id, s.reseller_id, d.customer_id, p.id, 'part_number', 'theil_sen',"
            f" false, s.percent / {_RATE}, -{_RATE}, 30, NULL, NULL, s.observed_at, now(),"
            f" s.observed_at + s.percent / {_RATE} * interval '1 day', s.observed_at, s.percent,"
            f" s.percent, s.observed_at, 0, s.observed_at,"
            f' \'{{"levels": [], "serial": ""}}\'::jsonb'
            f" FROM devices_supply s JOIN devices_device d ON d.id = s.device_id"
            f" LEFT JOIN orders_product p ON p.reseller_id = s.reseller_id"
            f"   AND p.part_number = s.part_number"
            f" WHERE s.reseller_id = %(r)s",
            "INSERT INTO orders_supplyalert (reseller_id, supply_id, device_id, customer_id,"
            " status, reason, percent, days_to_empty, created_at, sent_at, closed_at,"
            " closed_reason)"
            " SELECT s.reseller_id, s.id, s.device_id, d.customer_id,"
            " CASE WHEN mod(s.id, 3) = 0 THEN 'armed' ELSE 'sent' END, 'reorder_point',"
            " s.percent, f.days_to_empty, now() - mod(s.id, 48) * interval '1 hour',"
            " CASE WHEN mod(s.id, 3) <> 0 THEN now() - mod(s.id, 47) * interval '1 hour' END,"
            " NULL, ''"
            " FROM devices_supply s JOIN devices_device d ON d.id = s.device_id"
            " JOIN orders_supplyforecast f ON f.supply_id = s.id"
            " WHERE s.reseller_id = %(r)s AND s.percent < 10",
        ],
    ),
    (
        "90 days of supply levels per day (orders_supplylevelday)",
        [
            f"INSERT INTO orders_supplylevelday (reseller_id, supply_id, day, percent, at, steps)"
            f" SELECT s.reseller_id, s.id, current_date - %(d)s + k, {_level('k')},"
            f" LEAST({_DAY} + interval '6 hours' + mod(s.device_id, 600) * interval '1 minute',"
            f"   now() - interval '1 minute'), 0"
            f" FROM devices_supply s CROSS JOIN generate_series(0, %(d)s) k"
            f" WHERE s.reseller_id = %(r)s",
        ],
    ),
    (
        "page counter once a day for the fleet (raw readings)",
        [
            # A counter reset (a board swap) on day 45 of every 151st device.
            f"INSERT INTO devices_counterreading (reseller_id, device_id, collected_at, name,"
            f" media_type, color, unit, value)"
            f" SELECT reseller_id, id, at, 'impressions.total', '', '', 'impressions',"
            f" CASE WHEN reset AND k >= 45 THEN 0 ELSE base END + sum(pages) OVER ("
            f"   PARTITION BY id, reset AND k >= 45 ORDER BY k)"
            f" FROM (SELECT d.reseller_id, d.id, k, mod({_N}, 151) = 0 AS reset,"
            f"   10000 + mod({_N} * 7919, 200000) AS base, floor({_PAGES_A_DAY}) AS pages,"
            f"   LEAST({_DAY} + interval '6 hours' + mod({_N}, 600) * interval '1 minute',"
            f"     now() - interval '1 minute') AS at"
            f"   FROM devices_device d CROSS JOIN generate_series(0, %(d)s) k"
            f"   WHERE d.reseller_id = %(r)s AND {_N} < %(n)s - %(never)s AND NOT ({_DETAIL}))"
            f"   AS days",
        ],
    ),
    (
        "hourly counters, supplies and jobs of the detail devices",
        [
            f"INSERT INTO devices_counterreading (reseller_id, device_id, collected_at, name,"
            f" media_type, color, unit, value)"
            f" SELECT reseller_id, id, at, c.name, '', '', 'impressions',"
            f" round((base + total) * c.share)"
            f" FROM (SELECT reseller_id, id, at, base,"
            f"   sum(pages) OVER (PARTITION BY id ORDER BY at) AS total"
            f"   FROM (SELECT d.reseller_id, d.id, 10000 + mod({_N} * 7919, 200000) AS base,"
            f"     {_DAY} + h * interval '1 hour' + mod({_N}, 50) * interval '1 minute' AS at,"
            f"     CASE WHEN h BETWEEN 8 AND 17 THEN floor({_PAGES_A_DAY} / 10) ELSE 0 END"
            f"       AS pages"
            f"     FROM devices_device d CROSS JOIN generate_series(0, %(d)s) k"
            f"     CROSS JOIN generate_series(0, 23) h"
            f"     WHERE d.reseller_id = %(r)s AND {_DETAIL}) AS hours"
            f"   WHERE at < now()) AS totals"
            f" CROSS JOIN (VALUES "
            + ", ".join(f"('{name}', {share})" for name, share in COUNTERS)
            + ") AS c(name, share)",
            f"INSERT INTO devices_supplyreading (reseller_id, device_id, supply_key,"
            f" collected_at, level, max_capacity, level_state, percent, serial)"
            f" SELECT s.reseller_id, s.device_id, s.supply_key, at, {_level('t')}, 100, 'ok',"
            f" {_level('t')}, 'CRT' || s.device_id || left(s.color, 1)"
            f" FROM devices_supply s JOIN devices_device d ON d.id = s.device_id"
            f" CROSS JOIN LATERAL (SELECT at, %(d)s - extract(epoch FROM now() - at) / 86400 AS t"
            f"   FROM generate_series(0, %(d)s * 24) h,"
            f"   LATERAL (SELECT now() - h * interval '1 hour' AS at) a) AS hours"
            f" WHERE s.reseller_id = %(r)s AND {_DETAIL}",
            f'INSERT INTO devices_job (reseller_id, device_id, uuid, type, name, "user",'
            f" status, source, submitted_at, completed_at, pages, copies, print_quality,"
            f" media_type, media_area_m2, printed_area_m2, media_length_m, ink_ml, account_id,"
            f" project_id, application_category, observed_at, observed_snapshot_id)"
            f" SELECT d.reseller_id, d.id, 'job-' || d.id || '-' || j, 'print',"
            f" 'Document ' || j || '.pdf', 'user' || mod(j, 17), 'completed', 'driver',"
            f" now() - j * interval '72 minutes', now() - j * interval '72 minutes'"
            f"   + interval '1 minute', 1 + mod(j, 12), 1, 'normal', 'Plain', NULL, NULL, NULL,"
            f" '{{}}'::jsonb, '', '', '', now() - j * interval '72 minutes', gen_random_uuid()"
            f" FROM devices_device d CROSS JOIN generate_series(1, %(d)s * 20) j"
            f" WHERE d.reseller_id = %(r)s AND {_DETAIL}",
            "UPDATE devices_devicestate st SET impressions_total = r.value"
            " FROM (SELECT DISTINCT ON (device_id) device_id, value FROM devices_counterreading"
            "   WHERE reseller_id = %(r)s AND name = 'impressions.total'"
            "   ORDER BY device_id, collected_at DESC) r"
            " WHERE st.device_id = r.device_id",
        ],
    ),
    (
        "alerts: open ones and 90 days of cleared episodes",
        [
            f"INSERT INTO devices_alert (reseller_id, device_id, code, episode, severity,"
            f" description, first_seen_at, last_seen_at, reported_cleared_at, cleared_at,"
            f" notified_at)"
            f" SELECT d.reseller_id, d.id, 'paper.jam', now() - mod({_N}, 72) * interval '1 hour',"
            f" CASE WHEN mod({_N}, 85) = 0 THEN 'critical' ELSE 'warning' END,"
            f" 'Paper jam in tray ' || (1 + mod({_N}, 3)),"
            f" now() - mod({_N}, 72) * interval '1 hour', now(), NULL, NULL, NULL"
            f" FROM devices_device d"
            f" WHERE d.reseller_id = %(r)s AND mod({_N}, 17) = 0 AND {_N} < %(n)s - %(never)s",
            f"INSERT INTO devices_alert (reseller_id, device_id, code, episode, severity,"
            f" description, first_seen_at, last_seen_at, reported_cleared_at, cleared_at,"
            f" notified_at)"
            f" SELECT d.reseller_id, d.id, 'marker.supply.low', at, 'warning',"
            f" 'Supply low', at, at + interval '2 hours', NULL, at + interval '2 hours', NULL"
            f" FROM devices_device d CROSS JOIN generate_series(0, 8) j"
            f" CROSS JOIN LATERAL (SELECT now() - (j * 10 + mod({_N}, 10)) * interval '1 day'"
            f"   - interval '3 hours' AS at) a"
            f" WHERE d.reseller_id = %(r)s AND mod({_N}, 3) = 0 AND {_N} < %(n)s - %(never)s",
        ],
    ),
    (
        "orders and their lines",
        [
            "WITH cust AS (SELECT c.id, row_number() OVER (ORDER BY c.id) - 1 AS c,"
            "   (SELECT min(s.id) FROM accounts_site s WHERE s.customer_id = c.id) AS site_id"
            "   FROM accounts_customer c WHERE c.reseller_id = %(r)s)"
            " INSERT INTO orders_order (reseller_id, customer_id, site_id, status, source,"
            " currency, note, placed_by_id, carrier, tracking_number, created_at, updated_at)"
            " SELECT %(r)s, cust.id, cust.site_id,"
            " (ARRAY['delivered', 'delivered', 'delivered', 'delivered', 'shipped', 'accepted',"
            "   'submitted', 'pending_approval', 'cancelled', 'draft'])[1 + mod(o, 10)],"
            " (ARRAY['catalog', 'suggested', 'automatic'])[1 + mod(o, 3)], 'EUR', '',"
            " %(user)s, CASE WHEN mod(o, 10) < 5 THEN 'DHL' ELSE '' END,"
            " CASE WHEN mod(o, 10) < 5 THEN 'JD' || lpad(o::text, 12, '0') ELSE '' END,"
            " now() - mod(o * 7, %(d)s * 24) * interval '1 hour',"
            " now() - mod(o * 7, %(d)s * 24) * interval '1 hour' + interval '1 day'"
            " FROM generate_series(0, %(orders)s - 1) o JOIN cust ON cust.c = mod(o, %(c)s)",
            "INSERT INTO orders_orderline (reseller_id, order_id, product_id, supply_id,"
            " quantity, unit_price, line_total, is_open)"
            " SELECT o.reseller_id, o.id, p.id, NULL, 1 + j, p.price, (1 + j) * p.price,"
            " o.status NOT IN ('delivered', 'cancelled', 'rejected')"
            " FROM orders_order o CROSS JOIN generate_series(0, 2) j"
            " JOIN LATERAL (SELECT id, price FROM orders_product"
            "   WHERE reseller_id = o.reseller_id ORDER BY id OFFSET mod(o.id + j * 5, 48) LIMIT 1)"
            "   p ON true"
            " WHERE o.reseller_id = %(r)s AND j <= mod(o.id, 3)",
        ],
    ),
    (
        "contracts and three months of statements",
        [
            "INSERT INTO billing_contract (reseller_id, customer_id, plan_id, reference,"
            " purchase_order, anchor_day, starts_on, ends_on, missing_data, created_at)"
            " SELECT c.reseller_id, c.id, v.plan_id, 'C' || lpad(c.id::text, 6, '0'), '', 1,"
            " date_trunc('month', current_date - 120)::date, NULL, 'estimate', now()"
            " FROM accounts_customer c JOIN billing_planversion v ON v.id = %(version)s"
            " WHERE c.reseller_id = %(r)s",
            "INSERT INTO billing_statement (reseller_id, customer_id, contract_id,"
            " plan_version_id, kind, status, adjusts_id, period_start, period_end, currency,"
            " subtotal, tax_rate, tax, total, flag_count, number, computed_at, finalised_at,"
            " finalised_by_id)"
            " SELECT k.reseller_id, k.customer_id, k.id, %(version)s, 'regular',"
            " CASE WHEN m > 0 THEN 'final' ELSE 'draft' END, NULL, start,"
            " (start + interval '1 month')::date, 'EUR', net, 19, round(net * 0.19, 2),"
            " net + round(net * 0.19, 2), mod(k.id, 7) / 6,"
            " CASE WHEN m > 0 THEN row_number() OVER (PARTITION BY m > 0 ORDER BY m DESC, k.id)"
            " END, now(), CASE WHEN m > 0 THEN now() END, NULL"
            " FROM billing_contract k CROSS JOIN generate_series(0, 2) m"
            " CROSS JOIN LATERAL (SELECT (date_trunc('month', current_date)"
            "   - m * interval '1 month')::date AS start,"
            "   (100 + mod(k.id * 37, 900))::numeric(12, 2) AS net) s"
            " WHERE k.reseller_id = %(r)s",
        ],
    ),
]


# --- Requests -----------------------------------------------------------------------------------


@dataclass
class Page:
    label: str
    paths: list[str]
    times_ms: list[float] = field(default_factory=list)
    queries: int = 0
    failures: list[str] = field(default_factory=list)

    def path(self, n: int) -> str:
        return self.paths[n % len(self.paths)]


def pages(size: Size) -> list[Page]:
    from devices.fleet_selectors import DEVICE_SORTS
    from devices.models import Device
    from portal import rls

    with rls.system("the benchmark picks the devices and filters it asks for"):
        ids = sorted(
            Device.unscoped.filter(reseller__slug="bench-pages").values_list(
                "serial", "pk", "customer_id", "site_id", "model"
            )
        )
    reported = ids[: len(ids) - size.never]
    step = max(1, len(reported) // size.detail_devices)
    detail = [pk for n, (_, pk, *_rest) in enumerate(reported) if n % step == 0]
    _, _, customer, site, model = reported[len(reported) // 2]
    listed: list[tuple[str, str]] = [
        ("dashboard", "/"),
        ("devices", "/devices/"),
        ("devices ?page=200", "/devices/?page=200"),
        *[(f"devices ?status={s}", f"/devices/?status={s}") for s in _statuses()],
        ("devices ?low=1", "/devices/?low=1"),
        ("devices ?model=", f"/devices/?model={model.replace(' ', '+')}"),
        ("devices ?customer=", f"/devices/?customer={customer}"),
        ("devices ?site=", f"/devices/?site={site}"),
        ("devices ?q=serial", "/devices/?q=SN00012"),
        ("devices ?q=ip", "/devices/?q=10.0.7."),
        *[
            (f"devices ?sort={d}{key}", f"/devices/?sort={d}{key}")
            for key in DEVICE_SORTS
            for d in ("", "-")
        ],
        ("devices ?low=1&sort=-alerts", "/devices/?low=1&sort=-alerts"),
        ("supplies", "/supplies/"),
        ("supplies ?low=1", "/supplies/?low=1"),
        ("supplies ?color=cyan", "/supplies/?color=cyan"),
        ("supplies ?sort=days", "/supplies/?sort=days"),
        ("supplies ?sort=device", "/supplies/?sort=device"),
        ("alerts", "/alerts/"),
        ("alerts ?severity=critical", "/alerts/?severity=critical"),
        ("orders", "/orders/"),
        ("orders ?queue=1", "/orders/?queue=1"),
        ("orders ?status=delivered", "/orders/?status=delivered"),
        ("statements", "/billing/statements/"),
    ]
    result = [Page(label, [path]) for label, path in listed]
    result.append(Page("device detail", [f"/devices/{pk}/" for pk in detail]))
    return result


def _statuses() -> list[str]:
    from devices.fleet_selectors import DeviceStatus

    return list(DeviceStatus.values)


def signed_in_client() -> Any:
    """A client signed in as the reseller admin, with the second factor given in the session,
    as tests/factories.py `sign_in` does."""
    from allauth.account.internal.flows.login import (
        _AUTHENTICATION_METHODS_USER_SESSION_KEY,
        AUTHENTICATION_METHODS_SESSION_KEY,
    )
    from allauth.mfa.models import Authenticator
    from django.test import Client

    from accounts.models import User
    from portal import rls

    with rls.system("the benchmark signs its admin in"):
        user = User.objects.get(email="admin@bench.test")
        authenticator = Authenticator.objects.get(user=user, type=Authenticator.Type.TOTP)
    client = Client()
    client.force_login(user)
    session = client.session
    session[AUTHENTICATION_METHODS_SESSION_KEY] = [
        {"method": "password", "at": time.time(), "email": user.email},
        {"method": "mfa", "at": time.time(), "id": authenticator.pk, "type": "totp"},
    ]
    session[_AUTHENTICATION_METHODS_USER_SESSION_KEY] = str(user.pk)
    session.save()
    return client


def _get(client: Any, page: Page, n: int) -> float | None:
    started = time.perf_counter()
    response = client.get(page.path(n))
    elapsed = (time.perf_counter() - started) * 1000
    if response.status_code != 200:
        page.failures.append(f"{page.path(n)}: {response.status_code}")
        return None
    return elapsed


def measure(all_pages: list[Page], requests: int) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = signed_in_client()
    # Untimed: the queries of each page (a request's transaction and scope statements included),
    # and a first request that warms the connection, the templates and the caches.
    for page in all_pages:
        with CaptureQueriesContext(connection) as captured:
            _get(client, page, 0)
        page.queries = sum(not BOOKKEEPING.match(q["sql"]) for q in captured.captured_queries)
    for n in range(requests):
        for page in all_pages:
            elapsed = _get(client, page, n)
            if elapsed is not None:
                page.times_ms.append(elapsed)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def report(all_pages: list[Page]) -> list[Page]:
    print(
        f"\n{'page':<32} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}  {'budget':>9}  {'queries':>7}"
    )
    over = []
    for page in all_pages:
        p50 = statistics.median(page.times_ms) if page.times_ms else float("nan")
        p95 = percentile(page.times_ms, 95)
        worst = max(page.times_ms, default=float("nan"))
        verdict = "ok" if p95 < BUDGET_MS else "OVER"
        if p95 >= BUDGET_MS or not page.times_ms:
            over.append(page)
        print(
            f"{page.label:<32} {p50:8.1f} {p95:8.1f} {worst:8.1f}  p95 < {BUDGET_MS:.0f}"
            f"  {page.queries:7d}  {verdict}"
        )
    return over


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--customers", type=int, default=400)
    parser.add_argument("--days", type=int, default=90, help="of history")
    parser.add_argument("--detail-devices", type=int, default=20, help="with hourly history")
    parser.add_argument("--orders", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=20, help="per page")
    parser.add_argument("--url", help="an existing server's database (dropped and created)")
    parser.add_argument("--keep", action="store_true", help="with --url: reuse its fleet")
    parser.add_argument("--smoke", action="store_true", help="a small fleet, a few requests")
    args = parser.parse_args()
    if args.smoke:
        args.devices, args.customers, args.days = 300, 12, 10
        args.detail_devices, args.orders, args.requests = 2, 300, 2
    size = Size(args.devices, args.customers, args.days, args.detail_devices, args.orders)
    print(
        f"pages: {size.devices:,} devices ({size.never} never reported) of {size.customers}"
        f" customers, {size.days} days of history, {size.detail_devices} devices with hourly"
        f" history; {args.requests} requests per page; load average {loadavg()}"
        f" ({os.cpu_count()} cores)",
        flush=True,
    )
    workdir = Path(tempfile.mkdtemp(prefix="inkmeter-pages-"))
    cluster = None
    try:
        if args.url:
            url = args.url
            if not args.keep:
                recreate_database(url)
        else:
            from benchmarks.stack import Postgres

            # The server runs as `postgres`, which must reach its directory (mkdtemp's is 0700).
            os.chmod(workdir, 0o755)  # noqa: S103 - a scratch directory of this run
            cluster = Postgres(workdir / "postgres")
            cluster.init()
            cluster.start()
            cluster.database_create()
            url = cluster.url
        setup_django(url, workdir / "var")
        started = time.perf_counter()
        migrate()
        print(f"  migrated in {time.perf_counter() - started:.0f} s", flush=True)
        if not (args.url and args.keep):
            build(size)
        load_start = loadavg()
        all_pages = pages(size)
        started = time.perf_counter()
        measure(all_pages, args.requests)
        took = time.perf_counter() - started
        load_end = loadavg()
        over = report(all_pages)
        print(
            f"\n{sum(len(p.times_ms) for p in all_pages)} requests in {took:.0f} s;"
            f" load average {load_start} at the start, {load_end} at the end"
            f" ({os.cpu_count()} cores, shared)"
        )
    finally:
        from django.db import connections

        connections.close_all()
        if cluster is not None:
            try:
                cluster.stop()
            except Exception as error:  # the directory goes anyway
                print(f"postgres stop: {error}", file=sys.stderr)
        import shutil

        shutil.rmtree(workdir, ignore_errors=True)
    failures = [f for p in all_pages for f in p.failures]
    if failures:
        print(f"FAIL: {len(failures)} requests failed: {failures[:5]}")
        return 1
    if args.smoke:
        print("smoke: OK")
        return 0
    print("budget: " + (f"MISSED by {len(over)} pages" if over else "met by every page"))
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
