"""Request-wide concerns that no single view should have to remember: input hygiene, and the
signed-in user's way of writing numbers and times."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse
from django.utils import timezone, translation
from django.utils.html import escape

from portal import formatting, i18n
from portal.api import error_body

NUL_MESSAGE = "Text must not contain NUL (\\x00) characters."


def _nul_fields(request: HttpRequest) -> list[str]:
    fields = ["path"] if "\x00" in request.path else []
    for name, values in request.GET.lists():
        if "\x00" in name or any("\x00" in value for value in values):
            fields.append(name.replace("\x00", "\\x00"))
    # Form bodies of pages only: Django parses nothing else into POST, and the API takes JSON
    # alone (it answers a form body 415 itself), so JSON and telemetry stay unread here.
    if (
        request.method == "POST"
        and not request.path.startswith("/api/")
        and request.content_type
        in (
            "application/x-www-form-urlencoded",
            "multipart/form-data",
        )
    ):
        for name, values in request.POST.lists():
            if "\x00" in name or any("\x00" in value for value in values):
                fields.append(name.replace("\x00", "\\x00"))
    return fields


class RejectNulMiddleware:
    """400 for a NUL byte anywhere in the path, the query or a form body.

    PostgreSQL cannot store NUL in text and raises on any query that carries one (SQLite does
    not), so a NUL in a search box was a 500 on every list that filters by it. No legitimate
    input contains one; refusing them here covers views that read `request.GET` directly.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        fields = _nul_fields(request)
        if not fields:
            return self.get_response(request)
        if request.path.startswith("/api/"):
            return JsonResponse(
                error_body("nul_character", NUL_MESSAGE, {f: [NUL_MESSAGE] for f in fields}),
                status=400,
            )
        listed = escape(", ".join(fields))
        return HttpResponseBadRequest(
            f"<!doctype html><title>Bad request</title><h1>Bad request</h1>"
            f"<p>{escape(NUL_MESSAGE)} Remove them from: {listed}.</p>"
        )


class PreferencesMiddleware:
    """Writes the request's pages in the signed-in user's language, time zone and locale
    (portal/i18n.py, portal/formatting.py); anonymous pages in the language LocaleMiddleware
    took from the browser (the switch's cookie, then Accept-Language), the installation's zone
    and the browser's locale. The user row is the one AuthenticationMiddleware loads: no query
    of its own."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path.startswith("/api/"):
            # The API's datetimes stay in UTC for every caller (DRF renders the active zone), and
            # its messages in English, like its codes: they are read by the people who program
            # against it, whatever a browser on the same session asks for.
            translation.activate("en")
            request.LANGUAGE_CODE = "en"
            return self.get_response(request)
        user = getattr(request, "user", None)
        signed_in = user is not None and user.is_authenticated
        locale = (getattr(user, "locale", "") if signed_in else "") or (
            formatting.locale_from_accept_language(request.META.get("HTTP_ACCEPT_LANGUAGE", ""))
            or formatting.default_locale()
        )
        language = i18n.language_of(user) if signed_in else None
        if language:
            translation.activate(language)
            request.LANGUAGE_CODE = language
            if not getattr(user, "locale", "") and locale.split("-")[0] != language:
                # German pages with 12/31/2026 and "11:24 nachm." read wrong: without a chosen
                # locale, the language's own conventions, not the browser's of another language.
                locale = formatting.locale_from_accept_language(language) or locale
        formatting.activate(locale)
        timezone.activate(formatting.zone_of(getattr(user, "time_zone", "") if signed_in else ""))
        try:
            return self.get_response(request)
        finally:
            formatting.deactivate()
            timezone.deactivate()
