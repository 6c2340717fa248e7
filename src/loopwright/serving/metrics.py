"""The SLA metrics of one serving process, in Prometheus' format at ``GET /metrics``.

Series (``loopwright_`` prefix):

- ``requests_total{protocol, route, status}``: every answer, by route template (``oip``,
  ``mlflow``) or RPC (``grpc``, its status codes as the HTTP statuses REST gives the same errors);
- ``errors_total{protocol, status, code}``: error answers by their error code
  (``BAD_REQUEST``, ``MODEL_FAILED``, ``TEMPORARILY_UNAVAILABLE`` ...; over gRPC the status
  code's name, ``INVALID_ARGUMENT`` ...);
- ``inference_duration_seconds{deployment, variant, model, version}``: the latency of every
  inference request that reached a model, answered or not (its ``_count`` is the requests);
  buckets from 0.2 ms to 10 s, ten per decade, fine enough for P50/P95/P99 (:mod:`.live`);
- ``inference_errors_total{deployment, variant, model, version, status}``: those answered 4xx/5xx;
- ``batch_rows`` and ``batch_requests{model, version}``: rows and requests of each predict call;
- ``queue_rows`` and ``queue_requests{model, version}``: waiting in each model's batch queue;
- ``model_load_seconds{model, version}``: loading and warming up each model;
- ``prediction_log_{appended,dropped,written,failed}_total`` and ``prediction_log_queued``:
  the prediction log's counters, in requests (records);
- ``shadow_dropped_total``: shadow copies dropped because too many were running (the copies
  that ran are in the inference series under their shadow variant's name);
- ``serving_start_time_seconds``: when the process (the earliest worker) started;
- ``feature_freshness_seconds{view, store}``: when a served model reads a feature store, the
  age of each online view's newest event loaded (``features/freshness.py``).

The hot path pays one counter increment per answer and one histogram observation per
inference request, on label children bound once per route and status or per (deployment,
variant, model, version) and kept in a dict. Levels (queues) and the counters the prediction log
keeps are read when ``/metrics`` is scraped (:meth:`refresh`).

With several worker processes (``loopwright serve --workers N``) every worker writes its values
to memory-mapped files in ``PROMETHEUS_MULTIPROC_DIR`` (see :func:`multiprocess_dir`) and a
scrape of any worker sums all of them (prometheus-client's multiprocess mode). Each worker
refreshes its levels every second, so another worker's queue depth is at most a second old;
a worker that stops removes its levels, while its counts stay in the sums. A worker that was
killed could not: the next one to start (uvicorn restarts it) removes the levels of every
process that is gone. A folder the environment names is cleared of an earlier run's files
(processes gone) before the workers start, so its counts do not add to this run's.
"""

from __future__ import annotations

import asyncio
import glob
import logging
import math
import os
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager, suppress
from typing import TYPE_CHECKING, Any, Literal

try:
    from prometheus_client import (
        CONTENT_TYPE_LATEST,
        CollectorRegistry,
        Counter,
        Gauge,
        Histogram,
        generate_latest,
    )
    from prometheus_client import multiprocess as _multiprocess
except ImportError as exc:  # pragma: no cover - the serve extra brings it
    raise ImportError(
        "serving's /metrics needs prometheus-client: pip install 'loopwright[serve]'"
    ) from exc

from starlette.responses import Response

from .._numbers import is_number

if TYPE_CHECKING:
    from starlette.requests import Request

    from ..features.entities import Freshness
    from .model import ServedModel
    from .prediction_log import PredictionLog
    from .repository import ModelRepository

__all__ = [
    "BATCH_BUCKETS",
    "GRPC_AS_HTTP",
    "LATENCY_BUCKETS",
    "MULTIPROC_VARIABLE",
    "PRIMARY",
    "Meter",
    "ServingMetrics",
    "multiprocess_dir",
]

MULTIPROC_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
# Serving a model directly (no deployment): the deployment is the model, the variant "primary"
# (as the prediction log records it, serving._records).
PRIMARY = "primary"
# Ten buckets per decade (each bound ~1.26x the last): a percentile interpolated inside a
# bucket is off by at most a quarter of its value, usually far less.
_DECADE = (1.0, 1.25, 1.6, 2.0, 2.5, 3.2, 4.0, 5.0, 6.3, 8.0)
_BOUNDS = (round(m * 10.0**e, 7) for e in range(-4, 1) for m in _DECADE)
LATENCY_BUCKETS = (*(bound for bound in _BOUNDS if bound >= 2e-4), 10.0)  # 0.2 ms .. 10 s
BATCH_BUCKETS = tuple(float(2**i) for i in range(13))  # 1 .. 4096 rows or requests
_MODEL = ("deployment", "variant", "model", "version")
_REFRESH_SECONDS = 1.0
_FRESHNESS_SECONDS = 10.0
_logger = logging.getLogger(__name__)
# gRPC status codes as the HTTP statuses REST answers for the same errors, so the series of
# both protocols add up (live_stats counts 5xx as errors and 4xx as the callers').
GRPC_AS_HTTP = {
    "OK": 200,
    "INVALID_ARGUMENT": 400,
    "PERMISSION_DENIED": 403,
    "NOT_FOUND": 404,
    "RESOURCE_EXHAUSTED": 413,
    "UNIMPLEMENTED": 501,
    "UNAVAILABLE": 503,
}

Endpoint = Callable[["Request"], Awaitable[Response]]
_Mode = Literal["livesum", "livemax", "min"]


class Meter:
    """The latency and error series of one (deployment, variant, model, version)."""

    __slots__ = ("_errors", "_labels", "_latency", "_statuses")

    def __init__(self, latency: Histogram, errors: Counter, labels: tuple[str, ...]) -> None:
        self._latency = latency.labels(*labels)
        self._errors = errors
        self._labels = labels
        self._statuses: dict[int, Any] = {}

    def observe(self, seconds: float) -> None:
        """An answered request that took ``seconds``."""
        self._latency.observe(seconds)

    def failed(self, status: int, seconds: float) -> None:
        """A request answered with an error ``status`` after ``seconds``."""
        self._latency.observe(seconds)
        child = self._statuses.get(status)
        if child is None:
            child = self._statuses[status] = self._errors.labels(*self._labels, str(status))
        child.inc()


class ServingMetrics:
    """The metrics of one serving process over ``repository`` (and its prediction ``log``).

    Args:
        repository: the served models; their predict calls are observed from now on.
        log: the prediction log, whose counters are exported (``None``: not logged).

    Example:
        >>> from loopwright.serving.repository import ModelRepository
        >>> ServingMetrics(ModelRepository([])).multiprocess
        False
    """

    def __init__(
        self,
        repository: ModelRepository,
        log: PredictionLog | None = None,
    ) -> None:
        self.repository = repository
        self.log = log
        self.multiprocess = bool(os.environ.get(MULTIPROC_VARIABLE))
        # In multiprocess mode the values live in the shared files and a scrape reads those,
        # so the metrics themselves join no registry (they would be counted twice).
        self.registry = CollectorRegistry()
        own = None if self.multiprocess else self.registry
        if self.multiprocess:
            _multiprocess.MultiProcessCollector(self.registry)  # type: ignore[no-untyped-call]

        def counter(name: str, doc: str, labels: tuple[str, ...] = ()) -> Counter:
            return Counter(f"loopwright_{name}", doc, labels, registry=own)

        def gauge(name: str, doc: str, labels: tuple[str, ...], mode: _Mode) -> Gauge:
            return Gauge(f"loopwright_{name}", doc, labels, registry=own, multiprocess_mode=mode)

        def histogram(name: str, doc: str, labels: tuple[str, ...], buckets: Any) -> Histogram:
            return Histogram(f"loopwright_{name}", doc, labels, registry=own, buckets=buckets)

        by_model = ("model", "version")
        self._requests = counter(
            "requests",
            "Answers by protocol, route and status",
            ("protocol", "route", "status"),
        )
        self._errors = counter(
            "errors",
            "Error answers by protocol, status and error code",
            ("protocol", "status", "code"),
        )
        self._latency = histogram(
            "inference_duration_seconds",
            "Latency of inference requests (answered or not) per deployment, variant and model "
            "version",
            _MODEL,
            LATENCY_BUCKETS,
        )
        self._inference_errors = counter(
            "inference_errors",
            "Inference requests answered with an error, per variant, model version and status",
            (*_MODEL, "status"),
        )
        self._batch_rows = histogram("batch_rows", "Rows per predict call", by_model, BATCH_BUCKETS)
        self._batch_requests = histogram(
            "batch_requests", "Requests per predict call", by_model, BATCH_BUCKETS
        )
        self._queue_rows = gauge(
            "queue_rows", "Rows waiting in a model's batch queue", by_model, "livesum"
        )
        self._queue_requests = gauge(
            "queue_requests", "Requests waiting in a model's batch queue", by_model, "livesum"
        )
        self._load_seconds = gauge(
            "model_load_seconds", "Seconds to load and warm up a model", by_model, "livemax"
        )
        self._log_counters = {
            field: counter(f"prediction_log_{field}", doc)
            for field, doc in (
                ("appended", "Requests accepted into the prediction log's queue"),
                ("dropped", "Requests the prediction log dropped because its queue was full"),
                ("written", "Requests written to the prediction log's Parquet files"),
                ("failed", "Requests the prediction log gave up on after storage errors"),
            )
        }
        self._log_queued = gauge(
            "prediction_log_queued",
            "Requests waiting to be written to the prediction log",
            (),
            "livesum",
        )
        self._shadow_dropped = counter(
            "shadow_dropped", "Shadow copies dropped because too many were running"
        )
        self._feature_age = gauge(
            "feature_freshness_seconds",
            "Age of the newest event time loaded into the online store for a feature view",
            ("view", "store"),
            "livemax",
        )
        self._freshness: tuple[float, list[Freshness]] = (-math.inf, [])
        started = gauge("serving_start_time_seconds", "When serving started (Unix time)", (), "min")
        started.set(time.time())
        self._seen: dict[str, int] = {}  # what each cumulative source had reached at refresh
        self._queued: set[tuple[str, str]] = set()
        self._meters: dict[tuple[str, str, str, str], Meter] = {}
        self._batches: dict[tuple[str, str], tuple[Any, Any]] = {}
        self._rpcs: dict[tuple[str, int], Any] = {}
        self._task: asyncio.Task[None] | None = None
        repository.observe_batches(self.batch)

    # --- the hot path -------------------------------------------------------------------

    def meter(
        self, model: ServedModel, deployment: str | None = None, variant: str = PRIMARY
    ) -> Meter:
        """The series of ``model`` answering for ``deployment`` (default: the model's name)."""
        key = (deployment or model.name, variant, model.name, model.version_name)
        meter = self._meters.get(key)
        if meter is None:
            meter = self._meters[key] = Meter(self._latency, self._inference_errors, key)
        return meter

    def metered(self, endpoint: Endpoint, protocol: str, route: str) -> Endpoint:
        """``endpoint``, counting its answers by status under ``protocol`` and ``route``."""
        counter = self._requests
        children: dict[int, Any] = {}

        def count(status: int) -> None:
            child = children.get(status)
            if child is None:
                child = children[status] = counter.labels(protocol, route, str(status))
            child.inc()

        async def handle(request: Request) -> Response:
            try:
                response = await endpoint(request)
            except Exception:  # Starlette answers 500 (a cancelled request gets no answer)
                count(500)
                raise
            count(response.status_code)
            return response

        return handle

    def no_route(self, status: int) -> None:
        """A request no route matched (404) or whose method its route refuses (405)."""
        self._requests.labels("http", "", str(status)).inc()
        self.error("http", status, "NO_ROUTE")

    def error(self, protocol: str, status: int, code: str) -> None:
        """An error answer (the error path: its labels are looked up each time)."""
        self._errors.labels(protocol, str(status), code).inc()

    def rpc(self, method: str, code: str, meter: Meter | None, seconds: float) -> None:
        """A gRPC inference call answered with status ``code`` (``OK``, ``INVALID_ARGUMENT``
        ...) after ``seconds``; ``meter`` once the call named a served model."""
        status = GRPC_AS_HTTP.get(code, 500)
        child = self._rpcs.get((method, status))
        if child is None:
            child = self._rpcs[method, status] = self._requests.labels("grpc", method, str(status))
        child.inc()
        if status < 400:
            if meter is not None:
                meter.observe(seconds)
            return
        self.error("grpc", status, code)
        if meter is not None:
            meter.failed(status, seconds)

    def shadow_dropped(self) -> None:
        """A shadow copy dropped (too many running)."""
        self._shadow_dropped.inc()

    def batch(self, model: ServedModel, requests: int, rows: int) -> None:
        """One predict call of ``model`` over ``requests`` requests holding ``rows`` rows."""
        key = (model.name, model.version_name)
        children = self._batches.get(key)
        if children is None:
            children = self._batches[key] = (
                self._batch_rows.labels(*key),
                self._batch_requests.labels(*key),
            )
        children[0].observe(rows)
        children[1].observe(requests)

    # --- scrape time ----------------------------------------------------------------------

    async def scrape(self, request: Request) -> Response:
        """``GET /metrics``: every series, in Prometheus' text format."""
        self.refresh()
        return Response(generate_latest(self.registry), 200, media_type=CONTENT_TYPE_LATEST)

    def refresh(self) -> None:
        """Read the queue levels and the counters other objects keep into the series."""
        queued: set[tuple[str, str]] = set()
        for model, batcher, load_seconds in self.repository.loaded():
            key = (model.name, model.version_name)
            queued.add(key)
            self._queue_rows.labels(*key).set(batcher.queued_rows)
            self._queue_requests.labels(*key).set(batcher.queued_requests)
            self._load_seconds.labels(*key).set(load_seconds)
        for key in self._queued - queued:  # unloaded since: nothing waits for it any more
            self._queue_rows.labels(*key).set(0)
            self._queue_requests.labels(*key).set(0)
        self._queued = queued
        if self.log is not None:
            stats = self.log.stats()
            for field, counter in self._log_counters.items():
                self._advance(f"log.{field}", counter, getattr(stats, field))
            self._log_queued.set(stats.queued)
        self._refresh_feature_age()

    def _refresh_feature_age(self) -> None:
        """Each online view's age, when a served model reads a feature store: the figures
        asked of it at most every ``_FRESHNESS_SECONDS`` (a scrape, or each worker every
        second, must not query the store each time), the age computed at every refresh."""
        from dataclasses import replace

        from .._ids import now_ms
        from ..features.freshness import gauge_samples

        features = self.repository.feature_store()
        if features is None:
            return
        read_at, found = self._freshness
        if time.monotonic() - read_at >= _FRESHNESS_SECONDS:
            try:
                found = features.freshness()
            except Exception as exc:  # an unreachable store must not fail the scrape
                _logger.warning("feature freshness not read: %s", exc)
            self._freshness = (time.monotonic(), found)
        now = now_ms()
        for labels, age in gauge_samples([replace(item, checked_at=now) for item in found]):
            self._feature_age.labels(*labels).set(age)

    def _advance(self, source: str, counter: Counter, total: int) -> None:
        # Counters moved by the difference, not gauges set to the total: in multiprocess mode
        # the counters of every worker (stopped ones too) are summed, a total over processes.
        seen = self._seen.get(source, 0)
        if total > seen:
            counter.inc(total - seen)
            self._seen[source] = total

    # --- lifetime -------------------------------------------------------------------------

    def start(self) -> None:
        """With several workers, refresh every second so any worker's scrape sees the others."""
        if self.multiprocess and self._task is None:
            _forget_gone(os.environ[MULTIPROC_VARIABLE], levels_only=True)
            self._task = asyncio.get_running_loop().create_task(self._refresh_often())

    async def stop(self) -> None:
        """Stop refreshing; a stopping worker's levels leave the sums."""
        if self._task is not None:
            self._task.cancel()
            with suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self.multiprocess:
            self.refresh()
            _multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]

    async def _refresh_often(self) -> None:
        while True:
            self.refresh()
            await asyncio.sleep(_REFRESH_SECONDS)


@contextmanager
def multiprocess_dir() -> Iterator[str]:
    """A fresh folder for the workers' metric files, named by ``PROMETHEUS_MULTIPROC_DIR`` and
    removed at the end; a folder the environment names already is used as it is, and kept.

    Enter it before the workers start: they import prometheus-client with the variable set,
    so each writes its values there and every scrape sums them.
    """
    given = os.environ.get(MULTIPROC_VARIABLE)
    if given:
        _forget_gone(given, levels_only=False)  # an earlier run's counts, not this one's
        yield given
        return
    folder = tempfile.mkdtemp(prefix="loopwright-metrics-")
    os.environ[MULTIPROC_VARIABLE] = folder
    try:
        yield folder
    finally:
        os.environ.pop(MULTIPROC_VARIABLE, None)
        shutil.rmtree(folder, ignore_errors=True)


def _forget_gone(folder: str, *, levels_only: bool) -> None:
    """Remove the metric files of processes that no longer run: their levels (live gauges)
    only, or everything (counts too, before a run starts)."""
    pattern = "gauge_live*_*.db" if levels_only else "*_*.db"
    for path in glob.glob(os.path.join(folder, pattern)):
        pid = os.path.basename(path)[: -len(".db")].rsplit("_", 1)[-1]
        if is_number(pid) and not _running(int(pid)):
            with suppress(FileNotFoundError):  # another worker starting removed it first
                os.remove(path)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True
