"""Tracking's domain objects: experiments, runs and their logged values."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

__all__ = ["STALE_AFTER_MS", "Artifact", "Experiment", "Metric", "Run", "RunList", "RunStatus"]

# A live run's writer beats every 15 s; missing eight beats means its process is gone.
STALE_AFTER_MS = 120_000


class RunStatus(StrEnum):
    """A run's status; the names are MLflow's so its clients understand them.

    ``STALE`` is never stored: it is how a ``RUNNING`` run reads once its heartbeat stopped for
    :data:`STALE_AFTER_MS` (its process likely died). ``Run.status``, run search
    (``attributes.status = 'STALE'``), the native API and the CLI all say STALE; MLflow's API,
    which has no such status, keeps saying RUNNING.
    """

    RUNNING = "RUNNING"
    SCHEDULED = "SCHEDULED"
    FINISHED = "FINISHED"
    FAILED = "FAILED"
    KILLED = "KILLED"
    STALE = "STALE"

    @property
    def is_terminal(self) -> bool:
        return self in (RunStatus.FINISHED, RunStatus.FAILED, RunStatus.KILLED)


@dataclass(frozen=True)
class Experiment:
    id: str
    name: str
    description: str | None
    lifecycle_stage: str
    created_at: int
    updated_at: int
    tags: Mapping[str, str] = field(default_factory=dict)
    # A local folder the server allows (tracking/artifact_locations.py); None: served by it.
    artifact_location: str | None = None


@dataclass(frozen=True)
class Metric:
    """One logged point of a metric series."""

    key: str
    value: float
    step: int
    timestamp: int


@dataclass(frozen=True)
class Artifact:
    """One file among a run's artifacts."""

    path: str
    size: int
    blob_hash: str


@dataclass(frozen=True)
class Run:
    """A training run with what it logged (latest value per metric key)."""

    id: str
    experiment_id: str
    name: str
    status: RunStatus
    lifecycle_stage: str
    start_time: int
    end_time: int | None
    user: str | None
    host: str | None
    entry_point: str | None
    parent_run_id: str | None
    error: str | None
    heartbeat_at: int | None = None
    git_commit: str | None = None
    git_branch: str | None = None
    git_dirty: bool | None = None
    environment_id: str | None = None
    params: Mapping[str, str] = field(default_factory=dict)
    metrics: Mapping[str, Metric] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # The one place STALE is decided (search states the same rule in SQL).
        if self.status is RunStatus.RUNNING:
            last = self.start_time if self.heartbeat_at is None else self.heartbeat_at
            if time.time() * 1000 - last > STALE_AFTER_MS:
                object.__setattr__(self, "status", RunStatus.STALE)

    @property
    def is_stale(self) -> bool:
        """RUNNING, but its process has sent no heartbeat for ``STALE_AFTER_MS``: it likely died."""
        return self.status is RunStatus.STALE

    @property
    def display_status(self) -> str:
        """The status as shown: the same as ``status`` (kept for existing callers)."""
        return self.status.value

    @property
    def duration_ms(self) -> int | None:
        return None if self.end_time is None else self.end_time - self.start_time


class RunList(list[Run]):
    """Runs from a search, in order, with the token of the next page (None on the last page)."""

    def __init__(self, runs: list[Run], next_page_token: str | None = None) -> None:
        super().__init__(runs)
        self.next_page_token = next_page_token

    def to_pandas(self) -> Any:
        """One row per run, with MLflow's column names (``params.lr``, ``metrics.auc`` …)."""
        import pandas as pd

        records = []
        for run in self:
            record: dict[str, Any] = {
                "run_id": run.id,
                "experiment_id": run.experiment_id,
                "run_name": run.name,
                "status": run.display_status,
                "start_time": pd.Timestamp(run.start_time, unit="ms", tz="UTC"),
                "end_time": (
                    None
                    if run.end_time is None
                    else pd.Timestamp(run.end_time, unit="ms", tz="UTC")
                ),
            }
            record.update({f"metrics.{k}": m.value for k, m in run.metrics.items()})
            record.update({f"params.{k}": v for k, v in run.params.items()})
            record.update({f"tags.{k}": v for k, v in run.tags.items()})
            records.append(record)
        return pd.DataFrame.from_records(records)
