"""``/api/v1/gates``: evaluation gate results.

Recording a result needs an editor (it tags the model version with the verdict); reading needs
a viewer. The gate is evaluated by the caller (``loop/gates.py``); the server checks the spec and
the outcomes and records them in one transaction.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Query
from pydantic import Field

from ...store import limits
from ._deps import PREFIX, Editor, State, Viewer
from ._schemas import Body, Number, Out

if TYPE_CHECKING:
    from ...governance.tokens import Identity
    from ...loop._gate_records import GateService

__all__ = ["MAX_OUTCOMES", "router"]

router = APIRouter(prefix=f"{PREFIX}/gates", tags=["gates"])

MAX_OUTCOMES = 1000  # rules one result may carry
_MAX_VERSION = limits.INT32_MAX  # versions are INTEGER columns


class OutcomeIn(Body):
    rule: str = Field(min_length=1, max_length=400)
    value: Number | None = Field(allow_inf_nan=False)
    passed: bool
    detail: str = Field(default="", max_length=10_000)


class GateResultIn(Body):
    spec: dict[str, Any] = Field(max_length=20)
    model: str = Field(min_length=1, max_length=limits.MODEL_NAME)
    version: int = Field(ge=1, le=_MAX_VERSION)
    dataset_version_id: str = Field(min_length=1, max_length=64)
    outcomes: list[OutcomeIn] = Field(min_length=1, max_length=MAX_OUTCOMES)
    champion_version: int | None = Field(default=None, ge=1, le=_MAX_VERSION)
    pipeline_run_id: str | None = Field(default=None, min_length=1, max_length=64)


class EvaluationGateIn(Body):
    spec: dict[str, Any] = Field(max_length=20)
    subject: str = Field(min_length=1, max_length=600)
    evaluation_run_id: str = Field(min_length=1, max_length=64)
    pipeline_run_id: str | None = Field(default=None, min_length=1, max_length=64)


class OutcomeOut(Out):
    rule: str
    value: float | None
    passed: bool
    detail: str


class GateResultOut(Out):
    id: str
    gate: str
    model: str
    version: int
    dataset_version_id: str
    dataset: str
    champion_version: int | None
    passed: bool
    outcomes: list[OutcomeOut]
    reason: str
    spec: dict[str, Any]
    pipeline_run_id: str | None
    created_by: str
    created_at: int
    subject: str
    evaluation_run_id: str | None
    dataset_digest: str | None
    scorers: dict[str, str]


def _service(state: State, caller: Identity) -> GateService:
    from ...loop._gate_records import GateService

    return GateService(state.store, actor=caller.user)


@router.post("/results", status_code=201)
def record(body: GateResultIn, state: State, caller: Editor) -> GateResultOut:
    """Record a gate's result and tag the model version with its verdict."""
    from ...loop.entities import RuleOutcome
    from ...loop.gates import load_gate_spec

    spec = load_gate_spec(body.spec)
    result = _service(state, caller).record(
        spec,
        model=body.model,
        version=body.version,
        dataset_version_id=body.dataset_version_id,
        outcomes=[
            RuleOutcome(o.rule, None if o.value is None else float(o.value), o.passed, o.detail)
            for o in body.outcomes
        ],
        champion_version=body.champion_version,
        pipeline_run_id=body.pipeline_run_id,
    )
    return GateResultOut.of(result)


@router.post("/evaluations", status_code=201)
def check_evaluation(body: EvaluationGateIn, state: State, caller: Editor) -> GateResultOut:
    """Check an evaluation gate on a prompt or model version with a recorded evaluation run:
    the outcomes are computed here from the stored run, then recorded like any result."""
    from ...loop.gates import load_gate_spec

    result = _service(state, caller).check_evaluation(
        load_gate_spec(body.spec),
        body.subject,
        body.evaluation_run_id,
        pipeline_run_id=body.pipeline_run_id,
    )
    return GateResultOut.of(result)


@router.get("/results")
def results(
    state: State,
    caller: Viewer,
    model: Annotated[str | None, Query(min_length=1, max_length=limits.MODEL_NAME)] = None,
    version: Annotated[int | None, Query(ge=1, le=_MAX_VERSION)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    prompt: Annotated[str | None, Query(min_length=1, max_length=limits.PROMPT_NAME)] = None,
) -> list[GateResultOut]:
    """Results, newest first, optionally of one model or prompt (and version)."""
    found = _service(state, caller).results(
        model=model, version=version, limit=limit, prompt=prompt
    )
    return [GateResultOut.of(r) for r in found]


@router.get("/results/{result_id}")
def get_result(result_id: str, state: State, caller: Viewer) -> GateResultOut:
    return GateResultOut.of(_service(state, caller).get(result_id))
