"""What the pipeline records accept, checked before anything is written (both backends' server
side and the embedded service call these, so the same input gets the same ``InvalidInput``).

Example:
    >>> check_ref("flows.train:training")
    'flows.train:training'
    >>> short_name("flows.train:Flows.training")
    'training'
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import InvalidInput
from ..store import limits
from ..store.limits import check_int64, check_text
from .entities import ArtifactRef

__all__ = [
    "MAX_ARTIFACTS",
    "MAX_DOCUMENT",
    "MAX_ERROR",
    "MAX_PARAMS",
    "MAX_REASON",
    "check_artifact",
    "check_artifacts",
    "check_attempts",
    "check_cache_key",
    "check_choice",
    "check_document",
    "check_name",
    "check_pid",
    "check_reason",
    "check_ref",
    "checked_error",
    "checked_params",
    "param_text",
    "short_name",
]

MAX_PARAMS = 1000  # parameters of one pipeline run
MAX_ARTIFACTS = 10_000  # inputs or outputs of one step run
MAX_DOCUMENT = 1_000_000  # characters of a stored JSON document (params, key parts)
MAX_REASON = 10_000  # characters of a cache reason
MAX_ERROR = 100_000  # characters of an error kept (a longer one keeps its end: the raise)
_CACHE_KEY = 64  # step_runs.cache_key
_DIGEST = 128
_NAME = 50  # materializers, executors
_PATH = 1000
_RUN_ID = 32
_TYPE_NAME = 500

_REF = re.compile(r"[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*:[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*")


def check_ref(pipeline: object) -> str:
    """A pipeline's ``module:qualname``."""
    text = check_text("pipeline", pipeline, limit=limits.PIPELINE_NAME)
    if _REF.fullmatch(text) is None:
        raise InvalidInput(
            f"pipeline {text[:80]!r} is not MODULE:FUNCTION (e.g. flows.train:training): a "
            "module path and the @pipeline function's qualified name, separated by one ':'"
        )
    return text


def short_name(pipeline: str) -> str:
    """The pipeline function's own name: the default experiment of its runs."""
    return pipeline.rpartition(":")[2].rpartition(".")[2]


def check_choice(what: str, value: object, choices: Sequence[str]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise InvalidInput(f"{what} {value!r} must be one of: {', '.join(choices)}")
    return value


def _json_text(what: str, value: object, limit: int, *, sort_keys: bool = True) -> str:
    try:
        text = json.dumps(value, allow_nan=False, sort_keys=sort_keys, ensure_ascii=False)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(
            f"{what} is not plain JSON ({exc}); use strings, numbers, booleans, None, lists "
            "and dicts with string keys (finite numbers only)"
        ) from None
    if len(text) > limit:
        raise InvalidInput(f"{what} is {len(text):,} characters as JSON; the limit is {limit:,}")
    check_text(what, text, limit=limit)  # NUL and lone surrogates
    return text


def param_text(value: object) -> str:
    """A parameter's value as its tracked run's param (strings as they are, the rest as JSON)."""
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def checked_params(params: Mapping[str, Any] | None) -> tuple[dict[str, Any], str]:
    """The parameters and their JSON text: each key a valid param key, each value JSON that
    fits a param (6,000 characters)."""
    if params is None:
        return {}, "{}"
    if not isinstance(params, Mapping):
        raise InvalidInput(f"params must be a mapping of names to values, not {type(params)}")
    if len(params) > MAX_PARAMS:
        raise InvalidInput(f"{len(params)} params; a pipeline run takes at most {MAX_PARAMS}")
    for key, value in params.items():
        name = check_text("param key", key, limit=limits.KEY)
        if name.startswith("/") or ".." in name.split("/"):
            raise InvalidInput(f"param key {name!r} must not start with '/' or hold '..'")
        _json_text(f"param {name[:40]!r}", value, limits.PARAM_VALUE)
    # In the caller's order (the function's signature, as the engine binds them).
    text = _json_text("params", dict(params), MAX_DOCUMENT, sort_keys=False)
    return json.loads(text), text


def check_document(what: str, value: Mapping[str, Any] | None) -> str:
    """A mapping stored as JSON (a step's key parts)."""
    if value is None:
        return "{}"
    if not isinstance(value, Mapping):
        raise InvalidInput(f"{what} must be a mapping, not {type(value).__name__}")
    return _json_text(what, dict(value), MAX_DOCUMENT)


def _optional(what: str, value: object, limit: int) -> str | None:
    return None if value is None else check_text(what, value, limit=limit)


def check_artifact(what: str, ref: object) -> ArtifactRef:
    if not isinstance(ref, ArtifactRef):
        raise InvalidInput(f"{what} must be an ArtifactRef, not {type(ref).__name__}")
    check_text(f"{what} name", ref.name, limit=limits.KEY)
    check_text(f"{what} {ref.name!r} digest", ref.digest, limit=_DIGEST)
    check_text(f"{what} {ref.name!r} materializer", ref.materializer, limit=_NAME)
    _optional(f"{what} {ref.name!r} run_id", ref.run_id, _RUN_ID)
    _optional(f"{what} {ref.name!r} path", ref.path, _PATH)
    check_text(f"{what} {ref.name!r} type_name", ref.type_name, limit=_TYPE_NAME, allow_empty=True)
    if check_int64(f"{what} {ref.name!r} size", ref.size) < 0:
        raise InvalidInput(f"{what} {ref.name!r} size {ref.size} must not be negative")
    return ref


def check_artifacts(what: str, refs: Sequence[ArtifactRef]) -> str:
    """``refs`` checked, as the JSON list stored."""
    if isinstance(refs, str | bytes | Mapping) or not isinstance(refs, Sequence):
        raise InvalidInput(f"{what} must be a sequence of ArtifactRef, not {type(refs).__name__}")
    if len(refs) > MAX_ARTIFACTS:
        raise InvalidInput(f"{len(refs):,} {what}; a step run keeps at most {MAX_ARTIFACTS:,}")
    return json.dumps([check_artifact(what, ref).to_dict() for ref in refs])


def check_cache_key(value: object) -> str:
    return check_text("cache_key", value, limit=_CACHE_KEY)


def check_reason(value: object) -> str:
    return check_text("cache_reason", value, limit=MAX_REASON, allow_empty=True)


def check_name(what: str, value: object, limit: int = limits.RUN_NAME) -> str:
    return check_text(what, value, limit=limit)


def check_pid(value: object) -> int:
    pid = check_int64("pid", value)
    if not 0 <= pid <= 2**31 - 1:
        raise InvalidInput(f"pid {pid} must be from 0 to {2**31 - 1}")
    return pid


def check_attempts(value: object) -> int:
    attempts = check_int64("attempts", value)
    if not 0 <= attempts <= 1_000_000:
        raise InvalidInput(f"attempts {attempts} must be from 0 to 1,000,000")
    return attempts


def checked_error(error: object) -> str | None:
    """An error message as stored: never refused (a failure must be recorded), but cut to
    :data:`MAX_ERROR` characters (keeping the end), NUL and lone surrogates replaced."""
    if error is None:
        return None
    text = error if isinstance(error, str) else str(error)
    if len(text) > MAX_ERROR:
        text = "..." + text[-(MAX_ERROR - 3) :]
    text = text.replace("\x00", "\ufffd")
    if not text.isascii():
        text = text.encode("utf-8", "replace").decode("utf-8")
    return text
