"""``/ui/approvals``: approval requests, and the Approve/Reject forms that decide them.

The list reads one page (LIMIT/OFFSET and a count in SQL, as the registry's ``requests`` would
select them), so it costs the same however many requests were ever opened.

A decision is a POST form (CSRF-checked, ``Approver`` role) that calls the caller's registry
exactly as ``POST /api/v1/approvals/{id}/approve|reject`` does: the registry checks the rule's
role and separation of duties (nobody approves a version they registered or a request they
opened) and records the audit event under the caller's name; its database work runs in the
thread pool, as a sync API handler's would. A decision made sends the browser back where the
form was (``next``, a dashboard path only) with a fixed notice; a refusal is a page with the
registry's reason and status (403, 409, 400 ...) that links back there.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal, get_args
from urllib.parse import parse_qsl, urlencode, urlsplit

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from ..._ids import now_ms
from ...errors import LoopwrightError
from ...registry._queries import load_requests
from ...store import schema as t
from ..api._deps import Approver, State, Viewer
from ..auth import UI_PREFIX
from ..errors import status_for
from ._page import csrf_checked, form_fields, redirect, render
from ._paging import Offset

if TYPE_CHECKING:
    from ...registry.entities import ApprovalRequest
    from ...store.database import Database

__all__ = ["NOTICES", "notice_of", "router", "this_page"]

router = APIRouter(prefix=UI_PREFIX, include_in_schema=False)

PAGE = 50
MAX_PAGE = 500
NOTICE_PARAM = "decided"
# What a page says after a decision; the query carries only the key, so a link cannot make a
# dashboard page show text of its author's choosing.
NOTICES = {
    "approved": "Your approval is recorded.",
    "applied": "Your approval is recorded and the change is applied.",
    "rejected": "The request is rejected; nothing changed.",
}

Status = Literal["pending", "approved", "rejected", "expired", "cancelled", "any"]


def notice_of(request: Request) -> str | None:
    """The notice a page shows after a decision redirected to it (None: none)."""
    return NOTICES.get(request.query_params.get(NOTICE_PARAM, ""))


@router.get("/approvals")
def approvals(
    request: Request,
    state: State,
    caller: Viewer,
    status: Status = "pending",
    offset: Offset = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = PAGE,
) -> Response:
    """Requests with ``status`` (``any``: all), newest first."""
    registry = state.registry(caller)
    if _any_due(state.store.db):
        registry.requests("pending", None)  # marks the due ones expired, as the API's list does
    found, total = _requests_page(
        state.store.db, None if status == "any" else status, offset, limit
    )
    return render(
        request,
        "approvals/list.html",
        requests=found,
        selected=status,  # not ``status``: render's HTTP status
        statuses=get_args(Status),
        offset=offset,
        limit=limit,
        total=total,
        params={"status": status, "limit": limit if limit != PAGE else None},
        notice=notice_of(request),
        back=this_page(request),
    )


@router.post("/approvals/{request_id}/approve", dependencies=[Depends(csrf_checked)])
async def approve(request: Request, request_id: str, state: State, caller: Approver) -> Response:
    """Approve as the caller; the last approval needed applies the change."""
    fields = await form_fields(request)
    comment = fields.get("comment", "").strip() or None
    back = _back_to(fields.get("next"))
    try:
        decided = await run_in_threadpool(state.registry(caller).approve, request_id, comment)
    except LoopwrightError as refused:
        return _refused(request, refused, back)
    notice = "applied" if decided.status == "approved" else "approved"
    return redirect(request, _with_notice(back, notice))


@router.post("/approvals/{request_id}/reject", dependencies=[Depends(csrf_checked)])
async def reject(request: Request, request_id: str, state: State, caller: Approver) -> Response:
    """Reject as the caller, saying why (a comment is required); nothing changes."""
    fields = await form_fields(request)
    back = _back_to(fields.get("next"))
    try:
        reason = fields.get("comment", "")
        await run_in_threadpool(state.registry(caller).reject, request_id, reason)
    except LoopwrightError as refused:
        return _refused(request, refused, back)
    return redirect(request, _with_notice(back, "rejected"))


def _any_due(db: Database) -> bool:
    """Whether a pending request is past its expiry (the registry then marks it expired)."""
    r = t.approval_requests.c
    query = sa.select(r.id).where(r.status == "pending", r.expires_at < now_ms()).limit(1)
    with db.read() as conn:
        return conn.execute(query).first() is not None


def _requests_page(
    db: Database, status: str | None, offset: int, limit: int
) -> tuple[list[ApprovalRequest], int]:
    """One page of requests with ``status`` (None: any), newest first, and how many match: the
    registry's ``requests`` query (over requests whose version exists) paged in SQL."""
    r, v = t.approval_requests.c, t.model_versions.c
    query = sa.select(t.approval_requests).join(t.model_versions, v.id == r.version_id)
    count = sa.select(sa.func.count()).select_from(t.approval_requests)
    count = count.join(t.model_versions, v.id == r.version_id)
    if status is not None:
        query, count = query.where(r.status == status), count.where(r.status == status)
    query = query.order_by(r.created_at.desc(), r.id.desc()).offset(offset).limit(limit)
    with db.read() as conn:
        return load_requests(conn, conn.execute(query).all()), int(conn.execute(count).scalar_one())


def _refused(request: Request, refused: LoopwrightError, back: str) -> Response:
    """The registry's refusal as a page that links back to where the form was."""
    status = status_for(refused)
    title = {403: "Not allowed", 404: "Not found", 409: "Conflict"}.get(status, "Bad request")
    return render(
        request,
        "approvals/refused.html",
        status=status,
        title=title,
        message=str(refused),
        back=back,
    )


def this_page(request: Request) -> str:
    """This page's path and query without a notice (the forms' ``next``)."""
    query = [(k, v) for k, v in parse_qsl(request.url.query) if k != NOTICE_PARAM]
    return request.url.path + (f"?{urlencode(query)}" if query else "")


def _back_to(target: str | None) -> str:
    """Where a decision returns: a dashboard path only (never another site); else the list."""
    fallback = f"{UI_PREFIX}/approvals"
    if not target or any(c in target for c in "\\\r\n") or target.startswith("//"):
        return fallback
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not parts.path.startswith(f"{UI_PREFIX}/"):
        return fallback
    return target


def _with_notice(target: str, notice: str) -> str:
    parts = urlsplit(target)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != NOTICE_PARAM]
    query.append((NOTICE_PARAM, notice))
    return f"{parts.path}?{urlencode(query)}"
