from django.apps import AppConfig


class PortalConfig(AppConfig):
    name = "portal"
    verbose_name = "Portal"

    def ready(self) -> None:
        from celery.signals import task_postrun, task_prerun
        from django.core.signals import request_finished
        from django.db.backends.signals import connection_created

        from portal import db, logging, rls

        # weak=False: the receivers are module functions, kept alive anyway; explicit is clearer.
        request_finished.connect(logging.request_finished_clear, weak=False)
        task_prerun.connect(logging.task_prerun_set, weak=False)
        task_postrun.connect(logging.task_postrun_clear, weak=False)
        connection_created.connect(rls.drop_to_app_role, weak=False)
        connection_created.connect(db.timestamptz_loader_install, weak=False)
        task_prerun.connect(db.task_connections_recycle, weak=False)
        task_postrun.connect(db.task_connections_recycle, weak=False)
