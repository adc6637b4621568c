"""The demo data reads right: valid addresses (no "meyer@st..demo"), and demo people see times
in the time zone of the demo's companies."""

from __future__ import annotations

from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.core.validators import validate_email

from accounts.models import Customer, Site, User

pytestmark = pytest.mark.django_db


def test_the_demo_has_valid_addresses_and_local_times(settings: Any) -> None:
    settings.DEBUG = True

    call_command("seed_demo", "--no-fleet", stdout=StringIO())

    addresses = [
        *Site.unscoped.exclude(contact_email="").values_list("contact_email", flat=True),
        *Customer.unscoped.exclude(billing_email="").values_list("billing_email", flat=True),
        *User.objects.values_list("email", flat=True),
    ]
    assert addresses
    for address in addresses:
        validate_email(address)
        assert ".." not in address, address
    assert Site.unscoped.filter(contact_email__endswith="@st-anna.demo").exists()
    assert set(User.objects.values_list("time_zone", flat=True)) == {"Europe/Berlin"}
