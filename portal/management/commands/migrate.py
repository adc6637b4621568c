"""`migrate` as the tables' owner, then the row-level-security wall over every tenant table."""

from typing import Any

from django.core.management.commands.migrate import Command as MigrateCommand

from portal import rls


class Command(MigrateCommand):
    def handle(self, *args: Any, **options: Any) -> None:
        with rls.owner():
            super().handle(*args, **options)
            if not (options.get("check_unapplied") or options.get("plan")):  # read-only modes
                rls.install()
