"""Which live target answers a request: the deployments' choice over a route's targets.

The same rule as ``serving.routing.Router``: shares laid on ``[0, 1)`` in target-name order, a
``random()`` point (or, under ``ab`` with a sticky header, :func:`~loopwright.serving.routing.
sticky_point` of the header's value, so a caller stays on one target in every process), then a
bisect over the cumulative weights.
"""

from __future__ import annotations

import random
from bisect import bisect_right
from collections.abc import Callable, Mapping
from itertools import accumulate

from ..serving.routing import sticky_point
from .entities import RouteConfig, Target

__all__ = ["Split"]


class Split:
    """The live targets of one route revision and how a request picks one."""

    __slots__ = ("_bounds", "_layout", "_route", "_sticky", "_uniform")

    def __init__(
        self, route: str, config: RouteConfig, *, uniform: Callable[[], float] | None = None
    ) -> None:
        self._route = route
        self._layout = tuple(sorted(config.targets, key=lambda target: target.name))
        total = sum(target.weight for target in self._layout)
        self._bounds = [b / total for b in accumulate(t.weight for t in self._layout)][:-1]
        self._sticky = config.sticky_header.lower() if config.sticky_header else None
        self._uniform = uniform or random.Random().random

    def choose(self, headers: Mapping[str, str]) -> Target:
        """The target for a request with these (lower-case keyed) headers."""
        if not self._bounds:
            return self._layout[0]
        point = None
        if self._sticky is not None:
            value = headers.get(self._sticky)
            if value is not None:
                point = sticky_point(self._route, value)
        if point is None:
            point = self._uniform()
        return self._layout[bisect_right(self._bounds, point)]
