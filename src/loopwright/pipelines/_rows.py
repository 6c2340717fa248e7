"""The SQL of the pipeline records and their rows as entities (``service.py`` runs them).

Raw SQL (``store/statements.py``) on the hot path: every step runs the two cache lookups and a
start and an end, and a compiled Core statement costs more than the query. Names and
placeholders only are joined into the text; every value is bound.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from ..store import schema as t
from ..store import statements
from .entities import ArtifactRef, PipelineRun, StepRun

__all__ = [
    "CACHED",
    "NESTED_RUN",
    "PREVIOUS",
    "RUNNING_STEP_RUNS",
    "STEP_COLUMNS",
    "STEP_FINISH",
    "STEP_INSERT",
    "TRACKED_RUN",
    "alive",
    "run_from_row",
    "running_step_runs",
    "step_from_row",
    "step_from_tuple",
]

STEP_COLUMNS = tuple(c.name for c in t.step_runs.c)
_STEP_SELECT = ", ".join(f'"{name}"' for name in STEP_COLUMNS)

# The step's nested run, from the pipeline run's tracked run: same experiment, code and host.
_COPIED = (
    "host",
    "entry_point",
    "git_commit",
    "git_branch",
    "git_dirty",
    "git_diff_blob",
    "environment_id",
)
NESTED_RUN = (
    'INSERT INTO runs ("id", "experiment_id", "name", "status", "lifecycle_stage", '  # noqa: S608
    '"parent_run_id", "user", "start_time", "heartbeat_at", '
    + ", ".join(f'"{c}"' for c in _COPIED)
    + ") SELECT ?, r.\"experiment_id\", ?, 'RUNNING', 'active', r.\"id\", ?, ?, ?, "
    + ", ".join(f'r."{c}"' for c in _COPIED)
    + ' FROM pipeline_runs p JOIN runs r ON r."id" = p."run_id"'
    ' WHERE p."id" = ? AND p."status" = \'running\''
)
STEP_INSERT = statements.insert_text("step_runs", STEP_COLUMNS)
STEP_FINISH = (
    'UPDATE step_runs SET "status" = ?, "outputs_json" = ?, "attempts" = ?, "error" = ?, '  # noqa: S608
    '"finished_at" = ? WHERE "id" = ? AND "status" = \'running\' RETURNING ' + _STEP_SELECT
)
_STEP_COLUMNS_OF_S = ", ".join(f's."{name}"' for name in STEP_COLUMNS)
# The cache lookups run before every step: raw SQL, as the writes (a Core select with a join
# costs ~1 ms to compile and coerce; the query itself ~0.1 ms).
# The newest completed step run whose nested run (holding the outputs) is still there.
CACHED = (
    "SELECT " + _STEP_COLUMNS_OF_S + ' FROM step_runs s JOIN runs r ON r."id" = s."run_id"'  # noqa: S608
    ' WHERE s."cache_key" = ? AND s."status" = \'completed\' AND r."lifecycle_stage" = \'active\''
    ' ORDER BY s."finished_at" DESC, s."id" DESC LIMIT 1'
)
PREVIOUS = (
    "SELECT " + _STEP_COLUMNS_OF_S + " FROM step_runs s JOIN pipeline_runs p"  # noqa: S608
    ' ON p."id" = s."pipeline_run_id" WHERE p."pipeline" = ? AND s."invocation" = ?'
    ' AND s."status" <> \'running\' ORDER BY s."started_at" DESC, s."id" DESC LIMIT 1'
)
TRACKED_RUN = 'SELECT "run_id" FROM pipeline_runs WHERE "id" = ?'
RUNNING_STEP_RUNS = (
    'SELECT "run_id" FROM step_runs WHERE "pipeline_run_id" = ? AND "status" = \'running\''
)


def running_step_runs(conn: sa.Connection, pipeline_run_id: str) -> list[str]:
    """The tracked runs of the pipeline run's running step runs (a few, by an index)."""
    rows = statements.fetch(conn, RUNNING_STEP_RUNS, (pipeline_run_id,))
    return [run_id for (run_id,) in rows if run_id is not None]


def alive(pid: int) -> bool:
    """Whether process ``pid`` of this host exists (a zombie, killed but not reaped, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: it exists, as another user's
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rpartition(b")")[2].split()[0] != b"Z"
    except (OSError, IndexError):
        return True


def _artifacts(text: str) -> tuple[ArtifactRef, ...]:
    return tuple(ArtifactRef.from_dict(a) for a in json.loads(text))


def step_from_row(row: Mapping[str, Any]) -> StepRun:
    return StepRun(
        id=row["id"],
        pipeline_run_id=row["pipeline_run_id"],
        invocation=row["invocation"],
        step=row["step"],
        status=row["status"],
        cache_key=row["cache_key"],
        cache_reason=row["cache_reason"],
        run_id=row["run_id"],
        cached_from=row["cached_from"],
        attempts=row["attempts"],
        inputs=_artifacts(row["inputs_json"]),
        outputs=_artifacts(row["outputs_json"]),
        error=row["error"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        key_parts=json.loads(row["key_parts_json"]),
    )


def run_from_row(row: Mapping[str, Any], steps: Sequence[Mapping[str, Any]]) -> PipelineRun:
    result = row["result_json"]
    return PipelineRun(
        id=row["id"],
        pipeline=row["pipeline"],
        name=row["name"],
        status=row["status"],
        run_id=row["run_id"],
        params=json.loads(row["params_json"]),
        executor=row["executor"],
        resumed_from=row["resumed_from"],
        code_digest=row["code_digest"],
        result=None if result is None else ArtifactRef.from_dict(json.loads(result)),
        error=row["error"],
        host=row["host"],
        pid=row["pid"],
        created_by=row["created_by"],
        started_at=row["started_at"],
        heartbeat_at=row["heartbeat_at"],
        finished_at=row["finished_at"],
        steps=tuple(step_from_row(s) for s in steps),
    )


def step_from_tuple(values: Sequence[Any]) -> StepRun:
    """A step run from a row of :data:`STEP_COLUMNS`."""
    return step_from_row(dict(zip(STEP_COLUMNS, values, strict=True)))
