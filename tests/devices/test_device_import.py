"""CSV import of customers, sites and devices through HTTP: a preview that writes nothing, per-row
errors, then all rows or none once confirmed."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from accounts.models import AuditEvent, Customer, Site, User
from devices import import_services
from devices.models import Device
from tests.conftest import LoginFn, Tenant
from tests.factories import DeviceFactory, SiteFactory

pytestmark = pytest.mark.django_db

IMPORT = "/devices/import/"

GOOD = (
    "customer,site,serial,name,model,city,country\n"
    "Acme Ltd,Head office,CN-A-1,Reception,HP LaserJet M507,Berlin,de\n"
    "acme ltd,Head office,CN-A-2,,,,\n"
    "Acme Ltd,Warehouse,,,,,\n"
    "Alpha Customer,Alpha HQ,CN-EXISTS,,,,\n"
)


def _upload(client: Any, text: str | bytes, name: str = "fleet.csv") -> Any:
    data = text.encode() if isinstance(text, str) else text
    return client.post(IMPORT, {"file": SimpleUploadedFile(name, data, "text/csv")})


def _counts() -> tuple[int, int, int]:
    return Customer.unscoped.count(), Site.unscoped.count(), Device.unscoped.count()


def test_preview_writes_nothing_and_confirm_imports_every_row(
    login: LoginFn, alice: User, tenant: Tenant
) -> None:
    DeviceFactory(site=tenant.site, serial="CN-EXISTS")
    client = login(alice)
    before = _counts()

    preview = _upload(client, GOOD)

    assert preview.status_code == 200
    page = preview.content.decode()
    assert "new customer Acme Ltd" in page
    assert "new site Warehouse" in page
    assert "printer CN-EXISTS exists here: unchanged" in page
    assert _counts() == before
    digest = import_services.import_digest(GOOD.encode())

    done = client.post(IMPORT, {"confirm": "1", "digest": digest})

    assert done.status_code == 302
    acme = Customer.unscoped.get(name="Acme Ltd")
    assert sorted(Site.unscoped.filter(customer=acme).values_list("name", flat=True)) == [
        "Head office",
        "Warehouse",
    ]
    head = Site.unscoped.get(customer=acme, name="Head office")
    assert (head.city, head.country) == ("Berlin", "DE")
    one = Device.unscoped.get(serial="CN-A-1")
    assert (one.site_id, one.customer_id, one.name, one.model) == (
        head.pk,
        acme.pk,
        "Reception",
        "HP LaserJet M507",
    )
    assert Device.unscoped.get(serial="CN-A-2").site_id == head.pk
    assert _counts() == (before[0] + 1, before[1] + 2, before[2] + 2)
    event = AuditEvent.unscoped.get(action="device.import")
    assert (event.detail["customers"], event.detail["sites"], event.detail["devices"]) == (1, 2, 2)
    assert event.detail["unchanged"] == 1


def test_importing_the_same_file_again_changes_nothing(login: LoginFn, alice: User) -> None:
    client = login(alice)
    text = "customer,site,serial\nAcme,HQ,CN-1\n"
    digest = import_services.import_digest(text.encode())
    _upload(client, text)
    client.post(IMPORT, {"confirm": "1", "digest": digest})
    counts = _counts()

    preview = _upload(client, text)
    assert "printer CN-1 exists here: unchanged" in preview.content.decode()
    client.post(IMPORT, {"confirm": "1", "digest": digest})

    assert _counts() == counts


def test_row_errors_are_listed_by_line_and_nothing_can_be_confirmed(
    login: LoginFn, alice: User, tenant: Tenant
) -> None:
    elsewhere = SiteFactory(customer=tenant.customer, name="Annex")
    DeviceFactory(site=elsewhere, serial="CN-TAKEN")
    text = (
        "customer,site,serial,country\n"
        "Acme,HQ,CN-1,DE\n"
        ",HQ,CN-2,\n"
        "Acme,HQ,CN-1,\n"
        "Alpha Customer,Alpha HQ,CN-TAKEN,\n"
        "Acme,HQ," + "X" * 129 + ",\n"
        "Acme,HQ,CN-3,Germany\n"
    )
    client = login(alice)
    before = _counts()

    preview = _upload(client, text)

    assert preview.status_code == 400
    page = preview.content.decode()
    plan = import_services.device_import_preview(ctx=tenant.ctx(), data=text.encode())
    assert {row.line: row.errors for row in plan.error_rows} == {
        3: ["customer: required."],
        4: ["serial CN-1: also on line 2."],
        5: ["serial CN-TAKEN: registered to Alpha Customer / Annex; move it on its own page."],
        6: ["serial: at most 128 characters."],
        7: ["country: a two-letter ISO 3166 code, e.g. DE."],
    }
    assert "also on line 2" in page
    assert 'name="confirm"' not in page
    # A confirmation forged for the same file is refused whole.
    digest = import_services.import_digest(text.encode())
    response = client.post(IMPORT, {"confirm": "1", "digest": digest}, follow=True)
    assert "The file is not the one previewed: upload it again." in response.content.decode()
    assert _counts() == before
    assert not AuditEvent.unscoped.filter(action="device.import").exists()


@pytest.mark.parametrize(
    ("data", "status", "message"),
    [
        (b"customer,site\nAcme,HQ\n", 400, "Missing column(s): serial."),
        (b"customer,site,serial,colour\nA,B,C,red\n", 400, "Unknown column(s): colour;"),
        (b"customer,site,serial\n", 400, "The file has a header but no rows."),
        (b"\n\n", 400, "The file is empty."),
        (b"", 200, "The submitted file is empty."),  # the upload form's own check
        ("customer,site,serial\nM\xfcller,HQ,1\n".encode("latin-1"), 400, "not UTF-8"),
        (b"customer,site,serial\n" + b"A,B,C\n" * 2001, 400, "More than 2000 rows"),
    ],
)
def test_a_file_that_cannot_be_read_is_refused_with_its_reason(
    login: LoginFn, alice: User, data: bytes, status: int, message: str
) -> None:
    before = _counts()
    response = _upload(login(alice), data)

    assert response.status_code == status
    assert message in response.content.decode()
    assert _counts() == before


def test_semicolon_separated_file_with_a_byte_order_mark_is_read(
    login: LoginFn, alice: User
) -> None:
    text = "\ufeffcustomer;site;serial\nAcme;HQ;CN-9\n"
    client = login(alice)
    preview = _upload(client, text.encode())
    assert "new printer CN-9" in preview.content.decode()

    client.post(IMPORT, {"confirm": "1", "digest": import_services.import_digest(text.encode())})

    assert Device.unscoped.get(serial="CN-9").site.name == "HQ"


def test_confirm_of_a_file_that_became_invalid_imports_nothing(
    login: LoginFn, alice: User, tenant: Tenant
) -> None:
    text = "customer,site,serial\nAcme,HQ,CN-1\nAcme,HQ,CN-RACE\n"
    client = login(alice)
    _upload(client, text)
    # Meanwhile another user registers CN-RACE elsewhere: the second row is now an error.
    DeviceFactory(site=tenant.site, serial="CN-RACE")
    before = _counts()

    response = client.post(
        IMPORT, {"confirm": "1", "digest": import_services.import_digest(text.encode())}
    )

    assert response.status_code == 400
    assert "nothing was imported" in response.content.decode()
    assert _counts() == before  # not even Acme, its site or CN-1


def test_confirm_with_another_digest_is_refused(login: LoginFn, alice: User) -> None:
    client = login(alice)
    _upload(client, "customer,site,serial\nAcme,HQ,CN-1\n")
    before = _counts()

    client.post(IMPORT, {"confirm": "1", "digest": "0" * 64})

    assert _counts() == before


def test_customer_support_and_foreign_users_cannot_import_into_this_reseller(
    login: LoginFn, bob: User, charlie: User, tenant: Tenant
) -> None:
    assert _upload(login(bob), "customer,site,serial\nX,Y,Z\n").status_code == 403
    before = _counts()
    # Charlie imports into his own reseller: a name equal to one of Alpha's is a new customer.
    client = login(charlie)
    text = "customer,site,serial\nAlpha Customer,Alpha HQ,CN-CH\n"
    _upload(client, text)
    client.post(IMPORT, {"confirm": "1", "digest": import_services.import_digest(text.encode())})
    device = Device.unscoped.get(serial="CN-CH")
    assert device.reseller_id != tenant.reseller.pk
    assert device.customer_id != tenant.customer.pk
    assert _counts() == (before[0] + 1, before[1] + 1, before[2] + 1)
