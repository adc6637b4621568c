"""Celery tasks of the devices app: thin, idempotent (each service claims its work)."""

from celery import shared_task

from devices import partitions, services
from devices.models import TelemetryBatch
from portal import rls


@shared_task(acks_late=True, soft_time_limit=240, time_limit=300)
def batch_followup_task(*, batch_pk: int) -> bool:
    reseller_id = rls.reseller_of(TelemetryBatch, batch_pk)
    if reseller_id is None:
        return False
    with rls.tenant(reseller_id):
        return services.batch_followup(batch_pk=batch_pk)


@shared_task(acks_late=True, soft_time_limit=240, time_limit=300)
def alerts_notify_task(*, alert_ids: list[int]) -> int:
    with rls.system("a batch's alerts are notified by id"):
        return services.alerts_notify(alert_ids=alert_ids)


@shared_task(acks_late=True, soft_time_limit=540, time_limit=600)
def devices_offline_sweep_task() -> int:
    with rls.system("the offline sweep covers every reseller's devices"):
        return services.devices_offline_sweep()


@shared_task(acks_late=True, soft_time_limit=240, time_limit=300)
def collectors_silent_sweep_task() -> int:
    with rls.system("the silent-collector sweep covers every reseller's collectors"):
        return services.collectors_silent_sweep()


@shared_task(acks_late=True, soft_time_limit=540, time_limit=600)
def telemetry_followup_sweep_task() -> int:
    """Re-derive follow-up work whose task was lost: batches first, then stray alerts."""
    with rls.system("the sweep re-derives lost work of every reseller"):
        return services.batches_followup_sweep() + services.alerts_notify_sweep()


@shared_task(acks_late=True, soft_time_limit=540, time_limit=600)
def partitions_ensure_task() -> int:
    """Daily: next months' partitions exist before their first rows, and rows that went to a
    DEFAULT partition move to their month's. DDL, hence as the tables' owner: the worker that
    runs it needs the owner's login (DATABASE_OWNER_URL, or a DATABASE_URL of the owner)."""
    if not partitions.is_supported():
        return 0
    with rls.owner():
        return len(partitions.partitions_ensure())
