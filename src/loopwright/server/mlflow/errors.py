"""MLflow's error vocabulary: its client reads ``error_code`` and the HTTP status together.

Loopwright's errors carry Loopwright's codes (``UNSAFE_PATH``, ``INVALID_MODEL_PACKAGE`` …); an
MLflow client knows only the codes of ``databricks.proto`` and treats any other as an internal
error. On MLflow's routes every error is re-coded with :func:`to_mlflow` into the nearest MLflow
code, keeping its message (which names the Loopwright code).
"""

from __future__ import annotations

from ...errors import (
    AlreadyExists,
    BlobNotFound,
    Conflict,
    IntegrityError,
    InvalidInput,
    LoopwrightError,
    NotFound,
    PermissionDenied,
    StoreError,
    Unauthenticated,
)
from ..errors import MLFLOW_STATUS as MLFLOW_STATUS

__all__ = ["MLFLOW_STATUS", "MlflowError", "to_mlflow"]

# Most specific first: a leaf inherits from several of these, and the first match wins.
_CODES: tuple[tuple[type[LoopwrightError], str], ...] = (
    (Unauthenticated, "UNAUTHENTICATED"),
    (PermissionDenied, "PERMISSION_DENIED"),
    (NotFound, "RESOURCE_DOES_NOT_EXIST"),
    (BlobNotFound, "RESOURCE_DOES_NOT_EXIST"),
    (AlreadyExists, "RESOURCE_ALREADY_EXISTS"),
    (Conflict, "INVALID_STATE"),
    (InvalidInput, "INVALID_PARAMETER_VALUE"),
    (IntegrityError, "INTERNAL_ERROR"),
    (StoreError, "TEMPORARILY_UNAVAILABLE"),
)


class MlflowError(LoopwrightError):
    """An error re-coded in MLflow's vocabulary (its status comes from :data:`MLFLOW_STATUS`)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def to_mlflow(exc: LoopwrightError) -> LoopwrightError:
    """``exc`` itself if MLflow knows its code, else an :class:`MlflowError` with the nearest
    MLflow code and a message naming the original one."""
    if exc.code in MLFLOW_STATUS:
        return exc
    code = next((code for kind, code in _CODES if isinstance(exc, kind)), "INTERNAL_ERROR")
    return MlflowError(code, f"{exc.message} [{exc.code}]")
