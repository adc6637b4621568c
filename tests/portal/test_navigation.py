"""The sidebar, through HTTP: on any page exactly one entry is marked as the current one, the
entry of the section the page belongs to (the longest link that leads to it)."""

from __future__ import annotations

import re

import pytest

from tests.conftest import LoginFn, Tenant
from tests.factories import DeviceFactory

pytestmark = pytest.mark.django_db

CURRENT = re.compile(r'<a href="([^"]+)" class="active" aria-current="page">([^<]+)</a>')


def current_entries(body: str) -> list[str]:
    return [label.strip() for _, label in CURRENT.findall(body)]


@pytest.mark.parametrize(
    ("path", "entry"),
    [
        ("/", "Dashboard"),
        ("/devices/", "Devices"),
        ("/settings/collectors/", "Collectors"),
        ("/settings/collectors/health/", "Collector health"),
        ("/settings/collectors/new/", "Collectors"),
    ],
)
def test_one_entry_is_current_the_one_the_page_belongs_to(login: LoginFn, alice, path, entry):
    response = login(alice).get(path)
    assert response.status_code == 200
    assert current_entries(response.content.decode()) == [entry]


def test_a_page_below_a_list_marks_the_list(login: LoginFn, alice, tenant: Tenant):
    device = DeviceFactory(site=tenant.site)
    response = login(alice).get(f"/devices/{device.pk}/")
    assert response.status_code == 200
    assert current_entries(response.content.decode()) == ["Devices"]
