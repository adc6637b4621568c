"""Issue 11, point 1 (and point 3): an invitation sent from the web form arrives by email; the
invitee opens its link, signs up and lands in the portal with the invited role. On the stack of
production settings, PostgreSQL with row-level security, the worker sending the email."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest

from benchmarks.stack import Stack
from tests.acceptance import seed
from tests.acceptance.browser import Browser, fresh_totp
from tests.acceptance.support import body, mail_to, wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.acceptance]

INVITEE = "frank.buyer@harbour.test"
INVITEE_PASSWORD = "Harbour-Buyer-2026!"


def test_invitation_sent_from_the_form_is_accepted(stack: Stack) -> None:
    seed.run(stack, seed.RESELLER)
    admin = Browser(stack.web.base_url, stack.certificate)
    page = admin.login("admin@acme.test", seed.PASSWORD)
    page = admin.submit(page, page.form(has="password"), {"password": seed.PASSWORD})
    secret = page.element("authenticator_secret")["value"]
    admin.submit(page, page.form(has="code"), {"code": fresh_totp(secret)})
    page = admin.get("/customers/new/")
    page = admin.submit(page, page.form(has="billing_email"), {"name": "Harbour Dental"})
    customer_id = re.fullmatch(r"/customers/(\d+)/", page.path).group(1)

    page = admin.get("/users/invite/")
    page = admin.submit(
        page,
        page.form(has="role"),
        {"email": INVITEE, "role": "customer_buyer", "customer": customer_id},
    )
    assert INVITEE in page.plain(), page.plain()[:2000]

    messages = wait_for("the invitation email", lambda: mail_to(stack, INVITEE), timeout=90)
    assert len(messages) == 1
    text = body(messages[0])
    link = re.search(r"https://\S+/invitations/[\w-]+/", text)
    assert link, text
    assert "Acme Print Services" in text + str(messages[0]["Subject"])

    invitee = Browser(stack.web.base_url, stack.certificate)
    page = invitee.get(urlsplit(link.group(0)).path)
    assert page.path == "/accounts/signup/", page.url
    page = invitee.submit(
        page,
        page.form(has="password1"),
        {"email": INVITEE, "password1": INVITEE_PASSWORD, "password2": INVITEE_PASSWORD},
    )
    if page.path.startswith("/invitations/"):
        page = invitee.submit(page, page.form(action=""))
    assert page.path == "/", page.url
    text = page.plain()
    assert "Customer buyer" in text, text[:2000]
    assert "Harbour Dental" in text, text[:2000]
    # The membership holds: a new sign-in lands in the portal with the same role.
    invitee.logout()
    page = invitee.login(INVITEE, INVITEE_PASSWORD)
    assert "Customer buyer" in page.plain()
