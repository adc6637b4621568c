"""Seed the demo: two resellers, customers, sites and users of every role. Idempotent."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from allauth.account.models import EmailAddress
from allauth.mfa.models import Authenticator
from allauth.mfa.totp.internal.auth import TOTP
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.test.utils import override_settings
from django.utils.text import slugify

from accounts.models import Customer, Membership, Reseller, Site, User
from portal import rls
from portal.tenancy import Role

PASSWORD = "inkmeter-demo"  # noqa: S105 - the demo's published password
# A fixed authenticator secret for the demo's admin and finance users (base32). Add it to an
# authenticator app, or print the current code with `python manage.py totp_code EMAIL`.
DEMO_TOTP_SECRET = "JBSWY3DPEHPK3PXPINKMETERDEMO2345"  # noqa: S105 - published demo secret

RESELLERS: list[dict[str, Any]] = [
    {
        "slug": "northwind",
        "name": "Northwind Print Services",
        "legal_name": "Northwind Print Services GmbH",
        "address": "Speicherstadt 12\n20457 Hamburg\nGermany",
        "support_email": "support@northwind.demo",
        "staff": [
            ("admin@northwind.demo", "Nora Admin", Role.RESELLER_ADMIN),
            ("finance@northwind.demo", "Finn Finance", Role.RESELLER_FINANCE),
            ("support@northwind.demo", "Sam Support", Role.RESELLER_SUPPORT),
        ],
        "customers": [
            {
                "name": "Harbour Logistics GmbH",
                "account_number": "NW-1001",
                "billing_email": "ap@harbour.demo",
                "billing_address": "Accounts payable\nAm Sandtorkai 5\n20457 Hamburg\nGermany",
                "sites": [
                    ("Hamburg HQ", "Am Sandtorkai 5", "20457", "Hamburg", "Jana Brandt"),
                    ("Bremen Warehouse", "Hafenstraße 80", "28217", "Bremen", "Ole Wendt"),
                ],
                "users": [("office@harbour.demo", "Olga Office", Role.CUSTOMER_ADMIN)],
            },
            {
                "name": "Kessler Architects",
                "account_number": "NW-1002",
                "billing_email": "office@kessler.demo",
                "billing_address": "Leopoldstraße 40\n80802 Munich\nGermany",
                "sites": [("Munich Studio", "Leopoldstraße 40", "80802", "Munich", "Kai Kessler")],
                "users": [("buyer@kessler.demo", "Ben Buyer", Role.CUSTOMER_BUYER)],
            },
            {
                "name": "St. Anna Clinic",
                "account_number": "NW-1003",
                "billing_email": "einkauf@st-anna.demo",
                "billing_address": "Einkauf\nKlinikweg 1\n22081 Hamburg\nGermany",
                "sites": [("Main building", "Klinikweg 1", "22081", "Hamburg", "Dr. Meyer")],
                "users": [],
            },
        ],
    },
    {
        "slug": "southpoint",
        "name": "Southpoint Office Systems",
        "legal_name": "Southpoint Office Systems Ltd",
        "address": "4 Harbour Road\nBristol BS1 5DB\nUnited Kingdom",
        "support_email": "help@southpoint.demo",
        "staff": [
            ("admin@southpoint.demo", "Sofia Admin", Role.RESELLER_ADMIN),
            # Nora works for both resellers: the switcher in the top bar moves between them.
            ("admin@northwind.demo", "Nora Admin", Role.RESELLER_SUPPORT),
        ],
        "customers": [
            {
                "name": "Avon Dental Practice",
                "account_number": "SP-0001",
                "billing_email": "accounts@avondental.demo",
                "sites": [("Clifton", "12 Princess Victoria St", "BS8 4BP", "Bristol", "Amy Lee")],
                "users": [],
            }
        ],
    },
]


@contextmanager
def _quiet(*loggers: str) -> Iterator[None]:
    """Tasks run in-process while seeding; their per-task log lines would bury the summary."""
    levels = {name: logging.getLogger(name).level for name in loggers}
    for name in loggers:
        logging.getLogger(name).setLevel(logging.WARNING + 10)
    try:
        yield
    finally:
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


def _demo_email(person: str, company: str) -> str:
    """meyer@st-anna.demo for Dr. Meyer of St. Anna Clinic: the company's first word that is not
    an abbreviation, joined to it ("St." alone would give "st..demo")."""
    words = company.split()
    domain = slugify(" ".join(words[:2]) if words[0].endswith(".") else words[0])
    return f"{slugify(person.split()[-1])}@{domain}.demo"


# The demo's companies are in Germany: its people see times as they would.
DEMO_TIME_ZONE = "Europe/Berlin"

# Printers per demo site of the first reseller.
DEMO_FLEET = {"Hamburg HQ": 8, "Bremen Warehouse": 4, "Munich Studio": 3, "Main building": 3}


class Command(BaseCommand):
    help = "Create or refresh the demo data (safe to run again)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--no-fleet", action="store_true", help="Skip the simulated fleet.")
        parser.add_argument("--days", type=int, default=90, help="Days of fleet history.")

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.DEBUG:
            raise CommandError("seed_demo creates well-known passwords: run it with DEBUG=True.")
        with rls.system("the demo seeds every tenant"):
            operator = self._user("operator@inkmeter.demo", "Olli Operator", superuser=True)
            resellers = [self._reseller(spec) for spec in RESELLERS]
        # Ninety days of history raise many low-supply emails; they stay in the portal's email
        # log, and the console keeps only the credentials below.
        with (
            override_settings(EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend"),
            _quiet("celery.app.trace", "kombu"),
        ):
            fleet = "" if options["no_fleet"] else self._fleet(resellers[0], days=options["days"])
            supplies = self._supplies(resellers[0])
            billing = "" if options["no_fleet"] else self._billing(resellers[0])
        notes = (p for p in (fleet, supplies, billing) if p)
        self._print_credentials(operator, "\n".join(notes))

    def _reseller(self, spec: dict[str, Any]) -> Reseller:
        # System code seeding every tenant: `unscoped` on purpose.
        reseller, _ = Reseller.objects.update_or_create(
            slug=spec["slug"],
            defaults={k: spec[k] for k in ("name", "legal_name", "address", "support_email")},
        )
        for email, name, role in spec["staff"]:
            self._member(self._user(email, name), reseller, None, role)
        for c in spec["customers"]:
            customer, _ = Customer.unscoped.update_or_create(
                reseller=reseller,
                name=c["name"],
                defaults={
                    "account_number": c["account_number"],
                    "billing_email": c["billing_email"],
                },
            )
            for site_name, street, postal_code, city, contact in c["sites"]:
                Site.unscoped.update_or_create(
                    reseller=reseller,
                    customer=customer,
                    name=site_name,
                    defaults={
                        "address_line1": street,
                        "postal_code": postal_code,
                        "city": city,
                        "country": "GB" if reseller.slug == "southpoint" else "DE",
                        "contact_name": contact,
                        "contact_email": _demo_email(contact, customer.name),
                    },
                )
            for email, name, role in c["users"]:
                self._member(self._user(email, name), reseller, customer, role)
        return reseller

    def _user(self, email: str, name: str, *, superuser: bool = False) -> User:
        user = User.objects.filter(email=email).first()
        if user is None:
            user = User.objects.create_user(
                email, PASSWORD, full_name=name, time_zone=DEMO_TIME_ZONE
            )
        if superuser and not user.is_superuser:
            user.is_superuser = user.is_staff = True
            user.save(update_fields=["is_superuser", "is_staff"])
        EmailAddress.objects.update_or_create(
            user=user, email=email, defaults={"verified": True, "primary": True}
        )
        needs_totp = superuser or email.split("@")[0] in ("admin", "finance")
        if (
            needs_totp
            and not Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).exists()
        ):
            TOTP.activate(user, DEMO_TOTP_SECRET)
        return user

    def _member(
        self, user: User, reseller: Reseller, customer: Customer | None, role: Role
    ) -> None:
        Membership.unscoped.update_or_create(
            user=user, reseller=reseller, customer=customer, defaults={"role": role}
        )

    def _fleet(self, reseller: Reseller, *, days: int) -> str:
        """Printers for the first reseller's sites, with `days` of history sent as real signed
        telemetry through the ingestion view. Sites that have printers already are left alone."""
        from devices.models import Device
        from devices.simulator import fleet_simulate

        reports = []
        for seed, (site_name, devices) in enumerate(DEMO_FLEET.items(), start=1):
            with rls.tenant(reseller.pk):
                site = Site.unscoped.get(reseller=reseller, name=site_name)
                if Device.unscoped.filter(site=site).exists():
                    continue
            self.stdout.write(f"Simulating {devices} printers at {site_name}, {days} days…")
            report = fleet_simulate(
                site_id=site.pk, devices=devices, days=days, interval_minutes=240, seed=seed
            )
            if report.failures:
                raise CommandError(f"the simulated fleet was refused: {report.failures[:3]}")
            reports.append(f"  {site_name}: {devices} printers, {report.accepted} snapshots")
        return "\n".join(["Simulated fleet:", *reports]) if reports else ""

    def _supplies(self, reseller: Reseller) -> str:
        """A catalog fitting the simulated printers, a reorder policy and an order per state."""
        from orders.demo import seed_demo_supplies

        with rls.tenant(reseller.pk):
            counts = seed_demo_supplies(reseller)
        return "Supplies: " + ", ".join(f"{n} {what}" for what, n in counts.items())

    def _billing(self, reseller: Reseller) -> str:
        """A price plan, a contract over the simulated printers and its statements."""
        from billing.services import seed_demo_billing

        with rls.tenant(reseller.pk):
            contract = seed_demo_billing(reseller)
        return f"Billing: contract {contract.reference or contract.pk} computed" if contract else ""

    def _print_credentials(self, operator: User, fleet: str) -> None:
        line = "-" * 72
        self.stdout.write(line)
        self.stdout.write(self.style.SUCCESS("Inkmeter demo is ready at http://127.0.0.1:8000"))
        self.stdout.write(f"Every demo user's password: {PASSWORD}")
        self.stdout.write("  support@northwind.demo   reseller support (no second factor)")
        self.stdout.write("  office@harbour.demo      customer admin of Harbour Logistics")
        self.stdout.write("  buyer@kessler.demo       customer buyer of Kessler Architects")
        self.stdout.write("  admin@northwind.demo     reseller admin (+ support at Southpoint)")
        self.stdout.write("  finance@northwind.demo   reseller finance")
        self.stdout.write(f"  {operator.email:<24} platform operator")
        self.stdout.write(
            "Admins, finance and the operator sign in with a second factor: add the secret "
            f"{DEMO_TOTP_SECRET} to an authenticator app, or run "
            "`.venv/bin/python manage.py totp_code admin@northwind.demo`."
        )
        if fleet:
            self.stdout.write(fleet)
        self.stdout.write(line)
