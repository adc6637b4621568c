"""A person's browser, reduced to what the portal's pages need: HTTPS to gunicorn, a cookie jar,
the forms of each page read from its HTML and sent back as a browser sends them (hidden CSRF
field, Origin and Referer headers, only checked boxes, only the clicked button), redirects
followed, and an authenticator app that turns a TOTP secret into the code of the moment.

    browser = Browser(stack.web.base_url, stack.certificate)
    browser.login("admin@acme.test", PASSWORD, totp_secret=SECRET)
    page = browser.get("/settings/collectors/")
    page = browser.submit(page.form(action="/config/"), {"ranges": "127.0.2.0/30"})
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import struct
import time
from dataclasses import dataclass, field
from html import unescape
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import httpx

from benchmarks.stack import Certificate

TIMEOUT_S = 60


def totp_code(secret: str, *, at: float | None = None, step: int = 30, digits: int = 6) -> str:
    """RFC 6238 with SHA-1, 30 s and 6 digits: what an authenticator app shows."""
    key = base64.b32decode(secret.upper() + "=" * (-len(secret) % 8))
    counter = int((time.time() if at is None else at) // step)
    digest = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    number = struct.unpack(">I", digest[offset : offset + 4])[0] & 0x7FFFFFFF
    return str(number % 10**digits).zfill(digits)


_used_steps: dict[str, int] = {}


def fresh_totp(secret: str, step: int = 30) -> str:
    """A code the portal has not seen yet: a used code is refused (replay), so, like a person
    whose app still shows the code they just typed, wait for the next one."""
    while int(time.time() // step) == _used_steps.get(secret):
        time.sleep(0.5)
    _used_steps[secret] = int(time.time() // step)
    return totp_code(secret)


@dataclass
class Field:
    name: str
    kind: str  # input type, "select" or "textarea"
    value: str = ""
    checked: bool = False
    disabled: bool = False
    options: list[str] = field(default_factory=list)


@dataclass
class Form:
    action: str
    method: str
    fields: list[Field] = field(default_factory=list)
    buttons: list[tuple[str, str]] = field(default_factory=list)  # (name, value)

    def names(self) -> set[str]:
        return {f.name for f in self.fields}

    def data(self, values: dict[str, str | list[str]], button: str | None) -> list[tuple[str, str]]:
        """What a browser sends after the person typed `values`: unknown names are an error
        (a test must not post a field the page does not have)."""
        unknown = set(values) - self.names() - {name for name, _ in self.buttons}
        if unknown:
            raise AssertionError(f"the form {self.action} has no field {sorted(unknown)}")
        out: list[tuple[str, str]] = []
        typed: set[str] = set()
        for f in self.fields:
            if f.disabled:
                continue
            if f.name in values:
                given = values[f.name]
                if f.kind in ("checkbox", "radio"):
                    chosen = given if isinstance(given, list) else [given]
                    if f.value in chosen:
                        out.append((f.name, f.value))
                    continue
                if f.name not in typed:
                    typed.add(f.name)
                    out.extend((f.name, v) for v in (given if isinstance(given, list) else [given]))
                continue
            if f.kind in ("checkbox", "radio"):
                if f.checked:
                    out.append((f.name, f.value or "on"))
            elif f.kind == "select":
                out.append((f.name, f.value or (f.options[0] if f.options else "")))
            elif f.kind not in ("submit", "button", "image", "reset", "file"):
                out.append((f.name, f.value))
        if button is not None:
            match = [b for b in self.buttons if b[0] == button]
            if not match:
                raise AssertionError(f"the form {self.action} has no button {button!r}")
            out.append(match[0])
        return out


class _FormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[Form] = []
        self.ids: dict[str, dict[str, str]] = {}
        self._form: Form | None = None
        self._select: Field | None = None
        self._option: str | None = None
        self._option_selected = False
        self._textarea: Field | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if "id" in a:
            self.ids[a["id"]] = a
        if tag == "form":
            self._form = Form(action=a.get("action", ""), method=a.get("method", "get").lower())
            self.forms.append(self._form)
            return
        if self._form is None:
            return
        name = a.get("name", "")
        disabled = "disabled" in a
        if tag == "input" and name:
            kind = a.get("type", "text").lower()
            if kind == "submit":
                self._form.buttons.append((name, a.get("value", "")))
                return
            # A box without a value attribute sends "on", as browsers do.
            default = "on" if kind in ("checkbox", "radio") else ""
            self._form.fields.append(
                Field(name, kind, a.get("value", default), "checked" in a, disabled)
            )
        elif tag == "button" and name:
            self._form.buttons.append((name, a.get("value", "")))
        elif tag == "select" and name:
            self._select = Field(name, "select", disabled=disabled)
            self._form.fields.append(self._select)
        elif tag == "option" and self._select is not None:
            self._option = a.get("value")
            self._option_selected = "selected" in a
            if self._option is not None:
                self._select.options.append(self._option)
                if self._option_selected:
                    self._select.value = self._option
        elif tag == "textarea" and name:
            self._textarea = Field(name, "textarea", disabled=disabled)
            self._form.fields.append(self._textarea)

    def handle_data(self, data: str) -> None:
        if self._textarea is not None:
            self._textarea.value += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._form = None
        elif tag == "select":
            self._select = None
        elif tag == "textarea" and self._textarea is not None:
            # Browsers drop the one newline that may follow <textarea>.
            self._textarea.value = self._textarea.value.removeprefix("\n")
            self._textarea = None


@dataclass
class Page:
    url: str
    status: int
    text: str
    headers: httpx.Headers
    content: bytes

    def _parsed(self) -> _FormParser:
        parser = _FormParser()
        parser.feed(self.text)
        return parser

    @property
    def path(self) -> str:
        return urlsplit(self.url).path

    def forms(self) -> list[Form]:
        return self._parsed().forms

    def form(self, *, action: str | None = None, has: str | None = None) -> Form:
        """The one form whose action contains `action` (`""`: the form that posts to the page
        itself, with no action) and that has a field `has`."""
        found = [
            f
            for f in self.forms()
            if (action is None or (action in f.action if action else not f.action))
            and (has is None or has in f.names())
        ]
        if len(found) != 1:
            summary = [(f.action, sorted(f.names())) for f in self.forms()]
            raise AssertionError(
                f"{self.url}: {len(found)} forms match action={action!r} has={has!r}: {summary}"
            )
        return found[0]

    def element(self, element_id: str) -> dict[str, str]:
        return self._parsed().ids[element_id]

    def links(self, pattern: str) -> list[str]:
        """hrefs matching the regular expression, in page order, without repeats."""
        seen: list[str] = []
        for href in re.findall(r'href="([^"]+)"', self.text):
            href = unescape(href)
            if re.search(pattern, href) and href not in seen:
                seen.append(href)
        return seen

    def plain(self) -> str:
        """The page's text without tags, blanks collapsed (what a person reads)."""
        body = re.sub(r"<(script|style)\b.*?</\1>", " ", self.text, flags=re.S | re.I)
        return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", body))).strip()


class Browser:
    def __init__(self, base_url: str, certificate: Certificate | None) -> None:
        self.base_url = base_url
        self.client = httpx.Client(
            base_url=base_url,
            verify=certificate.context() if certificate else True,
            follow_redirects=True,
            timeout=TIMEOUT_S,
            headers={"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) inkmeter-acceptance"},
        )
        self.last: Page | None = None

    def close(self) -> None:
        self.client.close()

    def _page(self, response: httpx.Response) -> Page:
        page = Page(
            str(response.url),
            response.status_code,
            response.text if "html" in response.headers.get("content-type", "") else "",
            response.headers,
            response.content,
        )
        self.last = page
        return page

    def get(self, path: str, *, expect: int = 200) -> Page:
        referer = {"Referer": self.last.url} if self.last else {}
        page = self._page(self.client.get(path, headers=referer))
        if page.status != expect:
            raise AssertionError(f"GET {path}: {page.status}, expected {expect}\n{page.plain()}")
        return page

    def submit(
        self,
        page: Page,
        form: Form,
        values: dict[str, str | list[str]] | None = None,
        *,
        button: str | None = None,
        expect: int = 200,
    ) -> Page:
        url = urljoin(page.url, form.action or page.url)
        data = form.data(dict(values or {}), button)
        origin = "{0.scheme}://{0.netloc}".format(urlsplit(page.url))
        headers = {"Referer": page.url, "Origin": origin}
        if form.method == "post":
            response = self.client.post(url, data=_pairs(data), headers=headers)
        else:
            response = self.client.get(url, params=data, headers={"Referer": page.url})
        result = self._page(response)
        if result.status != expect:
            raise AssertionError(
                f"{form.method.upper()} {url}: {result.status}, expected {expect}\n"
                f"{result.plain()[:3000]}"
            )
        return result

    def login(self, email: str, password: str, *, totp_secret: str | None = None) -> Page:
        """The real sign-in: the login page, then, for roles with two factors, the code."""
        page = self.get("/accounts/login/")
        page = self.submit(page, page.form(has="password"), {"login": email, "password": password})
        if "/2fa/authenticate" in page.path:
            if totp_secret is None:
                raise AssertionError(f"{email} was asked for a TOTP code")
            page = self.submit(page, page.form(has="code"), {"code": fresh_totp(totp_secret)})
        if page.path.startswith(("/accounts/login", "/accounts/2fa/authenticate")):
            raise AssertionError(f"{email} could not sign in: {page.plain()[:1000]}")
        return page

    def logout(self) -> None:
        page = self.get("/")
        # The header's "Sign out" button, as a person clicks it.
        page = self.submit(page, next(f for f in page.forms() if f.action == "/accounts/logout/"))
        if not page.path.startswith("/accounts/login"):
            raise AssertionError(f"still signed in after signing out: {page.url}")


def _pairs(data: list[tuple[str, str]]) -> dict[str, str | list[str]]:
    grouped: dict[str, list[str]] = {}
    for name, value in data:
        grouped.setdefault(name, []).append(value)
    return {k: v[0] if len(v) == 1 else v for k, v in grouped.items()}
