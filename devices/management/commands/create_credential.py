"""Create a collector or direct-connect credential and print it as JSON, for operators' scripts.

manage.py create_credential --reseller SLUG --customer NAME --site NAME
manage.py create_credential --reseller SLUG --device SERIAL [--customer NAME --site NAME]
"""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.models import Reseller, Site
from devices import services
from devices.models import Credential
from portal import rls
from portal.errors import DomainError
from portal.tenancy import TenantContext


class Command(BaseCommand):
    help = "Create a device credential and print {key_id, secret, url} as JSON."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--reseller", required=True, help="The reseller's slug.")
        parser.add_argument("--customer", help="The customer's name.")
        parser.add_argument("--site", help="The site's name (of that customer).")
        parser.add_argument("--device", help="A printer's serial: a direct-connect credential.")
        parser.add_argument("--name", default="", help="A label shown in the portal.")

    def handle(self, *args: Any, **options: Any) -> None:
        with rls.system("the reseller is named by its slug"):
            reseller = Reseller.objects.filter(slug=options["reseller"]).first()
        if reseller is None:
            raise CommandError(f"No reseller with slug {options['reseller']!r}.")
        with rls.tenant(reseller.pk):
            ctx = TenantContext.system(reseller=reseller)
            site_id = None
            if options["customer"] or options["site"]:
                if not (options["customer"] and options["site"]):
                    raise CommandError("Give --customer and --site together.")
                site = (
                    Site.objects.for_tenant(ctx)
                    .filter(customer__name=options["customer"], name=options["site"])
                    .first()
                )
                if site is None:
                    raise CommandError(
                        f"No site {options['site']!r} of customer {options['customer']!r}."
                    )
                site_id = site.pk
            kind = Credential.Kind.DIRECT if options["device"] else Credential.Kind.COLLECTOR
            try:
                credential, secret = services.credential_create(
                    ctx=ctx,
                    kind=kind,
                    name=options["name"],
                    site_id=site_id,
                    serial=options["device"] or "",
                )
            except DomainError as error:
                raise CommandError(error.message) from error
            self.stdout.write(
                json.dumps(
                    {"key_id": credential.key_id, "secret": secret, "url": settings.SITE_URL}
                )
            )
