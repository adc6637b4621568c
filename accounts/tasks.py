from celery import shared_task

from accounts import services
from portal import rls


@shared_task(acks_late=True, soft_time_limit=240, time_limit=300)
def invitations_purge_task() -> int:
    with rls.system("expired invitations of every reseller"):
        return services.invitations_purge()
