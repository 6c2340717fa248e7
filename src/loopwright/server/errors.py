"""Error codes to HTTP statuses, in one place; every error body is ``{"code", "message"}``."""

from __future__ import annotations

from ..errors import (
    AlreadyExists,
    Conflict,
    IntegrityError,
    InvalidInput,
    LoopwrightError,
    NotFound,
    PermissionDenied,
    StoreError,
    Unauthenticated,
)

__all__ = ["status_for"]

# Most specific first: a leaf inherits from several of these (e.g. SignatureError is an
# InvalidInput), and the first match wins.
_STATUS: tuple[tuple[type[LoopwrightError], int], ...] = (
    (Unauthenticated, 401),
    (PermissionDenied, 403),
    (NotFound, 404),
    (AlreadyExists, 409),
    (Conflict, 409),
    (InvalidInput, 400),
    (IntegrityError, 500),
    (StoreError, 503),
)


def status_for(exc: LoopwrightError) -> int:
    """The HTTP status for an error (500 for anything not listed)."""
    for kind, status in _STATUS:
        if isinstance(exc, kind):
            return status
    if isinstance(exc, ValueError):
        return 400
    return 500
