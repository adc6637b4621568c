"""The one tenancy gate: tenant models refuse unscoped queries, and only services, selectors,
ingestion, admin and commands may reach for `unscoped` or a raw `objects`."""

import ast
from pathlib import Path

import pytest
from django.apps import apps

from accounts.models import Customer, Site
from portal.tenancy import Role, TenantContext, TenantModel, UnscopedQueryError
from tests.factories import CustomerFactory, SiteFactory

ROOT = Path(__file__).resolve().parents[2]
APPS = ["portal", "accounts", "devices", "billing", "orders", "integrations"]
# Modules where tenant rows are read and written, on purpose, through the gate's two doors
# (`*selectors.py` and `*services.py` include split modules such as fleet_selectors.py).
ALLOWED = {"ingest.py", "admin.py", "writer.py", "simulator.py"}
ALLOWED_SUFFIXES = ("services.py", "selectors.py")


def test_objects_without_for_tenant_raises():
    with pytest.raises(UnscopedQueryError):
        Customer.objects.all()
    with pytest.raises(UnscopedQueryError):
        Site.objects.filter(name="x")


@pytest.mark.django_db
def test_for_tenant_narrows_to_the_reseller_and_for_customers_to_their_customer():
    mine = CustomerFactory(name="Mine")
    sibling = CustomerFactory(reseller=mine.reseller, name="Sibling")
    CustomerFactory(name="Foreign")
    SiteFactory(customer=mine, name="Mine HQ")
    SiteFactory(customer=sibling, name="Sibling HQ")

    reseller_ctx = TenantContext(reseller=mine.reseller, role=Role.RESELLER_SUPPORT)
    customer_ctx = TenantContext(reseller=mine.reseller, role=Role.CUSTOMER_BUYER, customer=mine)

    assert sorted(Customer.objects.for_tenant(reseller_ctx).values_list("name", flat=True)) == [
        "Mine",
        "Sibling",
    ]
    assert list(Customer.objects.for_tenant(customer_ctx).values_list("name", flat=True)) == [
        "Mine"
    ]
    assert list(Site.objects.for_tenant(customer_ctx).values_list("name", flat=True)) == ["Mine HQ"]


def _tenant_model_names() -> set[str]:
    return {m.__name__ for m in apps.get_models() if issubclass(m, TenantModel)}


def test_no_view_api_or_task_reaches_around_the_gate():
    tenant_models = _tenant_model_names()
    offences = []
    for app in APPS:
        for path in sorted((ROOT / app).rglob("*.py")):
            if (
                path.name in ALLOWED
                or path.name.endswith(ALLOWED_SUFFIXES)
                or "migrations" in path.parts
                or "management" in path.parts
            ):
                continue
            tree = ast.parse(path.read_text(), filename=str(path))
            for node in ast.walk(tree):
                if (
                    isinstance(node, ast.Attribute)
                    and node.attr in ("objects", "unscoped")
                    and isinstance(node.value, ast.Name)
                    and node.value.id in tenant_models
                ):
                    offences.append(
                        f"{path.relative_to(ROOT)}:{node.lineno} {node.value.id}.{node.attr}"
                    )
    assert offences == [], "use a selector or service instead:\n" + "\n".join(offences)
