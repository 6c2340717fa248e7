"""Evaluation's domain objects: records, datasets, feedback, scorer versions, results."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Agreement",
    "EvalDataset",
    "EvalRecord",
    "EvaluationResult",
    "EvaluationRun",
    "Feedback",
    "RowResult",
    "ScorerVersion",
]


@dataclass(frozen=True)
class Feedback:
    """What a scorer says about one row: a value (number, bool or label) and why.

    ``error`` is set instead of ``value`` when the scorer raised or returned something unusable;
    the row is recorded with it and the evaluation goes on.
    """

    value: float | bool | str | None
    rationale: str = ""
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class EvalRecord:
    """One row of an evaluation dataset. Its id derives from its inputs: the same inputs are the
    same record (an upsert merges expectations and tags into it)."""

    record_id: str
    inputs: Mapping[str, Any]
    expectations: Mapping[str, Any] = field(default_factory=dict)
    outputs: Any = None
    tags: Mapping[str, str] = field(default_factory=dict)
    source: Mapping[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"record_id": self.record_id, "inputs": dict(self.inputs)}
        if self.expectations:
            out["expectations"] = dict(self.expectations)
        if self.outputs is not None:
            out["outputs"] = self.outputs
        if self.tags:
            out["tags"] = dict(self.tags)
        if self.source is not None:
            out["source"] = dict(self.source)
        return out


@dataclass(frozen=True)
class EvalDataset:
    """An evaluation dataset: a name over dataset versions, the current one's digest, links."""

    id: str
    name: str
    digest: str | None  # content hash of the current dataset version (None: no records yet)
    version_id: str | None
    version: int | None  # the dataset version's number (``name@vN``)
    record_count: int
    tags: Mapping[str, str]
    experiment_ids: tuple[str, ...]
    schema: Mapping[str, Any] | None
    profile: Mapping[str, Any] | None
    created_by: str | None
    last_updated_by: str | None
    created_at: int
    updated_at: int

    @property
    def ref(self) -> str | None:
        """``name@vN`` of the current version, the way ``client.datasets.get`` names it."""
        return None if self.version is None else f"{self.name}@v{self.version}"


@dataclass(frozen=True)
class ScorerVersion:
    """An immutable registered scorer version.

    ``kind`` is ``code`` (``reference`` is ``module:function``; ``digest`` hashes its source),
    ``builtin`` (``reference`` names it; ``config`` holds its arguments), ``judge`` (``config`` is
    the judge: rubric, model, endpoint, output) or ``mlflow`` (MLflow's serialized scorer, kept
    as sent). A judge version may feed a gate only once approved.
    """

    id: str
    scope: str  # an experiment id, or "" for the whole installation
    name: str
    version: int
    kind: str
    reference: str
    digest: str
    config: Mapping[str, Any]
    created_by: str
    created_at: int
    approval_requested_by: str | None = None
    approval_requested_at: int | None = None
    approved_by: str | None = None
    approved_at: int | None = None
    agreement: Mapping[str, Any] | None = None  # the latest measured, if any

    @property
    def approved(self) -> bool:
        return self.approved_by is not None

    @property
    def ref(self) -> str:
        return f"{self.name}/{self.version}"


@dataclass(frozen=True)
class RowResult:
    """One evaluated row: its record, the target's outputs and each scorer's feedback."""

    record_id: str
    inputs: Mapping[str, Any]
    outputs: Any
    expectations: Mapping[str, Any]
    scores: Mapping[str, Feedback]
    latency_ms: float | None = None
    error: str | None = None  # the target raised: no outputs, scorers skipped

    def to_dict(self) -> dict[str, Any]:
        return {
            "record_id": self.record_id,
            "inputs": dict(self.inputs),
            "outputs": self.outputs,
            "expectations": dict(self.expectations),
            "latency_ms": self.latency_ms,
            "error": self.error,
            "scores": {
                name: {"value": f.value, "rationale": f.rationale, "error": f.error}
                for name, f in self.scores.items()
            },
        }


@dataclass(frozen=True)
class EvaluationResult:
    """An evaluation run: its tracked run, the per-row table and the aggregate metrics."""

    run_id: str
    rows: tuple[RowResult, ...]
    aggregates: Mapping[str, float]
    dataset_digest: str | None
    dataset_version_id: str | None = None
    scorers: Mapping[str, str] = field(default_factory=dict)  # name → "name/3@digest" or kind

    @property
    def failed_rows(self) -> int:
        return sum(1 for r in self.rows if r.error or any(not f.ok for f in r.scores.values()))


@dataclass(frozen=True)
class Agreement:
    """How well a judge agrees with human labels on one dataset version.

    Categorical labels give ``accuracy`` and ``cohen_kappa``; numeric ones ``spearman`` and
    ``mae``. ``n`` counts the rows both the judge and a human labelled.
    """

    judge: str
    dataset_digest: str | None
    label: str
    n: int
    metrics: Mapping[str, float | None]
    skipped: int = 0  # rows without a human label or where the judge failed


@dataclass(frozen=True)
class EvaluationRun:
    """The stored summary of an evaluation run (what a gate reads)."""

    run_id: str
    name: str
    target: str
    dataset_version_id: str | None
    dataset_digest: str | None
    scorers: Mapping[str, str]
    aggregates: Mapping[str, float]
    rows: int
    failed_rows: int
    created_by: str
    created_at: int
