"""``/ui/``: the overview: what the loop holds and what waits for someone (pending approvals),
with the newest runs."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from ..api._deps import State, Viewer
from ..auth import UI_PREFIX
from ._page import render

__all__ = ["router"]

router = APIRouter(prefix=UI_PREFIX, include_in_schema=False)

RECENT_RUNS = 10


@router.get("/")
def overview(request: Request, state: State, caller: Viewer) -> Response:
    registry = state.registry(caller)
    experiments = {e.id: e for e in state.tracking.list_experiments()}
    runs = state.tracking.list_runs(limit=RECENT_RUNS)
    pending = registry.requests("pending", None)
    models = registry.list_models()
    return render(
        request,
        "home.html",
        experiments=experiments,
        runs=runs,
        pending=pending,
        models=models,
    )
