"""``/ui/experiments``, ``/ui/runs/...`` and ``/ui/compare``: experiments, their runs table
(search-language filter, SQL-side sort and paging), a run's page (charts, params, tags,
environment, git, artifacts) and the comparison of several runs.

Reads only, for any viewer, through the tracking service the API's handlers use. A metric's
history is read only by its chart's JSON (downsampled in SQL, ``_metric_series``), never by the
run page itself.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import sqlalchemy as sa
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.responses import StreamingResponse

from ...errors import InvalidInput, NotFound
from ...store import schema as t
from ...tracking.entities import Run
from ..api._deps import State, Viewer
from ..api._streaming import blob_response
from ..auth import UI_PREFIX
from . import _artifact_view as av
from ._compare import MAX_RUNS, diff_rows, parallel, run_ids_of, runs_in_order
from ._metric_series import MIN_POINTS, parse_axis, parse_points, read_series, spec
from ._page import render, secure
from ._run_table import RunQuery, caret_of, columns_of, page_token

__all__ = ["router"]

router = APIRouter(prefix=UI_PREFIX, include_in_schema=False)

_NO_STORE = {"Cache-Control": "no-store"}
# A run page draws at most this many charts (each fetches its own data) and lists at most this
# many top-level artifact entries (the artifacts page lists them all).
MAX_CHARTS, MAX_ENTRIES = 30, 200


def _labels(runs: list[Run]) -> dict[str, str]:
    """Each run's name, with the end of its id where names repeat (ids share their time-ordered
    beginning, so the end tells them apart)."""
    names = [run.name for run in runs]
    return {
        run.id: run.name
        if run.name and names.count(run.name) == 1
        else f"{run.name} ({run.id[-8:]})"
        for run in runs
    }


# --- experiments ---------------------------------------------------------------------------------


@router.get("/experiments")
def experiments(request: Request, state: State, _: Viewer) -> Response:
    found = state.tracking.list_experiments()
    r = t.runs.c
    activity = sa.func.max(sa.func.coalesce(r.end_time, r.heartbeat_at, r.start_time))
    query = (
        sa.select(r.experiment_id, sa.func.count(), activity)
        .where(r.lifecycle_stage == "active")
        .group_by(r.experiment_id)
    )
    with state.tracking.db.read() as conn:
        counts = {row[0]: (row[1], row[2]) for row in conn.execute(query)}
    rows = [(e, *counts.get(e.id, (0, None))) for e in found]
    rows.sort(key=lambda row: -(row[2] or row[0].updated_at))
    return render(request, "runs/experiments.html", rows=rows)


@router.get("/experiments/{experiment_id}")
def experiment(request: Request, experiment_id: str, state: State, _: Viewer) -> Response:
    found = state.tracking.get_experiment(experiment_id)
    table = RunQuery.of(request.query_params)
    error = caret = None
    runs: list[Run] = []
    more = False
    try:
        token = page_token([found.id], table.filter, table.order_by, table.offset)
        page = state.tracking._search_run_ids(
            [found.id],
            filter_string=table.filter,
            order_by=table.order_by,
            max_results=table.limit,
            page_token=token,
        )
        runs = state.tracking.get_runs(page.run_ids)
        more = page.next_page_token is not None
    except InvalidInput as exc:
        error = str(exc).partition("\n")[0]
        caret = caret_of(str(exc))
    shown, hidden = columns_of(runs, table.sort)
    return render(
        request,
        "runs/experiment.html",
        status=400 if error else 200,
        experiment=found,
        runs=runs,
        table=table,
        params=table.params(),
        path=f"{UI_PREFIX}/experiments/{quote(found.id, safe='')}",
        shown=shown,
        hidden=hidden,
        more=more,
        error=error,
        caret=caret,
    )


# --- one run -------------------------------------------------------------------------------------


@router.get("/runs/{run_id}")
def run_page(request: Request, run_id: str, state: State, _: Viewer) -> Response:
    run = state.tracking.get_run(run_id)
    exp = state.tracking.get_experiment(run.experiment_id)
    environment = None
    if run.environment_id:
        try:
            environment = state.tracking.get_environment(run.environment_id)
        except NotFound:
            environment = None
    files = state.tracking.list_artifacts(run.id)
    entries = av.entries(files, "")
    parent = None
    if run.parent_run_id:
        parent = next(iter(state.tracking.get_runs([run.parent_run_id])), None)
    return render(
        request,
        "runs/run.html",
        run=run,
        experiment=exp,
        parent=parent,
        environment=environment,
        entries=entries[:MAX_ENTRIES],
        entry_count=len(entries),
        max_charts=MAX_CHARTS,
        artifact_count=len(files),
        metric_keys=sorted(run.metrics),
    )


@router.get("/runs/{run_id}/metrics/{key:path}.json")
def metric_spec(request: Request, run_id: str, key: str, state: State, _: Viewer) -> Response:
    axis = parse_axis(request.query_params.get("x"))
    points = parse_points(request.query_params.get("points"))
    run = state.tracking.get_run(run_id)
    if key not in run.metrics:
        raise NotFound(f"run {run_id} has no metric {key!r}; it has: {', '.join(run.metrics)}")
    with state.tracking.db.read() as conn:
        series = read_series(conn, run.id, key, run.start_time, axis, points)
    return secure(JSONResponse(spec([series], key, axis, {run.id: key}), headers=_NO_STORE))


@router.get("/runs/{run_id}/artifacts")
def artifacts(request: Request, run_id: str, state: State, _: Viewer) -> Response:
    path = av.relpath(request.query_params.get("path"))
    run = state.tracking.get_run(run_id)
    files = state.tracking.list_artifacts(run.id, path or None)
    item = av.find_file(files, path, run.id) if path else None
    shown = None if item is None else av.preview(state.store.blobs, item)
    crumbs = []
    parts = path.split("/") if path else []
    for n, part in enumerate(parts):
        crumbs.append((part, "/".join(parts[: n + 1])))
    return render(
        request,
        "runs/artifacts.html",
        run=run,
        path=path,
        crumbs=crumbs,
        item=item,
        preview=shown,
        entries=[] if item else av.entries(files, path),
    )


@router.get("/runs/{run_id}/artifact")
def artifact_file(request: Request, run_id: str, state: State, _: Viewer) -> StreamingResponse:
    """The file's bytes: images inline with their type (for ``<img>``), anything else as a
    download; sandboxed, so a file opened directly (an SVG) can run nothing."""
    path = av.check_raw_path(request.query_params.get("path"))
    files = state.tracking.list_artifacts(run_id, path)
    item = next((a for a in files if a.path == path), None)
    if item is None:
        raise NotFound(f"run {run_id} has no artifact file {path!r}")
    response = blob_response(state.store, item.blob_hash, item.size)
    name = path.rpartition("/")[2]
    kind = av.IMAGE_TYPES.get(av.suffix(path))
    inline = kind is not None and request.query_params.get("download") != "1"
    response.headers["Content-Type"] = kind if inline and kind else "application/octet-stream"
    disposition = "inline" if inline else "attachment"
    ascii_name = "".join(c if c.isalnum() or c in "._-" else "_" for c in name) or "artifact"
    response.headers["Content-Disposition"] = (
        f"{disposition}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name, safe='')}"
    )
    response.headers.update(
        {
            "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; sandbox",
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "private, no-store",
        }
    )
    return response


# --- compare -------------------------------------------------------------------------------------


def _compared(request: Request, state: Any) -> list[Run]:
    ids = run_ids_of(request.query_params.getlist("runs"))
    return runs_in_order(state.tracking.get_runs(ids), ids)


@router.get("/compare")
def compare(request: Request, state: State, _: Viewer) -> Response:
    runs = _compared(request, state)
    labels = _labels(runs)
    counts: dict[str, int] = {}
    for run in runs:
        for key in run.metrics:
            counts[key] = counts.get(key, 0) + 1
    shared = sorted(k for k, n in counts.items() if n >= min(2, len(runs)))
    metric = request.query_params.get("metric") or (shared[0] if shared else None)
    if metric is not None and metric not in counts:
        raise InvalidInput(
            f"no compared run has the metric {metric!r}; they have: {', '.join(sorted(counts))}"
        )
    only_diff = request.query_params.get("only") == "diff"
    rows = diff_rows(runs)
    return render(
        request,
        "runs/compare.html",
        runs=runs,
        labels=labels,
        ids=",".join(run.id for run in runs),
        shared=shared,
        metric_keys=sorted(counts),
        metric=metric,
        figure=parallel(runs, labels, metric),
        rows=[row for row in rows if row[2]] if only_diff else rows,
        only_diff=only_diff,
        max_runs=MAX_RUNS,
    )


@router.get("/compare/metrics/{key:path}.json")
def compare_spec(request: Request, key: str, state: State, _: Viewer) -> Response:
    axis = parse_axis(request.query_params.get("x"))
    points = parse_points(request.query_params.get("points"))
    runs = [run for run in _compared(request, state) if key in run.metrics]
    if not runs:
        raise NotFound(f"none of the compared runs has the metric {key!r}")
    # The chart's budget is shared: twenty runs cost no more points than one.
    each = max(MIN_POINTS, points // len(runs))
    with state.tracking.db.read() as conn:
        series = [read_series(conn, r.id, key, r.start_time, axis, each) for r in runs]
    labels = _labels(runs)
    return secure(JSONResponse(spec(series, key, axis, labels), headers=_NO_STORE))
