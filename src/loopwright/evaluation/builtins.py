"""Built-in scorers: deterministic checks that need no model.

Each is a factory returning a :class:`~loopwright.evaluation.scorers.Scorer` whose ``reference``
is ``builtin:<name>`` and whose ``config`` holds the arguments, so a registered built-in is
rebuilt exactly (:func:`build`).

Example:
    >>> from loopwright.evaluation import builtins
    >>> check = builtins.contains()
    >>> check(outputs="Paris is the capital", expectations={"expected_response": "Paris"})
    Feedback(value=True, rationale='', error=None)
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping
from typing import Any

from ..errors import InvalidInput
from .entities import Feedback
from .scorers import Scorer

__all__ = [
    "BUILTINS",
    "build",
    "contains",
    "cost",
    "exact_match",
    "json_valid",
    "latency",
    "max_length",
    "max_tokens",
    "regex",
]

_DEFAULT_FIELD = "expected_response"  # MLflow's expectation key for the reference answer


class Builtin(Scorer):
    kind = "builtin"

    def __init__(self, func: Callable[..., Any], name: str, **config: Any) -> None:
        super().__init__(func, name)
        self._builtin = name
        self._config = config

    @property
    def reference(self) -> str:
        return f"builtin:{self._builtin}"

    @property
    def config(self) -> Mapping[str, Any]:
        return dict(self._config)

    @property
    def digest(self) -> str:
        text = json.dumps([self._builtin, self._config], sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)


def _expected(expectations: Mapping[str, Any], field: str) -> Any:
    if field not in expectations:
        raise InvalidInput(f"the record has no expectation {field!r} to compare with")
    return expectations[field]


def exact_match(field: str = _DEFAULT_FIELD, *, ignore_case: bool = False) -> Scorer:
    """Outputs equal the expectation ``field`` (strings stripped; optionally case-blind)."""

    def check(*, outputs: Any, expectations: Mapping[str, Any]) -> bool:
        want = _expected(expectations, field)
        if isinstance(outputs, str) and isinstance(want, str):
            a, b = outputs.strip(), want.strip()
            return a.lower() == b.lower() if ignore_case else a == b
        return bool(outputs == want)

    return Builtin(check, "exact_match", field=field, ignore_case=ignore_case)


def contains(field: str = _DEFAULT_FIELD, *, ignore_case: bool = True) -> Scorer:
    """The outputs' text contains the expectation ``field`` (or every item of a list)."""

    def check(*, outputs: Any, expectations: Mapping[str, Any]) -> Feedback:
        want = _expected(expectations, field)
        needles = [str(w) for w in want] if isinstance(want, list) else [str(want)]
        text = _text(outputs)
        if ignore_case:
            text, needles = text.lower(), [n.lower() for n in needles]
        missing = [n for n in needles if n not in text]
        return Feedback(not missing, f"missing: {missing}" if missing else "")

    return Builtin(check, "contains", field=field, ignore_case=ignore_case)


def regex(pattern: str, *, must_match: bool = True) -> Scorer:
    """The outputs' text matches ``pattern`` (``must_match=False``: must not match)."""
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        raise InvalidInput(f"regex scorer: pattern {pattern!r} does not compile: {exc}") from exc

    def check(*, outputs: Any) -> bool:
        return (compiled.search(_text(outputs)) is not None) == must_match

    return Builtin(check, "regex", pattern=pattern, must_match=must_match)


def json_valid() -> Scorer:
    """The outputs are a JSON document (a str that parses, or already a dict/list)."""

    def check(*, outputs: Any) -> Feedback:
        if isinstance(outputs, dict | list):
            return Feedback(True)
        try:
            json.loads(outputs)
        except (TypeError, ValueError) as exc:
            return Feedback(False, f"not JSON: {exc}")
        return Feedback(True)

    return Builtin(check, "json_valid")


def max_length(limit: int) -> Scorer:
    """The outputs' text has at most ``limit`` characters."""
    _positive(limit, "max_length")

    def check(*, outputs: Any) -> Feedback:
        n = len(_text(outputs))
        return Feedback(n <= limit, f"{n} characters (limit {limit})")

    return Builtin(check, "max_length", limit=limit)


def max_tokens(limit: int) -> Scorer:
    """The outputs have at most ``limit`` tokens (whitespace-separated words and punctuation:
    a tokenizer-free estimate, stated as such in the rationale)."""
    _positive(limit, "max_tokens")
    token = re.compile(r"\w+|[^\w\s]")

    def check(*, outputs: Any) -> Feedback:
        n = len(token.findall(_text(outputs)))
        return Feedback(n <= limit, f"~{n} tokens (word estimate; limit {limit})")

    return Builtin(check, "max_tokens", limit=limit)


def latency(max_ms: float) -> Scorer:
    """The row's trace (or the target call) took at most ``max_ms`` milliseconds."""
    _positive(max_ms, "latency")

    def check(*, trace: Any) -> Feedback:
        took = getattr(trace, "duration_ms", None)
        if took is None:
            raise InvalidInput("latency scorer: the row has no trace with a duration")
        return Feedback(float(took) <= max_ms, f"{float(took):.1f} ms (limit {max_ms} ms)")

    return Builtin(check, "latency", max_ms=max_ms)


def cost(max_usd: float) -> Scorer:
    """The row's trace cost at most ``max_usd`` dollars."""
    _positive(max_usd, "cost")

    def check(*, trace: Any) -> Feedback:
        spent = getattr(trace, "cost_usd", None)
        if spent is None:
            raise InvalidInput("cost scorer: the row's trace records no cost")
        return Feedback(float(spent) <= max_usd, f"${float(spent):.6f} (limit ${max_usd})")

    return Builtin(check, "cost", max_usd=max_usd)


def _positive(value: Any, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise InvalidInput(f"{name} scorer: the limit must be a positive number, got {value!r}")


BUILTINS: dict[str, Callable[..., Scorer]] = {
    "exact_match": exact_match,
    "contains": contains,
    "regex": regex,
    "json_valid": json_valid,
    "max_length": max_length,
    "max_tokens": max_tokens,
    "latency": latency,
    "cost": cost,
}


def build(name: str, config: Mapping[str, Any]) -> Scorer:
    """The built-in ``name`` with its registered arguments."""
    factory = BUILTINS.get(name)
    if factory is None:
        raise InvalidInput(f"no built-in scorer {name!r}; built-ins: {', '.join(sorted(BUILTINS))}")
    try:
        return factory(**config)
    except TypeError as exc:
        raise InvalidInput(
            f"built-in scorer {name!r}: bad arguments {dict(config)}: {exc}"
        ) from exc
