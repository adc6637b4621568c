"""Monthly partitions of batches, snapshots and readings (devices/partitions.py), for operators.

manage.py partitions list [--exact]
manage.py partitions ensure [--ahead N]
manage.py partitions detach --before YYYY-MM [--archive-dir DIR]

Runs as the tables' owner: partitions are DDL, which the application role may not do.
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from devices import partitions
from portal import rls
from portal.errors import DomainError


def _month(value: str) -> date:
    try:
        return datetime.strptime(value, "%Y-%m").date()  # noqa: DTZ007 - a calendar month
    except ValueError as error:
        raise CommandError(f"--before takes a month as YYYY-MM, not {value!r}.") from error


def _size(size_bytes: int) -> str:
    size = float(size_bytes)
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TB"  # pragma: no cover - the loop returns


class Command(BaseCommand):
    help = "List, create ahead, or detach and archive the monthly partitions (PostgreSQL)."

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True)
        listing = actions.add_parser("list", help="Partitions with their rows and sizes.")
        listing.add_argument(
            "--exact", action="store_true", help="Count rows (slow on big months)."
        )
        ensure = actions.add_parser("ensure", help="Create this month's and the next partitions.")
        ensure.add_argument("--ahead", type=int, default=partitions.MONTHS_AHEAD)
        detach = actions.add_parser("detach", help="Take the months before --before out.")
        detach.add_argument("--before", required=True, type=_month, help="YYYY-MM")
        detach.add_argument(
            "--archive-dir",
            type=Path,
            help="pg_dump each month to DIR/inkmeter-YYYY-MM.dump, then drop it.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        with rls.owner():
            if not partitions.is_supported():
                self.stdout.write("No partitioned tables here: partitions are PostgreSQL only.")
                return
            try:
                getattr(self, f"_{options['action']}")(options)
            except DomainError as error:
                raise CommandError(error.message) from error

    def _list(self, options: dict[str, Any]) -> None:
        rows = partitions.partition_list(exact=options["exact"])
        self.stdout.write(f"{'partition':<40} {'month':<9} {'rows':>12} {'size':>10}")
        for p in rows:
            month = f"{p.month:%Y-%m}" if p.month else "DEFAULT"
            count = "?" if p.rows is None else f"{p.rows:,}"
            state = "" if p.is_attached else "  (detached)"
            self.stdout.write(
                f"{p.name:<40} {month:<9} {count:>12} {_size(p.size_bytes):>10}{state}"
            )
        if not options["exact"]:
            self.stdout.write("Rows are the planner's estimates; --exact counts them.")

    def _ensure(self, options: dict[str, Any]) -> None:
        added = partitions.partitions_ensure(ahead=options["ahead"])
        for name in added:
            self.stdout.write(f"added {name}")
        self.stdout.write(f"{len(added)} partition(s) added.")

    def _detach(self, options: dict[str, Any]) -> None:
        result = partitions.partitions_detach(
            before=options["before"], archive_dir=options["archive_dir"]
        )
        for name in result.tables:
            self.stdout.write(f"detached {name}")
        for path in result.archives:
            self.stdout.write(f"archived {path}")
        if result.kept:
            self.stdout.write(
                f"{len(result.kept)} detached table(s) left in the database: "
                + ", ".join(result.kept)
                + ". Archive them with --archive-dir, or drop them."
            )
        if not (result.tables or result.archives):
            self.stdout.write(f"Nothing to detach before {options['before']:%Y-%m}.")
