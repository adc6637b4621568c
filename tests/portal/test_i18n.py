"""Languages (issue 13.4): English and German pages, the language switch, the anonymous pages'
Accept-Language, and the catalog's health (complete, no fuzzy entries, compiled .mo current)."""

from __future__ import annotations

import ast
import gettext
import re
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import translation

from accounts.models import User
from tests.conftest import LoginFn, Tenant
from tests.portal.po import Entry, parse

pytestmark = pytest.mark.django_db

BASE = Path(settings.BASE_DIR)
PO = BASE / "locale" / "de" / "LC_MESSAGES" / "django.po"
MO = PO.with_suffix(".mo")
PLACEHOLDER = re.compile(r"%\(\w+\)s|%[sd]")


def set_language(user: User, language: str) -> None:
    user.language = language
    user.save(update_fields=["language"])


# --- Pages ----------------------------------------------------------------------------------


def test_english_is_the_default(login: LoginFn, alice: User, tenant: Tenant) -> None:
    page = login(alice).get("/").content.decode()

    assert '<html lang="en">' in page
    assert "<h2>Newest customers</h2>" in page
    assert ">Devices</a>" in page


def test_a_german_user_reads_the_dashboard_in_german(
    login: LoginFn, alice: User, tenant: Tenant
) -> None:
    set_language(alice, "de")

    response = login(alice).get("/")

    page = response.content.decode()
    assert response["Content-Language"] == "de"
    assert '<html lang="de">' in page
    assert "<h2>Neueste Kunden</h2>" in page
    assert ">Geräte</a>" in page
    assert "Newest customers" not in page


def test_the_users_choice_wins_over_the_browser(
    login: LoginFn, alice: User, tenant: Tenant
) -> None:
    set_language(alice, "en")

    page = login(alice).get("/", HTTP_ACCEPT_LANGUAGE="de-DE,de;q=0.9").content.decode()

    assert "<h2>Newest customers</h2>" in page


def test_without_a_choice_the_german_locale_gives_german(
    login: LoginFn, alice: User, tenant: Tenant
) -> None:
    alice.locale = "de-ch"
    alice.save(update_fields=["locale"])

    page = login(alice).get("/").content.decode()

    assert "<h2>Neueste Kunden</h2>" in page


def test_german_pages_without_a_chosen_locale_write_german_dates(
    login: LoginFn, alice: User, tenant: Tenant
) -> None:
    set_language(alice, "de")

    page = login(alice).get("/settings/preferences/", HTTP_ACCEPT_LANGUAGE="en-US").content
    english = re.search(r"Now: \d{2}/\d{2}/\d{4} \d{1,2}:\d{2} [AP]M", page.decode())

    assert re.search(r"Jetzt: \d{2}\.\d{2}\.\d{4} \d{2}:\d{2} ", page.decode())
    assert english is None


def test_the_switch_stores_the_language_and_returns_to_the_page(
    login: LoginFn, alice: User, tenant: Tenant
) -> None:
    client = login(alice)

    response = client.post("/settings/language/", {"language": "de", "next": "/customers/"})

    assert response.status_code == 302
    assert response["Location"] == "/customers/"
    alice.refresh_from_db()
    assert alice.language == "de"
    assert response.cookies[settings.LANGUAGE_COOKIE_NAME].value == "de"
    assert "<h1>Kunden</h1>" in client.get("/customers/").content.decode()


def test_the_switch_refuses_an_unknown_language_and_changes_nothing(
    login: LoginFn, alice: User, tenant: Tenant
) -> None:
    response = login(alice).post("/settings/language/", {"language": "fr", "next": "/"})

    assert response.status_code == 400
    alice.refresh_from_db()
    assert alice.language == ""
    assert settings.LANGUAGE_COOKIE_NAME not in response.cookies


def test_the_switch_does_not_redirect_off_the_site(
    login: LoginFn, alice: User, tenant: Tenant
) -> None:
    response = login(alice).post(
        "/settings/language/", {"language": "de", "next": "https://evil.example/"}
    )

    assert response.status_code == 302
    assert response["Location"] == "/"


def test_the_switch_refuses_get(client) -> None:
    assert client.get("/settings/language/?language=de").status_code == 405


def test_the_sign_in_page_follows_the_browser(client) -> None:
    german = client.get("/accounts/login/", HTTP_ACCEPT_LANGUAGE="de-DE,de;q=0.9,en;q=0.5")
    english = client.get("/accounts/login/", HTTP_ACCEPT_LANGUAGE="en-GB,en;q=0.9")

    assert "Bei Inkmeter anmelden" in german.content.decode()
    assert "Sign in to Inkmeter" in english.content.decode()
    assert "Accept-Language" in german["Vary"]


def test_a_visitor_switches_the_sign_in_page(client) -> None:
    response = client.post("/settings/language/", {"language": "de", "next": "/accounts/login/"})

    assert response.status_code == 302
    page = client.get("/accounts/login/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Bei Inkmeter anmelden" in page
    assert '<option value="de" lang="de" selected>Deutsch</option>' in page


def test_the_preferences_page_sets_the_language_and_answers_in_it(
    login: LoginFn, alice: User, tenant: Tenant
) -> None:
    client = login(alice)

    response = client.post(
        "/settings/preferences/", {"language": "de", "locale": "", "time_zone": ""}, follow=True
    )

    alice.refresh_from_db()
    assert alice.language == "de"
    assert "Einstellungen gespeichert." in response.content.decode()


def test_the_preferences_form_refuses_an_unknown_language_beside_the_field(
    login: LoginFn, alice: User, tenant: Tenant
) -> None:
    response = login(alice).post(
        "/settings/preferences/", {"language": "xx", "locale": "", "time_zone": ""}
    )

    assert response.status_code == 200
    assert "xx is not one of the available choices" in response.content.decode()
    alice.refresh_from_db()
    assert alice.language == ""


def test_the_api_answers_in_english_whatever_the_browser_asks(
    login: LoginFn, alice: User, tenant: Tenant
) -> None:
    set_language(alice, "de")

    response = login(alice).get("/api/v1/devices/999999/", HTTP_ACCEPT_LANGUAGE="de")

    assert response.status_code == 404
    assert response.json()["error"]["message"] in ("Not found.", "No such device.")


def test_an_audit_sentence_reads_in_german(login: LoginFn, alice: User, tenant: Tenant) -> None:
    from portal import labels

    with translation.override("de"):
        sentence = labels.audit_sentence("order.create", {"lines": 2}, "7")

    assert sentence == "Bestellung ORD-000007 mit 2 Positionen aufgegeben."


# --- The catalog ----------------------------------------------------------------------------


def entries() -> list[Entry]:
    return [e for e in parse(PO) if e.msgid]


def test_every_message_is_translated_and_none_is_fuzzy() -> None:
    found = entries()
    assert len(found) > 1000  # the parser read the catalog, not an empty file

    untranslated = [e.msgid for e in found if not e.is_translated]
    fuzzy = [e.msgid for e in found if "fuzzy" in e.flags]
    obsolete = [e.msgid for e in found if e.obsolete]
    assert untranslated == []
    assert fuzzy == []
    assert obsolete == []


def test_translations_keep_every_placeholder_and_tag() -> None:
    wrong = []
    for entry in entries():
        sources = [entry.msgid] + ([entry.msgid_plural] if entry.msgid_plural else [])
        for index, text in entry.msgstr.items():
            source = sources[min(index, len(sources) - 1)]
            for pattern in (PLACEHOLDER, re.compile(r"</?(?:strong|code)>")):
                if sorted(pattern.findall(source)) != sorted(pattern.findall(text)):
                    wrong.append((source, text))
    assert wrong == []


def test_the_compiled_catalog_matches_the_po_file() -> None:
    """The .mo is committed (nobody needs gettext to run the portal); after editing the .po,
    run `manage.py compilemessages -l de` and commit both."""
    with MO.open("rb") as handle:
        compiled = gettext.GNUTranslations(handle)._catalog
    expected: dict[object, str] = {}
    for entry in entries():
        key = entry.msgid if entry.msgctxt is None else f"{entry.msgctxt}\x04{entry.msgid}"
        if entry.msgid_plural is None:
            expected[key] = entry.msgstr[0]
        else:
            for index, text in entry.msgstr.items():
                expected[(key, index)] = text

    assert {k: v for k, v in compiled.items() if k != ""} == expected


TEMPLATE_LITERAL = re.compile(r"""\{% translate (["'])(.+?)\1 %\}""")
# `_`, `gettext`, `gettext_lazy` and `gettext_noop`, names makemessages extracts: a string marked
# with another alias (such as `_t`) would be neither extracted nor found here, and stay English.
PYTHON_LITERAL = re.compile(
    r"""\b(?:_|gettext|gettext_lazy|gettext_noop)\(\s*"((?:[^"\\]|\\.)+)"\s*\)"""
)


def test_every_literal_marked_in_templates_and_code_is_in_the_catalog() -> None:
    """A cheap stand-in for `makemessages` (which needs gettext): a string marked since the
    catalog was last made fails here until it is extracted and translated."""
    known = {e.msgid for e in entries()}
    marked: set[tuple[str, str]] = set()
    for path in (BASE / "templates").rglob("*.html"):
        for match in TEMPLATE_LITERAL.finditer(path.read_text()):
            marked.add((str(path.relative_to(BASE)), match.group(2)))
    for app in ("accounts", "billing", "devices", "integrations", "orders", "portal"):
        for path in (BASE / app).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            for match in PYTHON_LITERAL.finditer(path.read_text()):
                text = match.group(1).encode().decode("unicode_escape").encode("latin1").decode()
                marked.add((str(path.relative_to(BASE)), text))
    assert len(marked) > 500

    missing = sorted((path, text) for path, text in marked if text not in known)
    assert missing == []


def test_a_logged_english_sentence_reads_in_german_with_its_values() -> None:
    from portal.i18n import translate_logged

    template = "The host %(host)s cannot be found."
    with translation.override("de"):
        found = translate_logged("The host erp.example.com cannot be found.", [template])
        fixed = translate_logged("The endpoint was turned off.", [template])
        foreign = translate_logged("ConnectError: [Errno 111] Connection refused", [template])
    assert "erp.example.com" in found
    assert "cannot be found" not in found
    assert fixed != "The endpoint was turned off."
    assert foreign == "ConnectError: [Errno 111] Connection refused"


def eager_translations(source: str) -> list[int]:
    """Lines that call gettext (imported as `_` or by name) outside any function: evaluated once
    at import, in the default language, so they read English to everyone."""
    tree = ast.parse(source)
    eager = {
        alias.asname or alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module == "django.utils.translation"
        for alias in node.names
        if alias.name in ("gettext", "ngettext", "pgettext")
    }
    found: list[int] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inside = in_function or isinstance(
                child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)
            )
            call = isinstance(child, ast.Call) and isinstance(child.func, ast.Name)
            if call and not in_function and child.func.id in eager:
                found.append(child.lineno)
            visit(child, inside)

    visit(tree, False)
    return found


def test_no_message_is_translated_once_at_import() -> None:
    assert eager_translations("from django.utils.translation import gettext as _\nX = _('a')\n")
    assert not eager_translations(
        "from django.utils.translation import gettext_lazy as _\nX = _('a')\n"
    )
    found = []
    for app in ("accounts", "billing", "devices", "integrations", "orders", "portal"):
        for path in (BASE / app).rglob("*.py"):
            found += [f"{path.relative_to(BASE)}:{n}" for n in eager_translations(path.read_text())]
    assert found == []
