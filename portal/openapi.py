"""What every operation of the OpenAPI document shares: the one error body of portal.api.

drf-spectacular documents the answers a view declares; the refusals come from DRF and the
services (portal.errors), so this schema class adds them, each with the error body, to every
operation that can give them. An answer a view declares itself is left as it is.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular import openapi
from drf_spectacular.plumbing import ResolvedComponent
from drf_spectacular.utils import OpenApiResponse

# The body of portal.api.error_body. A plain schema: a serializer cannot have a field `fields`.
ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "fields"],
            "properties": {
                "code": {
                    "type": "string",
                    "description": "Stable and machine-readable, e.g. `not_found`.",
                },
                "message": {"type": "string", "description": "For people; may change."},
                "fields": {
                    "type": "object",
                    "additionalProperties": {},
                    "description": "What is wrong with each input field (or "
                    "`non_field_errors`); empty when no field is to blame.",
                },
            },
        }
    },
}

ERRORS = {
    400: "The input is not valid, or a rule refuses it; `fields` says where.",
    401: "No valid token or session.",
    403: "The token's or user's role may not do this.",
    404: "No such object for this tenant: another tenant's objects do not exist here.",
    409: "The object's state does not allow it (final already, name taken, ...).",
    415: "The body is not JSON.",
    429: "Too many failed authentications from this address; see Retry-After.",
}
ERROR_REF = {"$ref": "#/components/schemas/Error"}


def error_response(description: str) -> OpenApiResponse:
    """An error answer a view gives beyond those below, e.g. `{400: error_response("...")}`."""
    return OpenApiResponse(response=ERROR_REF, description=description)


UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
PAGE_PARAMETERS = frozenset({"page", "page_size"})


class AutoSchema(openapi.AutoSchema):
    def _get_response_bodies(self, direction: Any = "response") -> dict[str, Any]:
        responses: dict[str, Any] = super()._get_response_bodies(direction=direction)
        error = ResolvedComponent(
            name="Error", type=ResolvedComponent.SCHEMA, object="Error", schema=ERROR_SCHEMA
        )
        self.registry.register_on_missing(error)
        for status in self._error_statuses():
            responses.setdefault(
                str(status),
                {
                    "description": ERRORS[status],
                    "content": {"application/json": {"schema": ERROR_REF}},
                },
            )
        return responses

    def _error_statuses(self) -> list[int]:
        # Writes pass through services, which refuse with 400, 404 (a body's reference) or 409.
        writes = self.method in UNSAFE_METHODS
        # Only these methods carry a body; asking a plain APIView's GET for its request
        # serializer makes drf-spectacular warn that it cannot guess one.
        takes_body = self.method in BODY_METHODS and self.get_request_serializer() is not None
        # Pagination's own parameters never make a 400: a bad page is a 404, a bad size ignored.
        takes_query = any(
            p["in"] == "query" and p["name"] not in PAGE_PARAMETERS for p in self._get_parameters()
        )
        statuses = set()
        if writes or takes_query:
            statuses.add(400)
        if self.get_auth():
            statuses |= {401, 403, 429}
        # A page past the last one is not found either.
        if "{" in self.path or writes or getattr(self.view, "pagination_class", None):
            statuses.add(404)
        if writes:
            statuses.add(409)
        if takes_body:
            statuses.add(415)
        return sorted(statuses)
