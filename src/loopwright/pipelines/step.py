"""``@step``: a plain function that, called inside a running pipeline, becomes a cached step run.

Example:
    >>> import loopwright as lw
    >>> @lw.step(retries=2, timeout=60)
    ... def double(x: int) -> int:
    ...     return 2 * x
    >>> double(21)  # outside a pipeline: the plain function
    42

Inside a ``@pipeline`` each call is recorded as a step run: looked up in the cache by its code,
parameters and inputs, run on the pipeline run's executor with retries and a timeout per
attempt, and its return value stored as artifacts of the step's nested run.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, overload

from ..errors import InvalidInput

if TYPE_CHECKING:
    from .sweeps import SweepPoint

__all__ = ["Step", "step"]

_MAX_BACKOFF_S = 60.0


class Step:
    """A step: the function, its name and how it runs (cache, retries, timeout, pickle)."""

    def __init__(
        self,
        fn: Callable[..., Any],
        *,
        name: str | None = None,
        cache: bool = True,
        retries: int = 0,
        retry_backoff: float = 1.0,
        timeout: float | None = None,
        pickle: bool = False,
    ) -> None:
        if not callable(fn):
            raise InvalidInput(f"@step needs a function, got {type(fn).__name__}")
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise InvalidInput(
                f"step {fn.__name__!r}: retries must be an int >= 0, got {retries!r}"
            )
        if retry_backoff < 0:
            raise InvalidInput(
                f"step {fn.__name__!r}: retry_backoff must be >= 0 seconds, got {retry_backoff!r}"
            )
        if timeout is not None and timeout <= 0:
            raise InvalidInput(
                f"step {fn.__name__!r}: timeout must be > 0 seconds (or None), got {timeout!r}"
            )
        self.fn = fn
        self.name = name or fn.__name__
        if not self.name or any(c in self.name for c in "#[]"):
            raise InvalidInput(
                f"step name {self.name!r} is empty or holds '#', '[' or ']' (they mark repeated "
                "calls and map items); pass name=..."
            )
        self.cache = cache
        self.retries = retries
        self.retry_backoff = retry_backoff
        self.timeout = timeout
        self.pickle = pickle
        functools.update_wrapper(self, fn)

    def backoff(self, attempt: int) -> float:
        """Seconds to wait after failed attempt ``attempt`` (1-based): doubling, capped at 60 s."""
        return float(min(self.retry_backoff * 2 ** (attempt - 1), _MAX_BACKOFF_S))

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from . import engine

        state = engine.current()
        if state is None or engine.executing():
            return self.fn(*args, **kwargs)
        return state.call(self, args, kwargs)

    def map(self, items: Iterable[Any], /, **common: Any) -> list[Any]:
        """Call the step once per item (the item as first positional argument), in parallel on
        the run's executor up to its ``max_parallel`` (in-process: 4 threads unless given);
        results in item order.

        Outside a pipeline it is a plain loop. One failed item fails the map once the others
        finish; their results stay cached, so a resume reruns only the failed ones.
        """
        return self.calls([((item,), common) for item in items])

    def calls(self, jobs: Sequence[tuple[tuple[Any, ...], Mapping[str, Any]]]) -> list[Any]:
        """Many calls as one fan-out (what ``map`` and ``sweep`` use): ``(args, kwargs)`` each."""
        from . import engine

        state = engine.current()
        if state is None or engine.executing():
            return [self.fn(*args, **kwargs) for args, kwargs in jobs]
        return state.fan_out(self, jobs)

    def sweep(
        self,
        *,
        grid: Mapping[str, Sequence[Any]] | None = None,
        random: Mapping[str, Any] | None = None,
        samples: int = 10,
        seed: int = 0,
        **common: Any,
    ) -> list[SweepPoint]:
        """Call the step on a parameter grid or random sample (see :mod:`.sweeps`)."""
        from .sweeps import sweep

        return sweep(self, grid=grid, random=random, samples=samples, seed=seed, **common)

    def __reduce__(self) -> tuple[Callable[[str, str], Step], tuple[str, str]]:
        # Process and Ray workers get the step by reference (its module and name), as pickle
        # does for functions: the function itself is hidden behind this object in its module.
        return _load_step, (self.__module__, self.fn.__qualname__)

    def __repr__(self) -> str:
        return f"<Step {self.name} ({self.__module__}.{self.fn.__qualname__})>"


def _load_step(module: str, qualname: str) -> Step:
    target: Any = importlib.import_module(module)
    for part in qualname.split("."):
        target = getattr(target, part)
    if not isinstance(target, Step):
        raise InvalidInput(f"{module}:{qualname} is not a @step")
    return target


@overload
def step(fn: Callable[..., Any], /) -> Step: ...


@overload
def step(
    fn: None = None,
    /,
    *,
    name: str | None = None,
    cache: bool = True,
    retries: int = 0,
    retry_backoff: float = 1.0,
    timeout: float | None = None,
    pickle: bool = False,
) -> Callable[[Callable[..., Any]], Step]: ...


def step(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    cache: bool = True,
    retries: int = 0,
    retry_backoff: float = 1.0,
    timeout: float | None = None,
    pickle: bool = False,
) -> Step | Callable[[Callable[..., Any]], Step]:
    """Make ``fn`` a pipeline step (bare ``@step`` or ``@step(...)``).

    Args:
        name: the step's name in records (default: the function's name).
        cache: reuse an earlier run's outputs when code, parameters and inputs are unchanged.
        retries: extra attempts after a failure; the wait doubles from ``retry_backoff``
            seconds, capped at 60 s.
        timeout: seconds per attempt (an in-process step's thread cannot be killed: it is
            abandoned; process and Ray workers are stopped).
        pickle: allow pickling outputs no materializer handles; loading them needs
            ``trusted=True`` outside this step's pipeline.
    """

    def make(f: Callable[..., Any]) -> Step:
        return Step(
            f,
            name=name,
            cache=cache,
            retries=retries,
            retry_backoff=retry_backoff,
            timeout=timeout,
            pickle=pickle,
        )

    return make if fn is None else make(fn)
