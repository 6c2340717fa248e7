"""The tracking capability as a protocol: what both backends of ``client.tracking`` provide.

:class:`~loopwright.tracking.TrackingService` (embedded, on the stores) and
:class:`~loopwright.remote.tracking.RemoteTracking` (over a server's REST API) implement it with
the same signatures, entities and errors; ``tests/test_service_parity.py`` compares all three.
Adding a method here means adding it to both backends (and a route for the remote one).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from ._writer import MetricWriter
from .capture import Environment
from .entities import Artifact, Experiment, Metric, Run, RunList, RunStatus

__all__ = ["DEFAULT_EXPERIMENT", "Tracking"]

DEFAULT_EXPERIMENT = "Default"


class Tracking(Protocol):
    """Experiments, runs, params, metrics, tags and artifacts."""

    @property
    def writer(self) -> MetricWriter[Any]:
        """The buffered metric writer (``ActiveRun.log_metric`` appends to it directly)."""
        ...

    def close(self) -> None:
        """Write buffered metrics and stop the writer thread."""
        ...

    def create_run(
        self,
        *,
        experiment: str = DEFAULT_EXPERIMENT,
        name: str | None = None,
        tags: Mapping[str, object] | None = None,
        parent_run_id: str | None = None,
    ) -> Run:
        """Start a RUNNING run in ``experiment`` (created if missing)."""
        ...

    def get_run(self, run_id: str) -> Run: ...

    def get_environment(self, environment_id: str) -> Environment:
        """The Python version and packages a run recorded (``run.environment_id``)."""
        ...

    def get_runs(self, run_ids: Sequence[str]) -> list[Run]:
        """Runs in the order of ``run_ids`` (missing ids are left out)."""
        ...

    def list_runs(self, *, experiment: str | None = None, limit: int = 100) -> list[Run]:
        """The newest runs first, optionally of one experiment."""
        ...

    def search_runs(
        self,
        filter_string: str = "",
        *,
        experiments: Sequence[str] | None = None,
        order_by: Sequence[str] = (),
        max_results: int = 1000,
        page_token: str | None = None,
        run_view_type: str = "ACTIVE_ONLY",
    ) -> RunList:
        """Runs matching an MLflow filter (``"metrics.auc > 0.9 and params.model = 'rf'"``)."""
        ...

    def end_run(
        self, run_id: str, status: RunStatus = RunStatus.FINISHED, *, error: str | None = None
    ) -> None:
        """Flush the run's metrics, then record its end (all points are durable on return)."""
        ...

    def set_lifecycle(self, run_id: str, stage: str) -> None:
        """Soft-delete (``"deleted"``) or restore (``"active"``) a run."""
        ...

    def use_dataset(self, run_id: str, dataset_version_id: str, context: str = "training") -> None:
        """Record that the run read a dataset version (lineage)."""
        ...

    def log_params(self, run_id: str, params: Mapping[str, object]) -> None:
        """Record parameters; a key logged again must keep its value (params are immutable)."""
        ...

    def set_tags(self, run_id: str, tags: Mapping[str, object]) -> None: ...

    def require_loggable(self, run_id: str) -> None:
        """Raise unless ``run_id`` is an active run (checked once per run and process)."""
        ...

    def metric_history(self, run_id: str, key: str) -> list[Metric]:
        """Every point of one metric, by step then time."""
        ...

    def create_experiment(self, name: str, *, description: str | None = None) -> Experiment: ...

    def get_or_create_experiment(self, name: str) -> Experiment: ...

    def find_experiment(self, name: str) -> Experiment | None: ...

    def get_experiment_by_name(self, name: str) -> Experiment: ...

    def get_experiment(self, experiment_id: str) -> Experiment: ...

    def list_experiments(self, *, include_deleted: bool = False) -> list[Experiment]: ...

    def rename_experiment(self, name: str, new_name: str) -> Experiment: ...

    def set_experiment_lifecycle(self, name: str, stage: str) -> Experiment:
        """Soft-delete (``"deleted"``) or restore (``"active"``) an experiment."""
        ...

    def set_experiment_tags(self, experiment_id: str, tags: Mapping[str, object]) -> None:
        """Set tags on the experiment with id ``experiment_id`` (a key set again is replaced)."""
        ...

    def delete_experiment_tag(self, experiment_id: str, key: str) -> None:
        """Remove one tag of the experiment; ``NotFound`` if it has none by that key."""
        ...

    def log_artifact(
        self, run_id: str, local_path: str | os.PathLike[str], artifact_path: str | None = None
    ) -> Artifact:
        """Store one file under the run's artifacts at ``artifact_path/<file name>``."""
        ...

    def log_artifacts(
        self, run_id: str, local_dir: str | os.PathLike[str], artifact_path: str | None = None
    ) -> list[Artifact]:
        """Store every file below ``local_dir``, keeping the folder structure."""
        ...

    def list_artifacts(self, run_id: str, path: str | None = None) -> list[Artifact]:
        """Every artifact file of the run, or those under ``path``."""
        ...

    def download_artifacts(
        self, run_id: str, dst: str | os.PathLike[str], path: str | None = None
    ) -> Path:
        """Copy the run's artifacts (or those under ``path``) into folder ``dst``; returns it."""
        ...

    def update_run(
        self,
        run_id: str,
        *,
        status: RunStatus | None = None,
        end_time: int | None = None,
        name: str | None = None,
    ) -> None:
        """Change an active run's status, end time or name (a terminal status flushes first)."""
        ...

    def delete_tag(self, run_id: str, key: str) -> None:
        """Remove one tag of an active run; ``NotFound`` if it has none by that key."""
        ...

    def delete_artifacts(self, run_id: str, path: str | None = None) -> int:
        """Forget the run's artifact files at or under ``path`` (all without one); how many."""
        ...

    def log_metrics(
        self,
        run_id: str,
        metrics: Mapping[str, object],
        *,
        step: int = 0,
        timestamp: int | None = None,
    ) -> None:
        """Buffer one point per metric; the background writer stores them (see ``flush``)."""
        ...

    def log_metric_points(self, run_id: str, points: Iterable[Metric]) -> None:
        """Buffer points with their own steps and timestamps; exact repeats are ignored."""
        ...

    def log_batch(
        self,
        run_id: str,
        *,
        metrics: Iterable[Metric] = (),
        params: Mapping[str, object] | None = None,
        tags: Mapping[str, object] | None = None,
    ) -> None:
        """MLflow's log-batch: params and tags are written now, metrics buffered."""
        ...

    def flush(self, run_id: str | None = None) -> None:
        """Store every buffered metric point now (reads do this, so they see your writes);
        ``TrackingError`` if points of ``run_id`` (any run without one) had to be dropped."""
        ...
