"""The portal in a real browser: sign in, navigate, and no script or CSP errors on the way."""

import pytest
from allauth.account.models import EmailAddress
from playwright.sync_api import expect

from portal.tenancy import Role
from tests.factories import PASSWORD, CustomerFactory, MembershipFactory, SiteFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def support_user(db):
    membership = MembershipFactory(
        role=Role.RESELLER_SUPPORT,
        reseller__name="Northwind Print Services",
        user=UserFactory(email="sam@northwind.test", full_name="Sam Support"),
    )
    EmailAddress.objects.create(
        user=membership.user, email=membership.user.email, verified=True, primary=True
    )
    for name in ("Harbour Logistics GmbH", "Kessler Architects", "St. Anna Clinic"):
        SiteFactory(customer=CustomerFactory(reseller=membership.reseller, name=name))
    return membership.user


def _sign_in(page, live_server, email):
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=login]", email)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")


def test_sign_in_and_browse_customers(page, live_server, support_user, screenshot):
    _sign_in(page, live_server, support_user.email)
    assert page.locator("h1").first.inner_text() == "Northwind Print Services"
    screenshot("dashboard")

    page.click("nav >> text=Customers")
    page.wait_for_url(f"{live_server.url}/customers/")
    assert page.locator("table tbody tr").count() == 3

    page.fill("input[name=q]", "kessler")
    expect(page.locator("table tbody tr")).to_have_count(1)
    assert "Kessler Architects" in page.locator("table").inner_text()
    screenshot("customers")
    assert page.console_errors == []


def test_login_page_renders_with_the_site_styles(page, live_server, screenshot):
    page.goto(f"{live_server.url}/accounts/login/")

    assert page.locator(".auth-card").is_visible()
    assert page.evaluate("getComputedStyle(document.body).margin") == "0px"
    screenshot("login")
    assert page.console_errors == []


def test_a_visitor_switches_the_sign_in_page_to_german_on_a_phone(page, live_server, screenshot):
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{live_server.url}/accounts/login/")
    assert page.locator("h1").inner_text() == "Sign in to Inkmeter"

    page.select_option("#language-switch", "de")  # the switch submits itself on change
    expect(page.locator("h1")).to_have_text("Bei Inkmeter anmelden")

    assert page.url == f"{live_server.url}/accounts/login/"
    assert page.locator("html").get_attribute("lang") == "de"
    assert page.evaluate("document.documentElement.scrollWidth") <= 391
    screenshot("login-390-de")
    assert page.console_errors == []
