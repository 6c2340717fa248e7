"""``/ui/loops``: continuous-training loops; a loop's page with its iterations newest first
(trigger, state, candidate model version, gate result, approval, canary, promotion), paged.

What each iteration went through is read from its transitions (``history``): the gate passed
when ``gating`` led on to approval or the canary, the approval was given when
``awaiting_approval`` led to ``canary``. One query per page, whatever its length.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise
from typing import TYPE_CHECKING

from fastapi import APIRouter, Request
from fastapi.responses import Response

from ..api._deps import State, Viewer
from ..auth import UI_PREFIX
from ._page import render
from ._paging import newest_only, paging

if TYPE_CHECKING:
    from ...governance.tokens import Identity
    from ...loop.entities import Iteration
    from ...loop.service import LoopService

__all__ = ["router"]

router = APIRouter(prefix=UI_PREFIX, include_in_schema=False)

MAX_READ = 10_000  # the most iterations the service lists at once


def _service(state: State, caller: Identity) -> LoopService:
    from ...loop.service import LoopService

    return LoopService(state.store, actor=caller.user)


@dataclass(frozen=True)
class Steps:
    """An iteration's outcome at each stage ("" when it has not got there)."""

    gate: str  # passed / failed
    approval: str  # pending / approved / rejected / not required
    canary: str  # running / ended / rolled back
    promotion: str  # promoted / rolled back


def _after(history: list[str], state: str) -> str | None:
    """The state the iteration moved to from ``state`` (None: never left it, or never there)."""
    for here, there in pairwise(history):
        if here == state:
            return there
    return None


def steps(iteration: Iteration) -> Steps:
    history = [state for state, _ in iteration.history] or [iteration.state]
    if history[-1] != iteration.state:
        history.append(iteration.state)
    after_gate = _after(history, "gating")
    gate = {"awaiting_approval": "passed", "canary": "passed", "rejected": "failed"}.get(
        after_gate or "", "running" if iteration.state == "gating" else ""
    )
    after_approval = _after(history, "awaiting_approval")
    if iteration.state == "awaiting_approval":
        approval = "pending"
    elif after_approval == "canary":
        approval = "approved"
    elif after_approval == "rejected":
        approval = "rejected"
    elif after_gate == "canary":
        approval = "not required"
    else:
        approval = ""
    after_canary = _after(history, "canary")
    canary = (
        "running"
        if iteration.state == "canary"
        else {"comparing": "ended", "rolled_back": "rolled back", "failed": "failed"}.get(
            after_canary or "", ""
        )
    )
    promotion = {"promoted": "promoted", "rolled_back": "rolled back"}.get(iteration.state, "")
    return Steps(gate, approval, canary, promotion)


@router.get("/loops")
def loops(request: Request, state: State, caller: Viewer) -> Response:
    service = _service(state, caller)
    found = service.list()
    in_flight = {it.loop: it for it in service.iterations(None, active=True, limit=MAX_READ)}
    return render(request, "loops/list.html", loops=found, in_flight=in_flight)


@router.get("/loops/{name}")
def loop(
    request: Request,
    name: str,
    state: State,
    caller: Viewer,
    offset: str | None = None,
    limit: str | None = None,
) -> Response:
    service = _service(state, caller)
    found = service.get(name)
    page = paging(offset, limit)
    newest_only(page, MAX_READ, "iterations", "/api/v1/loops/-/iterations")
    read = service.iterations(found.name, limit=page.offset + page.limit + 1)
    shown = read[page.offset : page.offset + page.limit]
    return render(
        request,
        "loops/detail.html",
        loop=found,
        iterations=[(it, steps(it)) for it in shown],
        offset=page.offset,
        limit=page.limit,
        more=len(read) > page.offset + page.limit,
        params={"limit": limit} if limit else {},
    )
