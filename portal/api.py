"""API plumbing shared by every app: pagination and one error format."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import F, Field, Func, Model, QuerySet, Value
from django.db.models.lookups import GreaterThan
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from rest_framework import exceptions, pagination, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param
from rest_framework.views import exception_handler as drf_exception_handler

from portal.authentication import request_ctx
from portal.errors import DomainError

__all__ = [
    "IdField",
    "KeysetPagination",
    "Pagination",
    "bad_request",
    "error_body",
    "exception_handler",
    "not_found",
    "request_ctx",
]


class Pagination(pagination.PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500


class _Row(Func):
    """(a, b, ...): a row value, compared column by column. PostgreSQL walks a (a, b) index from
    `(a, b) > (x, y)` and stops after a page; the equivalent OR of conditions it cannot."""

    template = "(%(expressions)s)"
    arg_joiner = ", "
    # Compared as a whole by GreaterThan, never read: any field type will do.
    output_field = Field()


class KeysetPagination(pagination.BasePagination):
    """Cursor pages over a list that grows, for integrations that sync.

    The rows are read in the order of `keys`, a unique and immutable key (the last of them is
    the primary key), and a page is the rows after the last one of the page before: `WHERE
    (keys) > (cursor) ORDER BY keys LIMIT n`, one index walk whatever the page, never an OFFSET
    nor a COUNT. No row is met twice, or skipped because another was added; a row added while
    a client walks is met if it sorts after the client's position (a new id always does, a
    late meter read may not: docs/api.md). The cursor is the last row's key, opaque to clients
    (base64 of JSON); `next` is null on the last page."""

    page_size = 100
    max_page_size = 1000
    cursor_query_param = "cursor"
    page_size_query_param = "page_size"
    cursor_help = "Where to continue: the `next` link of the page before, as given."

    def __init__(self) -> None:
        self.next_link: str | None = None

    def paginate_keyset(
        self,
        rows: QuerySet[Any],
        request: Request,
        *,
        keys: Sequence[str] = ("pk",),
        load: Callable[[QuerySet[Any]], QuerySet[Any]] | None = None,
    ) -> list[Any]:
        """The page of `rows` (filtered, not yet ordered) after the request's cursor, loaded by
        `load` (joins and figures for the page's rows only)."""
        size = self._page_size(request)
        after = self._cursor(request, rows.model, keys)
        if after is not None:
            rows = rows.filter(
                GreaterThan(_Row(*[F(k) for k in keys]), _Row(*[Value(v) for v in after]))
            )
        rows = rows.order_by(*keys)
        page = list((load(rows) if load else rows)[: size + 1])
        self.next_link = None
        if len(page) > size:
            page = page[:size]
            last = [_attribute(page[-1], key) for key in keys]
            self.next_link = replace_query_param(
                request.build_absolute_uri(), self.cursor_query_param, _encode(last)
            )
        return page

    def get_paginated_response(self, data: Any) -> Response:
        return Response({"next": self.next_link, "results": data})

    def get_paginated_response_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        return {
            "type": "object",
            "required": ["next", "results"],
            "properties": {
                "next": {
                    "type": "string",
                    "nullable": True,
                    "format": "uri",
                    "description": "The next page; null on the last one.",
                },
                "results": schema,
            },
        }

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        return [
            {
                "name": self.cursor_query_param,
                "required": False,
                "in": "query",
                "description": self.cursor_help,
                "schema": {"type": "string", "maxLength": 500},
            },
            {
                "name": self.page_size_query_param,
                "required": False,
                "in": "query",
                "description": f"Rows per page, {self.page_size} unless given; at most "
                f"{self.max_page_size}.",
                "schema": {"type": "integer", "minimum": 1, "maximum": self.max_page_size},
            },
        ]

    def _page_size(self, request: Request) -> int:
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        field = serializers.IntegerField(min_value=1, max_value=self.max_page_size)
        try:
            size: int = field.run_validation(raw)
        except exceptions.ValidationError as exc:
            raise exceptions.ValidationError({self.page_size_query_param: exc.detail}) from exc
        return size

    def _cursor(
        self, request: Request, model: type[Model], keys: Sequence[str]
    ) -> list[Any] | None:
        raw = request.query_params.get(self.cursor_query_param)
        if raw is None:
            return None
        refused = exceptions.ValidationError(
            {self.cursor_query_param: ["Not a cursor of this list: use a `next` link as given."]}
        )
        if len(raw) > 500:
            raise refused
        try:
            values = json.loads(base64.urlsafe_b64decode(raw.encode("ascii") + b"=="))
        except (ValueError, UnicodeError, binascii.Error) as exc:
            raise refused from exc
        if not isinstance(values, list) or len(values) != len(keys):
            raise refused
        fields = [model._meta.pk if k == "pk" else model._meta.get_field(k) for k in keys]
        try:
            parsed = [f.to_python(v) for f, v in zip(fields, values, strict=True)]  # type: ignore[union-attr]
        except (ValidationError, TypeError, ValueError, OverflowError) as exc:
            raise refused from exc
        if any(
            v is None
            or (isinstance(v, int) and not 0 <= v < 2**63)
            or (isinstance(v, datetime) and v.tzinfo is None)
            for v in parsed
        ):
            raise refused
        return parsed


def _attribute(row: Any, key: str) -> Any:
    return row.pk if key == "pk" else getattr(row, key)


def _encode(values: list[Any]) -> str:
    text = json.dumps([v.isoformat() if hasattr(v, "isoformat") else v for v in values])
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


class IdField(serializers.IntegerField):
    """An input that names an object by id: within the range of the 64-bit primary keys, so an
    id no row can have is refused as invalid input instead of reaching the database (SQLite
    cannot even bind an integer past 2**63 - 1)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", 2**63 - 1)
        super().__init__(**kwargs)


def error_body(
    code: str, message: str, fields: dict[str, Any] | None = None
) -> dict[str, dict[str, Any]]:
    return {"error": {"code": code, "message": message, "fields": fields or {}}}


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """One error format for every API answer: {"error": {"code", "message", "fields"}}."""
    if isinstance(exc, DomainError):
        return Response(error_body(exc.code, exc.message, exc.fields), status=exc.status)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        detail = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        response.data = error_body("validation_failed", "The request is not valid.", detail)
    elif isinstance(exc, exceptions.APIException):
        codes = exc.get_codes()
        code = codes if isinstance(codes, str) else exc.default_code
        response.data = error_body(str(code), str(exc.detail))
    return response


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """The 404 of a path no route matches (handler404). Under /api/ it is the API's error body,
    not an HTML page: /api/v1/customers/-1 or /api/v1/customers/x is an unknown customer to a
    client, and its answer must parse like any other."""
    if request.path.startswith("/api/"):
        return JsonResponse(error_body("not_found", "Not found."), status=404)
    return defaults.page_not_found(request, exception)


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    """The 400 of a request refused before any view (handler400: a Host header that is not
    allowed, a malformed upload). Under /api/ it is the API's error body, as for not_found."""
    if request.path.startswith("/api/"):
        return JsonResponse(error_body("bad_request", "Bad request."), status=400)
    return defaults.bad_request(request, exception)
