"""Parameter sweeps: a step called on a grid or a random sample of parameters, then joined.

Example:
    >>> import loopwright as lw
    >>> @lw.step
    ... def score(depth: int, lr: float, scale: float = 1.0) -> float:
    ...     return scale * depth * lr
    >>> points = score.sweep(grid={"depth": [2, 4], "lr": [0.1, 0.2]})
    >>> [p.params for p in points][:2]
    [{'depth': 2, 'lr': 0.1}, {'depth': 2, 'lr': 0.2}]
    >>> max(points, key=lambda p: p.value).params
    {'depth': 4, 'lr': 0.2}

Each point is one call of the step with the point's parameters and the ``common`` ones as
keyword arguments, run like ``Step.map``: items
``score[0]``, ``score[1]``... in parallel up to the run's ``max_parallel``, each cached.
"""

from __future__ import annotations

import itertools
import random as _random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import InvalidInput

if TYPE_CHECKING:
    from .step import Step

__all__ = ["SweepPoint", "grid_points", "random_points", "sweep"]


@dataclass(frozen=True)
class SweepPoint:
    """One point of a sweep: its parameters and the step's return value there."""

    params: Mapping[str, Any]
    value: Any


def grid_points(grid: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """The cartesian product of ``grid``'s values, the last parameter varying fastest."""
    for name, values in grid.items():
        if isinstance(values, str | bytes) or not isinstance(values, Sequence) or not values:
            raise InvalidInput(
                f"sweep grid parameter {name!r} needs a non-empty list of values, got {values!r}"
            )
    names = list(grid)
    return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*grid.values())]


def random_points(space: Mapping[str, Any], *, samples: int, seed: int) -> list[dict[str, Any]]:
    """``samples`` points drawn with ``seed``: a list is sampled from its choices, a
    ``(low, high)`` tuple uniformly (integers when both bounds are ints)."""
    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
        raise InvalidInput(f"sweep samples must be an int >= 1, got {samples!r}")
    rng = _random.Random(seed)
    points: list[dict[str, Any]] = []
    for _ in range(samples):
        point: dict[str, Any] = {}
        for name, spec in space.items():
            point[name] = _draw(rng, name, spec)
        points.append(point)
    return points


def _draw(rng: _random.Random, name: str, spec: Any) -> Any:
    if isinstance(spec, list) and spec:
        return rng.choice(spec)
    if isinstance(spec, tuple) and len(spec) == 2:
        low, high = spec
        if isinstance(low, int) and isinstance(high, int) and not isinstance(low, bool):
            if low > high:
                raise InvalidInput(f"sweep range {name!r}: low {low} > high {high}")
            return rng.randint(low, high)
        if isinstance(low, int | float) and isinstance(high, int | float) and low <= high:
            return rng.uniform(float(low), float(high))
    raise InvalidInput(
        f"sweep random parameter {name!r} needs a list of choices or a (low, high) tuple with "
        f"low <= high, got {spec!r}"
    )


def sweep(
    step: Step,
    *,
    grid: Mapping[str, Sequence[Any]] | None = None,
    random: Mapping[str, Any] | None = None,
    samples: int = 10,
    seed: int = 0,
    **common: Any,
) -> list[SweepPoint]:
    """Call ``step`` on every point (the grid's, then the random ones), in parallel like map."""
    if not grid and not random:
        raise InvalidInput(
            f"{step.name}.sweep needs grid={{param: [values]}} and/or random={{param: [choices] "
            "| (low, high)}}"
        )
    points = grid_points(grid) if grid else []
    if random:
        points += random_points(random, samples=samples, seed=seed)
    clash = sorted(set(common) & {name for point in points for name in point})
    if clash:
        raise InvalidInput(f"{step.name}.sweep: {', '.join(clash)} both swept and given")
    values = step.calls([((), {**common, **point}) for point in points])
    return [SweepPoint(params=p, value=v) for p, v in zip(points, values, strict=True)]
