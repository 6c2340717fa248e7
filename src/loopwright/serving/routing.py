"""Traffic routing of a deployment: which live variant answers a request, which shadows get a copy.

A :class:`Router` is one deployment revision with its variants' models resolved and loaded. It is
never changed: the watcher (:mod:`.watcher`) builds a new one when the policy or a followed
alias moves and swaps it in with one assignment, so a request reads one consistent policy.

The choice costs a ``random()`` and a ``bisect`` over the live variants' cumulative weights, with
no lock and no I/O. Under ``ab`` with a sticky header, the point on ``[0, 1)`` comes from a hash
of the header's value instead of ``random()``, so the same caller (user id, say) lands on the same
variant in every process and after restarts, and a change of weights moves only the callers
whose point falls in the shifted share. A request without the header is placed at random.

Example:
    >>> router = Router("churn", 1, [], [], None)
    >>> router.deployment, router.revision
    ('churn', 1)
"""

from __future__ import annotations

import hashlib
import random
from bisect import bisect_right
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from itertools import accumulate
from typing import TYPE_CHECKING, Any

from ..errors import InvalidInput

if TYPE_CHECKING:
    from .batching import Batcher
    from .model import ModelInput, ServedModel

__all__ = ["VARIANT_HEADER", "ModelSlot", "Route", "Router", "sticky_point"]

VARIANT_HEADER = "X-Loopwright-Variant"
_HASH_SPACE = float(1 << 64)


@dataclass(eq=False)
class ModelSlot:
    """One loaded model version, shared by every variant that resolves to it.

    ``in_flight`` counts the requests (live and shadow copies) submitted to it and not yet
    answered: the watcher retires a slot only once no request holds it.
    """

    model: ServedModel
    batcher: Batcher
    in_flight: int = 0

    @property
    def key(self) -> tuple[str, int | None]:
        return self.model.name, self.model.version


@dataclass(frozen=True, eq=False)
class Route:
    """A variant of the deployment bound to the slot that serves it."""

    variant: str
    weight: float
    slot: ModelSlot

    @property
    def model(self) -> ServedModel:
        return self.slot.model

    async def submit(self, item: ModelInput, outputs: tuple[str, ...]) -> dict[str, Any]:
        """The model's outputs for ``item``, counted in flight on the slot while they run."""
        slot = self.slot
        slot.in_flight += 1
        try:
            return await slot.batcher.submit(item, outputs)
        finally:
            slot.in_flight -= 1


class Router:
    """The live and shadow routes of one deployment revision.

    Args:
        deployment: the deployment's name (the OIP model name requests use).
        revision: the policy revision the routes come from.
        live: the variants that answer, with weights > 0 (normalised here).
        shadows: the variants that get a copy of a share (``weight``) of requests.
        sticky_header: under ``ab``, the header whose value keeps a caller on one variant.
        uniform: the source of random points in ``[0, 1)`` (default: a generator of the
            router's own; a seeded one in tests).
    """

    __slots__ = (
        "_bounds",
        "_last",
        "_layout",
        "_live",
        "_sticky",
        "_successor",
        "_uniform",
        "deployment",
        "revision",
        "shadows",
    )

    def __init__(
        self,
        deployment: str,
        revision: int,
        live: Sequence[Route],
        shadows: Sequence[Route],
        sticky_header: str | None,
        *,
        uniform: Callable[[], float] | None = None,
    ) -> None:
        if any(route.weight <= 0 for route in live):
            raise InvalidInput(
                f"deployment {deployment!r} revision {revision}: every live variant needs a "
                f"weight > 0, got {[(r.variant, r.weight) for r in live]}"
            )
        self.deployment = deployment
        self.revision = revision
        self._live = tuple(live)
        self.shadows = tuple(shadows)
        total = sum(route.weight for route in live)
        # The shares lie on [0, 1) in variant-name order, not in the order the policy lists
        # them: listing the same variants otherwise must not move every sticky caller.
        self._layout = tuple(sorted(live, key=lambda route: route.variant))
        self._bounds = [b / total for b in accumulate(r.weight for r in self._layout)][:-1]
        self._last = len(self._live) - 1
        self._sticky = sticky_header.lower() if sticky_header else None
        # Its own generator (seeded by the OS), not the random module's: a model or library
        # that calls random.seed() in this process would otherwise fix every choice.
        self._uniform = uniform or random.Random().random
        self._successor: Router | None = None

    @property
    def current(self) -> Router:
        """The router in force now: this one, or the newest that superseded it."""
        router = self
        while router._successor is not None:
            router = router._successor
        return router

    def supersede(self, successor: Router) -> None:
        """Send the choices still asked of this router to ``successor`` (the watcher's swap)."""
        self._successor = successor

    @property
    def live(self) -> tuple[Route, ...]:
        return self._live

    @property
    def routes(self) -> tuple[Route, ...]:
        return self._live + self.shadows

    @property
    def resolved(self) -> dict[str, tuple[str, int | None]]:
        """Variant name -> (model name, version) it is served by."""
        return {route.variant: route.slot.key for route in self.routes}

    def choose(self, headers: Mapping[str, str]) -> Route:
        """The live route that answers a request with these (case-insensitive) headers."""
        if self._successor is not None:  # read before a swap: the policy in force decides
            return self.current.choose(headers)
        if not self._last:
            return self._live[0]
        point = None
        if self._sticky is not None:
            value = headers.get(self._sticky)
            if value is not None:
                point = sticky_point(self.deployment, value)
        if point is None:
            point = self._uniform()
        return self._layout[bisect_right(self._bounds, point)]

    def shadow_copies(self) -> list[Route]:
        """The shadow routes that get a copy of this request (each with its own share)."""
        if self._successor is not None:
            return self.current.shadow_copies()
        uniform = self._uniform
        return [route for route in self.shadows if uniform() < route.weight]

    def describe(self) -> str:
        """``primary clf v3 80%, canary clf v4 20%, shadow clf v5 (copy 10%)``, for logs."""
        total = sum(route.weight for route in self._live)
        parts = [f"{r.variant} {_label(r)} {r.weight / total:.0%}" for r in self._live]
        parts += [f"{r.variant} {_label(r)} (copy {r.weight:.0%})" for r in self.shadows]
        return ", ".join(parts)


def sticky_point(deployment: str, value: str) -> float:
    """Where on ``[0, 1)`` a sticky header's ``value`` falls for ``deployment`` (stable)."""
    # Salted with the deployment, so two deployments split the same callers independently.
    text = f"{deployment}\0{value}".encode("utf-8", "surrogateescape")
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "big") / _HASH_SPACE


def _label(route: Route) -> str:
    name, version = route.slot.key
    return name if version is None else f"{name} v{version}"
