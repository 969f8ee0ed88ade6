"""Typed errors of the case service; the API maps each to an HTTP status."""

from __future__ import annotations


class CaseServiceError(Exception):
    """Base of service errors; ``status`` is the HTTP status, ``reason`` a stable code."""

    status = 400

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class NotFoundError(CaseServiceError):
    """A case, person, grid or force that does not exist."""

    status = 404


class ForbiddenError(CaseServiceError):
    """The acting person lacks a role allowed for the action."""

    status = 403


class UnauthenticatedError(CaseServiceError):
    """No (known) acting person."""

    status = 401


class StaleVersionError(CaseServiceError):
    """If-Match named an older version than the current one."""

    status = 412

    def __init__(self, current: int, expected: int) -> None:
        super().__init__("stale_version", f"case is at version {current}, If-Match said {expected}")
        self.current = current
        self.expected = expected


class IdempotencyMismatchError(CaseServiceError):
    """The Idempotency-Key was used before with a different request."""

    status = 422


class InvalidInputError(CaseServiceError):
    """A request that names unknown grids/categories or has bad values."""

    status = 422
