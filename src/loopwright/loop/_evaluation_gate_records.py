"""Checking an evaluation gate where the results are stored: :meth:`check_evaluation` of the
embedded gate service (the server runs the same for a remote client).

One write transaction locks the subject's prompt (or registered model) first, as its own writes
do, reads the evaluation run's summary, its dataset version and the judges' approvals, checks
the rules (:mod:`.evaluation_gates`), stores the result with its evidence, tags the version
``loopwright.gate.<gate>`` and appends the ``gate.check`` event.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from .._ids import new_id
from ..errors import NotFound
from ..store import schema as t
from ._gate_rows import check_pipeline_run, outcome_dict, reason_of, tag_verdict
from .evaluation_gates import (
    check_run_matches,
    judge_refs,
    outcomes_of,
    spec_of,
    split_subject,
)

if TYPE_CHECKING:
    from ..evaluation.entities import EvaluationRun
    from ..store.database import Database
    from .entities import GateResult, GateSpec

__all__ = ["EvaluationGatesMixin"]


class EvaluationGatesMixin:
    """``check_evaluation`` for :class:`~loopwright.loop._gate_records.GateService`."""

    db: Database
    _clock: Callable[[], int]

    if TYPE_CHECKING:  # what the service this mixes into provides (Audited, GateService)

        def _actor_name(self) -> str: ...

        def _audit(self, conn: sa.Connection, action: str, subject: str, **kwargs: Any) -> None: ...

        def get(self, result_id: str) -> GateResult: ...

    def check_evaluation(
        self,
        spec: GateSpec | dict[str, Any],
        subject: str,
        evaluation_run_id: str,
        *,
        pipeline_run_id: str | None = None,
    ) -> GateResult:
        """Check the evaluation gate ``spec`` on ``subject`` (``prompts:/NAME/N``,
        ``prompts:/NAME@ALIAS``, ``models:/NAME/N``...) with the evaluation run
        ``evaluation_run_id`` and record the result; audited.

        Raises:
            NotFound: the version, or a run that is not an evaluation run.
            Conflict: the run evaluated something else, or not on the gate's dataset.
        """
        from ..evaluation._evaluation_runs import _query as run_query
        from ..evaluation._evaluation_runs import _run

        spec = spec_of(spec)
        kind, name, ref = split_subject(subject)
        actor, result_id = self._actor_name(), new_id()
        with self.db.write() as conn:
            version_id, number = _lock_version(conn, kind, name, ref)
            uri = f"{kind}s:/{name}/{number}"
            row = conn.execute(
                run_query().where(t.evaluation_runs.c.run_id == evaluation_run_id)
            ).first()
            if row is None:
                raise NotFound(
                    f"run {str(evaluation_run_id)[:80]!r} is not an evaluation run "
                    "(client.evaluation.evaluate records one)"
                )
            run = _run(row)
            dataset, dataset_number = _dataset_of(conn, run.dataset_version_id)
            tags = dict(
                conn.execute(
                    sa.select(t.run_tags.c.key, t.run_tags.c.value).where(
                        t.run_tags.c.run_id == run.run_id
                    )
                ).all()
            )
            check_run_matches(
                spec, run, uri=uri, dataset=dataset, number=dataset_number, run_tags=tags
            )
            outcomes = outcomes_of(spec, run, unapproved=_unapproved(conn, run))
            passed = all(o.passed for o in outcomes)
            reason = reason_of(outcomes)
            evidence = {
                "subject": uri,
                "evaluation_run_id": run.run_id,
                "dataset_digest": run.dataset_digest,
                "scorers": dict(run.scorers),
            }
            conn.execute(
                t.gate_results.insert(),
                {
                    "id": result_id,
                    "gate": spec.name,
                    "model_version_id": version_id if kind == "model" else None,
                    "prompt_version_id": version_id if kind == "prompt" else None,
                    "evaluation_run_id": run.run_id,
                    "dataset_version_id": run.dataset_version_id,
                    "dataset": f"{dataset}@v{dataset_number}",
                    "champion_version": None,
                    "passed": passed,
                    "outcomes_json": json.dumps([outcome_dict(o) for o in outcomes]),
                    "reason": reason,
                    "spec_json": json.dumps(spec.to_dict(), sort_keys=True),
                    "evidence_json": json.dumps(evidence, sort_keys=True),
                    "pipeline_run_id": check_pipeline_run(conn, pipeline_run_id),
                    "created_by": actor,
                    "created_at": self._clock(),
                },
            )
            tag_table = t.prompt_version_tags if kind == "prompt" else t.model_version_tags
            tag_verdict(conn, tag_table, version_id, spec.name, passed)
            self._audit(
                conn,
                "gate.check",
                result_id,
                after={
                    "gate": spec.name,
                    kind: name,
                    "version": number,
                    "evaluation_run_id": run.run_id,
                    "dataset": f"{dataset}@v{dataset_number}",
                    "dataset_version_id": run.dataset_version_id,
                    "dataset_digest": run.dataset_digest,
                    "passed": passed,
                    "reason": reason,
                },
            )
        return self.get(result_id)


def _lock_version(conn: sa.Connection, kind: str, name: str, ref: int | str) -> tuple[str, int]:
    """The id and number of the version ``ref`` names, its prompt or model row locked."""
    if kind == "prompt":
        from ..prompts._rows import prompt_row, resolve_row

        row = resolve_row(conn, prompt_row(conn, name, lock=True), ref)
    else:
        from ..registry._queries import model_row
        from ..registry._queries import resolve_row as resolve_model_row

        row = resolve_model_row(conn, model_row(conn, name, lock=True), ref)
    return str(row.id), int(row.version)


def _dataset_of(conn: sa.Connection, version_id: str | None) -> tuple[str | None, int | None]:
    if version_id is None:
        return None, None
    dv, ds = t.dataset_versions.c, t.datasets.c
    row = conn.execute(
        sa.select(ds.name, dv.number)
        .select_from(t.dataset_versions.join(t.datasets, ds.id == dv.dataset_id))
        .where(dv.id == version_id)
    ).first()
    return (None, None) if row is None else (str(row.name), int(row.number))


def _unapproved(conn: sa.Connection, run: EvaluationRun) -> list[str]:
    """The judges of ``run`` that are not approved registered versions."""
    registered, unregistered = judge_refs(run.scorers)
    s = t.scorer_versions.c
    missing = [f"{name} (not registered)" for name in unregistered]
    for name, version, digest in registered:
        rows = conn.execute(
            sa.select(s.approved_by, s.digest).where(s.name == name, s.version == version)
        ).all()
        row = next((r for r in rows if str(r.digest).startswith(digest)), None)
        if row is None:
            missing.append(f"{name}/{version} (unknown version)")
        elif row.approved_by is None:
            missing.append(f"{name}/{version}")
    return missing
