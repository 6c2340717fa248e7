"""Scorers as code: ``@lw.scorer`` turns a function of ``inputs, outputs, expectations, trace``
(by keyword, any subset) into a :class:`Scorer`.

Example:
    >>> import loopwright as lw
    >>> @lw.scorer
    ... def exact(*, outputs, expectations):
    ...     return outputs == expectations["expected_response"]
    >>> exact(outputs="4", expectations={"expected_response": "4"})
    Feedback(value=True, rationale='', error=None)
"""

from __future__ import annotations

import hashlib
import inspect
import math
from collections.abc import Callable, Mapping
from typing import Any, overload

from ..errors import InvalidInput
from .entities import Feedback

__all__ = ["ARGUMENTS", "Scorer", "as_feedback", "scorer"]

ARGUMENTS = ("inputs", "outputs", "expectations", "trace")


def as_feedback(value: Any, scorer_name: str) -> Feedback:
    """A scorer's return value as :class:`Feedback`; anything else is an error naming the type."""
    if isinstance(value, Feedback):
        inner = value.value
        if value.error is None and not _scalar(inner):
            raise InvalidInput(
                f"scorer {scorer_name!r} returned Feedback(value={inner!r}); a value is a "
                "number, bool or str"
            )
        return value
    if _scalar(value):
        return Feedback(value)
    raise InvalidInput(
        f"scorer {scorer_name!r} returned {type(value).__name__}; return a number, bool, str "
        "or Feedback(value, rationale)"
    )


def _scalar(value: Any) -> bool:
    if isinstance(value, bool | str):
        return True
    return isinstance(value, int | float) and math.isfinite(float(value))


class Scorer:
    """A named scoring function over one row (call it with keyword arguments)."""

    kind = "code"

    def __init__(self, func: Callable[..., Any], name: str | None = None) -> None:
        params = inspect.signature(func).parameters
        unknown = [
            p
            for p, spec in params.items()
            if p not in ARGUMENTS
            and spec.kind not in (spec.VAR_KEYWORD, spec.VAR_POSITIONAL)
            and spec.default is spec.empty
        ]
        if unknown:
            raise InvalidInput(
                f"scorer {func.__name__!r} takes {unknown}; a scorer takes only "
                f"{', '.join(ARGUMENTS)} (by keyword, any subset)"
            )
        takes_all = any(spec.kind == spec.VAR_KEYWORD for spec in params.values())
        self._wanted = ARGUMENTS if takes_all else tuple(a for a in ARGUMENTS if a in params)
        self.func = func
        self.name = name or func.__name__
        self.__doc__ = func.__doc__

    @property
    def reference(self) -> str:
        """``module:qualname``, how a registered code scorer is found again."""
        return f"{self.func.__module__}:{self.func.__qualname__}"

    @property
    def digest(self) -> str:
        """SHA-256 of the function's source (of its bytecode when the source is not at hand)."""
        try:
            text = inspect.getsource(self.func).encode()
        except (OSError, TypeError):
            code = getattr(self.func, "__code__", None)
            text = code.co_code if code is not None else repr(self.func).encode()
        return hashlib.sha256(text).hexdigest()

    @property
    def config(self) -> Mapping[str, Any]:
        return {}

    def __call__(
        self,
        *,
        inputs: Mapping[str, Any] | None = None,
        outputs: Any = None,
        expectations: Mapping[str, Any] | None = None,
        trace: Any = None,
    ) -> Feedback:
        given = {
            "inputs": inputs or {},
            "outputs": outputs,
            "expectations": expectations or {},
            "trace": trace,
        }
        value = self.func(**{a: given[a] for a in self._wanted})
        return as_feedback(value, self.name)

    def score(self, **row: Any) -> Feedback:
        """Like calling it, but a raise becomes ``Feedback(error=...)`` (a failed row)."""
        try:
            return self(**row)
        except Exception as exc:  # a scorer's own bug must not end the evaluation
            return Feedback(None, error=f"{type(exc).__name__}: {exc}")

    def __repr__(self) -> str:
        return f"Scorer({self.name!r}, kind={self.kind!r})"


@overload
def scorer(func: Callable[..., Any], /) -> Scorer: ...
@overload
def scorer(*, name: str | None = None) -> Callable[[Callable[..., Any]], Scorer]: ...
def scorer(
    func: Callable[..., Any] | None = None, /, *, name: str | None = None
) -> Scorer | Callable[[Callable[..., Any]], Scorer]:
    """Make a scorer of a function of ``inputs, outputs, expectations, trace`` (keywords).

    It returns a number, a bool, a str (a label) or ``Feedback(value, rationale)``.
    """
    if func is not None:
        return Scorer(func, name)
    return lambda f: Scorer(f, name)
