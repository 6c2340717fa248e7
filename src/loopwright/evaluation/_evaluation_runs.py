"""Evaluation runs' summaries: one row per run, beside the run's params, metrics and table."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from .._ids import now_ms
from ..errors import Conflict, NotFound
from ..store import schema as t
from ..store.audit import append_event
from ..store.limits import check_text
from .entities import EvaluationRun

__all__ = ["EvaluationRunsMixin"]

_r = t.evaluation_runs.c


class EvaluationRunsMixin:
    _db: Any

    @property
    def _actor(self) -> str:
        """Who changes are recorded as (the service's store says)."""
        raise NotImplementedError

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
        """Store the summary of evaluation run ``run_id`` (once; audited)."""
        check_text("evaluation name", name, limit=256)
        check_text("evaluation target", target, limit=500)
        with self._db.write() as conn:
            if conn.execute(sa.select(t.runs.c.id).where(t.runs.c.id == run_id)).first() is None:
                raise NotFound(f"run {run_id!r} does not exist")
            if (
                dataset_version_id is not None
                and conn.execute(
                    sa.select(t.dataset_versions.c.id).where(
                        t.dataset_versions.c.id == dataset_version_id
                    )
                ).first()
                is None
            ):
                raise NotFound(f"dataset version {dataset_version_id!r} does not exist")
            if conn.execute(sa.select(_r.run_id).where(_r.run_id == run_id)).first():
                raise Conflict(f"run {run_id!r} already has an evaluation summary")
            conn.execute(
                t.evaluation_runs.insert(),
                {
                    "run_id": run_id,
                    "dataset_version_id": dataset_version_id,
                    "name": name,
                    "target": target,
                    "scorers_json": json.dumps(dict(scorers), sort_keys=True),
                    "aggregates_json": json.dumps(dict(aggregates), sort_keys=True),
                    "rows": rows,
                    "failed_rows": failed_rows,
                    "created_by": self._actor,
                    "created_at": now_ms(),
                },
            )
            append_event(
                conn,
                actor=self._actor,
                action="evaluation.record",
                subject_type="run",
                subject_id=run_id,
                after={"name": name, "dataset_version_id": dataset_version_id, "rows": rows},
            )
        return self.get_evaluation(run_id)

    def get_evaluation(self, run_id: str) -> EvaluationRun:
        with self._db.read() as conn:
            row = conn.execute(_query().where(_r.run_id == run_id)).first()
        if row is None:
            raise NotFound(f"run {run_id!r} is not an evaluation run")
        return _run(row)

    def evaluations(
        self, *, dataset_version_id: str | None = None, limit: int = 50
    ) -> list[EvaluationRun]:
        """Evaluation runs, newest first, optionally of one dataset version."""
        query = _query().order_by(_r.created_at.desc(), _r.run_id.desc()).limit(limit)
        if dataset_version_id is not None:
            query = query.where(_r.dataset_version_id == dataset_version_id)
        with self._db.read() as conn:
            return [_run(row) for row in conn.execute(query)]


def _query() -> sa.Select[Any]:
    return sa.select(t.evaluation_runs, t.dataset_versions.c.content_hash).outerjoin(
        t.dataset_versions, t.dataset_versions.c.id == _r.dataset_version_id
    )


def _run(row: Any) -> EvaluationRun:
    return EvaluationRun(
        run_id=row.run_id,
        name=row.name,
        target=row.target,
        dataset_version_id=row.dataset_version_id,
        dataset_digest=row.content_hash,
        scorers=json.loads(row.scorers_json),
        aggregates=json.loads(row.aggregates_json),
        rows=row.rows,
        failed_rows=row.failed_rows,
        created_by=row.created_by,
        created_at=row.created_at,
    )
