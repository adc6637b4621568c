from django.apps import AppConfig


class DevicesConfig(AppConfig):
    name = "devices"
    verbose_name = "Devices and telemetry"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from devices.partitions import partitions_after_migrate

        # After every migrate (as the owner): this month's partitions and the next ones exist
        # even where the daily beat task has not run yet.
        post_migrate.connect(partitions_after_migrate, sender=self, weak=False)
