"""Issue 11, point 1: one journey through the whole product, end to end, as its people and its
collector meet it in production.

A reseller admin sets the collector's ranges (a network, an a-b range and a single address),
community and intervals in the portal; the real `inkmeter-collector run` fetches that
configuration, finds the three printers snmpsim serves from real recordings on loopback, polls
and uploads them over HTTPS; the levels show on the device page, and the reseller's support
inbox gets one email about the printers' alerts, however often the collector restarts. A toner
then falls below the reorder point: the poll an operator asks for (`inkmeter-collector poll-now`)
uploads at once, well before the upload interval, while a poll with no new crossing uploads
nothing; the customer gets one email, however often the printer is polled and uploaded
afterwards. The customer orders from that email's link, support
accepts and ships the order, the month closes, finance finalises the statement and the customer
downloads it as CSV and PDF.

Only what has no page is set up by script (tests/acceptance/seed.py): the operator's reseller and
its people. Everybody else acts through the pages: tests/acceptance/browser.py.
"""

from __future__ import annotations

import csv
import io
import json
import re
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from benchmarks.stack import Collector, Snmpsim, Stack, free_port
from tests.acceptance import seed
from tests.acceptance.browser import Browser, Form, Page
from tests.acceptance.support import body, mail_to, recordings, wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.acceptance]

COMMUNITY = "acme-floor2"  # not "public": finding anything proves the portal's list was applied
# One printer behind each way the form writes a range. The collector sweeps them; nothing else.
CIDR, SPAN, SINGLE = "127.0.2.0/30", "127.0.3.1-127.0.3.3", "127.0.4.1"
PRINTERS = {
    "127.0.2.1": "printmaster_kyocera-ecosys-p2040dw.snmprec",  # in the /30
    "127.0.3.2": "ricoh_mpc3002.snmprec",  # inside the a-b range
    "127.0.4.1": "jetdirect_m130nw.snmprec",  # the single address
}
SERIALS = {"127.0.2.1": "VD21457943", "127.0.3.2": "W492KB03439", "127.0.4.1": "VNCRC48198"}
HP = "127.0.4.1"
HP_TONER = "Black Cartridge HP CF217A"
HP_TONER_LEVEL_OID = "1.3.6.1.2.1.43.11.1.1.9.1.1"  # prtMarkerSuppliesLevel.1.1, 28 of 100
HP_PAGES = 15232  # prtMarkerLifeCount in the recording
UPLOAD_INTERVAL_MINUTES = 60  # the low toner must not wait for this
CUSTOMER_EMAIL = "office@harbour.test"
SUPPORT_INBOX = "support-inbox@acme.test"  # the reseller's: printer alerts (seed.RESELLER)


def collector_toml(stack: Stack, *, key_id: str, secret: str, snmp_port: int) -> str:
    """What an installer writes: where the portal is and the collector's credential. The
    ranges here are a decoy on loopback with nothing behind it: the portal's must win."""
    assert stack.certificate is not None
    return f"""
[portal]
url = "{stack.web.base_url}"
key_id = "{key_id}"
secret = "{secret}"
ca_file = "{stack.certificate.cert}"

[snmp]
communities = ["public"]
port = {snmp_port}
timeout_s = 3.0
retries = 2
concurrency = 8

[discovery]
ranges = ["127.0.9.9/32"]
rate_per_s = 200
time_limit_s = 60

[schedule]
config_interval_minutes = 60
"""


def previous_period(today: date, anchor_day: int) -> tuple[date, date]:
    """The last contract period that ended by today: [start, end)."""

    def month_back(day: date) -> date:
        return (day.replace(day=1) - timedelta(days=1)).replace(day=anchor_day)

    current = today.replace(day=anchor_day) if today.day >= anchor_day else None
    if current is None:
        current = month_back(today)
    return month_back(current), current


def supply_row(page: Page, label: str) -> str:
    """The text of the device page's table row that names `label`."""
    for row in re.findall(r"<tr\b.*?</tr>", page.text, flags=re.S):
        text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", row))
        if label in text:
            return text.strip()
    return ""


def worker_done(stack: Stack, task: str) -> int:
    """How many runs of `task` the worker has finished."""
    text = stack.worker.log.read_text(errors="replace")
    return len(re.findall(re.escape(task) + r"\[[^\]]+\] succeeded", text))


def collector_said(collector: Collector, text: str) -> int:
    """How many lines of the collector's log (all its runs) contain `text`."""
    return sum(text in line for line in collector.log.read_text(errors="replace").splitlines())


def printer_alert_mail(stack: Stack) -> list[str]:
    """The subjects of the printer-alert emails in the reseller's support inbox (it also gets a
    copy of each low-supply email)."""
    return [
        str(m["Subject"])
        for m in mail_to(stack, SUPPORT_INBOX)
        if "printer alert" in str(m["Subject"])
    ]


def test_journey(stack: Stack, snmpsim_venv: Path, tmp_path: Path) -> None:
    journey_started = time.monotonic()
    printers = {address: recordings() / name for address, name in PRINTERS.items()}
    today = datetime.now(UTC).date()
    people = seed.run(stack, seed.RESELLER)
    reseller_id = people["reseller_id"]

    # --- The reseller admin signs in, sets up the app the role requires, then the customer.
    admin = Browser(stack.web.base_url, stack.certificate)
    page = admin.login("admin@acme.test", seed.PASSWORD)
    assert page.path == "/accounts/reauthenticate/", page.url  # on the way to TOTP set-up
    page = admin.submit(page, page.form(has="password"), {"password": seed.PASSWORD})
    assert page.path == "/accounts/2fa/totp/activate/"
    admin_totp = page.element("authenticator_secret")["value"]
    page = admin.submit(page, page.form(has="code"), {"code": totp_now(admin_totp)})
    assert "Authenticator app activated" in page.plain()
    admin.logout()
    admin.login("admin@acme.test", seed.PASSWORD, totp_secret=admin_totp)  # both factors now

    page = admin.get("/customers/new/")
    page = admin.submit(
        page,
        page.form(has="billing_email"),
        {"name": "Harbour Dental", "billing_email": "accounts@harbour.test"},
    )
    customer_path = page.path
    assert re.fullmatch(r"/customers/\d+/", customer_path), page.url
    page = admin.get(customer_path + "sites/new/")
    page = admin.submit(page, page.form(has="contact_email"), {"name": "Main office"})
    site_id = re.fullmatch(r"/sites/(\d+)/", page.path).group(1)
    seed.run(
        stack,
        seed.CUSTOMER_USER,
        RESELLER_ID=reseller_id,
        CUSTOMER="Harbour Dental",
        EMAIL=CUSTOMER_EMAIL,
    )
    # The toner the customer will order, in the reseller's catalogue.
    page = admin.get("/catalog/new/")
    page = admin.submit(
        page,
        page.form(has="sku"),
        {
            "sku": "HP-CF217A",
            "part_number": "CF217A",
            "name": "HP 17A Black Toner",
            "kind": "toner",
            "color": "black",
            "rated_yield": "1600",
            "yield_unit": "pages",
            "compatible_models": "HP LaserJet MFP M130nw",
            "price": "49.90",
            "is_active": "on",
        },
    )
    assert page.path == "/catalog/", page.plain()[:2000]
    assert "HP-CF217A" in page.plain()

    # --- The collector: registered, then configured in the portal (every form of a range).
    page = admin.get("/settings/collectors/new/")
    page = admin.submit(
        page, page.form(has="kind"), {"kind": "collector", "name": "Front desk PC", "site": site_id}
    )
    key_match = re.search(r"Key id\s*</dt>\s*<dd[^>]*>\s*([\w-]+)", page.text)
    secret_match = re.search(r'id="new-secret">\s*([^<\s]+)', page.text)
    assert key_match, page.plain()[:2000]
    assert secret_match, page.plain()[:2000]
    key_id, secret_value = key_match.group(1), secret_match.group(1)
    page = admin.get("/settings/collectors/")
    config_path = next(link for link in page.links(r"/settings/collectors/\d+/$"))
    page = admin.get(config_path + "config/")
    page = admin.submit(
        page,
        page.form(has="ranges"),
        {
            "ranges": f"{CIDR}\n{SPAN}\n{SINGLE}",
            "communities": COMMUNITY,
            "poll_interval_minutes": "15",
            "upload_interval_minutes": str(UPLOAD_INTERVAL_MINUTES),
        },
    )
    page = admin.get(config_path + "config/")
    form = page.form(has="ranges")
    stored = {f.name: f.value for f in form.fields}
    assert stored["ranges"].split() == [CIDR, SPAN, SINGLE]
    assert stored["communities"].strip() == COMMUNITY

    # --- The printers, and the real collector against them.
    snmp_port = free_port()
    snmpsim = Snmpsim(
        venv=snmpsim_venv,
        community=COMMUNITY,
        printers=printers,
        port=snmp_port,
        env=stack.env,
        log_dir=stack.logs,
    )
    snmpsim.start()
    collector = Collector(
        tmp_path / "collector",
        config=collector_toml(stack, key_id=key_id, secret=secret_value, snmp_port=snmp_port),
        env={k: v for k, v in stack.env.items() if not k.startswith(("DATABASE", "REDIS"))},
        log=stack.logs / "collector.log",
    )
    try:
        _collect_and_alert(stack, admin, collector, snmpsim)
        _order_and_ship(stack, admin_totp)
        _close_the_month(stack, admin, admin_totp, collector, today, key_id, secret_value)
    finally:
        collector.stop()
        snmpsim.stop()
    print(f"journey: {time.monotonic() - journey_started:.0f} s")


def totp_now(secret: str) -> str:
    from tests.acceptance.browser import fresh_totp

    return fresh_totp(secret)


def _device_path(admin: Browser, serial: str) -> str | None:
    page = admin.get(f"/devices/?q={serial}")
    links = page.links(r"^/devices/\d+/$")
    return links[0] if serial in page.text and links else None


def _collect_and_alert(
    stack: Stack, admin: Browser, collector: Collector, snmpsim: Snmpsim
) -> None:
    collector.start()
    # Discovery, a poll and the first upload all happen at the collector's start.
    paths = {
        address: wait_for(
            f"printer {serial} ({address}) on the device list",
            lambda serial=serial: _device_path(admin, serial),
            timeout=180,
            every=2,
        )
        for address, serial in SERIALS.items()
    }
    collector.check()
    page = wait_for(
        f"the {HP_TONER} level on the device page",
        lambda: (p := admin.get(paths[HP])) and supply_row(p, HP_TONER) and p,
        timeout=60,
    )
    row = supply_row(page, HP_TONER)
    assert "28" in row, row
    assert str(HP_PAGES) in page.plain().replace(",", "").replace("\u202f", ""), "page count"
    assert mail_to(stack, CUSTOMER_EMAIL) == [], "no supply is low yet"
    # The Kyocera's alert table: one email to the reseller's support inbox for its warnings.
    alert_mail = wait_for(
        "the reseller's printer-alert email", lambda: printer_alert_mail(stack), timeout=120
    )
    assert alert_mail == ["[Inkmeter] 3 new printer alerts"], alert_mail
    assert collector_said(collector, "upload: FlushReport") == 1  # the upload at start

    # --- The toner falls to 9 %, below the reorder point (15 %). The next scheduled poll is
    # 15 minutes away (the portal's minimum), the next scheduled upload 60: the operator asks
    # the running collector to poll now, and that poll's crossing uploads at once.
    snmpsim.set_value(HP, HP_TONER_LEVEL_OID, "9")
    followups = worker_done(stack, "devices.tasks.batch_followup_task")
    asked = time.monotonic()
    collector.poll_now()
    wait_for(
        f"the {HP_TONER} at 9 % on the device page",
        lambda: " 9" in " " + supply_row(admin.get(paths[HP]), HP_TONER),
        timeout=120,  # the proof: far below the upload interval
        every=1,
    )
    print(f"  the crossing reached the portal {time.monotonic() - asked:.1f} s after poll-now")
    assert time.monotonic() - asked < UPLOAD_INTERVAL_MINUTES * 60
    assert collector_said(collector, "poll requested") == 1
    assert collector_said(collector, f"uploading at once: {SERIALS[HP]}: ") == 1
    # The portal commits the batch before it answers, so the page can show the level before
    # the collector has read the answer and logged its upload.
    wait_for(
        "the collector's log of that upload",
        lambda: collector_said(collector, "upload: FlushReport") >= 2,
        timeout=30,
        every=0.2,
    )
    assert collector_said(collector, "upload: FlushReport") == 2
    collector.check()  # the same process: no restart made this upload
    alerts = wait_for(
        "the customer's low-supply email",
        lambda: mail_to(stack, CUSTOMER_EMAIL),
        timeout=120,
    )
    assert len(alerts) == 1, [m["Subject"] for m in alerts]
    message = alerts[0]
    assert HP_TONER in message["Subject"], message["Subject"]
    assert HP_TONER in body(message)
    assert "/orders/new/?supply_id=" in body(message)
    wait_for(
        "the supply evaluation of the low poll",
        lambda: worker_done(stack, "devices.tasks.batch_followup_task") > followups,
        timeout=120,
    )

    # --- Asked again, the toner still at 9 %: no new crossing, so the poll's snapshots wait
    # for the upload interval. The second request's poll shows the loop went past the first
    # one's upload decision; neither uploaded.
    polled = collector_said(collector, "polled 3 printers")
    followups = worker_done(stack, "devices.tasks.batch_followup_task")
    for n in (1, 2):
        collector.poll_now()
        wait_for(
            f"requested poll {n} with no crossing",
            lambda n=n: collector_said(collector, "polled 3 printers") >= polled + n,
            timeout=120,
        )
    assert collector_said(collector, "upload: FlushReport") == 2, "no upload at once"
    assert collector_said(collector, "uploading at once") == 1
    assert worker_done(stack, "devices.tasks.batch_followup_task") == followups
    collector.check()

    # --- A restart uploads what waited: the still-low toner and the Kyocera's alerts reach the
    # portal again, the alerts with a raised_at the restart moved (sysUpTime is frozen in the
    # recording). Still one email of each kind.
    collector.stop()
    collector.start()
    wait_for(
        "the upload at the restart and its evaluation",
        lambda: worker_done(stack, "devices.tasks.batch_followup_task") > followups,
        timeout=120,
    )
    time.sleep(3)  # an email the evaluation would have queued is sent within this
    assert len(mail_to(stack, CUSTOMER_EMAIL)) == 1, [
        m["Subject"] for m in mail_to(stack, CUSTOMER_EMAIL)
    ]
    assert printer_alert_mail(stack) == alert_mail
    collector.stop()


def _order_and_ship(stack: Stack, admin_totp: str) -> None:
    message = mail_to(stack, CUSTOMER_EMAIL)[0]
    link = re.search(r"https://\S+/orders/new/\?supply_id=\d+", body(message))
    assert link, body(message)
    customer = Browser(stack.web.base_url, stack.certificate)
    customer.login(CUSTOMER_EMAIL, seed.PASSWORD)
    target = urlsplit(link.group(0))
    page = customer.get(f"{target.path}?{target.query}")
    page = customer.submit(page, next(f for f in page.forms() if f.action == ""), button="place")
    order_path = page.path
    assert re.fullmatch(r"/orders/\d+/", order_path), page.url
    assert "HP 17A Black Toner" in page.plain()

    support = Browser(stack.web.base_url, stack.certificate)
    support.login("support@acme.test", seed.PASSWORD)
    page = support.get(order_path)
    page = support.submit(page, _transition(page, "accepted"))
    page = support.submit(
        page,
        _transition(page, "shipped"),
        {"carrier": "DHL", "tracking_number": "JD014600006281230001"},
    )
    assert "Shipped" in page.plain(), page.plain()[:2000]
    shipped = wait_for(
        "the customer's shipping email",
        lambda: [m for m in mail_to(stack, CUSTOMER_EMAIL) if "hipped" in str(m["Subject"])],
        timeout=60,
    )
    assert len(shipped) == 1


def _transition(page: Page, step: str) -> Form:
    """The order page's form that moves the order to `step`."""
    forms = [
        f
        for f in page.forms()
        if "/transition/" in f.action and any(x.name == "to" and x.value == step for x in f.fields)
    ]
    assert len(forms) == 1, f"{page.url} offers no step to {step}: {page.plain()[:1500]}"
    return forms[0]


def _close_the_month(
    stack: Stack,
    admin: Browser,
    admin_totp: str,
    collector: Collector,
    today: date,
    key_id: str,
    secret: str,
) -> None:
    """The readings carry the collector's own clock, so today's cannot be in a period that has
    ended. The month that closes is the last one: the collector's earlier readings of the HP
    (one before the period, one in it) go up as the collector sends them, signed, through the
    same endpoint; the statement must bill exactly their difference."""
    from inkmeter_collector.outbox import Batch
    from inkmeter_collector.upload import Portal

    anchor = min(today.day, 28)
    start, end = previous_period(today, anchor)
    polled = collector.cli(
        "poll", HP, "--port", str(_snmp_port(collector)), "--community", COMMUNITY, "--json"
    )
    assert polled.returncode == 0, polled.stderr
    snapshot = json.loads(polled.stdout)
    earlier = [
        (start - timedelta(days=1), HP_PAGES - 2100),
        (end - timedelta(days=1), HP_PAGES - 600),
    ]
    snapshots = []
    for day, pages in earlier:
        moment = datetime.combine(day, datetime.min.time(), tzinfo=UTC) + timedelta(hours=12)
        copy = json.loads(json.dumps(snapshot))
        copy["snapshot_id"] = str(uuid.uuid4())
        copy["collected_at"] = moment.isoformat().replace("+00:00", "Z")
        _set_pages(copy, pages)
        snapshots.append(copy)
    assert stack.certificate is not None
    portal = Portal(
        url=stack.web.base_url, key_id=key_id, secret=secret, verify=stack.certificate.context()
    )
    try:
        response, _ = portal.post_batch(
            Batch(batch_id=str(uuid.uuid4()), attempts=0, snapshots=snapshots),
            now=datetime.now(UTC),
        )
    finally:
        portal.close()
    assert response.status_code == 202, response.text
    assert not response.json().get("rejected"), response.text

    # The admin prices it: a plan and a contract through their pages, the HP in the contract.
    page = admin.get("/billing/plans/new/")
    page = admin.submit(
        page,
        page.form(has="name"),
        {
            "name": "Pay per page",
            "effective_from": start.isoformat(),
            "rates-0-counter": "impressions.total",
            "rates-0-scope": "device",
            "rates-0-tiers": "0: 0.01",
        },
    )
    assert re.fullmatch(r"/billing/plans/\d+/", page.path), page.plain()[:2000]
    page = admin.get("/billing/contracts/new/")
    form = page.form(has="plan")
    options = {f.name: f.options for f in form.fields}
    page = admin.submit(
        page,
        form,
        {
            "customer": options["customer"][-1],
            "plan": options["plan"][-1],
            "reference": "HD-2026",
            "anchor_day": str(anchor),
            "starts_on": start.isoformat(),
        },
    )
    contract_path = page.path
    assert re.fullmatch(r"/billing/contracts/\d+/", contract_path), page.plain()[:2000]
    form = page.form(action="/devices/")
    device_ids = next(f.options for f in form.fields if f.name == "device")
    hp_option = re.search(r'<option value="(\d+)"[^>]*>[^<]*' + SERIALS[HP], page.text)
    assert hp_option, device_ids
    page = admin.submit(page, form, {"device": hp_option.group(1), "joined_on": start.isoformat()})

    # --- Finance closes the month: computes the period's statement and finalises it.
    finance = Browser(stack.web.base_url, stack.certificate)
    finance.login("finance@acme.test", seed.PASSWORD, totp_secret=seed.FINANCE_TOTP_SECRET)
    page = finance.get(contract_path)
    page = finance.submit(page, page.form(action="/compute/"), {"period_start": start.isoformat()})
    statement_path = page.path
    assert re.fullmatch(r"/billing/statements/\d+/", statement_path), page.plain()[:2000]
    text = page.plain()
    assert "1500" in text.replace(",", "").replace("\u202f", ""), text[:3000]
    page = finance.get(statement_path + "finalise/")
    page = finance.submit(page, next(f for f in page.forms() if f.action == ""))
    assert "Status Final" in page.plain(), page.plain()[:2000]

    # --- The customer downloads it.
    customer = Browser(stack.web.base_url, stack.certificate)
    customer.login(CUSTOMER_EMAIL, seed.PASSWORD)
    page = customer.get("/billing/statements/")
    assert statement_path in page.links(r"/billing/statements/\d+/$")
    csv_page = customer.get(statement_path + "statement.csv")
    rows = list(csv.DictReader(io.StringIO(csv_page.content.decode())))
    usage = [r for r in rows if r["line_kind"] == "usage"]
    assert len(usage) == 1, rows
    assert usage[0]["statement_status"] == "final", usage[0]
    assert usage[0]["device_serial"] == SERIALS[HP]
    assert usage[0]["counter"] == "impressions.total"
    assert _number(usage[0]["start_value"]) == HP_PAGES - 2100
    assert _number(usage[0]["end_value"]) == HP_PAGES - 600
    assert _number(usage[0]["usage"]) == 1500
    assert _number(usage[0]["amount"]) == 15
    pdf = customer.get(statement_path + "statement.pdf")
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF-")


def _number(text: str) -> float:
    return float(text.replace(",", ""))


def _snmp_port(collector: Collector) -> int:
    match = re.search(r"^port = (\d+)$", collector.config.read_text(), flags=re.M)
    assert match
    return int(match.group(1))


def _set_pages(snapshot: dict[str, object], pages: int) -> None:
    counters = snapshot.get("counters")
    assert isinstance(counters, list), snapshot
    hits = 0
    for counter in counters:
        if counter.get("name") == "impressions.total":
            counter["value"] = pages
            hits += 1
    assert hits == 1, counters
