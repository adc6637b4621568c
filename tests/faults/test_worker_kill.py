"""A Celery worker SIGKILLed in the middle of its work (issue 7, point 3): a statement
computation and an alert email. The task comes back by itself (acks_late, and Redis hands an
unacknowledged message out again after the visibility timeout, short here) to a new worker,
and the outcome is what an uninterrupted run gives: the same statement, one email.

Everything is seeded through the product's services in the stack's own manage.py; the
database is only read directly, as its owner, to see what the worker holds and what it left.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from celery import Celery
from kombu import Queue

from benchmarks.stack import Stack, wait_until
from devices import simulator
from portal import celery as product

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.faults]

# Redis gives an unacknowledged task out again after this many seconds (settings read it from
# CELERY_VISIBILITY_TIMEOUT): longer than any task here runs, or a live one would run twice.
# The lease of an email being sent is shorter, so that the redelivered task finds it expired.
VISIBILITY_S = 6
EMAIL_LEASE_S = 3
DEVICES = 80

# Each script runs in `manage.py shell` of the stack and prints one JSON line last.
SEED_BILLING = """
import json
from datetime import timedelta
from django.utils.timezone import now
from accounts import services
from accounts.models import User
from billing import services as billing
from billing.pricing import period_containing
from devices.models import Device
from devices.simulator import fleet_simulate
from portal import rls
from portal.tenancy import TenantContext

# A period that began two days ago, so that a few polls a day cover it from its start.
today = now().date()
anchor = min((today - timedelta(days=2)).day, 28)
start, end = period_containing(today, anchor)
with rls.system("an operator creates a reseller, then works in it"):
    operator = User.objects.create_superuser(email="billing@faults.test", password="x" * 16)
    reseller = services.reseller_create(by=operator, name="Killed Statements")
ctx = TenantContext.system(reseller=reseller)
with rls.tenant(reseller.pk):
    customer = services.customer_create(ctx=ctx, name="Kill Customer")
    site = services.site_create(ctx=ctx, customer_id=customer.pk, name="Head office")
fleet = fleet_simulate(
    site_id=site.pk,
    devices=DEVICES,
    days=(today - start).days + 2,
    interval_minutes=720,
    batch_size=500,
)
with rls.tenant(reseller.pk):
    plan = billing.plan_create(
        ctx=ctx, name="Pay per page", currency="EUR", terms=billing.plan_terms_demo(start)
    )
    contract = billing.contract_create(
        ctx=ctx,
        customer_id=customer.pk,
        plan_id=plan.pk,
        reference="KILL-1",
        starts_on=start,
        anchor_day=anchor,
    )
    for device in Device.objects.for_tenant(ctx).order_by("pk"):
        billing.contract_device_add(
            ctx=ctx, contract_id=contract.pk, device_id=device.pk, joined_on=start
        )
print(json.dumps({
    "RESELLER_ID": reseller.pk,
    "CONTRACT_ID": contract.pk,
    "PERIOD_START": start.isoformat(),
    "snapshots": fleet.accepted,
    "failures": fleet.failures[:3],
}))
"""

# The statement of the contract's period as plain data: every line and the totals.
STATEMENT = """
import json
from datetime import date
from django.db import transaction
from accounts.models import Reseller
from billing import statement_services
from billing.models import Statement, StatementLine
from portal import rls
from portal.tenancy import TenantContext

LINE = (
    "position", "kind", "device_id", "counter", "media_type", "color", "window_start",
    "window_end", "start_at", "start_value", "end_at", "end_value", "measured", "usage",
    "allowance", "billable", "estimate_outstanding", "unit_price", "rate_label", "amount",
    "flags",
)


def dump(statement):
    lines = StatementLine.objects.for_tenant(ctx).filter(statement=statement).order_by("position")
    return {
        "pk": statement.pk,
        "status": statement.status,
        "plan_version": statement.plan_version_id,
        "subtotal": str(statement.subtotal),
        "tax": str(statement.tax),
        "total": str(statement.total),
        "flag_count": statement.flag_count,
        "lines": [[str(v) for v in row] for row in lines.values_list(*LINE)],
    }


class Clean(Exception):
    pass


with rls.tenant(RESELLER_ID):
    reseller = Reseller.objects.get(pk=RESELLER_ID)
    ctx = TenantContext.system(reseller=reseller)
    if MODE == "clean":
        # Computed, read, and rolled back: the reference, without leaving a statement behind.
        try:
            with transaction.atomic():
                out = dump(statement_services.statement_compute(
                    ctx=ctx,
                    contract_id=CONTRACT_ID,
                    period_start=date.fromisoformat(PERIOD_START),
                ))
                raise Clean
        except Clean:
            pass
    else:
        statements = Statement.objects.for_tenant(ctx).filter(contract_id=CONTRACT_ID)
        out = {"statements": statements.count(), "statement": dump(statements.get())}
print(json.dumps(out))
"""

SEED_ALERTS = """
import json
from accounts import services
from accounts.models import User
from devices import services as devices
from portal import rls
from portal.tenancy import TenantContext

with rls.system("an operator creates a reseller, then works in it"):
    operator = User.objects.create_superuser(email="alerts@faults.test", password="x" * 16)
    # The support inbox is the alert's only recipient: no site contact, no customer users.
    reseller = services.reseller_create(
        by=operator, name="Killed Emails", support_email=SUPPORT
    )
with rls.tenant(reseller.pk):
    ctx = TenantContext.system(reseller=reseller)
    customer = services.customer_create(ctx=ctx, name="Kill Customer")
    site = services.site_create(ctx=ctx, customer_id=customer.pk, name="Head office")
    credential, secret = devices.credential_create(ctx=ctx, kind="collector", site_id=site.pk)
print(json.dumps({"reseller_id": reseller.pk, "key_id": credential.key_id, "secret": secret}))
"""


def shell(stack: Stack, script: str, **values: Any) -> dict[str, Any]:
    """Run a script in the stack's manage.py shell, its UPPERCASE names given as literals."""
    header = "".join(f"{name} = {value!r}\n" for name, value in values.items())
    output = stack.manage("shell", "-c", header + script, timeout=240).stdout
    result: dict[str, Any] = json.loads(output.strip().splitlines()[-1])
    return result


@contextmanager
def broker(stack: Stack) -> Iterator[Celery]:
    """A Celery client of the stack's Redis that routes tasks to the product's queues, as
    `celery call` or the beat would send them."""
    # Not the current app: the product's shared tasks must keep their own broker afterwards.
    app = Celery("faults", broker=stack.redis.url, backend=stack.redis.url, set_as_current=False)
    app.conf.task_queues = [Queue(name) for name in product.QUEUES]
    app.conf.task_default_queue = "default"
    app.conf.task_routes = (product.TASK_ROUTES,)
    try:
        yield app
    finally:
        app.close()


@contextmanager
def owner(stack: Stack, *, autocommit: bool = True) -> Iterator[psycopg.Connection[Any]]:
    """The stack's database as its owner (the cluster's superuser): it sees every row."""
    with psycopg.connect(stack.postgres.url, autocommit=autocommit, connect_timeout=10) as conn:
        yield conn


def scalar(conn: psycopg.Connection[Any], sql: str, *params: Any) -> Any:
    row = conn.execute(sql, params).fetchone()
    return row[0] if row else None


def worker_log_count(stack: Stack, task_id: str, word: str) -> int:
    """How often the worker log says `word` of the task (Celery's "received", "succeeded")."""
    text = stack.worker.log.read_text(errors="replace")
    return sum(1 for line in text.splitlines() if task_id in line and word in line)


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """One stack for both tests: starting one takes most of a minute."""
    env = {
        "CELERY_VISIBILITY_TIMEOUT": str(VISIBILITY_S),
        "EMAIL_SEND_LEASE_SECONDS": str(EMAIL_LEASE_S),
        "LOG_LEVEL": "INFO",  # Celery's "received" and "succeeded" lines, with task ids
    }
    with Stack(
        tmp_path_factory.mktemp("worker-kill") / "stack",
        web_workers=1,
        celery_concurrency=2,
        extra_env=env,
    ) as running:
        yield running


@pytest.fixture
def stack(deployment: Stack) -> Stack:
    """The shared stack with a worker running (consuming every queue), even if the test
    before failed between its kill and the new worker."""
    if not deployment.worker.pids():
        deployment.worker.start()
    return deployment


# A worker computing the statement: it holds its uncommitted claim on the statement row and
# waits for the lock on the lines that the test holds.
BLOCKED_MID_COMPUTATION = """
SELECT a.pid FROM pg_stat_activity a
WHERE a.wait_event_type = 'Lock' AND a.xact_start IS NOT NULL
  AND EXISTS (SELECT 1 FROM pg_locks l WHERE l.pid = a.pid AND l.granted
              AND l.relation = 'billing_statement'::regclass AND l.mode = 'RowExclusiveLock')
  AND EXISTS (SELECT 1 FROM pg_locks l WHERE l.pid = a.pid AND NOT l.granted
              AND l.relation = 'billing_statementline'::regclass)
"""


@pytest.mark.timeout(240)
def test_a_worker_killed_mid_statement_leaves_the_rerun_to_compute_the_same_statement(stack):
    seed = shell(stack, SEED_BILLING, DEVICES=DEVICES)
    assert seed["failures"] == []
    ids = {name: seed[name] for name in ("RESELLER_ID", "CONTRACT_ID", "PERIOD_START")}
    clean = shell(stack, STATEMENT, MODE="clean", **ids)
    task_kwargs = {
        "reseller_id": ids["RESELLER_ID"],
        "contract_id": ids["CONTRACT_ID"],
        "period_start": ids["PERIOD_START"],
    }

    # The computation claims its statement, reads the usage, then needs the lines table: a
    # lock held here stops it there, in the middle of its transaction, for as long as the
    # kill takes (a race against a computation of a second or so would prove nothing).
    with owner(stack, autocommit=False) as lock, broker(stack) as client:
        lock.execute("LOCK TABLE billing_statementline IN ACCESS EXCLUSIVE MODE")
        task_id = client.send_task("billing.tasks.statement_compute_task", kwargs=task_kwargs).id
        blocked: list[int] = []

        def computing() -> bool:
            with owner(stack) as conn:
                blocked[:] = [pid for (pid,) in conn.execute(BLOCKED_MID_COMPUTATION)]
            return bool(blocked)

        wait_until(computing, timeout=90, what="the worker computing the statement")
        worker_pids = stack.worker.pids()
        stack.worker.kill()
        killed_at = time.monotonic()
        with owner(stack) as conn:
            committed_at_kill = scalar(conn, "SELECT count(*) FROM billing_statement")
        lock.rollback()

    stack.worker.start()
    wait_until(
        lambda: worker_log_count(stack, task_id, "succeeded") >= 1,
        timeout=120,
        what="the redelivered task to succeed",
    )
    redelivered_s = time.monotonic() - killed_at
    rerun = shell(stack, STATEMENT, MODE="dump", **ids)
    received = worker_log_count(stack, task_id, "received")
    statement = rerun["statement"]

    print(
        f"\nseeded {DEVICES} printers ({seed['snapshots']} snapshots) in contract "
        f"{ids['CONTRACT_ID']}, period from {ids['PERIOD_START']}; clean computation: "
        f"{len(clean['lines'])} lines, total {clean['total']}"
    )
    print(
        f"worker {worker_pids} SIGKILLed while its database session {blocked} held the "
        f"uncommitted statement; statements committed at the kill: {committed_at_kill}"
    )
    print(
        f"new worker: task {task_id} received {received} times in all, succeeded "
        f"{redelivered_s:.1f} s after the kill; statements of the contract: "
        f"{rerun['statements']}, {len(statement['lines'])} lines, total {statement['total']}"
    )

    assert committed_at_kill == 0
    assert received == 2
    assert rerun["statements"] == 1
    assert statement["status"] == "draft"
    assert {k: v for k, v in statement.items() if k != "pk"} == {
        k: v for k, v in clean.items() if k != "pk"
    }
    assert len(statement["lines"]) > DEVICES  # a fee and usage lines per printer


def low_toner_batch() -> bytes:
    """One printer reporting its black toner at 12 %: under the default reorder point (15 %),
    over the printer's own low-supply alert (10 %), so the only email is the supply alert."""
    printer = simulator.fleet_build(devices=1, seed=7, prefix="KILL")[0]
    printer.levels["toner-black"] = 0.12
    return simulator.encode_batch([printer.snapshot(datetime.now(tz=UTC))])


@pytest.mark.timeout(240)
def test_a_worker_killed_mid_alert_email_leaves_one_email_to_the_rerun(stack):
    support = "support@killed-emails.test"
    seed = shell(stack, SEED_ALERTS, SUPPORT=support)
    stack.smtp.stall()
    send = simulator.http_sender(
        url=stack.web.base_url, key_id=seed["key_id"], secret=seed["secret"]
    )
    status, answer = send(low_toner_batch())
    assert (status, answer["accepted"]) == (202, 1)

    def ours(conn: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
        return conn.execute(
            "SELECT id, status, attempts, subject, created_at, error FROM orders_emaillog "
            "WHERE recipient = %s ORDER BY id",
            [support],
        ).fetchall()

    wait_until(lambda: stack.smtp.waiting() == 1, timeout=90, what="the alert email at DATA")
    with owner(stack) as conn:
        claimed = [(status, attempts) for _, status, attempts, *_ in ours(conn)]
    worker_pids = stack.worker.pids()
    stack.worker.kill()
    killed_at = time.monotonic()
    stack.smtp.stall(on=False)
    wait_until(lambda: stack.smtp.waiting() == 0, timeout=30, what="the sink to let go")
    stored_after_kill = len([m for m in stack.smtp.messages() if m["To"] == support])

    stack.worker.start()

    def sent() -> bool:
        with owner(stack) as conn:
            return [row[1] for row in ours(conn)] == ["sent"]

    wait_until(sent, timeout=120, what="the email to be sent again")
    resent_s = time.monotonic() - killed_at
    # What the beat's sweep does next (it counts evaluations and alerts too): a sent email is
    # never sent again.
    with broker(stack) as client:
        swept = client.send_task("orders.tasks.orders_sweep_task").get(timeout=120)
    messages = [m for m in stack.smtp.messages() if m["To"] == support]
    with owner(stack) as conn:
        emails = ours(conn)
        alerts = scalar(
            conn,
            "SELECT count(*) FROM orders_supplyalert WHERE reseller_id = %s",
            seed["reseller_id"],
        )

    print(
        f"\nlow toner posted; the alert email reached DATA and stalled there, its row "
        f"{claimed}; worker {worker_pids} SIGKILLed; messages stored after the kill: "
        f"{stored_after_kill}"
    )
    print(
        f"new worker: the email went out {resent_s:.1f} s after the kill; the sweep after it "
        f"did {swept} things; supply alerts {alerts}, email rows {len(emails)}, messages to "
        f"{support}: {len(messages)}"
    )

    assert claimed == [("sending", 1)]
    assert stored_after_kill == 0
    assert alerts == 1
    ((email_id, status, attempts, subject, created_at, error),) = emails
    assert (status, attempts, error) == ("sent", 2, "")
    (message,) = messages
    assert message["Subject"] == subject
    expected_id = f"<inkmeter.email.{email_id}.{int(created_at.timestamp())}@inkmeter.local>"
    assert message["Message-ID"] == expected_id
