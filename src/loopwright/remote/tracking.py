"""``RemoteTracking``: the tracking service's methods, over the server's REST API.

It implements :class:`~loopwright.tracking.protocol.Tracking`, as
:class:`~loopwright.tracking.TrackingService` does (runs, params, metrics, tags, artifacts,
search, experiments), so ``ActiveRun`` and ``Client`` run unchanged on top of it. Keys and
values are checked here first, as embedded, so mistakes raise at the call rather than at the
next flush.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NoReturn

from ..errors import Conflict, InvalidInput, NotFound
from ..paths import safe_join
from ..tracking._buffered import BufferedMetricsMixin
from ..tracking._validate import checked_params, checked_tags, experiment_name, run_name
from ..tracking._writer import MetricWriter
from ..tracking.artifacts import artifact_file, artifact_files
from ..tracking.capture import (
    Environment,
    RunContext,
    capture_environment,
    current_code_version,
    entry_point,
)
from ..tracking.entities import Artifact, Experiment, Metric, Run, RunList, RunStatus
from ..tracking.protocol import DEFAULT_EXPERIMENT
from . import _codec
from ._http import Http, quote_path
from ._metric_sink import HttpSink

__all__ = ["RemoteTracking"]


class RemoteTracking(BufferedMetricsMixin):
    """Experiments and runs on a Loopwright server."""

    def __init__(self, http: Http, *, flush_interval: float = 1.0, capture: bool = True) -> None:
        self._http = http
        self.writer: MetricWriter[NoReturn] = MetricWriter(HttpSink(http), interval=flush_interval)
        self.capture = capture
        self._loggable: set[str] = set()

    def close(self) -> None:
        """Send buffered metrics and stop the writer thread."""
        self.writer.close()

    # --- runs ----------------------------------------------------------------------------

    def create_run(
        self,
        *,
        experiment: str = DEFAULT_EXPERIMENT,
        name: str | None = None,
        tags: Mapping[str, object] | None = None,
        parent_run_id: str | None = None,
    ) -> Run:
        """Start a RUNNING run in ``experiment`` (created if missing)."""
        body: dict[str, Any] = {
            "experiment": experiment_name(experiment),
            "name": run_name(name),
            "tags": checked_tags(tags),
            "parent_run_id": parent_run_id,
        }
        if self.capture:
            body["context"] = _context()
        run = _codec.run(self._http.post("/runs", body))
        self._loggable.add(run.id)
        return run

    def get_run(self, run_id: str) -> Run:
        self.writer.flush()
        return _codec.run(self._http.get(f"/runs/{run_id}"))

    def get_runs(self, run_ids: Sequence[str]) -> list[Run]:
        """Runs in the order of ``run_ids`` (missing ids are left out)."""
        found = []
        for run_id in run_ids:
            try:
                found.append(self.get_run(run_id))
            except NotFound:
                continue
        return found

    def get_environment(self, environment_id: str) -> Environment:
        data = self._http.get(f"/environments/{environment_id}")
        return Environment(data["id"], data["python_version"], data["packages"])

    def list_runs(self, *, experiment: str | None = None, limit: int = 100) -> list[Run]:
        """The newest runs first, optionally of one experiment."""
        self.writer.flush()
        found = self._http.get("/runs", experiment=experiment, limit=limit)
        return [_codec.run(r) for r in found]

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
        """Runs matching an MLflow filter; pass ``next_page_token`` back for more."""
        self.writer.flush()
        page = self._http.post(
            "/runs/search",
            {
                "filter": filter_string,
                "experiments": None if experiments is None else list(experiments),
                "order_by": list(order_by),
                "max_results": max_results,
                "page_token": page_token,
                "run_view_type": run_view_type.upper(),
            },
        )
        return RunList([_codec.run(r) for r in page["runs"]], page["next_page_token"])

    def end_run(
        self, run_id: str, status: RunStatus = RunStatus.FINISHED, *, error: str | None = None
    ) -> None:
        """Send the run's metrics, then record its end."""
        if not status.is_terminal:
            raise InvalidInput(f"end_run needs a terminal status, not {status.value}")
        self.writer.untrack(run_id)
        self.writer.flush()
        self._http.post(f"/runs/{run_id}/end", {"status": status.value, "error": error})
        self.writer.raise_dropped(run_id)

    def set_lifecycle(self, run_id: str, stage: str) -> None:
        """Soft-delete (``"deleted"``) or restore (``"active"``) a run."""
        if stage not in ("active", "deleted"):
            raise InvalidInput(f"lifecycle stage must be 'active' or 'deleted', not {stage!r}")
        self.writer.flush()
        if stage == "deleted":
            self._http.request("DELETE", f"/runs/{run_id}")
            self._loggable.discard(run_id)
        else:
            self._http.post(f"/runs/{run_id}/restore")

    def update_run(
        self,
        run_id: str,
        *,
        status: RunStatus | None = None,
        end_time: int | None = None,
        name: str | None = None,
    ) -> None:
        """Change an active run's status, end time or name (its metrics are sent first)."""
        if status is not None and status.is_terminal:
            self.writer.untrack(run_id)
        self.writer.flush()
        body = {
            "status": None if status is None else status.value,
            "end_time": end_time,
            "name": name,
        }
        self._http.request("PATCH", f"/runs/{run_id}", json_body=body)

    def use_dataset(self, run_id: str, dataset_version_id: str, context: str = "training") -> None:
        """Record that the run read a dataset version (lineage)."""
        self._http.post(
            f"/runs/{run_id}/inputs",
            {"dataset_version_id": dataset_version_id, "context": context},
        )

    # --- logging -------------------------------------------------------------------------

    def log_params(self, run_id: str, params: Mapping[str, object]) -> None:
        """Record parameters; a key logged again must keep its value (params are immutable)."""
        self._http.post(f"/runs/{run_id}/params", {"params": checked_params(params)})

    def set_tags(self, run_id: str, tags: Mapping[str, object]) -> None:
        self._http.post(f"/runs/{run_id}/tags", {"tags": checked_tags(tags)})

    def delete_tag(self, run_id: str, key: str) -> None:
        """Remove one tag of an active run; ``NotFound`` if it has none by that key."""
        self._http.request("DELETE", f"/runs/{run_id}/tags/{quote_path(key)}")

    def require_loggable(self, run_id: str) -> None:
        """Raise unless ``run_id`` is an active run (asked once per run and client)."""
        if run_id in self._loggable:
            return
        run = _codec.run(self._http.get(f"/runs/{run_id}"))
        if run.lifecycle_stage != "active":
            raise Conflict(f"run {run_id!r} is deleted; restore it before logging to it")
        self._loggable.add(run_id)

    def metric_history(self, run_id: str, key: str) -> list[Metric]:
        """Every point of one metric, by step then time."""
        self.writer.flush()
        found = self._http.get(f"/runs/{run_id}/metric-history", key=key)
        return [_codec.metric(m) for m in found]

    # --- artifacts -----------------------------------------------------------------------

    def log_artifact(
        self, run_id: str, local_path: str | os.PathLike[str], artifact_path: str | None = None
    ) -> Artifact:
        """Upload one file under the run's artifacts at ``artifact_path/<file name>``."""
        return self._upload(run_id, *artifact_file(local_path, artifact_path))

    def log_artifacts(
        self, run_id: str, local_dir: str | os.PathLike[str], artifact_path: str | None = None
    ) -> list[Artifact]:
        """Upload every file below ``local_dir``, keeping the folder structure."""
        return [
            self._upload(run_id, name, path)
            for name, path in artifact_files(local_dir, artifact_path)
        ]

    def _upload(self, run_id: str, name: str, source: Path) -> Artifact:
        url = f"/runs/{run_id}/artifacts/files/{quote_path(name)}"
        return _codec.artifact(self._http.upload(url, source))

    def list_artifacts(self, run_id: str, path: str | None = None) -> list[Artifact]:
        """Every artifact file of the run, or those under ``path``."""
        found = self._http.get(f"/runs/{run_id}/artifacts", path=path or None)
        return [_codec.artifact(a) for a in found]

    def download_artifacts(
        self, run_id: str, dst: str | os.PathLike[str], path: str | None = None
    ) -> Path:
        """Copy the run's artifacts (or those under ``path``) into folder ``dst``; returns it."""
        items = self.list_artifacts(run_id, path)
        if path and not items:
            raise NotFound(f"run {run_id} has no artifact at {path!r}")
        target = Path(dst)
        for item in items:
            dest = safe_join(target, item.path, what="artifact path")
            url = f"/runs/{run_id}/artifacts/files/{quote_path(item.path)}"
            self._http.download(url, dest, item.blob_hash)
        return target

    def delete_artifacts(self, run_id: str, path: str | None = None) -> int:
        """Forget the run's artifact files at or under ``path`` (all without one); how many."""
        found = self._http.request("DELETE", f"/runs/{run_id}/artifacts", params={"path": path})
        return int(found["deleted"])

    # --- experiments ---------------------------------------------------------------------

    def create_experiment(self, name: str, *, description: str | None = None) -> Experiment:
        body = {"name": experiment_name(name), "description": description}
        return _codec.experiment(self._http.post("/experiments", body))

    def get_or_create_experiment(self, name: str) -> Experiment:
        found = self.find_experiment(name)
        return found if found is not None else self.create_experiment(name)

    def find_experiment(self, name: str) -> Experiment | None:
        try:
            return self.get_experiment_by_name(name)
        except NotFound:
            return None

    def get_experiment_by_name(self, name: str) -> Experiment:
        return _codec.experiment(self._http.get("/experiments/by-name", name=name))

    def get_experiment(self, experiment_id: str) -> Experiment:
        return _codec.experiment(self._http.get(f"/experiments/{experiment_id}"))

    def list_experiments(self, *, include_deleted: bool = False) -> list[Experiment]:
        found = self._http.get("/experiments", include_deleted=include_deleted)
        return [_codec.experiment(e) for e in found]

    def rename_experiment(self, name: str, new_name: str) -> Experiment:
        current = self.get_experiment_by_name(name)
        data = self._http.request(
            "PATCH", f"/experiments/{current.id}", json_body={"name": new_name}
        )
        return _codec.experiment(data)

    def set_experiment_lifecycle(self, name: str, stage: str) -> Experiment:
        """Soft-delete (``"deleted"``) or restore (``"active"``) an experiment."""
        if stage not in ("active", "deleted"):
            raise InvalidInput(f"lifecycle stage must be 'active' or 'deleted', not {stage!r}")
        current = self.get_experiment_by_name(name)
        if stage == "deleted":
            data = self._http.request("DELETE", f"/experiments/{current.id}")
        else:
            data = self._http.post(f"/experiments/{current.id}/restore")
        return _codec.experiment(data)

    def set_experiment_tags(self, experiment_id: str, tags: Mapping[str, object]) -> None:
        """Set tags on the experiment with id ``experiment_id`` (a key set again is replaced)."""
        self._http.post(f"/experiments/{experiment_id}/tags", {"tags": checked_tags(tags)})

    def delete_experiment_tag(self, experiment_id: str, key: str) -> None:
        """Remove one tag of the experiment; ``NotFound`` if it has none by that key."""
        self._http.request("DELETE", f"/experiments/{experiment_id}/tags/{quote_path(key)}")


def _context() -> dict[str, Any]:
    """Where this process runs: sent with a new run in place of the server's own context."""
    here = RunContext(
        socket.gethostname(), entry_point(), current_code_version(), capture_environment()
    )
    return context_body(here)


def context_body(context: RunContext) -> dict[str, Any]:
    """``context`` as the server's ``RunContextIn`` (the diff stays on the client)."""
    env = context.environment
    return {
        "host": context.host,
        "entry_point": context.entry_point,
        "git_commit": context.code.commit,
        "git_branch": context.code.branch,
        "git_dirty": context.code.dirty,
        "python_version": None if env is None else env.python_version,
        "packages": None if env is None else env.packages,
    }
