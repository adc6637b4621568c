"""The only set-up without a page of its own, run as `manage.py shell` of the stack: the
platform's operator creates the reseller and its people (the invitation flow has its own test,
tests/acceptance/test_invitation.py). Everything else the journey does through the portal.

Each script prints one JSON line last.
"""

from __future__ import annotations

import json
import subprocess

from benchmarks.stack import Stack

PASSWORD = "acceptance-Pass-2026!"
FINANCE_TOTP_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"

RESELLER = """
import json
from allauth.account.models import EmailAddress
from allauth.mfa.totp.internal.auth import TOTP
from accounts import services
from accounts.models import Membership, User
from portal import rls
from portal.tenancy import Role


def person(email, role, reseller):
    user = User.objects.create_user(email, PASSWORD, full_name=email.split("@")[0].title())
    EmailAddress.objects.create(user=user, email=email, verified=True, primary=True)
    Membership.unscoped.create(user=user, reseller=reseller, role=role)
    return user


with rls.system("the operator creates a reseller and its people"):
    operator = User.objects.create_superuser(email="operator@platform.test", password=PASSWORD)
    reseller = services.reseller_create(
        by=operator, name="Acme Print Services", support_email="support-inbox@acme.test"
    )
    with rls.tenant(reseller.pk):
        person("admin@acme.test", Role.RESELLER_ADMIN, reseller)
        person("support@acme.test", Role.RESELLER_SUPPORT, reseller)
        finance = person("finance@acme.test", Role.RESELLER_FINANCE, reseller)
        TOTP.activate(finance, FINANCE_TOTP_SECRET)
print(json.dumps({"reseller_id": reseller.pk}))
"""

CUSTOMER_USER = """
import json
from allauth.account.models import EmailAddress
from accounts.models import Customer, Membership, User
from portal import rls
from portal.tenancy import Role

with rls.tenant(RESELLER_ID):
    customer = Customer.unscoped.get(reseller_id=RESELLER_ID, name=CUSTOMER)
    user = User.objects.create_user(EMAIL, PASSWORD, full_name="Office Manager")
    EmailAddress.objects.create(user=user, email=EMAIL, verified=True, primary=True)
    Membership.unscoped.create(
        user=user, reseller_id=RESELLER_ID, customer=customer, role=Role.CUSTOMER_ADMIN
    )
print(json.dumps({"customer_id": customer.pk}))
"""


def run(stack: Stack, script: str, **values: object) -> dict[str, object]:
    """`manage.py shell -c` with `values` bound as constants; returns its last JSON line."""
    constants = {"PASSWORD": PASSWORD, "FINANCE_TOTP_SECRET": FINANCE_TOTP_SECRET, **values}
    prelude = "".join(f"{k} = {v!r}\n" for k, v in constants.items())
    try:
        result = stack.manage("shell", "-c", prelude + script, timeout=120)
    except subprocess.TimeoutExpired as error:
        raise AssertionError(f"seed script timed out: {error}") from error
    answer: dict[str, object] = json.loads(result.stdout.strip().splitlines()[-1])
    return answer
