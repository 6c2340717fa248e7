"""How long names, keys and values may be, and what they may not hold: declared once, here.

The schema (``schema.py``) sizes its columns with these numbers, and every service checks its
inputs with :func:`check_text` against them before anything is written, so the embedded API, the
native REST API and MLflow's REST API refuse the same input with the same ``InvalidInput``
instead of letting PostgreSQL fail with a driver error. Values kept in TEXT columns take MLflow's
caps (``mlflow/utils/validation.py``), so an MLflow client meets the limits it expects.

This module imports nothing heavy: remote clients check their inputs with it too.

Example:
    >>> check_text("run name", "baseline", limit=RUN_NAME)
    'baseline'
"""

from __future__ import annotations

from ..errors import InvalidInput

__all__ = [
    "ALIAS",
    "DATASET_NAME",
    "DEPLOYMENT_NAME",
    "EXPERIMENT_NAME",
    "FEATURE_NAME",
    "INT64_MAX",
    "INT64_MIN",
    "KEY",
    "LOOP_NAME",
    "MODEL_NAME",
    "MONITOR_NAME",
    "PARAM_VALUE",
    "PIPELINE_NAME",
    "PROMPT_NAME",
    "PROMPT_TEMPLATE",
    "REGISTRY_TAG_VALUE",
    "REQUEST_ID",
    "RUN_NAME",
    "SCHEDULE_NAME",
    "TAG_VALUE",
    "check_int64",
    "check_text",
]

# Column widths (characters) of schema.py.
KEY = 250  # param, tag and metric keys
RUN_NAME = 250
EXPERIMENT_NAME = 256
DATASET_NAME = 256
MODEL_NAME = 256
ALIAS = 100
DEPLOYMENT_NAME = 100
MONITOR_NAME = 100  # monitors and monitoring references
REQUEST_ID = 200  # a served request's id, as labels name it
PIPELINE_NAME = 300  # module:qualname of a pipeline function
LOOP_NAME = 100  # loops, and gate names
SCHEDULE_NAME = 150  # schedules (a loop's are loop:<name>:<n>)
FEATURE_NAME = 200  # entities, feature views, on-demand views, feature services
PROMPT_NAME = 256  # prompts share MLflow's registered-model namespace and width

# TEXT columns, capped as MLflow caps them.
PARAM_VALUE = 6000
TAG_VALUE = 8000
REGISTRY_TAG_VALUE = 100_000
PROMPT_TEMPLATE = 100_000  # a prompt version's template (MLflow keeps it in a registry tag)

# BIGINT columns (steps, timestamps).
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
# INTEGER columns (version numbers).
INT32_MAX = 2**31 - 1
# An approval request's expiry, in seconds after it is made: its epoch ms must fit a BIGINT.
APPROVAL_EXPIRY_S = 100 * 365 * 24 * 3600
# The last millisecond a timestamp can name: 9999-12-31T23:59:59.999Z (Python's datetime.max).
LAST_MS = 253_402_300_799_999

_SHOWN = 40  # characters of a refused value quoted in the message


def check_text(what: str, value: object, *, limit: int, allow_empty: bool = False) -> str:
    """``value`` if it is a string a column can hold; ``InvalidInput`` naming ``what`` if not.

    Refused: non-strings, the empty string (unless ``allow_empty``), more than ``limit``
    characters, NUL (PostgreSQL cannot store it) and lone surrogates (not encodable as UTF-8).
    """
    if not isinstance(value, str):
        raise InvalidInput(f"{what} must be a string, not {type(value).__name__}")
    if not value and not allow_empty:
        raise InvalidInput(f"{what} must not be empty")
    if len(value) > limit:
        raise InvalidInput(
            f"{what} {value[:_SHOWN]!r}... is {len(value)} characters long; the limit is {limit}"
        )
    if "\x00" in value:
        raise InvalidInput(f"{what} {value[:_SHOWN]!r} contains a NUL character; remove it")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidInput(
                f"{what} {value[:_SHOWN]!r} holds a lone surrogate and is not valid Unicode; "
                "decode the text it came from properly"
            ) from None
    return value


def check_int64(what: str, value: object) -> int:
    """``value`` as an int that fits a BIGINT column; ``InvalidInput`` naming ``what`` if not."""
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, bool | str | bytes):
        raise InvalidInput(f"{what} must be an integer, not {type(value).__name__} {value!r}")
    else:
        try:
            number = int(value)  # type: ignore[call-overload]  # numpy integers and the like
        except (TypeError, ValueError, OverflowError):
            raise InvalidInput(
                f"{what} must be an integer, not {type(value).__name__} {str(value)[:40]}"
            ) from None
    if not INT64_MIN <= number <= INT64_MAX:
        raise InvalidInput(
            f"{what} {number} does not fit in 64 bits; use a value from {INT64_MIN} to {INT64_MAX}"
        )
    return number
