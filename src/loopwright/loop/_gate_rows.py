"""What a holdout gate's result and an evaluation gate's share on the store: the reason text,
the stored outcomes, the verdict tag on the version, the pipeline run check."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from ..errors import NotFound
from ..store import schema as t
from ..store.upsert import upsert
from .entities import RuleOutcome

__all__ = ["TAG_PREFIX", "check_pipeline_run", "outcome_dict", "reason_of", "tag_verdict"]

TAG_PREFIX = "loopwright.gate."


def reason_of(outcomes: Sequence[RuleOutcome]) -> str:
    """Why a gate failed: each failed rule with its value and detail; empty when it passed."""
    parts = []
    for o in outcomes:
        if o.passed:
            continue
        value = "not measured" if o.value is None else f"{o.value:.6g}"
        parts.append(f"{o.rule} failed ({value}{': ' + o.detail if o.detail else ''})")
    return "; ".join(parts)


def outcome_dict(o: RuleOutcome) -> dict[str, Any]:
    # JSON holds no NaN or infinity: such a value (a failed rule's) is stored as not measured
    value = o.value if o.value is None or math.isfinite(o.value) else None
    return {"rule": o.rule, "value": value, "passed": o.passed, "detail": o.detail}


def tag_verdict(
    conn: sa.Connection, tags: sa.Table, version_id: str, gate: str, passed: bool
) -> None:
    """Tag the version (a model's or a prompt's: ``tags`` is its tag table) with the verdict."""
    verdict = "passed" if passed else "failed"
    upsert(
        conn,
        tags,
        [{"version_id": version_id, "key": TAG_PREFIX + gate, "value": verdict}],
        update=["value"],
    )


def check_pipeline_run(conn: sa.Connection, pipeline_run_id: str | None) -> str | None:
    """``pipeline_run_id`` if it is None or names a pipeline run, else NotFound."""
    if pipeline_run_id is not None and (
        conn.execute(
            sa.select(t.pipeline_runs.c.id).where(t.pipeline_runs.c.id == pipeline_run_id)
        ).first()
        is None
    ):
        raise NotFound(f"pipeline run {pipeline_run_id!r} does not exist")
    return pipeline_run_id
