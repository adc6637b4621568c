"""Which language a person reads: pages follow the signed-in user's choice, else the browser
(LocaleMiddleware: the switch's cookie, then Accept-Language); emails follow the recipient's
choice, else the installation's LANGUAGE_CODE (an invitee without an account: the inviter's).

A user's language (accounts.User.language) is apart from their locale (how numbers and dates
are written, portal/formatting.py); a user who chose no language but a German locale reads
German. The portal has the languages of settings.LANGUAGES; LANGUAGE_CODE is the default.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.utils.translation import gettext


def language_valid(code: str) -> bool:
    return code in dict(settings.LANGUAGES)


def language_choices() -> list[tuple[str, str]]:
    """Each language named in itself, as a switch should show it."""
    return [(code, name) for code, name in settings.LANGUAGES]


def default_language() -> str:
    return str(settings.LANGUAGE_CODE).split("-")[0]


def language_of(user: Any) -> str | None:
    """The language `user` chose, or the one of their locale; None if neither is one we have."""
    chosen = getattr(user, "language", "") or ""
    if language_valid(chosen):
        return chosen
    from_locale = (getattr(user, "locale", "") or "").split("-")[0]
    return from_locale if language_valid(from_locale) else None


@dataclass(frozen=True)
class Reader:
    """How one recipient reads an email: its language and its number and date conventions."""

    language: str
    locale: str


def reader_of(user: Any, *, fallback_language: str | None = None) -> Reader:
    """`user`'s language and locale; without a user (an address that is nobody's account),
    `fallback_language` or the installation's, written the installation's way if that is in
    the same language, else the language's own way (German: 1.234,50 €)."""
    from portal import formatting

    language = (language_of(user) if user is not None else None) or (
        fallback_language if fallback_language and language_valid(fallback_language) else None
    )
    language = language or default_language()
    locale = getattr(user, "locale", "") or ""
    if not formatting.locale_code_valid(locale):
        locale = formatting.default_locale()
        if locale.split("-")[0] != language:
            locale = formatting.locale_from_accept_language(language) or locale
    return Reader(language=language, locale=locale)


def readers(
    emails: Iterable[str],
    *,
    fallback_language: str | None = None,
    languages: Mapping[str, str] | None = None,
) -> dict[str, Reader]:
    """How each address reads: as its user chose, else in its language of `languages` (a
    site's contact: its customer's), else `fallback_language` or the installation's (a
    support inbox)."""
    from accounts.models import User

    addresses = list(emails)
    # Users are not tenant rows: an address is one person's whichever reseller emails them.
    users = {
        u.email.lower(): u
        for u in User.objects.filter(email__in=addresses, is_active=True).only(
            "email", "language", "locale"
        )
    }
    known = {address.lower(): language for address, language in (languages or {}).items()}
    return {
        email: reader_of(
            users.get(email.lower()),
            fallback_language=known.get(email.lower()) or fallback_language,
        )
        for email in addresses
    }


PLACEHOLDER = re.compile(r"%\((\w+)\)s")


def translate_logged(text: str, templates: Iterable[str] = ()) -> str:
    """A sentence a worker logged in English, in the reader's language: a message of the
    catalog as it is, or one of `templates` (English messages with %(name)s placeholders) with
    its values put back. Anything else (a library's error text) stays as it was logged."""
    for template in templates:
        parts = PLACEHOLDER.split(template)
        # split() alternates literal text and placeholder names: text, name, text, ...
        pattern = "".join(
            re.escape(part) if i % 2 == 0 else f"(?P<{part}>.+?)" for i, part in enumerate(parts)
        )
        match = re.fullmatch(pattern, text)
        if match:
            return gettext(template) % match.groupdict()
    return gettext(text) if text else text
