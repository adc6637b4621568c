from celery import shared_task


@shared_task
def worker_ping(value: str) -> str:
    """Round trip through the broker and a worker; used by readiness checks and tests."""
    return f"pong:{value}"
