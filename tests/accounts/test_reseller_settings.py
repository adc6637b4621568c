"""A reseller admin's settings page: name, address, support address and the statement logo,
which must be a small PNG or JPEG by its bytes, whatever its name says."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from accounts.models import AuditEvent, Reseller

pytestmark = pytest.mark.django_db

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 64
SVG = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
GIF = b"GIF89a" + b"\x00" * 64


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


def _post(client, logo=None, **data):
    form = {"name": "Alpha Print Co", "address": "1 Ink Road\nInkton", "support_email": ""}
    form |= data
    if logo is not None:
        form["logo"] = logo
    return client.post("/settings/reseller/", form)


def test_admin_saves_details_and_a_png_logo(login, alice, tenant, tmp_path):
    client = login(alice)

    response = _post(client, SimpleUploadedFile("brand.png", PNG), support_email="help@alpha.test")

    assert response.status_code == 302
    reseller = Reseller.objects.get(pk=tenant.reseller.pk)
    assert (reseller.name, reseller.address, reseller.support_email) == (
        "Alpha Print Co",
        "1 Ink Road\nInkton",
        "help@alpha.test",
    )
    assert reseller.logo.name.startswith(f"resellers/{reseller.pk}/logo-")
    assert reseller.logo.name.endswith(".png")
    assert (tmp_path / reseller.logo.name).read_bytes() == PNG
    event = AuditEvent.objects.for_tenant(tenant.ctx()).get(action="reseller.update")
    assert event.detail == {"name": "Alpha Print Co", "logo": "replaced"}
    assert client.get("/settings/reseller/").status_code == 200


def test_a_jpeg_named_png_is_stored_as_jpeg_and_replaces_the_old_file(
    login, alice, tenant, tmp_path, django_capture_on_commit_callbacks
):
    client = login(alice)
    _post(client, SimpleUploadedFile("a.png", PNG))
    old = Reseller.objects.get(pk=tenant.reseller.pk).logo.name

    with django_capture_on_commit_callbacks(execute=True):
        _post(client, SimpleUploadedFile("photo.png", JPEG))

    new = Reseller.objects.get(pk=tenant.reseller.pk).logo.name
    assert new.endswith(".jpg")
    assert not (tmp_path / old).exists()
    assert (tmp_path / new).read_bytes() == JPEG


@pytest.mark.parametrize(
    ("upload", "error"),
    [
        (SimpleUploadedFile("logo.svg", SVG, "image/svg+xml"), "Upload a PNG or JPEG image."),
        (SimpleUploadedFile("logo.png", SVG, "image/png"), "Upload a PNG or JPEG image."),
        (SimpleUploadedFile("logo.gif", GIF, "image/gif"), "Upload a PNG or JPEG image."),
        (
            SimpleUploadedFile("big.png", PNG + b"\x00" * (512 * 1024), "image/png"),
            "At most 512 KiB; this file is larger.",
        ),
    ],
    ids=["svg", "svg-named-png", "gif", "too-large"],
)
def test_other_files_get_a_field_error_and_change_nothing(login, alice, tenant, upload, error):
    before = Reseller.objects.get(pk=tenant.reseller.pk)

    response = _post(login(alice), upload, name="Renamed")

    assert response.status_code == 200
    assert response.context["form"].errors == {"logo": [error]}
    after = Reseller.objects.get(pk=tenant.reseller.pk)
    assert (after.name, after.logo.name) == (before.name, before.logo.name)
    assert not AuditEvent.objects.for_tenant(tenant.ctx()).filter(action="reseller.update")


def test_the_clear_box_removes_the_logo(login, alice, tenant):
    client = login(alice)
    _post(client, SimpleUploadedFile("a.png", PNG))

    response = _post(client, **{"logo-clear": "on"})

    assert response.status_code == 302
    assert Reseller.objects.get(pk=tenant.reseller.pk).logo.name == ""


def test_only_reseller_admins_open_the_page(login, bob, tenant):
    client = login(bob)

    assert client.get("/settings/reseller/").status_code == 403
    assert _post(client, name="Taken over").status_code == 403
    assert Reseller.objects.get(pk=tenant.reseller.pk).name == "Alpha Printing"
