"""What pipelines record: a pipeline run, its step runs and the artifacts they pass.

Frozen dataclasses, the same on both backends. Times are UTC milliseconds (``*_at``).

A *step run* is one call of a step inside a pipeline run. Its ``invocation`` names the call
within the run, stable across re-runs of the same code: the step's name, ``#2`` for its second
call, ``[3]`` for the fourth item of a ``map`` (``train[3]``, ``score#2[0]``). Resume matches
step runs of the failed run to the new run's calls by invocation and cache key.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "ArtifactRef",
    "PipelineRun",
    "PipelineStatus",
    "StepRun",
    "StepStatus",
]

PipelineStatus = Literal["running", "completed", "failed", "killed"]
# ``cached``: served from an earlier step run's outputs (``cached_from``) without running;
# ``resumed``: served from the resumed run's step run (``cached_from``) by ``resume``.
StepStatus = Literal["running", "completed", "failed", "cached", "resumed"]

# Materializer names, by what they store: ``json`` small JSON values (dict, list, str, number,
# bool, None), ``arrow`` a pyarrow Table as Parquet, ``pandas`` a DataFrame as Parquet (index
# kept), ``numpy`` an ndarray as .npy without pickle, ``model`` a Loopwright model package (a
# folder), ``bytes`` raw bytes, ``path`` a file or folder the step returned, ``pickle`` only for
# steps that opted in (``@step(pickle=True)``) and are loaded with ``trusted=True``.
Materializer = Literal["json", "arrow", "pandas", "numpy", "model", "bytes", "path", "pickle"]


@dataclass(frozen=True)
class ArtifactRef:
    """One value a step took or returned, as stored.

    ``digest`` is the BLAKE3 hex digest of the materialized content (for a folder, of its
    sorted ``path NUL digest`` lines), so equal values have equal digests whichever run made
    them. ``run_id`` and ``path`` say where it is: an artifact of that tracked run (the step's
    nested run), readable on both backends. ``name`` is ``output`` for a single return value,
    ``output.0``... for a tuple's items, or the parameter name for an input. Literal inputs
    (parameters given by value) have ``run_id`` None and are hashed, not stored.
    """

    name: str
    digest: str
    materializer: str
    run_id: str | None = None
    path: str | None = None
    size: int = 0
    type_name: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "digest": self.digest,
            "materializer": self.materializer,
            "run_id": self.run_id,
            "path": self.path,
            "size": self.size,
            "type_name": self.type_name,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ArtifactRef:
        return cls(
            name=str(data["name"]),
            digest=str(data["digest"]),
            materializer=str(data["materializer"]),
            run_id=data.get("run_id"),
            path=data.get("path"),
            size=int(data.get("size") or 0),
            type_name=str(data.get("type_name") or ""),
        )


@dataclass(frozen=True)
class StepRun:
    """One call of a step in a pipeline run.

    ``cache_key`` is the BLAKE3 digest of the step's code fingerprint, its parameters and its
    inputs' digests; ``cache_reason`` says in words why it ran or was served (``"cache hit:
    step run <id> of pipeline run <id>"``, ``"code changed: train (train.py) since <id>"``,
    ``"parameter changed: n_estimators 100 -> 200"``, ``"input changed: data"``, ``"no
    earlier run"``, ``"cache off"``). ``run_id`` is the step's nested tracked run (None for a
    cache hit: ``cached_from`` names the step run whose outputs were used). ``attempts`` counts
    tries (retries + 1 when all were used). ``key_parts`` holds what the key was made of
    (``{"code": {qualname: digest}, "params": {name: digest}, "inputs": {name: digest}}``) so the
    next run can say what changed.
    """

    id: str
    pipeline_run_id: str
    invocation: str
    step: str
    status: StepStatus
    cache_key: str
    cache_reason: str
    run_id: str | None
    cached_from: str | None
    attempts: int
    inputs: tuple[ArtifactRef, ...]
    outputs: tuple[ArtifactRef, ...]
    error: str | None
    started_at: int
    finished_at: int | None
    key_parts: Mapping[str, Any] = field(default_factory=dict)

    @property
    def duration_ms(self) -> int | None:
        return None if self.finished_at is None else self.finished_at - self.started_at


@dataclass(frozen=True)
class PipelineRun:
    """One run of a pipeline: a tracked run (``run_id``) whose steps are nested runs.

    ``pipeline`` is ``module:qualname`` of the pipeline function (what ``loopwright pipelines
    run`` takes); ``params`` the parameters it was called with (JSON values); ``resumed_from``
    the failed or killed run this one resumed; ``result`` the stored return value, once
    completed. A ``running`` run whose process died is shown ``killed`` once its heartbeat is
    older than ``HEARTBEAT_STALE_MS`` (or its pid is gone on the same host).
    """

    id: str
    pipeline: str
    name: str
    status: PipelineStatus
    run_id: str | None
    params: Mapping[str, Any]
    executor: str
    resumed_from: str | None
    code_digest: str
    result: ArtifactRef | None
    error: str | None
    host: str
    pid: int
    created_by: str
    started_at: int
    heartbeat_at: int
    finished_at: int | None
    steps: tuple[StepRun, ...] = field(default=())

    @property
    def duration_ms(self) -> int | None:
        return None if self.finished_at is None else self.finished_at - self.started_at


# A running pipeline run writes a heartbeat at least this often; one older than the stale limit
# (on another host, or when the pid cannot be checked) is taken for killed.
HEARTBEAT_INTERVAL_MS = 10_000
HEARTBEAT_STALE_MS = 60_000
