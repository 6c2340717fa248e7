"""MLflow's error vocabulary: its codes, and its wording where clients match messages.

Loopwright's errors carry Loopwright's codes (``UNSAFE_PATH``, ``INVALID_MODEL_PACKAGE`` …); an
MLflow client knows only the codes of ``databricks.proto`` and treats any other as an internal
error. On MLflow's routes every error is re-coded with :func:`to_mlflow` into the nearest MLflow
code, keeping its message (which names the Loopwright code).

MLflow's own tests, and users' scripts, also match some messages (``Run '…' not found``,
``Invalid value 31 for parameter 'run_id' supplied``). Those are given in MLflow's words
(``mlflow/server/handlers.py``, ``mlflow/utils/validation.py``, its SQL store): a request that
fails validation through :func:`validation_message`, a few known errors through
:func:`to_mlflow`. All of it runs only once a request has failed. Native routes (``/api/v1``)
keep Loopwright's wording.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

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
    UnsafePath,
)
from ..errors import MLFLOW_STATUS as MLFLOW_STATUS

__all__ = [
    "MLFLOW_STATUS",
    "MlflowError",
    "invalid_value",
    "missing_value",
    "to_mlflow",
    "validation_message",
]

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

# Loopwright's message of an error → MLflow's, for the errors whose wording MLflow's clients
# match. Each pattern is the start of the message the domain raises (tests/server pin both).
_ID = r"'(?P<id>[^']*)'"
_MODEL = r"'?(?P<id>[^' ]+)'?"  # m-<hex>, quoted when it is not a valid id
_REWORDED: tuple[tuple[type[LoopwrightError], re.Pattern[str], str], ...] = (
    (NotFound, re.compile(rf"run {_ID} does not exist"), "Run with id={id} not found"),
    (
        NotFound,
        re.compile(r"run (?P<id>\S+) has no tag '(?P<key>.*)'$"),
        "No tag with name: {key} in run with id {id}",
    ),
    (
        Conflict,
        re.compile(rf"run {_ID} is deleted"),
        "The run {id} must be in the 'active' state. Current state is deleted.",
    ),
    (
        NotFound,
        re.compile(rf"logged model {_MODEL} does not exist"),
        "Logged model with ID '{id}' not found.",
    ),
    (
        NotFound,
        re.compile(rf"logged model {_MODEL} has no tag '(?P<key>.*)'$"),
        "No tag with key '{key}' found for model with ID '{id}'.",
    ),
    (
        NotFound,
        re.compile(rf"registered model {_ID} has no version (?P<version>\d+);"),
        "Model Version (name={id}, version={version}) not found",
    ),
    (
        NotFound,
        re.compile(rf"registered model {_ID} does not exist"),
        "Registered Model with name={id} not found",
    ),
    (
        AlreadyExists,
        re.compile(rf"registered model {_ID} already exists"),
        "Registered Model (name={id}) already exists.",
    ),
)

_API_DOCS = " See the API docs for more information about request parameters."


class MlflowError(LoopwrightError):
    """An error re-coded in MLflow's vocabulary (its status comes from :data:`MLFLOW_STATUS`)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def missing_value(param: str) -> str:
    """MLflow's message for a required request parameter that is absent, null or empty."""
    return f"Missing value for required parameter '{param}'.{_API_DOCS}"


def invalid_value(param: str, value: object, hint: str | None = None) -> str:
    """MLflow's message for a request parameter of the wrong type or out of range (the value as
    JSON, then by default the hint naming its type)."""
    shown = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    hint = hint or f" Hint: Value was of type '{type(value).__name__}'."
    return f"Invalid value {shown} for parameter '{param}' supplied: {hint}{_API_DOCS}"


def _reworded(exc: LoopwrightError) -> str | None:
    if isinstance(exc, UnsafePath):
        return "Invalid path"  # MLflow's exact words (mlflow/utils/uri.py validate_path_is_safe)
    for kind, pattern, template in _REWORDED:
        if isinstance(exc, kind) and (found := pattern.match(exc.message)):
            return template.format(**found.groupdict())
    return None


def to_mlflow(exc: LoopwrightError) -> LoopwrightError:
    """``exc`` itself if MLflow knows its code and has no wording of its own for it, else an
    :class:`MlflowError` with the nearest MLflow code and MLflow's message (or the original
    message, naming the original code)."""
    known = exc.code in MLFLOW_STATUS
    message = _reworded(exc)
    if known and message is None:
        return exc
    code = (
        exc.code
        if known
        else next((code for kind, code in _CODES if isinstance(exc, kind)), "INTERNAL_ERROR")
    )
    return MlflowError(code, message or f"{exc.message} [{exc.code}]")


# pydantic error types that mean "not of the expected type or range", which MLflow reports by
# naming the value's type; any other (a NUL in a string …) is explained in pydantic's words.
_TYPE_ERRORS = re.compile(r".*_(type|parsing)$|(greater|less)_than(_equal)?$|finite_number$")


def _param(loc: Sequence[str | int], given: Any, missing: bool) -> str:
    """MLflow's name of the parameter at ``loc`` (``metrics[0].timestamp``). pydantic's
    location also holds the members of a union it tried (``str``, ``constrained-int``); walking
    the request alongside keeps only the names and indexes the request has."""
    where, *rest = loc or ("body",)
    parts: list[str] = []
    current = given if where == "body" else None
    for n, item in enumerate(rest):
        if isinstance(item, int):
            parts.append(f"[{item}]")
            inside = isinstance(current, list) and 0 <= item < len(current)
            current = current[item] if inside and isinstance(current, list) else None
        elif where != "body" and not parts:  # a query parameter: its name comes first
            parts.append(item)
        elif isinstance(current, dict) and item in current:
            parts.append(f".{item}" if parts else item)
            current = current[item]
        elif missing and n == len(rest) - 1:  # the absent field itself
            parts.append(f".{item}" if parts else item)
    return "".join(parts)


def validation_message(errors: Sequence[Mapping[str, Any]], body: Any) -> str:
    """MLflow's message for the first problem found in a request that failed validation
    (FastAPI's ``RequestValidationError.errors()`` and the request's parsed JSON body)."""
    if not errors:
        return f"Invalid request.{_API_DOCS}"
    first = errors[0]
    kind = str(first.get("type", ""))
    if kind == "json_invalid":
        return f"Invalid request: the body is not valid JSON ({first.get('msg')}).{_API_DOCS}"
    value = first.get("input")
    missing = kind == "missing" or value is None
    param = _param(tuple(first.get("loc", ())), body, missing)
    if not param:
        expected = "a JSON object is required" if missing else first.get("msg")
        return f"Invalid request: {expected}.{_API_DOCS}"
    if missing or value == "":
        return missing_value(param)
    if _TYPE_ERRORS.match(kind):
        hint = None
    elif kind == "string_pattern_mismatch":  # the one pattern of _messages.Str
        hint = " Hint: a NUL character cannot be stored."
    else:
        hint = f" {first.get('msg')}."
    return invalid_value(param, value, hint)
