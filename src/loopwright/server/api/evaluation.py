"""``/api/v1/evaluation``: evaluation datasets and their records, registered scorers and the
approval of judge versions, judge agreement figures and evaluation-run summaries.

Reading needs a viewer; changes an editor; approving a judge version an approver (who neither
registered nor asked for it). Evaluations run where the client is (its target and scorers are
its code); only their records travel here.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Path, Query, Response
from pydantic import Field

from ...store import limits
from ...store.home import acting_as
from ._deps import PREFIX, Approver, Editor, State, Viewer
from ._schemas import Body, Number, Out

if TYPE_CHECKING:
    from ...evaluation.service import EvaluationService
    from ...governance.tokens import Identity
    from .._state import ServerState

__all__ = ["MAX_RECORDS", "router", "service_for"]

router = APIRouter(prefix=f"{PREFIX}/evaluation", tags=["evaluation"])

MAX_RECORDS = 10_000  # records one upsert may carry (the body cap bounds their size)
_NAME = limits.DATASET_NAME
_MAX_VERSION = limits.INT32_MAX  # versions are INTEGER columns
# No NUL in query strings: PostgreSQL refuses it in text (a 500 the fuzzing test found).
_NO_NUL = r"^[^\x00]*$"
# A scorer version in a path: a number past 64 bits is a 422, never the database's overflow.
_VersionPath = Annotated[int, Path(ge=1, le=_MAX_VERSION)]
_ScorerName = Annotated[str, Field(min_length=1, max_length=256)]


@contextmanager
def service_for(state: ServerState, caller: Identity) -> Iterator[EvaluationService]:
    """The evaluation service of the server's store, acting for ``caller`` (MLflow's routes
    use it too)."""
    from ...evaluation.service import EvaluationService

    service = EvaluationService(state.store, tracking=state.tracking)
    try:
        with acting_as(caller.user):
            yield service
    finally:
        service.close()


# --- bodies ------------------------------------------------------------------------------------


class DatasetIn(Body):
    name: str = Field(min_length=1, max_length=_NAME)
    tags: dict[str, str] = Field(default_factory=dict, max_length=100)
    experiment_ids: list[str] = Field(default_factory=list, max_length=100)


class RecordsIn(Body):
    # Records are checked by the service (records.parse_records), which names the bad field.
    records: list[Any] = Field(max_length=MAX_RECORDS)


class RecordIdsIn(Body):
    record_ids: list[str] = Field(max_length=MAX_RECORDS)


class TagsIn(Body):
    tags: dict[str, str] = Field(max_length=100)


class ExperimentsIn(Body):
    add: list[str] = Field(default_factory=list, max_length=100)
    remove: list[str] = Field(default_factory=list, max_length=100)


class ScorerIn(Body):
    name: _ScorerName
    kind: str = Field(min_length=1, max_length=20)
    reference: str = Field(min_length=1, max_length=500)
    digest: str = Field(min_length=1, max_length=64)
    config: dict[str, Any] = Field(default_factory=dict)
    scope: str = Field(default="", max_length=32)


class AgreementIn(Body):
    scorer_version_id: str = Field(min_length=1, max_length=64)
    dataset_version_id: str = Field(min_length=1, max_length=64)
    label: str = Field(min_length=1, max_length=250)
    metrics: dict[str, Number | str | None] = Field(max_length=50)


class EvaluationRunIn(Body):
    run_id: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=256)
    target: str = Field(min_length=1, max_length=500)
    dataset_version_id: str | None = Field(default=None, max_length=64)
    scorers: dict[str, str] = Field(max_length=200)
    aggregates: dict[str, float] = Field(max_length=2000)
    rows: int = Field(ge=0, le=2**31 - 1)
    failed_rows: int = Field(ge=0, le=2**31 - 1)


# --- replies -----------------------------------------------------------------------------------


class EvalDatasetOut(Out):
    id: str
    name: str
    digest: str | None
    version_id: str | None
    version: int | None
    record_count: int
    tags: dict[str, str]
    experiment_ids: list[str]
    schema_: dict[str, Any] | None = Field(alias="schema", serialization_alias="schema")
    profile: dict[str, Any] | None
    created_by: str | None
    last_updated_by: str | None
    created_at: int
    updated_at: int


class RecordOut(Out):
    record_id: str
    inputs: dict[str, Any]
    expectations: dict[str, Any]
    outputs: Any
    tags: dict[str, str]
    source: dict[str, Any] | None


class ScorerVersionOut(Out):
    id: str
    scope: str
    name: str
    version: int
    kind: str
    reference: str
    digest: str
    config: dict[str, Any]
    created_by: str
    created_at: int
    approval_requested_by: str | None
    approval_requested_at: int | None
    approved_by: str | None
    approved_at: int | None
    agreement: dict[str, Any] | None


class EvaluationRunOut(Out):
    run_id: str
    name: str
    target: str
    dataset_version_id: str | None
    dataset_digest: str | None
    scorers: dict[str, str]
    aggregates: dict[str, float]
    rows: int
    failed_rows: int
    created_by: str
    created_at: int


def _dataset(entity: Any) -> dict[str, Any]:
    return EvalDatasetOut.model_validate(entity, from_attributes=True).model_dump(by_alias=True)


# --- datasets ----------------------------------------------------------------------------------


@router.post("/datasets", status_code=201)
def create_dataset(body: DatasetIn, state: State, caller: Editor) -> dict[str, Any]:
    with service_for(state, caller) as service:
        found = service.create_dataset(
            body.name, tags=body.tags, experiment_ids=body.experiment_ids
        )
    return _dataset(found)


@router.get("/datasets")
def search_datasets(
    state: State,
    caller: Viewer,
    experiment_id: Annotated[list[str] | None, Query(max_length=100)] = None,
    name_like: Annotated[str | None, Query(max_length=_NAME, pattern=_NO_NUL)] = None,
    max_results: Annotated[int, Query(ge=1, le=1000)] = 1000,
    offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
) -> list[dict[str, Any]]:
    with service_for(state, caller) as service:
        found = service.search_datasets(
            experiment_ids=experiment_id or (),
            name_like=name_like,
            max_results=max_results,
            offset=offset,
        )
    return [_dataset(d) for d in found]


@router.get("/datasets/{ref}")
def get_dataset(ref: str, state: State, caller: Viewer) -> dict[str, Any]:
    with service_for(state, caller) as service:
        return _dataset(service.get_dataset(ref))


@router.delete("/datasets/{ref}", status_code=204)
def delete_dataset(ref: str, state: State, caller: Editor) -> Response:
    with service_for(state, caller) as service:
        service.delete_dataset(ref)
    return Response(status_code=204)


@router.get("/datasets/{ref}/records")
def records(ref: str, state: State, caller: Viewer) -> list[RecordOut]:
    with service_for(state, caller) as service:
        return [RecordOut.of(r) for r in service.records(ref)]


@router.post("/datasets/{ref}/records")
def upsert_records(ref: str, body: RecordsIn, state: State, caller: Editor) -> dict[str, Any]:
    with service_for(state, caller) as service:
        return service.upsert_records(ref, body.records)


@router.post("/datasets/{ref}/records/delete")
def delete_records(ref: str, body: RecordIdsIn, state: State, caller: Editor) -> dict[str, int]:
    with service_for(state, caller) as service:
        return {"deleted": service.delete_records(ref, body.record_ids)}


@router.patch("/datasets/{ref}/tags", status_code=204)
def set_tags(ref: str, body: TagsIn, state: State, caller: Editor) -> Response:
    with service_for(state, caller) as service:
        service.set_tags(ref, body.tags)
    return Response(status_code=204)


@router.delete("/datasets/{ref}/tags/{key}", status_code=204)
def delete_tag(ref: str, key: str, state: State, caller: Editor) -> Response:
    with service_for(state, caller) as service:
        service.delete_tag(ref, key)
    return Response(status_code=204)


@router.post("/datasets/{ref}/experiments")
def link_experiments(ref: str, body: ExperimentsIn, state: State, caller: Editor) -> dict[str, Any]:
    with service_for(state, caller) as service:
        if body.add:
            service.add_experiments(ref, body.add)
        if body.remove:
            service.remove_experiments(ref, body.remove)
        return _dataset(service.get_dataset(ref))


# --- scorers -----------------------------------------------------------------------------------


@router.post("/scorers", status_code=201)
def register_scorer(body: ScorerIn, state: State, caller: Editor) -> ScorerVersionOut:
    with service_for(state, caller) as service:
        found = service.register_spec(
            body.name,
            kind=body.kind,
            reference=body.reference,
            digest=body.digest,
            config=body.config,
            scope=body.scope,
        )
    return ScorerVersionOut.of(found)


Scope = Annotated[str, Query(max_length=32, pattern=_NO_NUL)]


@router.get("/scorers")
def list_scorers(state: State, caller: Viewer, scope: Scope = "") -> list[ScorerVersionOut]:
    with service_for(state, caller) as service:
        return [ScorerVersionOut.of(s) for s in service.list_scorers(scope=scope)]


@router.get("/scorers/{name}/versions")
def scorer_versions(
    name: str, state: State, caller: Viewer, scope: Scope = ""
) -> list[ScorerVersionOut]:
    with service_for(state, caller) as service:
        return [ScorerVersionOut.of(s) for s in service.scorer_versions(name, scope=scope)]


@router.get("/scorers/{name}")
def get_scorer(
    name: str,
    state: State,
    caller: Viewer,
    version: Annotated[int | None, Query(ge=1, le=_MAX_VERSION)] = None,
    scope: Scope = "",
) -> ScorerVersionOut:
    with service_for(state, caller) as service:
        return ScorerVersionOut.of(service.get_scorer(name, version, scope=scope))


@router.delete("/scorers/{name}")
def delete_scorer(
    name: str,
    state: State,
    caller: Editor,
    version: Annotated[int | None, Query(ge=1, le=_MAX_VERSION)] = None,
    scope: Scope = "",
) -> dict[str, int]:
    with service_for(state, caller) as service:
        return {"deleted": service.delete_scorer(name, version, scope=scope)}


@router.post("/scorers/{name}/versions/{version}/request-approval")
def request_approval(
    name: str, version: _VersionPath, state: State, caller: Editor, scope: Scope = ""
) -> ScorerVersionOut:
    with service_for(state, caller) as service:
        return ScorerVersionOut.of(service.request_approval(name, version, scope=scope))


@router.post("/scorers/{name}/versions/{version}/approve")
def approve_scorer(
    name: str, version: _VersionPath, state: State, caller: Approver, scope: Scope = ""
) -> ScorerVersionOut:
    with service_for(state, caller) as service:
        return ScorerVersionOut.of(service.approve_scorer(name, version, scope=scope))


@router.post("/agreements", status_code=201)
def record_agreement(body: AgreementIn, state: State, caller: Editor) -> dict[str, str]:
    with service_for(state, caller) as service:
        found = service.record_agreement(
            body.scorer_version_id, body.dataset_version_id, body.label, body.metrics
        )
    return {"id": found}


# --- evaluation runs ---------------------------------------------------------------------------


@router.post("/runs", status_code=201)
def record_evaluation(body: EvaluationRunIn, state: State, caller: Editor) -> EvaluationRunOut:
    """Gates read this summary, so its figures are the server's, computed from the rows the
    run logged; the body's ``aggregates``, ``rows`` and ``failed_rows`` are not trusted."""
    from ...evaluation._recorded_results import summary_from_results

    with service_for(state, caller) as service:
        summary = summary_from_results(service, body.run_id, body.dataset_version_id, body.scorers)
        found = service.record_evaluation(
            body.run_id,
            name=body.name,
            target=body.target,
            dataset_version_id=body.dataset_version_id,
            scorers=body.scorers,
            aggregates=summary.aggregates,
            rows=summary.rows,
            failed_rows=summary.failed_rows,
        )
    return EvaluationRunOut.of(found)


@router.get("/runs")
def evaluations(
    state: State,
    caller: Viewer,
    dataset_version_id: Annotated[str | None, Query(max_length=64, pattern=_NO_NUL)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> list[EvaluationRunOut]:
    with service_for(state, caller) as service:
        found = service.evaluations(dataset_version_id=dataset_version_id, limit=limit)
    return [EvaluationRunOut.of(r) for r in found]


@router.get("/runs/{run_id}")
def get_evaluation(run_id: str, state: State, caller: Viewer) -> EvaluationRunOut:
    with service_for(state, caller) as service:
        return EvaluationRunOut.of(service.get_evaluation(run_id))
