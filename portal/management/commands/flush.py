"""`flush` as the tables' owner: TRUNCATE is a privilege the application role does not hold."""

from typing import Any

from django.core.management.commands.flush import Command as FlushCommand

from portal import rls


class Command(FlushCommand):
    def handle(self, *args: Any, **options: Any) -> None:
        with rls.owner():
            super().handle(*args, **options)
