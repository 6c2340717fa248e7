"""Error codes to HTTP statuses, in one place; every error body is ``{"code", "message"}``
(``{"error_code", "message"}`` on MLflow's routes, which speak MLflow's dialect)."""

from __future__ import annotations

from fastapi.responses import JSONResponse

from ..errors import (
    AlreadyExists,
    Conflict,
    IntegrityError,
    InvalidInput,
    LoopwrightError,
    NotFound,
    PermissionDenied,
    RequestTooLarge,
    StoreError,
    Unauthenticated,
)

__all__ = ["MLFLOW_PREFIXES", "MLFLOW_STATUS", "error_body", "error_response", "status_for"]

# Paths answered in MLflow's dialect (its error body: {"error_code", "message"}).
MLFLOW_PREFIXES = (
    "/api/2.0/mlflow",
    "/ajax-api/2.0/mlflow",
    "/api/3.0/mlflow",
    "/ajax-api/3.0/mlflow",
    "/get-artifact",  # its file downloads outside the REST API (mlflow/_downloads.py)
    "/model-versions/get-artifact",
    "//model-versions/get-artifact",
)

# MLflow's error codes (databricks.proto) and the statuses its server answers them with; MLflow
# answers RESOURCE_ALREADY_EXISTS and INVALID_STATE with 400, not 409.
MLFLOW_STATUS = {
    "RESOURCE_DOES_NOT_EXIST": 404,
    "RESOURCE_ALREADY_EXISTS": 400,
    "INVALID_PARAMETER_VALUE": 400,
    "INVALID_STATE": 400,
    "PERMISSION_DENIED": 403,
    "UNAUTHENTICATED": 401,
    "ENDPOINT_NOT_FOUND": 404,
    "REQUEST_LIMIT_EXCEEDED": 429,
    "INTERNAL_ERROR": 500,
    "TEMPORARILY_UNAVAILABLE": 503,
}

# Most specific first: a leaf inherits from several of these (e.g. SignatureError is an
# InvalidInput), and the first match wins.
_STATUS: tuple[tuple[type[LoopwrightError], int], ...] = (
    (Unauthenticated, 401),
    (PermissionDenied, 403),
    (RequestTooLarge, 413),
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


def error_body(path: str, code: str, message: str, status: int) -> JSONResponse:
    """The error response for a request to ``path``, in the dialect its API speaks."""
    if path.startswith(MLFLOW_PREFIXES):
        mlflow_status = MLFLOW_STATUS.get(code, status if status < 500 else 500)
        return JSONResponse({"error_code": code, "message": message}, status_code=mlflow_status)
    return JSONResponse({"code": code, "message": message}, status_code=status)


def error_response(path: str, exc: LoopwrightError) -> JSONResponse:
    return error_body(path, exc.code, exc.message, status_for(exc))
