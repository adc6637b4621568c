"""Security headers on every page a signed-in reseller admin can open, templates that keep the
CSP honest (no inline script, handler or style), and the production transport settings."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from django.test import Client

from portal.services import worker_heartbeat_record
from tests.factories import sign_in
from tests.portal.test_isolation import (  # the walk and tenant A's objects of every kind
    AlphaData,
    _fill,
    all_routes,
)
from tests.portal.test_isolation import alpha as alpha
from tests.portal.test_settings import PRODUCTION, _run, _settings

ROOT = Path(__file__).resolve().parents[2]

# Pages that must really render for the admin (200), not just answer: the main object pages.
MAIN_PAGES = {
    "dashboard",
    "customer-list",
    "customer-detail",
    "site-detail",
    "user-list",
    "api-token-list",
    "device-list",
    "device-detail",
    "order-list",
    "order-detail",
    "statement-list",
    "statement-detail",
    "contract-detail",
    "plan-detail",
    "reseller-settings",
}


def _directives(header: str) -> dict[str, list[str]]:
    directives = {}
    for part in header.split(";"):
        words = part.split()
        if words:
            directives[words[0]] = words[1:]
    return directives


def header_problems(response) -> list[str]:
    problems = []
    csp = response.get("Content-Security-Policy", "")
    directives = _directives(csp)
    script = directives.get("script-src", directives.get("default-src"))
    if not csp or script is None:
        problems.append("no Content-Security-Policy with script-src")
    else:
        if "'self'" not in script:
            problems.append(f"script-src without 'self': {script}")
        if "'unsafe-inline'" in script or "'unsafe-eval'" in script:
            problems.append(f"script-src allows inline code: {script}")
    framing = response.get("X-Frame-Options", "") == "DENY" or directives.get(
        "frame-ancestors"
    ) == ["'none'"]
    if not framing:
        problems.append("may be framed (no X-Frame-Options DENY or frame-ancestors 'none')")
    if response.get("X-Content-Type-Options") != "nosniff":
        problems.append("no X-Content-Type-Options: nosniff")
    if not response.get("Referrer-Policy"):
        problems.append("no Referrer-Policy")
    return problems


@pytest.mark.django_db
def test_every_html_page_of_a_signed_in_admin_carries_the_security_headers(alpha: AlphaData):
    client = Client()
    sign_in(client, alpha.tenant.admin.user)
    failures, rendered = [], set()
    worker_heartbeat_record()  # with REDIS_URL set, /readyz answers 503 until a worker beats

    for route in all_routes():
        path, _ = _fill(route, alpha)
        response = client.get(path)
        if response.status_code >= 500:
            failures.append(f"{path}: {response.status_code}")
            continue
        if not response.get("Content-Type", "").startswith("text/html"):
            continue
        if response.status_code == 200:
            rendered.add(route.name)
        failures += [f"{path} ({response.status_code}): {p}" for p in header_problems(response)]

    assert failures == [], "\n".join(failures)
    assert MAIN_PAGES - rendered == set()
    assert len(rendered) > 40


def test_the_check_catches_a_page_without_headers():
    from django.http import HttpResponse

    bare = HttpResponse("<p>x</p>")
    inline = HttpResponse("<p>x</p>")
    inline["Content-Security-Policy"] = "default-src 'self'; script-src 'self' 'unsafe-inline'"
    inline["X-Frame-Options"] = "DENY"
    inline["X-Content-Type-Options"] = "nosniff"
    inline["Referrer-Policy"] = "same-origin"

    assert len(header_problems(bare)) == 4
    assert header_problems(inline) == [
        "script-src allows inline code: [\"'self'\", \"'unsafe-inline'\"]"
    ]


# --- Templates ----------------------------------------------------------------------------------

# Rendered to PDF by WeasyPrint, never served to a browser: CSP does not apply to it.
NOT_SERVED = {ROOT / "templates/billing/statement_pdf.html"}
TAG = re.compile(r"<[a-zA-Z][^<>]*>", re.S)
INLINE_SCRIPT = re.compile(r"<script\b(?![^>]*\bsrc=)[^>]*>|<script\b[^>]*>\s*[^<\s]", re.I | re.S)
HANDLER = re.compile(r"\son[a-z]+\s*=", re.I)
STYLE_ATTRIBUTE = re.compile(r"\sstyle\s*=", re.I)
STYLE_ELEMENT = re.compile(r"<style\b", re.I)


def template_problems(text: str) -> list[str]:
    problems = []
    if INLINE_SCRIPT.search(text):
        problems.append("inline <script>")
    if STYLE_ELEMENT.search(text):
        problems.append("<style> element")
    for tag in TAG.findall(text):
        if HANDLER.search(tag):
            problems.append(f"event handler attribute in {tag[:60]!r}")
        if STYLE_ATTRIBUTE.search(tag):
            problems.append(f"style attribute in {tag[:60]!r}")
    return problems


def _templates() -> list[Path]:
    found = set(ROOT.glob("templates/**/*.html"))
    for app_templates in ROOT.glob("*/templates"):
        found |= set(app_templates.glob("**/*.html"))
    return sorted(found - NOT_SERVED)


def test_no_template_has_inline_script_handlers_or_styles():
    templates = _templates()
    problems = [
        f"{path.relative_to(ROOT)}: {problem}"
        for path in templates
        for problem in template_problems(path.read_text())
    ]

    assert len(templates) > 50  # the folders were found
    assert problems == [], "\n".join(problems)


@pytest.mark.parametrize(
    ("html", "found"),
    [
        ("<script>alert(1)</script>", ["inline <script>"]),
        ('<script nonce="x">\n go()</script>', ["inline <script>"]),
        ('<script src="/static/a.js">go()</script>', ["inline <script>"]),
        ('<script src="/static/a.js" defer></script>', []),
        ('<button onclick="go()">', ["event handler attribute"]),
        ('<a href="#"\n   onMouseOver="x">', ["event handler attribute"]),
        ('<div style="color: red">', ["style attribute"]),
        ("<style>p{}</style>", ["<style> element"]),
        ('<svg viewBox="0 0 4 4"><rect fill="#000" stroke-width="1"/></svg>', []),
        ("<p>Turn the printer on=off</p>", []),
    ],
)
def test_the_template_scan_finds_what_it_should(html, found):
    assert [problem.split(" in ")[0] for problem in template_problems(html)] == found


# --- Production transport ----------------------------------------------------------------------


def test_production_settings_force_https_and_secure_cookies():
    values = _settings(
        PRODUCTION,
        "SECURE_HSTS_SECONDS",
        "SECURE_HSTS_INCLUDE_SUBDOMAINS",
        "SECURE_SSL_REDIRECT",
        "SESSION_COOKIE_SECURE",
        "SESSION_COOKIE_HTTPONLY",
        "CSRF_COOKIE_SECURE",
        "DEBUG",
    )

    assert values == {
        "SECURE_HSTS_SECONDS": 31536000,
        "SECURE_HSTS_INCLUDE_SUBDOMAINS": True,
        "SECURE_SSL_REDIRECT": True,
        "SESSION_COOKIE_SECURE": True,
        "SESSION_COOKIE_HTTPONLY": True,
        "CSRF_COOKIE_SECURE": True,
        "DEBUG": False,
    }


PROBE = """
import json, django
django.setup()
from django.test import Client
client = Client()
plain = client.get("/accounts/login/")
secure = client.get("/accounts/login/", secure=True)
health = client.get("/healthz")
csrf = secure.cookies.get("csrftoken")
print(json.dumps({
    "plain": [plain.status_code, plain.get("Location", "")],
    "secure": secure.status_code,
    "hsts": secure.get("Strict-Transport-Security", ""),
    "csrf_cookie_secure": bool(csrf and csrf["secure"]),
    "health": health.status_code,
}))
"""


def test_production_pages_redirect_to_https_and_send_hsts(tmp_path):
    env = {
        **PRODUCTION,
        "DJANGO_SETTINGS_MODULE": "portal.settings",
        "ALLOWED_HOSTS": "testserver",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'probe.sqlite3'}",
        "REDIS_URL": "",
    }
    result = _run(["-c", PROBE], env)
    assert result.returncode == 0, result.stderr

    answers = json.loads(result.stdout.strip().splitlines()[-1])

    assert answers == {
        "plain": [301, "https://testserver/accounts/login/"],
        "secure": 200,
        "hsts": "max-age=31536000; includeSubDomains; preload",
        "csrf_cookie_secure": True,
        "health": 200,  # load balancers probe over plain HTTP
    }


@pytest.mark.django_db
def test_a_request_without_a_valid_host_gets_400() -> None:
    """The host is checked before the session and user are read, so the 400 page is rendered
    for a request without a user (schemathesis sends an empty Host header)."""
    response = Client().get("/", HTTP_HOST="")

    assert response.status_code == 400
    assert "Bad request" in response.content.decode()


@pytest.mark.django_db
def test_an_api_request_without_a_valid_host_gets_the_api_error_body() -> None:
    response = Client().put("/api/v1/customers/1", data=b"{}", HTTP_HOST="")

    assert response.status_code == 400
    assert response.json() == {
        "error": {"code": "bad_request", "message": "Bad request.", "fields": {}}
    }
