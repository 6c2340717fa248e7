"""``/ui/evaluations``: evaluation runs with their aggregates, one run's per-row results (paged,
read from the run's ``eval_results.jsonl``), and ``/ui/evaluations/judges``: registered LLM
judges, their approval and their measured agreement with human labels.

The list is one page of ``evaluation_runs`` in SQL with the dataset version each was scored on;
a run's rows are streamed from its results file, skipping to the page (never the whole file in
memory); agreements are one joined query.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from fastapi import APIRouter, Request
from fastapi.responses import Response

from ...errors import NotFound
from ...store import schema as t
from ..api._deps import State, Viewer
from ..auth import UI_PREFIX
from ._page import render
from ._paging import paging
from .traces import shown

if TYPE_CHECKING:
    from ...store.database import Database
    from .._state import ServerState

__all__ = ["ROW_CHARS", "router"]

router = APIRouter(prefix=UI_PREFIX, include_in_schema=False)

ROW_CHARS = 1500  # an input, output or expectation value shown in the rows table, at most
_e, _dv, _d = t.evaluation_runs.c, t.dataset_versions.c, t.datasets.c


@router.get("/evaluations")
def evaluations(request: Request, state: State, _: Viewer) -> Response:
    """Evaluation runs, newest first, one page."""
    page = paging(request.query_params.get("offset"), request.query_params.get("limit"))
    runs, total = _runs_page(state.store.db, page.offset, page.limit)
    metrics = sorted({k for r in runs for k in r["aggregates"]})
    return render(
        request,
        "evaluations/list.html",
        runs=runs,
        metrics=metrics[:12],
        offset=page.offset,
        limit=page.limit,
        total=total,
        params={"limit": page.limit if page.limit != 50 else None},
    )


def _runs_page(db: Database, offset: int, limit: int) -> tuple[list[dict[str, Any]], int]:
    query = (
        sa.select(t.evaluation_runs, _dv.number, _dv.content_hash, _d.name.label("dataset"))
        .outerjoin(t.dataset_versions, _dv.id == _e.dataset_version_id)
        .outerjoin(t.datasets, _d.id == _dv.dataset_id)
        .order_by(_e.created_at.desc(), _e.run_id.desc())
        .offset(offset)
        .limit(limit)
    )
    with db.read() as conn:
        rows = conn.execute(query).all()
        total = conn.execute(sa.select(sa.func.count()).select_from(t.evaluation_runs))
        count = int(total.scalar_one())
    return [_run(row) for row in rows], count


def _run(row: Any) -> dict[str, Any]:
    return {
        "run_id": row.run_id,
        "name": row.name,
        "target": row.target,
        "scorers": json.loads(row.scorers_json),
        "aggregates": json.loads(row.aggregates_json),
        "rows": row.rows,
        "failed_rows": row.failed_rows,
        "created_by": row.created_by,
        "created_at": row.created_at,
        "dataset": row.dataset,
        "dataset_version": row.number,
        "digest": row.content_hash,
    }


@router.get("/evaluations/judges")
def judges(request: Request, state: State, _: Viewer) -> Response:
    """Judge versions (newest of each name), approval, and every agreement measured."""
    with state.store.db.read() as conn:
        versions = _judge_versions(conn)
        agreements = _agreements(conn)
    return render(request, "evaluations/judges.html", judges=versions, agreements=agreements)


def _judge_versions(conn: sa.Connection) -> list[Any]:
    s = t.scorer_versions.c
    return list(
        conn.execute(
            sa.select(t.scorer_versions)
            .where(s.kind == "judge")
            .order_by(s.scope, s.name, s.version.desc())
            .limit(500)
        )
    )


def _agreements(conn: sa.Connection) -> list[dict[str, Any]]:
    a, s = t.judge_agreements.c, t.scorer_versions.c
    query = (
        sa.select(
            a.label,
            a.metrics_json,
            a.created_at,
            a.created_by,
            s.name,
            s.version,
            s.approved_by,
            _dv.number,
            _d.name.label("dataset"),
        )
        .join(t.scorer_versions, s.id == a.scorer_version_id)
        .outerjoin(t.dataset_versions, _dv.id == a.dataset_version_id)
        .outerjoin(t.datasets, _d.id == _dv.dataset_id)
        .order_by(a.created_at.desc())
        .limit(500)
    )
    found = []
    for row in conn.execute(query):
        metrics = json.loads(row.metrics_json)
        found.append(
            {
                "judge": f"{row.name}/{row.version}",
                "approved_by": row.approved_by,
                "label": row.label,
                "dataset": row.dataset,
                "dataset_version": row.number,
                "n": metrics.get("n"),
                "skipped": metrics.get("skipped"),
                "figures": {
                    k: v
                    for k, v in metrics.items()
                    if k in ("accuracy", "cohen_kappa", "spearman", "mae")
                },
                "created_at": row.created_at,
                "created_by": row.created_by,
            }
        )
    return found


@router.get("/evaluations/{run_id}")
def evaluation(request: Request, run_id: str, state: State, _: Viewer) -> Response:
    """One evaluation run: summary, aggregates, scorers and one page of its rows."""
    page = paging(request.query_params.get("offset"), request.query_params.get("limit"))
    query = (
        sa.select(t.evaluation_runs, _dv.number, _dv.content_hash, _d.name.label("dataset"))
        .outerjoin(t.dataset_versions, _dv.id == _e.dataset_version_id)
        .outerjoin(t.datasets, _d.id == _dv.dataset_id)
        .where(_e.run_id == run_id)
    )
    with state.store.db.read() as conn:
        row = conn.execute(query).first()
    if row is None:
        raise NotFound(
            f"run {run_id!r} is not an evaluation run; evaluation runs are listed at "
            f"{UI_PREFIX}/evaluations"
        )
    run = _run(row)
    rows, more = _rows(state, run_id, page.offset, page.limit)
    scorer_names = sorted({name for r in rows for name in r.get("scores", {})})
    return render(
        request,
        "evaluations/run.html",
        run=run,
        rows=rows,
        scorer_names=scorer_names,
        offset=page.offset,
        limit=page.limit,
        total=None if more else page.offset + len(rows),
        more=more,
        params={"limit": page.limit if page.limit != 50 else None},
        shown=lambda value: shown(value, ROW_CHARS),
    )


def _rows(
    state: ServerState, run_id: str, offset: int, limit: int
) -> tuple[list[dict[str, Any]], bool]:
    """Rows ``offset`` .. ``offset + limit`` of the run's results file, and whether more
    follow (none when the run has no results file)."""
    from ...evaluation._evaluate import RESULTS_FILE

    files = state.tracking.list_artifacts(run_id)
    item = next((a for a in files if a.path == RESULTS_FILE), None)
    if item is None:
        return [], False
    found: list[dict[str, Any]] = []
    more = False
    with state.store.blobs.open_read(item.blob_hash) as reader:
        for index, line in enumerate(reader):
            if index < offset or not line.strip():
                continue
            if len(found) == limit:
                more = True
                break
            try:
                value = json.loads(line)
            except ValueError:
                value = {"error": "this row of the results file is not JSON"}
            found.append(value if isinstance(value, dict) else {"outputs": value})
    return found, more
