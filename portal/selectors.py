"""Reads across all tenants for operations: readiness and the /metrics numbers. Each query is
one index range or a small table, cheap enough for a scrape every few seconds."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.core.cache import cache
from django.db.models import Count, Min, Sum
from django.utils.timezone import now

from portal import rls
from portal.services import WORKER_HEARTBEAT_KEY

INGEST_WINDOW = timedelta(minutes=5)
# The ingest counts look at most this many of the newest batches (a backward scan of the
# primary key; received_at has no index of its own). Past it the counts are a lower bound:
# 50,000 batches in five minutes is far beyond a deployment's budget.
INGEST_SCAN_LIMIT = 50_000


@dataclass(frozen=True)
class Metrics:
    batches_recent: int
    snapshots_recent: int
    followup_oldest_pending_seconds: float
    emails_failed: int
    emails_retrying: int
    devices_online: int
    devices_offline: int
    worker_heartbeat_age_seconds: float | None


def worker_heartbeat_age_seconds() -> float | None:
    """Seconds since a worker last ran the heartbeat task; None if it never did."""
    beat = cache.get(WORKER_HEARTBEAT_KEY)
    return None if beat is None else max(0.0, now().timestamp() - float(beat))


def metrics_get() -> Metrics:
    from devices.models import DeviceState, TelemetryBatch
    from orders.models import EmailLog

    with rls.system("platform metrics count every tenant's rows"):
        moment = now()
        newest = TelemetryBatch.unscoped.order_by("-pk").values("pk")[:INGEST_SCAN_LIMIT]
        recent = TelemetryBatch.unscoped.filter(
            pk__in=newest, received_at__gte=moment - INGEST_WINDOW
        ).aggregate(batches=Count("pk"), snapshots=Sum("snapshot_count"))
        # The partial index devices_batch_followup_due holds exactly these rows.
        oldest = TelemetryBatch.unscoped.filter(followup_done_at__isnull=True).aggregate(
            at=Min("received_at")
        )["at"]
        states = dict(
            DeviceState.unscoped.values("is_online")
            .order_by()
            .annotate(n=Count("pk"))
            .values_list("is_online", "n")
        )
        return Metrics(
            batches_recent=recent["batches"],
            snapshots_recent=recent["snapshots"] or 0,
            followup_oldest_pending_seconds=(moment - oldest).total_seconds() if oldest else 0.0,
            emails_failed=EmailLog.unscoped.filter(status=EmailLog.Status.FAILED).count(),
            # An attempt failed and another is due: the mail server is refusing or unreachable.
            emails_retrying=EmailLog.unscoped.filter(
                status=EmailLog.Status.PENDING, attempts__gt=0
            ).count(),
            devices_online=states.get(True, 0),
            devices_offline=states.get(False, 0),
            worker_heartbeat_age_seconds=worker_heartbeat_age_seconds(),
        )
