"""Validation of logged keys and values, shared by the service and the run handle's fast path."""

from __future__ import annotations

from ..errors import InvalidInput

__all__ = ["MAX_KEY_LENGTH", "check_key", "metric_value"]

MAX_KEY_LENGTH = 250
_MAX_KEY = MAX_KEY_LENGTH


def check_key(kind: str, key: object) -> str:
    if not isinstance(key, str) or not key or len(key) > _MAX_KEY:
        raise InvalidInput(
            f"{kind} key {key!r} must be a non-empty string of at most {_MAX_KEY} characters"
        )
    if key.startswith("/") or ".." in key.split("/"):
        raise InvalidInput(f"{kind} key {key!r} must not start with '/' or contain '..' segments")
    return key


def metric_value(key: str, value: object) -> float:
    # bool is an int and str may parse as a float: both are mistakes more often than intent.
    if not isinstance(value, bool | str | bytes):
        try:
            return float(value)  # type: ignore[arg-type]  # numpy scalars and the like
        except (TypeError, ValueError):
            pass
    raise InvalidInput(
        f"metric {key!r} got {type(value).__name__} {value!r}; metric values must be numbers"
    )
