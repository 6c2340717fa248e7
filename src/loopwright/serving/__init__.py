"""Serving: the inference server, traffic routing, batching, the prediction log and batch scoring.

Example:
    >>> from loopwright.serving import ModelRepository
    >>> ModelRepository([]).names
    []

Names load on first use, so importing this package does not import Starlette or numpy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

if TYPE_CHECKING:
    from ._prediction_protocol import Compaction as Compaction
    from ._prediction_protocol import LoggedDeployment as LoggedDeployment
    from ._prediction_protocol import Predictions as Predictions
    from ._prediction_protocol import Pruning as Pruning
    from .app import create_app as create_app
    from .batch import BatchResult as BatchResult
    from .batch import predict_batch as predict_batch
    from .deployments import DeploymentService as DeploymentService
    from .entities import Deployment as Deployment
    from .entities import DeploymentRevision as DeploymentRevision
    from .entities import ServingInstance as ServingInstance
    from .entities import Variant as Variant
    from .live import LiveStats as LiveStats
    from .live import VariantStats as VariantStats
    from .live import live_stats as live_stats
    from .metrics import ServingMetrics as ServingMetrics
    from .model import ServedModel as ServedModel
    from .prediction_log import PredictionLog as PredictionLog
    from .prediction_log import PredictionRecord as PredictionRecord
    from .predictions import PredictionService as PredictionService
    from .protocol import Deployments as Deployments
    from .repository import ModelRepository as ModelRepository
    from .server import ServeConfig as ServeConfig
    from .sources import ModelSource as ModelSource
    from .sources import load_source as load_source
    from .sources import resolve_source as resolve_source

_LAZY = {
    "BatchResult": "batch",
    "Compaction": "_prediction_protocol",
    "LoggedDeployment": "_prediction_protocol",
    "PredictionLog": "prediction_log",
    "PredictionRecord": "prediction_log",
    "PredictionService": "predictions",
    "Predictions": "_prediction_protocol",
    "Pruning": "_prediction_protocol",
    "Deployment": "entities",
    "DeploymentRevision": "entities",
    "DeploymentService": "deployments",
    "Deployments": "protocol",
    "ModelRepository": "repository",
    "ModelSource": "sources",
    "ServeConfig": "server",
    "ServedModel": "model",
    "ServingInstance": "entities",
    "ServingMetrics": "metrics",
    "LiveStats": "live",
    "VariantStats": "live",
    "live_stats": "live",
    "Variant": "entities",
    "create_app": "app",
    "load_source": "sources",
    "predict_batch": "batch",
    "resolve_source": "sources",
}
__all__ = sorted(_LAZY)


__getattr__ = lazy_exports(__name__, _LAZY, globals())
