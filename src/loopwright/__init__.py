"""Loopwright: versioned data, experiment tracking and a model registry, embedded or on a server.

Example:
    >>> import loopwright as lw
    >>> client = lw.connect(home="lw-doc-init")
    >>> client.store.db.dialect
    'sqlite'

Heavy modules load on first use, so ``import loopwright`` stays fast. Every error class of
:mod:`loopwright.errors` is exported here too (``except lw.NotFound:``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._lazy import lazy_exports
from .errors import *  # noqa: F403  (every error class, as errors.__all__ lists them)
from .errors import __all__ as _ERRORS

if TYPE_CHECKING:
    from ._active import active_run as active_run
    from ._active import autolog as autolog
    from ._active import end_run as end_run
    from ._active import evaluate_gate as evaluate_gate
    from ._active import load_model as load_model
    from ._active import log_artifact as log_artifact
    from ._active import log_artifacts as log_artifacts
    from ._active import log_metric as log_metric
    from ._active import log_metrics as log_metrics
    from ._active import log_param as log_param
    from ._active import log_params as log_params
    from ._active import pipeline as pipeline
    from ._active import set_tag as set_tag
    from ._active import set_tags as set_tags
    from ._active import span as span
    from ._active import start_run as start_run
    from ._active import trace as trace
    from .client import Client as Client
    from .client import connect as connect
    from .evaluation import scorer as scorer
    from .pipelines.step import step as step
    from .tracking import ActiveRun as ActiveRun
    from .tracking import Experiment as Experiment
    from .tracking import Metric as Metric
    from .tracking import Run as Run
    from .tracking import RunStatus as RunStatus

__version__ = "0.1.0"

_LAZY = {
    "Client": "client",
    "connect": "client",
    "ActiveRun": "tracking",
    "Experiment": "tracking",
    "Metric": "tracking",
    "Run": "tracking",
    "RunStatus": "tracking",
    "step": "pipelines",
    "scorer": "evaluation",
    **{
        name: "_active"
        for name in (
            "active_run",
            "autolog",
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
        )
    },
}
__all__ = sorted(["__version__", *_ERRORS, *_LAZY])


_exports = lazy_exports(__name__, _LAZY, globals())


def __getattr__(name: str) -> object:
    if name == "tracing":  # lw.tracing.set_redactor(...): the subpackage, imported on first use
        import importlib

        return importlib.import_module(".tracing", __name__)
    return _exports(name)
