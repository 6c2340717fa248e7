"""MLflow's error statuses: its client reads ``error_code`` and the HTTP status together."""

from __future__ import annotations

__all__ = ["MLFLOW_STATUS"]

# MLflow answers RESOURCE_ALREADY_EXISTS and INVALID_STATE with 400, not 409.
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
}
