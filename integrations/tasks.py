"""Celery tasks of webhooks: thin; the delivery row's lease makes each attempt happen once."""

from celery import shared_task

from integrations import services


@shared_task(acks_late=True, soft_time_limit=120, time_limit=150)
def webhook_deliver_task(*, delivery_id: int) -> bool:
    # Claims and records in scopes of its own (the row is found by id first).
    return services.webhook_deliver(delivery_id=delivery_id)


@shared_task(acks_late=True, soft_time_limit=60, time_limit=90)
def webhooks_deliver_sweep_task() -> int:
    return services.webhooks_deliver_sweep()
