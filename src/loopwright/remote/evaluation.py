"""``RemoteEvaluation``: the ``Evaluation`` protocol over the server's ``/api/v1/evaluation``.

``evaluate``, ``agreement``, ``register_scorer`` and ``load_scorer`` come from the same mixin as
the embedded service: the target and the scorers run here; datasets, scorer versions and the
evaluation run are stored by the server.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from ..evaluation._evaluate import EvaluateMixin
from ..evaluation.entities import EvalDataset, EvalRecord, EvaluationRun, ScorerVersion
from ._http import Http

if TYPE_CHECKING:
    from ..tracking.protocol import Tracking

__all__ = ["RemoteEvaluation"]

Json = dict[str, Any]


def _q(text: str) -> str:
    return quote(text, safe="")


def _dataset(d: Json) -> EvalDataset:
    return EvalDataset(
        id=d["id"],
        name=d["name"],
        digest=d["digest"],
        version_id=d["version_id"],
        version=d["version"],
        record_count=int(d["record_count"]),
        tags=d["tags"],
        experiment_ids=tuple(d["experiment_ids"]),
        schema=d["schema"],
        profile=d["profile"],
        created_by=d["created_by"],
        last_updated_by=d["last_updated_by"],
        created_at=int(d["created_at"]),
        updated_at=int(d["updated_at"]),
    )


def _scorer(d: Json) -> ScorerVersion:
    return ScorerVersion(**d)


def _run(d: Json) -> EvaluationRun:
    return EvaluationRun(**d)


class RemoteEvaluation(EvaluateMixin):
    """Evaluation on a Loopwright server (changes need an editor token; approving a judge, an
    approver's)."""

    def __init__(self, http: Http, tracking: Tracking) -> None:
        self._http = http
        self._tracking = tracking

    def _run_tracking(self) -> Tracking:
        return self._tracking

    def close(self) -> None:
        """Nothing to release: the HTTP client belongs to the Remote backend."""

    # --- datasets ---------------------------------------------------------------------------

    def create_dataset(
        self,
        name: str,
        *,
        tags: Mapping[str, str] | None = None,
        experiment_ids: Sequence[str] = (),
    ) -> EvalDataset:
        body = {"name": name, "tags": dict(tags or {}), "experiment_ids": list(experiment_ids)}
        return _dataset(self._http.post("/evaluation/datasets", body))

    def get_dataset(self, ref: str) -> EvalDataset:
        return _dataset(self._http.get(f"/evaluation/datasets/{_q(ref)}"))

    def search_datasets(
        self,
        *,
        experiment_ids: Sequence[str] = (),
        name_like: str | None = None,
        max_results: int = 1000,
        offset: int = 0,
    ) -> list[EvalDataset]:
        found = self._http.get(
            "/evaluation/datasets",
            experiment_id=list(experiment_ids) or None,
            name_like=name_like,
            max_results=max_results,
            offset=offset,
        )
        return [_dataset(d) for d in found]

    def delete_dataset(self, ref: str) -> None:
        self._http.request("DELETE", f"/evaluation/datasets/{_q(ref)}")

    def records(self, ref: str) -> list[EvalRecord]:
        found = self._http.get(f"/evaluation/datasets/{_q(ref)}/records")
        return [EvalRecord(**r) for r in found]

    def upsert_records(self, ref: str, records: Iterable[Any]) -> dict[str, Any]:
        body = {"records": list(records)}
        result: dict[str, Any] = self._http.post(f"/evaluation/datasets/{_q(ref)}/records", body)
        return result

    def delete_records(self, ref: str, record_ids: Sequence[str]) -> int:
        body = {"record_ids": list(record_ids)}
        found = self._http.post(f"/evaluation/datasets/{_q(ref)}/records/delete", body)
        return int(found["deleted"])

    def set_tags(self, ref: str, tags: Mapping[str, str]) -> None:
        path = f"/evaluation/datasets/{_q(ref)}/tags"
        self._http.request("PATCH", path, json_body={"tags": dict(tags)})

    def delete_tag(self, ref: str, key: str) -> None:
        self._http.request("DELETE", f"/evaluation/datasets/{_q(ref)}/tags/{_q(key)}")

    def add_experiments(self, ref: str, experiment_ids: Sequence[str]) -> EvalDataset:
        body = {"add": list(experiment_ids)}
        return _dataset(self._http.post(f"/evaluation/datasets/{_q(ref)}/experiments", body))

    def remove_experiments(self, ref: str, experiment_ids: Sequence[str]) -> EvalDataset:
        body = {"remove": list(experiment_ids)}
        return _dataset(self._http.post(f"/evaluation/datasets/{_q(ref)}/experiments", body))

    # --- scorers ----------------------------------------------------------------------------

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
        body = {
            "name": name,
            "kind": kind,
            "reference": reference,
            "digest": digest,
            "config": dict(config),
            "scope": scope,
        }
        return _scorer(self._http.post("/evaluation/scorers", body))

    def scorer_versions(self, name: str, *, scope: str = "") -> list[ScorerVersion]:
        found = self._http.get(f"/evaluation/scorers/{_q(name)}/versions", scope=scope)
        return [_scorer(s) for s in found]

    def list_scorers(self, *, scope: str = "") -> list[ScorerVersion]:
        return [_scorer(s) for s in self._http.get("/evaluation/scorers", scope=scope)]

    def get_scorer(
        self, name: str, version: int | None = None, *, scope: str = ""
    ) -> ScorerVersion:
        found = self._http.get(f"/evaluation/scorers/{_q(name)}", version=version, scope=scope)
        return _scorer(found)

    def delete_scorer(self, name: str, version: int | None = None, *, scope: str = "") -> int:
        found = self._http.request(
            "DELETE", f"/evaluation/scorers/{_q(name)}", params={"version": version, "scope": scope}
        )
        return int(found["deleted"])

    def request_approval(self, name: str, version: int, *, scope: str = "") -> ScorerVersion:
        path = f"/evaluation/scorers/{_q(name)}/versions/{version}/request-approval"
        return _scorer(self._http.request("POST", path, params={"scope": scope}))

    def approve_scorer(self, name: str, version: int, *, scope: str = "") -> ScorerVersion:
        path = f"/evaluation/scorers/{_q(name)}/versions/{version}/approve"
        return _scorer(self._http.request("POST", path, params={"scope": scope}))

    def record_agreement(
        self,
        scorer_version_id: str,
        dataset_version_id: str,
        label: str,
        metrics: Mapping[str, Any],
    ) -> str:
        body = {
            "scorer_version_id": scorer_version_id,
            "dataset_version_id": dataset_version_id,
            "label": label,
            "metrics": dict(metrics),
        }
        return str(self._http.post("/evaluation/agreements", body)["id"])

    # --- evaluation runs --------------------------------------------------------------------

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
    ) -> EvaluationRun:
        body = {
            "run_id": run_id,
            "name": name,
            "target": target,
            "dataset_version_id": dataset_version_id,
            "scorers": dict(scorers),
            "aggregates": dict(aggregates),
            "rows": rows,
            "failed_rows": failed_rows,
        }
        return _run(self._http.post("/evaluation/runs", body))

    def get_evaluation(self, run_id: str) -> EvaluationRun:
        return _run(self._http.get(f"/evaluation/runs/{_q(run_id)}"))

    def evaluations(
        self, *, dataset_version_id: str | None = None, limit: int = 50
    ) -> list[EvaluationRun]:
        found = self._http.get(
            "/evaluation/runs", dataset_version_id=dataset_version_id, limit=limit
        )
        return [_run(r) for r in found]
