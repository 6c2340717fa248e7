"""``/ui/pipelines``: pipelines (by the runs recorded of them), a pipeline's runs newest first,
and a run's page: its step graph (SVG, steps in topological layers, coloured and labelled by
state) and its step table (duration, attempts, cache hits, errors)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import sqlalchemy as sa
from fastapi import APIRouter, Request
from fastapi.responses import Response

from ...errors import NotFound
from ...store import schema as t
from ..api._deps import State, Viewer
from ..auth import UI_PREFIX
from ._page import render
from ._paging import newest_only, paging
from ._step_graph import BOX_H, BOX_W, layout

if TYPE_CHECKING:
    from ...pipelines.service import PipelineService

__all__ = ["router"]

router = APIRouter(prefix=UI_PREFIX, include_in_schema=False)

MAX_READ = 10_000  # the most runs the service lists at once
_p = t.pipeline_runs.c


def _service(state: State) -> PipelineService:
    from ...pipelines.service import PipelineService

    return PipelineService(state.store, tracking=state.tracking)


@router.get("/pipelines")
def pipelines(
    request: Request,
    state: State,
    caller: Viewer,
    offset: str | None = None,
    limit: str | None = None,
) -> Response:
    """Every pipeline with runs: how many, how they ended, the newest start (one query)."""
    page = paging(offset, limit)

    def count(status: str) -> sa.ColumnElement[int]:
        return sa.func.sum(sa.case((_p.status == status, 1), else_=0)).label(status)

    query = (
        sa.select(
            _p.pipeline,
            sa.func.count().label("runs"),
            count("running"),
            count("completed"),
            count("failed"),
            count("killed"),
            sa.func.max(_p.started_at).label("last_started"),
        )
        .group_by(_p.pipeline)
        .order_by(sa.func.max(_p.started_at).desc(), _p.pipeline)
        .offset(page.offset)
        .limit(page.limit)
    )
    total_query = sa.select(sa.func.count(sa.distinct(_p.pipeline)))
    with state.store.db.read() as conn:
        rows = conn.execute(query).all()
        total = conn.execute(total_query).scalar_one()
    return render(
        request,
        "pipelines/list.html",
        pipelines=rows,
        offset=page.offset,
        limit=page.limit,
        total=total,
        params={"limit": limit} if limit else {},
    )


@router.get("/pipelines/runs/{pipeline_run_id}")
def pipeline_run(request: Request, pipeline_run_id: str, state: State, caller: Viewer) -> Response:
    run = _service(state).get_run(pipeline_run_id)
    return render(
        request,
        "pipelines/run.html",
        run=run,
        graph=layout(run.steps),
        box_w=BOX_W,
        box_h=BOX_H,
        cached_from=_sources(state, [s.cached_from for s in run.steps if s.cached_from]),
    )


def _sources(state: State, step_ids: list[str]) -> dict[str, str]:
    """step run id -> the pipeline run it belongs to, for the steps cached ones were served
    from (one query)."""
    if not step_ids:
        return {}
    s = t.step_runs.c
    with state.store.db.read() as conn:
        rows = conn.execute(sa.select(s.id, s.pipeline_run_id).where(s.id.in_(step_ids))).all()
    return {row.id: row.pipeline_run_id for row in rows}


@router.get("/pipelines/{name}")
def pipeline(
    request: Request,
    name: str,
    state: State,
    caller: Viewer,
    offset: str | None = None,
    limit: str | None = None,
) -> Response:
    page = paging(offset, limit)
    newest_only(page, MAX_READ, "runs", "/api/v1/pipelines/runs")
    read = _service(state).list_runs(pipeline=name, limit=page.offset + page.limit + 1)
    if not read:
        raise NotFound(
            f"pipeline {name!r} has no recorded runs; run it (loopwright pipelines run "
            "module:function) or pick one from the pipelines page"
        )
    return render(
        request,
        "pipelines/detail.html",
        name=name,
        runs=read[page.offset : page.offset + page.limit],
        offset=page.offset,
        limit=page.limit,
        more=len(read) > page.offset + page.limit,
        params={"limit": limit} if limit else {},
    )
