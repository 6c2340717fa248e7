"""The models one serving process holds, by name and version, with their batch queues.

The repository answers "which model does this request address" (:meth:`ModelRepository.get`:
an unknown name or version is a :class:`NotFound` naming what is served), keeps one
:class:`~loopwright.serving.batching.Batcher` and one predict thread per loaded model, and
implements OIP's repository extension: ``index`` lists every model it knows with its state,
``load`` (re)loads one — from its original source, or a name the registry knows through the
``resolve`` callback — and ``unload`` drops it (requests then get 404 until it is loaded again).
With several worker processes each holds its own repository: load and unload act on the
process that received them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import InvalidInput, LoopwrightError, NotFound
from .batching import Batcher
from .model import ServedModel
from .sources import ModelSource, load_source

if TYPE_CHECKING:
    from ..features.protocol import Features

__all__ = ["READY", "UNAVAILABLE", "ModelRepository"]

READY = "READY"
UNAVAILABLE = "UNAVAILABLE"


@dataclass
class _Entry:
    source: ModelSource
    model: ServedModel | None = None
    batcher: Batcher | None = None
    executor: ThreadPoolExecutor | None = None
    reason: str = ""
    load_seconds: float = 0.0

    @property
    def state(self) -> str:
        return READY if self.model is not None else UNAVAILABLE

    @property
    def version(self) -> str:
        """The version requests name: the registry's number, else the package hash prefix."""
        if self.model is not None:
            return self.model.version_name
        return "" if self.source.version is None else str(self.source.version)


class ModelRepository:
    """Served models by name; several versions of one name may be served side by side.

    Args:
        sources: the models to serve (see :func:`~loopwright.serving.sources.resolve_source`).
        max_batch_size: most rows merged into one predict call (1: no merging).
        max_latency_ms: longest a batch stays open while requests keep arriving.
        max_queue_rows: most rows waiting per model before requests get 503 (default: 16
            batches, at least ``batching.MIN_QUEUE_ROWS``).
        resolve: turns a name that is not served into a source, for ``load``; ``None``
            refuses names that were not given at start.
        on_batch: called with ``(model, requests, rows)`` for each predict call.
        features: gives the feature store (called when the first model trained on a feature
            service loads; it should return the same one each time): such a model then takes
            requests carrying only entity keys. ``None``: models are served as they are.
    """

    def __init__(
        self,
        sources: Sequence[ModelSource],
        *,
        max_batch_size: int = 1,
        max_latency_ms: float = 0.0,
        max_queue_rows: int | None = None,
        resolve: Callable[[str], ModelSource] | None = None,
        on_batch: Callable[[ServedModel, int, int], None] | None = None,
        features: Callable[[], Features] | None = None,
    ) -> None:
        if max_batch_size < 1 or max_latency_ms < 0:
            raise InvalidInput(
                f"max_batch_size must be >= 1 and max_latency_ms >= 0, got {max_batch_size} "
                f"and {max_latency_ms}"
            )
        self.max_batch_size = max_batch_size
        self.max_latency_ms = max_latency_ms
        self.max_queue_rows = max_queue_rows
        self._resolve = resolve
        self._on_batch = on_batch
        self._features = features
        self._entries: dict[str, list[_Entry]] = {}
        for source in sources:
            self._entries.setdefault(source.name, []).append(_Entry(source))

    def load_all(self) -> None:
        """Load every model given at start (raises on the first that fails)."""
        for entries in self._entries.values():
            for entry in entries:
                if entry.model is None:
                    self._load(entry)

    @property
    def names(self) -> list[str]:
        return sorted(self._entries)

    def get(self, name: str, version: str | None = None) -> tuple[ServedModel, Batcher]:
        """The model a request addresses; without ``version`` the newest one loaded.

        Raises:
            NotFound: naming the served models, or the loaded versions of ``name``.
        """
        entries = self._entries.get(name)
        if entries is None:
            raise NotFound(
                f"model {name!r} is not served here; models: {', '.join(self.names) or 'none'}"
            )
        ready = [e for e in entries if e.model is not None]
        if version is not None:
            ready = [e for e in ready if e.version == version]
        if not ready:
            if version is None:
                raise NotFound(
                    f"model {name!r} is not loaded; load it with POST "
                    f"/v2/repository/models/{name}/load"
                )
            loaded = [e.version for e in entries if e.model is not None]
            raise NotFound(
                f"model {name!r} has no version {version!r} loaded; loaded versions: "
                f"{', '.join(loaded) or 'none'}"
            )
        entry = max(ready, key=lambda e: e.source.version or 0)
        assert entry.model is not None and entry.batcher is not None
        return entry.model, entry.batcher

    def versions(self, name: str) -> list[str]:
        return [e.version for e in self._entries.get(name, []) if e.model is not None]

    def index(self, *, ready_only: bool = False) -> list[dict[str, Any]]:
        """OIP's repository index: ``name``, ``version``, ``state`` and ``reason`` per model."""
        rows = [
            {"name": name, "version": e.version, "state": e.state, "reason": e.reason}
            for name in self.names
            for e in self._entries[name]
        ]
        return [row for row in rows if row["state"] == READY] if ready_only else rows

    async def load(self, name: str) -> None:
        """Load ``name`` again from where it came from, or from the registry if new.

        Raises:
            NotFound: the name is neither served nor known to the registry.
        """
        entries = self._entries.get(name)
        if entries is None:
            if self._resolve is None:
                raise NotFound(
                    f"model {name!r} was not given at start and this server has no registry "
                    f"to load it from; models: {', '.join(self.names) or 'none'}"
                )
            resolve = self._resolve
            source = await asyncio.to_thread(resolve, name)
            entries = self._entries.setdefault(name, [_Entry(source)])
        for entry in entries:
            if entry.model is None:
                try:
                    await asyncio.to_thread(self._load, entry)
                except LoopwrightError as exc:
                    entry.reason = exc.message
                    raise

    async def unload(self, name: str) -> None:
        """Stop serving ``name`` (queued requests finish first).

        Raises:
            NotFound: the name is not served.
        """
        entries = self._entries.get(name)
        if entries is None:
            raise NotFound(f"model {name!r} is not served here")
        for entry in entries:
            await self._drop(entry, reason="unloaded")

    def load_detached(self, source: ModelSource) -> _Entry:
        """``source`` loaded, warmed up and given its batcher, but not served yet: it touches
        nothing requests read, so it may run on any thread; :meth:`add` serves it.

        Raises:
            LoopwrightError: the package fails verification, needs trust, or does not load.
        """
        entry = _Entry(source)
        self._load(entry)
        return entry

    def add(self, entry: _Entry) -> None:
        """Serve ``entry`` (from :meth:`load_detached`) beside the versions of its name."""
        self._entries.setdefault(entry.source.name, []).append(entry)

    async def remove(self, entry: _Entry, *, reason: str = "retired") -> None:
        """Stop serving ``entry`` (its queued requests finish first) and forget it."""
        name = entry.source.name
        kept = [e for e in self._entries.get(name, []) if e is not entry]
        if kept:
            self._entries[name] = kept
        else:
            self._entries.pop(name, None)
        await self._drop(entry, reason=reason)

    def observe_batches(self, on_batch: Callable[[ServedModel, int, int], None]) -> None:
        """Also call ``on_batch(model, requests, rows)`` for each predict call from now on,
        of the models loaded already too (the metrics of the app built over this repository)."""
        earlier = self._on_batch
        if earlier is None:
            self._on_batch = on_batch
            return

        def both(model: ServedModel, requests: int, rows: int) -> None:
            earlier(model, requests, rows)
            on_batch(model, requests, rows)

        self._on_batch = both

    def feature_store(self) -> Features | None:
        """The feature store the loaded models read from; None when none was trained on a
        feature service (serving's /metrics shows its views' freshness then)."""
        if self._features is None or all(m.features is None for m, _, _ in self.loaded()):
            return None
        return self._features()

    def loaded(self) -> list[tuple[ServedModel, Batcher, float]]:
        """``(model, batcher, seconds its load and warm-up took)`` of every loaded model."""
        return [
            (e.model, e.batcher, e.load_seconds)
            for entries in self._entries.values()
            for e in entries
            if e.model is not None and e.batcher is not None
        ]

    async def close(self) -> None:
        for entries in self._entries.values():
            for entry in entries:
                await self._drop(entry, reason="server stopped")

    def _load(self, entry: _Entry) -> None:
        start = time.perf_counter()
        model = load_source(entry.source)
        service = entry.source.feature_service
        if service is not None and self._features is not None:
            from ._feature_input import FeatureInput

            model.features = FeatureInput.load(
                self._features(), service, model.signature, model.label
            )
        model.warm_up()  # before it is marked ready: the first request is not the slow one
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"predict-{model.name}")

        def record(requests: int, rows: int) -> None:
            on_batch = self._on_batch  # read per call: observe_batches may come after the load
            if on_batch is not None:
                on_batch(model, requests, rows)

        entry.batcher = Batcher(
            model,
            executor,
            max_batch_size=self.max_batch_size,
            max_latency_ms=self.max_latency_ms,
            max_queue_rows=self.max_queue_rows,
            on_batch=record,
        )
        entry.load_seconds = time.perf_counter() - start
        entry.executor = executor
        entry.model = model
        entry.reason = ""

    async def _drop(self, entry: _Entry, *, reason: str) -> None:
        batcher, executor = entry.batcher, entry.executor
        entry.model = entry.batcher = entry.executor = None
        entry.reason = reason
        if batcher is not None:
            await batcher.stop()
        if executor is not None:
            executor.shutdown(wait=False)
