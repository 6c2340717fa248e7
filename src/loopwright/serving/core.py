"""The inference core: what REST (``app``) and gRPC (``_grpc.service``) share, so each keeps
only its encoding.

A request names a model (and maybe a version). :meth:`InferenceCore.router` says whether it
names the deployment being followed (then its router chooses the variant once the request is
read, with no await before the submit), else :meth:`~InferenceCore.model` finds the model and
its batcher. :meth:`~InferenceCore.meter` gives the series the answer is counted in;
:meth:`~InferenceCore.after` decides what runs once the caller has its answer (the prediction
record, a routed request's shadow copies) and :meth:`~InferenceCore.run_after` runs it. Every
error becomes one :class:`Problem`: the HTTP status, the MLflow error code and the gRPC status
code of the same failure (:func:`problem`, the one error table).

Example:
    >>> problem(NotFound("model 'churn' is not served here"), "r1").grpc
    'NOT_FOUND'
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .._logging import get_logger
from ..errors import (
    InvalidInput,
    LoopwrightError,
    ModelFailed,
    NotFound,
    Overloaded,
    PermissionDenied,
    RequestTooLarge,
)
from ._records import PRIMARY, prediction_record

if TYPE_CHECKING:
    from .batching import Batcher
    from .metrics import Meter, ServingMetrics
    from .model import ModelInput, ServedModel
    from .prediction_log import PredictionLog
    from .repository import ModelRepository
    from .routing import Route, Router
    from .shadow import ShadowCopies
    from .watcher import DeploymentWatcher

__all__ = [
    "After",
    "InferenceCore",
    "Problem",
    "append_record",
    "new_request_id",
    "prepare",
    "problem",
]

_logger = get_logger(__name__)
_NO_COPIES: tuple[Route, ...] = ()

# What runs after an answer: model, deployment (None: the model served on its own), variant,
# shadow copies, outputs selected, request id, arrival, latency in ms, inputs, outputs.
After = tuple[
    "ServedModel",
    "str | None",
    str,
    "Sequence[Route]",
    "tuple[str, ...]",
    str,
    datetime,
    float,
    Any,
    "dict[str, Any]",
]


class Problem(Exception):
    """An error answer: HTTP ``status``, ``message``, MLflow error ``code``, the gRPC status
    code's name (``grpc``) and whether the caller should retry (``Retry-After``)."""

    def __init__(
        self, status: int, message: str, code: str, retry: bool = False, grpc: str = ""
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.code, self.retry = status, message, code, retry
        self.grpc = grpc or _GRPC_OF_STATUS.get(status, "INTERNAL")


# The one error table, most specific first: (error, HTTP status, gRPC code, MLflow code or None
# for the error's own, retry). RequestTooLarge is an InvalidInput, so it comes before it.
_TABLE: tuple[tuple[type[LoopwrightError], int, str, str | None, bool], ...] = (
    (NotFound, 404, "NOT_FOUND", None, False),
    (RequestTooLarge, 413, "RESOURCE_EXHAUSTED", None, False),
    (InvalidInput, 400, "INVALID_ARGUMENT", "BAD_REQUEST", False),
    (PermissionDenied, 403, "PERMISSION_DENIED", None, False),
    (Overloaded, 503, "UNAVAILABLE", None, True),
)
_GRPC_OF_STATUS = {status: grpc for _, status, grpc, _, _ in _TABLE}


def problem(exc: Exception, request_id: str) -> Problem:
    """The answer ``exc`` maps to; a server-side failure (500, ``INTERNAL``) names the request
    id and is logged, with the traceback when there is one."""
    if isinstance(exc, Problem):
        return exc
    for kind, status, grpc, code, retry in _TABLE:
        if isinstance(exc, kind):
            return Problem(status, exc.message, code or exc.code, retry, grpc)
    if isinstance(exc, ModelFailed):
        _logger.error("request %s: %s", request_id, exc.message, exc_info=exc.__cause__)
        return Problem(500, f"{exc.message} (request id {request_id})", exc.code)
    if isinstance(exc, LoopwrightError):
        _logger.error("request %s: %s", request_id, exc.message)
        return Problem(500, f"{exc.message} (request id {request_id})", exc.code)
    _logger.exception("request %s failed", request_id, exc_info=exc)
    return Problem(
        500,
        f"internal error {type(exc).__name__} (request id {request_id}); the server log has "
        "the traceback",
        "INTERNAL_ERROR",
    )


class InferenceCore:
    """The protocol-free steps of serving ``repository`` (and the ``deployment`` followed)."""

    __slots__ = ("deployment", "log", "metrics", "repository", "shadows")

    def __init__(
        self,
        repository: ModelRepository,
        log: PredictionLog | None = None,
        metrics: ServingMetrics | None = None,
        deployment: DeploymentWatcher | None = None,
        shadows: ShadowCopies | None = None,
    ) -> None:
        self.repository = repository
        self.log = log
        self.metrics = metrics
        self.deployment = deployment
        self.shadows = shadows

    def router(self, name: str, version: str | None) -> Router | None:
        """The deployment's router when a request names the deployment (and no version)."""
        deployment = self.deployment
        if deployment is None or version is not None or name != deployment.name:
            return None
        return deployment.router

    def model(self, name: str, version: str | None) -> tuple[ServedModel, Batcher]:
        """The served model ``name`` (``version``: the newest loaded when ``None``) and its
        batcher."""
        return self.repository.get(name, version)

    def ready(self, name: str, version: str | None) -> None:
        """Nothing if ``name`` (the deployment, or a model's ``version``) can answer now, else
        :class:`NotFound` naming what is served."""
        if self.router(name, version) is None:
            self.repository.get(name, version)

    def model_metadata(self, name: str, version: str | None) -> dict[str, Any]:
        """OIP's model metadata; a deployment is described by its first live variant's model."""
        from . import oip

        router = self.router(name, version)
        if router is not None:
            live = router.live
            versions = list(dict.fromkeys(r.model.version_name for r in live))
            return {**oip.model_metadata(live[0].model, versions), "name": name}
        model, _ = self.repository.get(name, version)
        return oip.model_metadata(model, self.repository.versions(model.name))

    def meter(self, model: ServedModel, router: Router | None, route: Route | None) -> Meter:
        """The latency and error series of the model answering (for the deployment routed)."""
        metrics = self.metrics
        assert metrics is not None, "InferenceCore.meter needs the metrics"
        if router is None or route is None:
            return metrics.meter(model)
        return metrics.meter(model, router.deployment, route.variant)

    def after(
        self,
        model: ServedModel,
        router: Router | None,
        route: Route | None,
        selected: tuple[str, ...],
        request_id: str,
        arrived: datetime,
        start: float,
        inputs: Any,
        outputs: dict[str, Any],
    ) -> After | None:
        """What :meth:`run_after` is to do once the answer is sent (``None``: nothing). Decided
        before the answer, so that the latency recorded is the answer's."""
        log = self.log
        if log is not None and not log.keeps(request_id):
            return None  # sampled out: no record, and a shadow's answer would not be kept
        latency_ms = (time.perf_counter() - start) * 1000
        copies: Sequence[Route]
        if route is None or router is None:
            if log is None:
                return None
            deployment, variant, copies = None, PRIMARY, _NO_COPIES
        else:
            copies = router.shadow_copies() if router.shadows else _NO_COPIES
            if log is None and not copies:
                return None
            deployment, variant, model = router.deployment, route.variant, route.slot.model
        return (
            model,
            deployment,
            variant,
            copies,
            selected,
            request_id,
            arrived,
            latency_ms,
            inputs,
            outputs,
        )

    def run_after(self, after: After) -> None:
        """The record (deployment and variant when routed) and the shadow copies; neither can
        fail the request, answered already."""
        model, deployment, variant, copies, selected, request_id, arrived, latency, data, out = (
            after
        )
        if self.log is not None:
            append_record(
                self.log, model, request_id, arrived, latency, data, out, deployment, variant
            )
        if copies and self.shadows is not None:
            try:
                self.shadows.send(copies, data, selected, request_id, arrived)
            except Exception:
                _logger.exception("request %s: the shadow copies could not be sent", request_id)


def prepare(model: ServedModel, data: Any) -> tuple[ModelInput, Any]:
    """``data`` checked for ``model`` and what the prediction log records of it: the model's
    input, or for a model served by entity keys the request completed with its features
    (keys, request data and the features as served, see ``_feature_input``)."""
    features = model.features
    if features is None:
        item = model.prepare(data)
        return item, item.data
    data = features.complete(data)
    return model.prepare(data), data


def append_record(
    log: PredictionLog,
    model: ServedModel,
    request_id: str,
    arrived: datetime,
    latency_ms: float,
    inputs: Any,
    outputs: dict[str, Any],
    deployment: str | None = None,
    variant: str = PRIMARY,
) -> None:
    """Queue the record of an answer by ``model``; a log that refuses it never fails the
    request (logged, naming the request and the variant)."""
    try:
        record = prediction_record(
            model,
            request_id,
            arrived,
            latency_ms,
            200,
            inputs,
            outputs,
            deployment=deployment,
            variant=variant,
        )
        log.append(record)
    except Exception:
        _logger.exception(
            "request %s: the prediction of variant %r could not be logged", request_id, variant
        )


# Request ids: a random prefix per process and a counter, 32 hex digits like a uuid4's hex but
# ~8x cheaper. A forked child draws a prefix of its own, so ids stay unique across workers.
_prefix = ""
_counter = itertools.count()


def _reseed() -> None:
    global _prefix, _counter
    _prefix, _counter = os.urandom(8).hex(), itertools.count()


_reseed()
os.register_at_fork(after_in_child=_reseed)


def new_request_id() -> str:
    """A new request id: 32 hex digits, unique across this host's serving processes."""
    return f"{_prefix}{next(_counter) & 0xFFFF_FFFF_FFFF_FFFF:016x}"
