"""A person's own preferences: how numbers and dates are written and which time zone times are
shown in. Through HTTP, as alice; a refusal says why next to the field and changes nothing."""

from __future__ import annotations

from typing import Any

import pytest

from accounts.models import User

pytestmark = pytest.mark.django_db

URL = "/settings/preferences/"


def test_the_form_offers_every_format_with_a_sample(alice: Any, login: Any) -> None:
    body = login(alice).get(URL).content.decode()

    assert "Deutsch (Deutschland): 1.234,50\u00a0€ · 31.12.2025 14:30" in body
    assert "English (US): €1,234.50 · 12/31/2025 2:30 PM" in body
    assert '<option value="Europe/Berlin">Europe/Berlin</option>' in body


def test_saving_changes_the_format_of_the_next_page(alice: Any, login: Any) -> None:
    client = login(alice)

    answer = client.post(URL, {"locale": "de-de", "time_zone": "Europe/Berlin"})

    assert answer.status_code == 302
    alice.refresh_from_db()
    assert (alice.locale, alice.time_zone) == ("de-de", "Europe/Berlin")
    assert "1.234,50\u00a0€" in client.get(URL).content.decode()  # the sample below the form


def test_an_unknown_zone_or_format_is_refused_next_to_its_field(alice: Any, login: Any) -> None:
    alice.locale, alice.time_zone = "en-gb", "Europe/London"
    alice.save(update_fields=["locale", "time_zone"])

    answer = login(alice).post(URL, {"locale": "xx-yy", "time_zone": "Mars/Olympus_Mons"})

    assert answer.status_code == 200
    body = answer.content.decode()
    assert body.count('<ul class="errors">') == 2
    assert User.objects.values_list("locale", "time_zone").get(pk=alice.pk) == (
        "en-gb",
        "Europe/London",
    )


def test_blank_means_the_defaults(alice: Any, login: Any) -> None:
    alice.locale, alice.time_zone = "de-de", "Europe/Berlin"
    alice.save(update_fields=["locale", "time_zone"])

    login(alice).post(URL, {"locale": "", "time_zone": ""})

    assert User.objects.values_list("locale", "time_zone").get(pk=alice.pk) == ("", "")


def test_signed_out_visitors_are_sent_to_sign_in(client: Any) -> None:
    answer = client.get(URL)

    assert answer.status_code == 302
    assert answer["Location"].startswith("/accounts/login/")
