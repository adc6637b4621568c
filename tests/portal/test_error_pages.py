"""Error pages speak in the portal's layout, and each role lands on a page it may see."""

from __future__ import annotations

from django.test import RequestFactory
from django.views import defaults

from tests.factories import UserFactory, sign_in


def test_a_role_restricted_page_answers_a_styled_403_with_the_navigation(login, bob):
    response = login(bob).get("/customers/")

    assert response.status_code == 403
    body = response.content.decode()
    assert "You may not open this page" in body
    assert 'class="sidebar"' in body  # the portal's own layout, not a bare "403 Forbidden"
    assert "Go to your dashboard" in body


def test_an_unknown_page_answers_a_styled_404_for_a_signed_in_user(login, alice):
    response = login(alice).get("/no-such-page/")

    assert response.status_code == 404
    body = response.content.decode()
    assert "This page does not exist" in body
    assert 'class="sidebar"' in body


def test_an_anonymous_404_offers_to_sign_in(client, db):
    response = client.get("/no-such-page/")

    assert response.status_code == 404
    assert "Sign in" in response.content.decode()


def test_the_500_page_renders_without_any_context():
    """Django renders 500.html with no request context: it must not need a user or a database."""
    response = defaults.server_error(RequestFactory().get("/"))

    assert response.status_code == 500
    body = response.content.decode()
    assert "Something went wrong on our side" in body
    assert "/static/css/app.css" in body


def test_an_operator_outside_every_reseller_lands_on_the_reseller_list(client, db):
    operator = UserFactory(is_superuser=True, is_staff=True, totp=True)
    sign_in(client, operator)  # with the second factor an operator must give

    response = client.get("/")

    assert response.status_code == 302
    assert response["Location"] == "/operator/"


def test_a_user_without_any_membership_is_told_what_to_do(login, db):
    response = login(UserFactory()).get("/")

    assert response.status_code == 403
    assert "not part of any reseller or customer yet" in response.content.decode()


def test_page_titles_name_the_page_once(login, bob):
    body = login(bob).get("/").content.decode()

    assert "<title>Inkmeter · Inkmeter</title>" not in body
    assert "· Inkmeter</title>" in body
