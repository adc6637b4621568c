from celery import shared_task


@shared_task
def worker_ping(value: str) -> str:
    """Round trip through the broker and a worker; used by readiness checks and tests."""
    return f"pong:{value}"


@shared_task(ignore_result=True, expires=120)
def worker_heartbeat_task() -> None:
    """Beat runs it every minute; readyz reports the workers stale when it stops arriving."""
    from portal import services

    services.worker_heartbeat_record()
