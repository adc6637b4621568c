"""Races that only a real database can decide: two people ordering the same replenishment at
once, two workers claiming the same low-supply alert or the same email. PostgreSQL, real
connections."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any
from unittest import mock

import pytest
from django.core import mail
from django.db import connection

from orders import email_services, services, supply_services
from orders.models import EmailLog, Order, OrderLine, SupplyAlert
from orders.tasks import supplies_evaluate_pending_task, supply_alert_notify_task
from portal import rls
from portal.errors import ConflictError
from portal.tenancy import Role, TenantContext
from tests.orders.conftest import customer_member, daily

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def race(*calls: Callable[[], Any]) -> list[Any]:
    """Run each call in its own thread and connection, released together by a barrier."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def run(i: int, call: Callable[[], Any]) -> None:
        try:
            barrier.wait(timeout=10)
            results[i] = call()
        except Exception as exc:
            results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    return results


def test_two_users_ordering_the_same_replenishment_make_one_line(tenant, bob, supply, product):
    buyer = customer_member(tenant, Role.CUSTOMER_BUYER, "buyer@customer.test")

    def order_as(user: Any, role: Role) -> Callable[[], Order]:
        ctx = TenantContext(
            reseller=tenant.reseller, role=role, customer=tenant.customer, user=user
        )

        def place() -> Order:
            with rls.tenant(tenant.reseller.pk):  # as the request's middleware scopes it
                return services.order_create(
                    ctx=ctx,
                    site_id=tenant.site.pk,
                    lines=[services.LineIn(product_id=product.pk, supply_id=supply.pk)],
                    submit=True,
                )

        return place

    for _ in range(5):  # a few rounds: each must end with exactly one open line
        results = race(order_as(bob, Role.CUSTOMER_ADMIN), order_as(buyer, Role.CUSTOMER_BUYER))

        placed = [r for r in results if isinstance(r, Order)]
        refused = [r for r in results if isinstance(r, ConflictError)]
        assert len(placed) == 1, results
        assert len(refused) == 1, results
        assert refused[0].code == "replenishment_on_order"
        assert OrderLine.unscoped.filter(supply=supply, is_open=True).count() == 1
        services.order_transition(
            ctx=TenantContext(
                reseller=tenant.reseller, role=Role.CUSTOMER_ADMIN, customer=tenant.customer
            ),
            order_id=placed[0].pk,
            to="cancelled",
        )
    assert Order.unscoped.count() == 5


def test_two_workers_claiming_one_alert_send_its_email_once(tenant, supply, product, report):
    report(*daily(20, 1, 10))
    supply_services.supplies_evaluate(device_ids=[supply.device_id])  # commits; tasks eager
    SupplyAlert.unscoped.update(status="armed", sent_at=None)
    mail.outbox.clear()
    alert = SupplyAlert.unscoped.get()

    # The task's own body, in its own scope, on each thread's connection.
    results = race(*(lambda: supply_alert_notify_task.run(alert_id=alert.pk),) * 4)

    assert sorted(results) == [False, False, False, True]
    assert len(mail.outbox) == 2


def test_two_workers_claiming_one_email_one_wins_and_it_is_sent_once(tenant):
    def logged() -> EmailLog:
        # Committed at once (transactional test): as an email whose task is being delivered.
        return EmailLog.unscoped.create(
            reseller=tenant.reseller,
            customer=tenant.customer,
            recipient="bob@customer.test",
            subject="[Inkmeter] Black toner low",
            body="Order the replacement.",
            kind=EmailLog.Kind.SUPPLY_LOW,
        )

    for _ in range(5):
        email = logged()
        claim = functools.partial(email_services.email_claim, email_id=email.pk)
        claims = race(claim, claim)
        assert sorted(isinstance(c, EmailLog) for c in claims) == [False, True], claims
        assert claims.count(None) == 1
        assert EmailLog.unscoped.get(pk=email.pk).attempts == 1

    email = logged()
    sends = race(*(lambda: email_services.emails_send(email_ids=[email.pk]),) * 4)
    assert sorted(sends) == [0, 0, 0, 1]
    assert [m.to for m in mail.outbox] == [["bob@customer.test"]]


def test_batches_and_the_sweep_racing_for_one_customer_evaluate_each_supply_once(
    tenant, supply, product, report
):
    from orders.models import SupplyForecast
    from tests.factories import DeviceFactory, SupplyFactory

    for _ in range(3):  # more of the customer's supplies, all with new readings
        other = SupplyFactory(device=DeviceFactory(site=tenant.site), supply_key="toner-black")
        other.observed_at = supply.observed_at
        other.save(update_fields=["observed_at"])
    report(*daily(80, 2, 3))
    customer = tenant.customer.pk

    def batch_asks() -> int:
        with rls.tenant(tenant.reseller.pk):  # as the batch follow-up's transaction
            supply_services.supplies_evaluate_request(
                reseller_id=tenant.reseller.pk, customer_id=customer
            )
        return 0

    def task_runs() -> int:
        return supply_services.supplies_evaluate_pending(customer_id=customer)

    def sweep_runs() -> int:
        return supply_services.supplies_evaluate_sweep()

    # The tasks the asks send wait in the queue: the threads below are their runs.
    with mock.patch.object(supplies_evaluate_pending_task, "apply_async"):
        batch_asks()
        results = race(task_runs, task_runs, task_runs, sweep_runs, batch_asks, batch_asks)

    assert not [r for r in results if isinstance(r, Exception)], results
    assert sorted(results[:4]) == [0, 0, 0, 4]  # one run did the work, the others none of it
    assert SupplyForecast.unscoped.count() == 4
    assert supply_services.supplies_pending(customer_id=customer) == []
    # Whatever the asks left is a run with nothing to evaluate.
    assert supply_services.supplies_evaluate_pending(customer_id=customer) == 0
