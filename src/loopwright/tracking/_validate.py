"""What tracking accepts: names, keys, values, steps and times, checked before anything is written.

Both backends check here at the call, so a mistake raises ``InvalidInput`` in the caller and
never reaches the metric buffer, the database or the server; the server's routes check with the
same functions, so every path refuses the same input. The limits live in ``store/limits.py``.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..errors import InvalidInput
from ..store import limits
from ..store.limits import check_int64, check_text
from ._writer import Point

__all__ = [
    "MAX_KEY_LENGTH",
    "check_key",
    "checked_params",
    "checked_tags",
    "experiment_name",
    "metric_point",
    "metric_value",
    "run_name",
]

MAX_KEY_LENGTH = limits.KEY


def check_key(kind: str, key: object) -> str:
    """A param, tag or metric key: 1-250 characters, storable, and usable as a path."""
    text = check_text(f"{kind} key", key, limit=limits.KEY)
    if text.startswith("/") or ".." in text.split("/"):
        raise InvalidInput(f"{kind} key {text!r} must not start with '/' or contain '..' segments")
    return text


def checked_params(params: Mapping[str, object]) -> dict[str, str]:
    """Params as stored: checked keys, values as strings of at most MLflow's 6000 characters."""
    return {
        check_key("param", k): check_text(
            f"param {str(k)[:40]!r} value", str(v), limit=limits.PARAM_VALUE, allow_empty=True
        )
        for k, v in params.items()
    }


def checked_tags(tags: Mapping[str, object] | None) -> dict[str, str]:
    """Tags as stored: checked keys, values as strings of at most MLflow's 8000 characters."""
    return {
        check_key("tag", k): check_text(
            f"tag {str(k)[:40]!r} value", str(v), limit=limits.TAG_VALUE, allow_empty=True
        )
        for k, v in (tags or {}).items()
    }


def experiment_name(name: object) -> str:
    text = check_text("experiment name", name, limit=limits.EXPERIMENT_NAME)
    if not text.strip():
        raise InvalidInput(f"experiment name {text!r} must not be blank; give it a name")
    return text


def run_name(name: object) -> str | None:
    """A run's name, or None for the default one."""
    if name is None or name == "":
        return None
    return check_text("run name", name, limit=limits.RUN_NAME)


def metric_value(key: str, value: object) -> float:
    """A metric's value as a float; NaN and infinities are kept, as MLflow keeps them."""
    # bool is an int and str may parse as a float: both are mistakes more often than intent.
    if not isinstance(value, bool | str | bytes):
        try:
            return float(value)  # type: ignore[arg-type]  # numpy scalars and the like
        except (TypeError, ValueError):
            pass
        except OverflowError:
            raise InvalidInput(
                f"metric {key!r} got {str(value)[:40]}..., beyond the range of a 64-bit float; "
                "log a smaller number (e.g. its logarithm)"
            ) from None
    raise InvalidInput(
        f"metric {key!r} got {type(value).__name__} {str(value)[:40]!r}; "
        "metric values must be numbers"
    )


def metric_point(run_id: str, key: str, value: object, step: object, timestamp: object) -> Point:
    """One buffered row of an already checked key; NaN is stored as 0 with ``is_nan``."""
    number = metric_value(key, value)
    if type(step) is not int or not limits.INT64_MIN <= step <= limits.INT64_MAX:
        step = check_int64(f"step of metric {key!r}", step)
    if type(timestamp) is not int or not limits.INT64_MIN <= timestamp <= limits.INT64_MAX:
        timestamp = check_int64(f"timestamp of metric {key!r}", timestamp)
    if number != number:  # NaN, without a function call on the hot path
        return (run_id, key, step, timestamp, 0.0, True)
    return (run_id, key, step, timestamp, number, False)
