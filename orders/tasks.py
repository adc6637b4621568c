"""Celery tasks of the orders app: thin, idempotent (each service claims its work or derives it
from stored readings), retried only for transient errors."""

from celery import shared_task

from orders import email_services, supply_services
from portal import rls


@shared_task(acks_late=True, soft_time_limit=240, time_limit=300)
def supplies_evaluate_task(*, device_ids: list[int]) -> int:
    with rls.system("devices of a batch are evaluated by id"):
        return supply_services.supplies_evaluate(device_ids=device_ids)


@shared_task(acks_late=True, soft_time_limit=240, time_limit=300)
def supplies_evaluate_pending_task(*, customer_id: int | None = None) -> int:
    # No transaction around it: the run claims its customer, evaluates and lets go in
    # transactions of its own, each in the customer's tenant scope.
    return supply_services.supplies_evaluate_pending(customer_id=customer_id)


@shared_task(acks_late=True, soft_time_limit=60, time_limit=90)
def supply_alert_notify_task(*, alert_id: int) -> bool:
    with rls.system("an alert is notified by id"):
        return supply_services.supply_alert_notify(alert_id=alert_id)


@shared_task(acks_late=True, soft_time_limit=120, time_limit=180)
def emails_send_task(*, email_ids: list[int]) -> int:
    return email_services.emails_send(email_ids=email_ids)


@shared_task(acks_late=True, soft_time_limit=540, time_limit=600)
def orders_sweep_task() -> int:
    """Re-derive what a lost task left undone: evaluations, alert notifications, emails."""
    # Evaluations claim their customer in transactions of their own (supplies_evaluate_sweep).
    derived = supply_services.supplies_evaluate_sweep()
    with rls.system("the sweep re-derives lost work of every reseller"):
        derived += supply_services.supply_alerts_notify_sweep()
    # Outside that transaction: each email is claimed and marked in transactions of its own.
    return derived + email_services.emails_send_sweep()
