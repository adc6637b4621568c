"""Simulate a printer fleet and upload its history as signed telemetry.

    manage.py simulate_fleet --reseller SLUG --customer NAME --site NAME \
        [--devices 20] [--days 90] [--batch-size 100] [--interval 60] [--url http://host:8000]
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.models import Reseller, Site
from devices.simulator import fleet_simulate
from portal import rls
from portal.tenancy import TenantContext


class Command(BaseCommand):
    help = "Create a simulated fleet for a site and send its telemetry history."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--reseller", required=True)
        parser.add_argument("--customer", required=True)
        parser.add_argument("--site", required=True)
        parser.add_argument("--devices", type=int, default=20)
        parser.add_argument("--days", type=float, default=7)
        parser.add_argument("--batch-size", type=int, default=100)
        parser.add_argument("--interval", type=int, default=60, help="Minutes between polls.")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument(
            "--url", help="Portal base URL to POST to; in-process through the view without it."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        with rls.system("the reseller is named by its slug"):
            reseller = Reseller.objects.filter(slug=options["reseller"]).first()
        if reseller is None:
            raise CommandError(f"No reseller with slug {options['reseller']!r}.")
        with rls.tenant(reseller.pk):
            ctx = TenantContext.system(reseller=reseller)
            site = (
                Site.objects.for_tenant(ctx)
                .filter(customer__name=options["customer"], name=options["site"])
                .first()
            )
        if site is None:
            raise CommandError("No such customer and site.")
        if not 1 <= options["batch_size"] <= 1000:
            raise CommandError("--batch-size is 1 to 1000.")
        # Each batch is a request of its own, in its own transaction and scope.
        report = fleet_simulate(
            site_id=site.pk,
            devices=options["devices"],
            days=options["days"],
            batch_size=options["batch_size"],
            interval_minutes=options["interval"],
            url=options["url"],
            seed=options["seed"],
        )
        self.stdout.write(json.dumps(asdict(report)))
        if report.failures:
            raise CommandError(f"{len(report.failures)} batches refused: {report.failures[:3]}")
