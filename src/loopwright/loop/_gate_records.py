"""Gate results on the metadata store: the embedded :class:`~loopwright.loop.protocol.Gates`.

Recording a result stores its row, tags the model version ``loopwright.gate.<gate>`` =
``passed`` or ``failed`` and appends a ``gate.check`` audit event in one transaction, so a
version never shows a verdict whose result is missing, or the other way round. Writes lock the
registered model's row first, as the registry's own writes do.
"""

from __future__ import annotations

import builtins
import json
import math
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from .._ids import new_id
from ..errors import InvalidInput, NotFound
from ..registry._queries import model_row as model_row_of
from ..registry._queries import version_row as version_row_of
from ..store import schema as t
from ..store.named import Audited
from ._evaluation_gate_records import EvaluationGatesMixin
from ._gate_rows import TAG_PREFIX, check_pipeline_run, outcome_dict, reason_of, tag_verdict
from .entities import GateResult, GateSpec, RuleOutcome
from .gates import check_gate_name

__all__ = ["TAG_PREFIX", "GateService", "reason_of"]

MAX_RESULTS = 1000
_g, _v, _m = t.gate_results.c, t.model_versions.c, t.registered_models.c
_pv, _p = t.prompt_versions.c, t.prompts.c


class GateService(EvaluationGatesMixin, Audited):
    """Gate results on the stores (evaluation gates: :meth:`check_evaluation`).

    Args:
        store: the metadata and blob stores.
        actor: who results are recorded as (default: the store's user).
        clock: the time in UTC milliseconds (tests pass a fake one).
    """

    _subject_type = "gate_result"

    def record(
        self,
        spec: GateSpec,
        *,
        model: str,
        version: int,
        dataset_version_id: str,
        outcomes: Sequence[RuleOutcome],
        champion_version: int | None = None,
        pipeline_run_id: str | None = None,
    ) -> GateResult:
        """Store a result and tag the model version with its verdict; audited."""
        if not isinstance(spec, GateSpec):
            raise InvalidInput(
                f"spec must be a GateSpec (loopwright.loop.gates.load_gate_spec), not "
                f"{type(spec).__name__}"
            )
        if spec.kind == "evaluation":
            raise InvalidInput(
                f"gate {spec.name!r} is an evaluation gate; its result is computed from the "
                "stored evaluation run: check_evaluation(spec, subject, evaluation_run_id)"
            )
        gate = check_gate_name(spec.name)
        checked = tuple(_check_outcome(o) for o in outcomes)
        if not checked:
            raise InvalidInput(f"a result of gate {gate!r} needs at least one rule outcome")
        if isinstance(version, bool) or not isinstance(version, int):
            raise InvalidInput(f"version {version!r} must be a version number")
        passed = all(o.passed for o in checked)
        reason = reason_of(checked)
        actor, result_id = self._actor_name(), new_id()
        with self.db.write() as conn:
            # The registry's own lookups, the model row locked first as its writes lock it.
            version_row = version_row_of(
                conn, model_row_of(conn, _model_name(model), lock=True), version
            )
            dataset_ref = _dataset_ref(conn, dataset_version_id)
            check_pipeline_run(conn, pipeline_run_id)
            row = {
                "id": result_id,
                "gate": gate,
                "model_version_id": version_row.id,
                "dataset_version_id": dataset_version_id,
                "dataset": dataset_ref,
                "champion_version": champion_version,
                "passed": passed,
                "outcomes_json": json.dumps([outcome_dict(o) for o in checked]),
                "reason": reason,
                "spec_json": json.dumps(spec.to_dict(), sort_keys=True),
                "pipeline_run_id": pipeline_run_id,
                "created_by": actor,
                "created_at": self._clock(),
            }
            conn.execute(t.gate_results.insert(), row)
            tag_verdict(conn, t.model_version_tags, version_row.id, gate, passed)
            self._audit(
                conn,
                "gate.check",
                result_id,
                after={
                    "gate": gate,
                    "model": model,
                    "version": version,
                    "dataset": dataset_ref,
                    "dataset_version_id": dataset_version_id,
                    "passed": passed,
                    "reason": reason,
                },
            )
        return self.get(result_id)

    def get(self, result_id: str) -> GateResult:
        """One result."""
        if not isinstance(result_id, str) or not result_id or len(result_id) > 64:
            raise InvalidInput(f"gate result id {str(result_id)[:80]!r} is malformed")
        with self.db.read() as conn:
            row = conn.execute(_query().where(_g.id == result_id)).first()
        if row is None:
            raise NotFound(
                f"gate result {result_id!r} does not exist; results(model=...) lists a model's"
            )
        return _result(row)

    def results(
        self,
        *,
        model: str | None = None,
        version: int | None = None,
        limit: int = 50,
        prompt: str | None = None,
    ) -> builtins.list[GateResult]:
        """Results, newest first, optionally of one model or prompt (and version)."""
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_RESULTS:
            raise InvalidInput(f"limit {limit!r} must be 1-{MAX_RESULTS}")
        if model is not None and prompt is not None:
            raise InvalidInput("results() takes model=NAME or prompt=NAME, not both")
        if version is not None and model is None and prompt is None:
            raise InvalidInput("results(version=N) needs model=NAME too (or prompt=NAME)")
        if version is not None and (isinstance(version, bool) or not isinstance(version, int)):
            raise InvalidInput(f"version {version!r} must be a version number")
        query = _query().order_by(_g.created_at.desc(), _g.id.desc()).limit(limit)
        with self.db.read() as conn:
            if model is not None:
                query = query.where(_m.id == model_row_of(conn, _model_name(model)).id)
                if version is not None:
                    query = query.where(_v.version == version)
            if prompt is not None:
                from ..prompts._rows import prompt_row

                query = query.where(_p.id == prompt_row(conn, _model_name(prompt)).id)
                if version is not None:
                    query = query.where(_pv.version == version)
            rows = conn.execute(query).all()
        return [_result(r) for r in rows]


def _query() -> sa.Select[Any]:
    """Results with their subject's name and version number: a model's or a prompt's."""
    return sa.select(
        t.gate_results,
        sa.func.coalesce(_m.name, _p.name).label("model"),
        sa.func.coalesce(_v.version, _pv.version).label("version"),
        _p.name.label("prompt_name"),
        t.dataset_versions.c.content_hash,
    ).select_from(
        t.gate_results.outerjoin(t.model_versions, _v.id == _g.model_version_id)
        .outerjoin(t.registered_models, _m.id == _v.model_id)
        .outerjoin(t.prompt_versions, _pv.id == _g.prompt_version_id)
        .outerjoin(t.prompts, _p.id == _pv.prompt_id)
        .outerjoin(t.dataset_versions, t.dataset_versions.c.id == _g.dataset_version_id)
    )


def _model_name(name: object) -> str:
    if not isinstance(name, str) or not name:
        raise InvalidInput(f"model {str(name)[:80]!r} must be a registered model's name")
    return name


def _dataset_ref(conn: sa.Connection, version_id: str) -> str:
    """``NAME@vN`` of the dataset version, which must exist."""
    dv, ds = t.dataset_versions.c, t.datasets.c
    row = None
    if isinstance(version_id, str) and 0 < len(version_id) <= 64:
        row = conn.execute(
            sa.select(ds.name, dv.number)
            .select_from(t.dataset_versions.join(t.datasets, ds.id == dv.dataset_id))
            .where(dv.id == version_id)
        ).first()
    if row is None:
        raise NotFound(
            f"dataset version {str(version_id)[:80]!r} does not exist; a gate result names "
            "the holdout version it was checked on"
        )
    return f"{row.name}@v{row.number}"


def _check_outcome(outcome: object) -> RuleOutcome:
    if not isinstance(outcome, RuleOutcome):
        raise InvalidInput(f"outcomes must be RuleOutcome values, not {type(outcome).__name__}")
    if outcome.value is not None and not math.isfinite(outcome.value) and outcome.passed:
        raise InvalidInput(f"rule {outcome.rule!r} cannot pass with the value {outcome.value}")
    return outcome


def _result(row: Any) -> GateResult:
    outcomes = tuple(
        RuleOutcome(
            o["rule"], None if o["value"] is None else float(o["value"]), o["passed"], o["detail"]
        )
        for o in json.loads(row.outcomes_json)
    )
    evidence = json.loads(row.evidence_json) if row.evidence_json else {}
    return GateResult(
        id=row.id,
        gate=row.gate,
        model=row.model,
        version=row.version,
        dataset_version_id=row.dataset_version_id or "",
        dataset=row.dataset,
        champion_version=row.champion_version,
        passed=bool(row.passed),
        outcomes=outcomes,
        reason=row.reason,
        spec=json.loads(row.spec_json),
        pipeline_run_id=row.pipeline_run_id,
        created_by=row.created_by,
        created_at=row.created_at,
        subject="prompt" if row.prompt_name is not None else "model",
        evaluation_run_id=row.evaluation_run_id,
        dataset_digest=evidence.get("dataset_digest") or row.content_hash,
        scorers=evidence.get("scorers", {}),
    )
