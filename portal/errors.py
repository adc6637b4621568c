"""Domain errors: each carries a stable `code`, rendered the same way by the API and pages."""

from __future__ import annotations


class DomainError(Exception):
    """A refused request. Services raise it before changing anything."""

    code = "invalid"
    status = 400

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        fields: dict[str, list[str]] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.fields = fields or {}


class NotFoundError(DomainError):
    code = "not_found"
    status = 404


class ConflictError(DomainError):
    code = "conflict"
    status = 409


class PermissionDeniedError(DomainError):
    code = "permission_denied"
    status = 403
