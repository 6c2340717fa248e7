"""The hot swap: a serving process follows its deployment's policy and aliases while it serves.

Every ``refresh_seconds`` the watcher fetches the deployment and resolves the model URI of each
variant (``models:/churn@champion`` names whatever version the alias holds now) through a
:class:`DeploymentLookup` the layer above supplies (serving never imports the client). When the
revision or a resolved version differs from the router's, the models it lacks are loaded on
the watcher's thread while requests keep going to the current router; then the new router is
installed with one assignment. Slots the new router no longer uses are retired in the
background: once no request holds them (live or shadow), their batchers finish what they
queued and their threads stop. A lookup or load that fails keeps the current router, logs why
(once per distinct message), and is tried again on later rounds (a load failure only after
``retry_seconds``, since it would fail the same way each second). While the store or server
cannot be read, the rounds back off (doubling, up to ``MAX_BACKOFF_SECONDS``, with jitter so
the workers of a fleet do not return in step); the first round that succeeds restores the pace.

The watcher also reports the process alive: ``lookup.heartbeat()`` every ``heartbeat_seconds``,
from a task and a thread of its own, so a model that takes minutes to load does not stop the
heartbeats (the control plane would unlist the instance meanwhile).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from .._logging import get_logger
from .routing import ModelSlot, Route, Router

if TYPE_CHECKING:
    from .entities import Deployment
    from .repository import ModelRepository, _Entry
    from .sources import ModelSource

__all__ = ["MAX_BACKOFF_SECONDS", "DeploymentLookup", "DeploymentWatcher"]

# The longest pause between rounds while the deployment cannot be read: a store back up is
# noticed within this, and a fleet of workers polling a store that is down stays quiet.
MAX_BACKOFF_SECONDS = 30.0

_logger = get_logger(__name__)
_T = TypeVar("_T")
Key = tuple[str, int]


class DeploymentLookup(Protocol):
    """What the watcher asks the metadata store (the CLI builds it on a client)."""

    def deployment(self, name: str) -> Deployment:
        """The deployment as stored now (NotFound if it is gone)."""
        ...

    def resolve(self, model_uri: str) -> tuple[str, int]:
        """The registered model and version ``model_uri`` names now."""
        ...

    def source(self, model: str, version: int) -> ModelSource:
        """That version's package, fetched into the local model cache."""
        ...

    def heartbeat(self, name: str) -> None:
        """Report this process as serving deployment ``name``."""
        ...

    def close(self) -> None:
        """Release what the lookup holds (its client)."""
        ...


class DeploymentWatcher:
    """The router of deployment ``name`` in this process, kept current.

    Args:
        name: the deployment.
        lookup: where the deployment and its models are found.
        repository: the process's models; the deployment's versions are served there too,
            addressable by their registered name and version.
        refresh_seconds: how often the deployment and its aliases are read.
        heartbeat_seconds: how often the process reports itself (``<= 0``: never).
        retry_seconds: how long a policy whose models failed to load waits before a retry.
        drain_seconds: how long a retired model waits for the requests still holding it.
    """

    def __init__(
        self,
        name: str,
        lookup: DeploymentLookup,
        repository: ModelRepository,
        *,
        refresh_seconds: float = 1.0,
        heartbeat_seconds: float = 5.0,
        retry_seconds: float = 30.0,
        drain_seconds: float = 60.0,
    ) -> None:
        self.name = name
        self.lookup = lookup
        self.repository = repository
        self.refresh_seconds = refresh_seconds
        self.heartbeat_seconds = heartbeat_seconds
        self.retry_seconds = retry_seconds
        self.drain_seconds = drain_seconds
        self.router: Router = Router(name, 0, [], [], None)
        self._slots: dict[Key, tuple[ModelSlot, _Entry]] = {}
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"deployment-{name}")
        self._beat_thread = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix=f"heartbeat-{name}"
        )
        self._task: asyncio.Task[None] | None = None
        self._beat_task: asyncio.Task[None] | None = None
        self._retiring: set[asyncio.Task[None]] = set()
        self._failed: tuple[Any, float] | None = None  # (state, monotonic time) of a failed load
        self._last_problem: dict[str, str] = {}  # per kind (read, heartbeat): logged once each
        self.swaps = 0
        self.failures = 0  # consecutive rounds that could not read the deployment

    # --- start: synchronous, before the server answers ------------------------------------

    def load(self) -> Router:
        """Fetch the deployment and load its models on this thread (serve refuses to start
        when this raises: the error names the deployment, model or version)."""
        deployment, resolved = self._fetch()
        loaded = {
            key: self.repository.load_detached(self.lookup.source(*key))
            for key in dict.fromkeys(resolved.values())
        }
        for key, entry in loaded.items():
            self.repository.add(entry)
            self._slots[key] = (_slot(entry), entry)
        self.router = self._router(deployment, resolved)
        return self.router

    # --- while serving: on the event loop --------------------------------------------------

    async def start(self) -> None:
        """Start following the deployment (call from the app's lifespan)."""
        loop = asyncio.get_running_loop()
        if self._task is None:
            self._task = loop.create_task(self._follow())
        if self._beat_task is None and self.heartbeat_seconds > 0:
            self._beat_task = loop.create_task(self._beat())

    async def close(self) -> None:
        """Stop following; retiring slots finish first. The router keeps serving."""
        tasks = [task for task in (self._task, self._beat_task) if task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._task = self._beat_task = None
        if self._retiring:
            await asyncio.gather(*self._retiring, return_exceptions=True)
        self._thread.shutdown(wait=False)
        self._beat_thread.shutdown(wait=False)
        self.lookup.close()

    async def refresh(self) -> bool:
        """Read the deployment once and swap the router if it changed; whether it swapped.

        Raises:
            LoopwrightError: the deployment or an alias could not be read.
        """
        deployment, resolved = await self._call(self._fetch)
        current = self.router
        if deployment.revision == current.revision and resolved == current.resolved:
            return False
        state = (deployment, tuple(sorted(resolved.items())))
        loop = asyncio.get_running_loop()
        failed = self._failed
        if (
            failed is not None
            and failed[0] == state
            and loop.time() - failed[1] < self.retry_seconds
        ):
            return False
        missing = [key for key in dict.fromkeys(resolved.values()) if key not in self._slots]
        loaded: dict[Key, _Entry] = {}
        try:
            for key in missing:
                source = await self._call(self.lookup.source, *key)
                loaded[key] = await self._call(self.repository.load_detached, source)
        except Exception as exc:
            self._failed = (state, loop.time())
            for entry in loaded.values():
                await self.repository.remove(entry, reason="not served: the swap failed")
            self._problem(
                "read",
                f"deployment {self.name!r}: revision {deployment.revision} not applied, still "
                f"serving revision {current.revision}: {getattr(exc, 'message', None) or exc!r}",
            )
            return False
        self._failed = None
        for key, entry in loaded.items():
            self.repository.add(entry)
            self._slots[key] = (_slot(entry), entry)
        # The swap: requests read self.router once each, so each sees one whole policy; one
        # that read the old router and awaits its body yet chooses through the new one.
        previous, self.router = self.router, self._router(deployment, resolved)
        previous.supersede(self.router)
        self.swaps += 1
        _logger.info(
            "deployment %r: now revision %d: %s",
            self.name,
            deployment.revision,
            self.router.describe(),
        )
        used = set(resolved.values())
        for key in [key for key in self._slots if key not in used]:
            slot, entry = self._slots.pop(key)
            task = loop.create_task(self._retire(slot, entry))
            self._retiring.add(task)
            task.add_done_callback(self._retiring.discard)
        return True

    async def _follow(self) -> None:
        while True:
            try:
                await self.refresh()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.failures += 1
                self._problem(
                    "read",
                    f"deployment {self.name!r} could not be read, still serving revision "
                    f"{self.router.revision}: {_text(exc)}",
                )
            else:
                if self.failures:
                    _logger.info("deployment %r can be read again", self.name)
                self.failures = 0
                self._last_problem.pop("read", None)
            await asyncio.sleep(self.pause())

    def pause(self) -> float:
        """Seconds until the next round: ``refresh_seconds``, or after failed rounds twice
        that per failure (up to :data:`MAX_BACKOFF_SECONDS`), between half and all of it."""
        if not self.failures:
            return self.refresh_seconds
        limit = max(self.refresh_seconds, MAX_BACKOFF_SECONDS)
        longest = min(limit, self.refresh_seconds * 2.0 ** min(self.failures, 30))
        return longest * (0.5 + 0.5 * random.random())

    async def _beat(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                await loop.run_in_executor(self._beat_thread, self.lookup.heartbeat, self.name)
            except Exception as exc:
                self._problem(
                    "heartbeat", f"deployment {self.name!r}: heartbeat failed: {_text(exc)}"
                )
            else:
                self._last_problem.pop("heartbeat", None)
            await asyncio.sleep(self.heartbeat_seconds)

    async def _retire(self, slot: ModelSlot, entry: _Entry) -> None:
        # Requests that chose this slot before the swap may still be running: wait for them
        # (bounded, so a request that never ends cannot keep a model in memory forever).
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.drain_seconds
        while slot.in_flight and loop.time() < deadline:
            await asyncio.sleep(0.01)
        if slot.in_flight:
            _logger.warning(
                "deployment %r: %s retired with %d requests still running after %g s",
                self.name,
                slot.model.label,
                slot.in_flight,
                self.drain_seconds,
            )
        await self.repository.remove(entry, reason="retired: the deployment moved on")

    # --- helpers ---------------------------------------------------------------------------

    def _fetch(self) -> tuple[Deployment, dict[str, Key]]:
        deployment = self.lookup.deployment(self.name)
        resolved: dict[str, Key] = {}
        for variant in deployment.variants:
            model, version = self.lookup.resolve(variant.model_uri)
            resolved[variant.name] = (model, version)
        return deployment, resolved

    def _router(self, deployment: Deployment, resolved: Mapping[str, Key]) -> Router:
        def route(variant_name: str, weight: float) -> Route:
            return Route(variant_name, weight, self._slots[resolved[variant_name]][0])

        return Router(
            deployment.name,
            deployment.revision,
            [route(v.name, v.weight) for v in deployment.live],
            [route(v.name, v.weight) for v in deployment.shadows],
            deployment.sticky_header,
        )

    async def _call(self, function: Callable[..., _T], *args: Any) -> _T:
        return await asyncio.get_running_loop().run_in_executor(self._thread, function, *args)

    def _problem(self, kind: str, message: str) -> None:
        if message != self._last_problem.get(kind):
            _logger.warning("%s", message)
            self._last_problem[kind] = message


def _slot(entry: _Entry) -> ModelSlot:
    assert entry.model is not None and entry.batcher is not None
    return ModelSlot(entry.model, entry.batcher)


def _text(exc: Exception) -> str:
    return getattr(exc, "message", None) or repr(exc)
