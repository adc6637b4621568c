"""Celery tasks of the devices app: thin, idempotent (each service claims its work)."""

from celery import shared_task

from devices import services


@shared_task(acks_late=True, soft_time_limit=240, time_limit=300)
def batch_followup_task(*, batch_pk: int) -> bool:
    return services.batch_followup(batch_pk=batch_pk)


@shared_task(acks_late=True, soft_time_limit=240, time_limit=300)
def alerts_notify_task(*, alert_ids: list[int]) -> int:
    return services.alerts_notify(alert_ids=alert_ids)


@shared_task(acks_late=True, soft_time_limit=540, time_limit=600)
def devices_offline_sweep_task() -> int:
    return services.devices_offline_sweep()


@shared_task(acks_late=True, soft_time_limit=540, time_limit=600)
def telemetry_followup_sweep_task() -> int:
    """Re-derive follow-up work whose task was lost: batches first, then stray alerts."""
    return services.batches_followup_sweep() + services.alerts_notify_sweep()
