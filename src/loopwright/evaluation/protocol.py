"""The evaluation capability as a protocol: what both backends of ``client.evaluation`` provide.

:class:`~loopwright.evaluation.service.EvaluationService` (embedded) and
:class:`~loopwright.remote.evaluation.RemoteEvaluation` (over a server) implement it; both get
``evaluate``, ``agreement``, ``register_scorer`` and ``load_scorer`` from one mixin, as these run
where they are called.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

from .entities import (
    Agreement,
    EvalDataset,
    EvalRecord,
    EvaluationResult,
    EvaluationRun,
    ScorerVersion,
)
from .judges import Judge
from .scorers import Scorer

__all__ = ["Evaluation"]


class Evaluation(Protocol):
    """Evaluation datasets, registered scorers and judges, evaluation runs."""

    def close(self) -> None: ...

    def create_dataset(
        self,
        name: str,
        *,
        tags: Mapping[str, str] | None = None,
        experiment_ids: Sequence[str] = (),
    ) -> EvalDataset:
        """A new, empty evaluation dataset (its records become versions of dataset ``name``)."""
        ...

    def get_dataset(self, ref: str) -> EvalDataset:
        """An evaluation dataset by name or id."""
        ...

    def search_datasets(
        self,
        *,
        experiment_ids: Sequence[str] = (),
        name_like: str | None = None,
        max_results: int = 1000,
        offset: int = 0,
    ) -> list[EvalDataset]: ...

    def delete_dataset(self, ref: str) -> None: ...

    def records(self, ref: str) -> list[EvalRecord]:
        """The current records of an evaluation dataset."""
        ...

    def upsert_records(self, ref: str, records: Iterable[Any]) -> dict[str, Any]:
        """Insert or merge records (by inputs); a change is a new dataset version."""
        ...

    def delete_records(self, ref: str, record_ids: Sequence[str]) -> int: ...

    def set_tags(self, ref: str, tags: Mapping[str, str]) -> None: ...

    def delete_tag(self, ref: str, key: str) -> None: ...

    def add_experiments(self, ref: str, experiment_ids: Sequence[str]) -> EvalDataset: ...

    def remove_experiments(self, ref: str, experiment_ids: Sequence[str]) -> EvalDataset: ...

    def register_spec(
        self,
        name: str,
        *,
        kind: str,
        reference: str,
        digest: str,
        config: Mapping[str, Any],
        scope: str = "",
    ) -> ScorerVersion:
        """Store a scorer version as data (same digest as the newest: that version)."""
        ...

    def register_scorer(
        self, scorer: Scorer, *, name: str | None = None, scope: str = ""
    ) -> ScorerVersion:
        """Register a code scorer, a built-in or a judge as a new immutable version."""
        ...

    def load_scorer(self, ref: str | ScorerVersion, *, scope: str = "") -> Scorer: ...

    def scorer_versions(self, name: str, *, scope: str = "") -> list[ScorerVersion]: ...

    def list_scorers(self, *, scope: str = "") -> list[ScorerVersion]: ...

    def get_scorer(
        self, name: str, version: int | None = None, *, scope: str = ""
    ) -> ScorerVersion: ...

    def delete_scorer(self, name: str, version: int | None = None, *, scope: str = "") -> int: ...

    def request_approval(self, name: str, version: int, *, scope: str = "") -> ScorerVersion: ...

    def approve_scorer(self, name: str, version: int, *, scope: str = "") -> ScorerVersion: ...

    def record_agreement(
        self,
        scorer_version_id: str,
        dataset_version_id: str,
        label: str,
        metrics: Mapping[str, Any],
    ) -> str: ...

    def record_evaluation(
        self,
        run_id: str,
        *,
        name: str,
        target: str,
        dataset_version_id: str | None,
        scorers: Mapping[str, str],
        aggregates: Mapping[str, float],
        rows: int,
        failed_rows: int,
    ) -> EvaluationRun: ...

    def get_evaluation(self, run_id: str) -> EvaluationRun: ...

    def evaluations(
        self, *, dataset_version_id: str | None = None, limit: int = 50
    ) -> list[EvaluationRun]: ...

    def evaluate(
        self,
        target: Any,
        dataset: str | EvalDataset | Sequence[Mapping[str, Any]],
        scorers: Sequence[Scorer | str],
        *,
        name: str | None = None,
        experiment: str = "evaluations",
        max_workers: int = 4,
        require_approved: bool = False,
    ) -> EvaluationResult:
        """Score ``target`` over the dataset's rows and record an evaluation run."""
        ...

    def agreement(
        self,
        judge: Judge | str,
        dataset: str | EvalDataset,
        *,
        label: str | None = None,
        max_workers: int = 4,
    ) -> Agreement:
        """A judge's agreement with the human labels of a dataset, stored with its version."""
        ...
