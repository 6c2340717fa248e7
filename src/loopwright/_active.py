"""The active run and the default client behind the module-level shortcuts (``lw.log_metric``).

The active run is per thread and per asyncio task (``_run_stack``), so runs started in one
thread never receive another thread's metrics. This module sits above the client: it makes the
default client, so the shortcuts that need one (``start_run``, ``load_model``, ``autolog``) live
here.

Example:
    >>> import loopwright as lw
    >>> with lw.start_run(experiment="demo", home="lw-doc-active-module") as run:
    ...     lw.log_metric("loss", 0.5)
    ...     lw.active_run() is run
    True
    >>> lw.active_run() is None
    True
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, overload

from ._run_stack import _stack as _stack
from ._run_stack import active_run as active_run
from .errors import TrackingError
from .tracing import sdk as _tracing_sdk
from .tracing.sdk import span as span
from .tracing.sdk import trace as trace

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from .client import Client
    from .loop.entities import GateResult, GateSpec
    from .pipelines.pipeline import Pipeline
    from .registry.packaging.loaded import LoadedModel
    from .tracing.exporter import TraceExporter
    from .tracking import ActiveRun, Artifact

__all__ = [
    "active_run",
    "autolog",
    "default_client",
    "end_run",
    "evaluate_gate",
    "load_model",
    "log_artifact",
    "log_artifacts",
    "log_metric",
    "log_metrics",
    "log_param",
    "log_params",
    "pipeline",
    "set_tag",
    "set_tags",
    "span",
    "start_run",
    "trace",
]

_client_lock = threading.Lock()
_default_client: Client | None = None


def _default_trace_exporter() -> TraceExporter:
    """Where ``@lw.trace`` sends traces unless told otherwise: the default client's store."""
    from .tracing.exporter import TraceExporter

    return TraceExporter(default_client().tracing.record)


_tracing_sdk.set_default_factory(_default_trace_exporter)


def default_client(home: str | os.PathLike[str] | None = None) -> Client:
    """The client the shortcuts use: made on first use from the settings (embedded by default)."""
    global _default_client
    with _client_lock:
        if _default_client is None or home is not None:
            from .client import connect

            if _default_client is not None:
                _default_client.close()
            _default_client = connect(home=home)
        return _default_client


def start_run(
    experiment: str = "Default",
    name: str | None = None,
    *,
    tags: Mapping[str, str] | None = None,
    nested: bool = False,
    home: str | os.PathLike[str] | None = None,
) -> ActiveRun:
    """Start a run on the default client; nested runs get the active run as their parent."""
    return default_client(home).start_run(experiment, name, tags=tags, nested=nested)


def load_model(uri: str, *, trusted: bool = False, client: Client | None = None) -> LoadedModel:
    """Load a model by URI (see :mod:`loopwright.registry.loading`) through ``client``.

    ``models:/`` and ``runs:/`` URIs resolve through the default client unless one is given; a
    local package folder needs none.
    """
    from .registry.loading import load_model as load_with
    from .registry.loading import parse_model_uri

    if client is None and parse_model_uri(uri).kind != "path":
        client = default_client()
    return load_with(uri, trusted=trusted, client=client)


@overload
def pipeline(fn: Callable[..., Any], /) -> Pipeline: ...


@overload
def pipeline(
    fn: None = None, /, *, name: str | None = None, experiment: str | None = None
) -> Callable[[Callable[..., Any]], Pipeline]: ...


def pipeline(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    experiment: str | None = None,
) -> Pipeline | Callable[[Callable[..., Any]], Pipeline]:
    """``@lw.pipeline``: :func:`loopwright.pipelines.pipeline` whose runs use the default
    client unless one is given (``flow(n=3)`` runs it; ``flow.run(client=...)``)."""
    from .pipelines.pipeline import Pipeline

    def make(f: Callable[..., Any]) -> Pipeline:
        return Pipeline(f, name=name, experiment=experiment, client_factory=default_client)

    return make if fn is None else make(fn)


def evaluate_gate(
    spec: GateSpec | str | Path | Mapping[str, Any],
    model_uri: str,
    *,
    client: Client | None = None,
    pipeline_run_id: str | None = None,
    trusted: bool = False,
) -> GateResult:
    """Check a gate on a model version and record the result (see
    :func:`loopwright.loop.gates.evaluate_gate`), through the default client unless one is given.
    """
    from .loop.gates import evaluate_gate as evaluate

    return evaluate(
        spec,
        model_uri,
        client=client or default_client(),
        pipeline_run_id=pipeline_run_id,
        trusted=trusted,
    )


def autolog(
    *,
    client_factory: Callable[[], Client] | None = None,
    log_models: bool = True,
    disable: bool = False,
    experiment: str = "Default",
) -> None:
    """Log every scikit-learn ``fit`` (see :func:`loopwright.tracking.autolog.autolog`).

    Runs that autologging starts itself go to the default client unless ``client_factory``
    gives another.
    """
    from .tracking.autolog import autolog as enable

    enable(
        client_factory=client_factory or default_client,
        log_models=log_models,
        disable=disable,
        experiment=experiment,
    )


def _require_active() -> ActiveRun:
    run = active_run()
    if run is None:
        raise TrackingError("no active run: call loopwright.start_run() first")
    return run


def end_run() -> None:
    """End the active run as FINISHED."""
    _require_active().end()


def log_param(key: str, value: object) -> None:
    _require_active().log_param(key, value)


def log_params(params: Mapping[str, object]) -> None:
    _require_active().log_params(params)


def log_metric(key: str, value: float, step: int = 0, timestamp: int | None = None) -> None:
    _require_active().log_metric(key, value, step=step, timestamp=timestamp)


def log_metrics(metrics: Mapping[str, float], step: int = 0, timestamp: int | None = None) -> None:
    _require_active().log_metrics(metrics, step=step, timestamp=timestamp)


def set_tag(key: str, value: object) -> None:
    _require_active().set_tag(key, value)


def set_tags(tags: Mapping[str, object]) -> None:
    _require_active().set_tags(tags)


def log_artifact(local_path: str | os.PathLike[str], artifact_path: str | None = None) -> Artifact:
    return _require_active().log_artifact(local_path, artifact_path)


def log_artifacts(
    local_dir: str | os.PathLike[str], artifact_path: str | None = None
) -> list[Artifact]:
    return _require_active().log_artifacts(local_dir, artifact_path)
