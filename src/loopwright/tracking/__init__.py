"""Experiment tracking: experiments, runs, params, metrics, tags and artifacts."""

from .active_run import ActiveRun as ActiveRun
from .entities import Artifact as Artifact
from .entities import Experiment as Experiment
from .entities import Metric as Metric
from .entities import Run as Run
from .entities import RunList as RunList
from .entities import RunStatus as RunStatus
from .service import TrackingService as TrackingService

__all__ = [
    "ActiveRun",
    "Artifact",
    "Experiment",
    "Metric",
    "Run",
    "RunList",
    "RunStatus",
    "TrackingService",
]
