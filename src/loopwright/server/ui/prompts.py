"""``/ui/prompts``: prompts, their versions and aliases, a version's template, diffs between
versions; ``/ui/prompt-approvals``: the requests protected alias moves open, with Approve/Reject.

Every read goes through the prompt registry's service as ``/api/v1/prompts`` builds it, acting
for the caller; a decision calls the same ``approve``/``reject`` as ``POST
/api/v1/prompt-approvals/{id}/approve|reject`` (the service checks the rule's role and
separation of duties, and audits under the caller's name). Templates are shown as text (the
page's autoescaping makes ``<script>`` in a template plain characters).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Literal, get_args

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from ..._numbers import is_number
from ...errors import InvalidInput, LoopwrightError
from ..api._deps import Approver, State, Viewer
from ..auth import UI_PREFIX
from ._filter_text import link_filter
from ._page import csrf_checked, form_fields, redirect, render
from ._paging import paging
from .approvals import _back_to, _refused, _with_notice, notice_of, this_page

if TYPE_CHECKING:
    from ...governance.tokens import Identity
    from ...prompts.service import PromptService
    from .._state import ServerState

__all__ = ["diff_lines", "router"]

router = APIRouter(prefix=UI_PREFIX, include_in_schema=False)

Status = Literal["pending", "approved", "rejected", "expired", "cancelled", "any"]
_MAX_QUERY = 200


def _service(state: ServerState, caller: Identity) -> PromptService:
    from ...prompts.service import PromptService

    return PromptService(state.store, actor=caller.user)


def _ref(text: str) -> int | str:
    return int(text) if is_number(text) and len(text) < 10 else text


@router.get("/prompts")
def prompts(request: Request, state: State, caller: Viewer) -> Response:
    """Prompts by name (``?q=`` a part of the name), one page at a time."""
    q = request.query_params.get("q", "").strip()
    if len(q) > _MAX_QUERY:
        raise InvalidInput(f"the search text is {len(q)} characters; at most {_MAX_QUERY}")
    page = paging(request.query_params.get("offset"), request.query_params.get("limit"))
    service = _service(state, caller)
    found = service.search(q or None, limit=page.limit + 1, offset=page.offset)
    pending = len(service.requests("pending"))
    return render(
        request,
        "prompts/list.html",
        prompts=found[: page.limit],
        more=len(found) > page.limit,
        q=q,
        offset=page.offset,
        limit=page.limit,
        params={"q": q or None, "limit": page.limit if page.limit != 50 else None},
        pending=pending,
    )


@router.get("/prompt-approvals")
def prompt_approvals(
    request: Request, state: State, caller: Viewer, status: Status = "pending"
) -> Response:
    """Requests about prompt versions with ``status`` (``any``: all), oldest first."""
    page = paging(request.query_params.get("offset"), request.query_params.get("limit"))
    found = _service(state, caller).requests(None if status == "any" else status)
    return render(
        request,
        "prompts/approvals.html",
        requests=found[page.offset : page.offset + page.limit],
        offset=page.offset,
        limit=page.limit,
        total=len(found),
        params={"status": status, "limit": page.limit if page.limit != 50 else None},
        selected=status,
        statuses=get_args(Status),
        notice=notice_of(request),
        back=this_page(request),
    )


@router.post("/prompt-approvals/{request_id}/approve", dependencies=[Depends(csrf_checked)])
async def approve(request: Request, request_id: str, state: State, caller: Approver) -> Response:
    """Approve as the caller; the last approval needed moves the alias."""
    fields = await form_fields(request)
    comment = fields.get("comment", "").strip() or None
    back = _back_to(fields.get("next") or f"{UI_PREFIX}/prompt-approvals")
    try:
        decided = await run_in_threadpool(_service(state, caller).approve, request_id, comment)
    except LoopwrightError as refused:
        return _refused(request, refused, back)
    notice = "applied" if decided.status == "approved" else "approved"
    return redirect(request, _with_notice(back, notice))


@router.post("/prompt-approvals/{request_id}/reject", dependencies=[Depends(csrf_checked)])
async def reject(request: Request, request_id: str, state: State, caller: Approver) -> Response:
    """Reject as the caller, saying why (a comment is required); nothing moves."""
    fields = await form_fields(request)
    back = _back_to(fields.get("next") or f"{UI_PREFIX}/prompt-approvals")
    try:
        reason = fields.get("comment", "")
        await run_in_threadpool(_service(state, caller).reject, request_id, reason)
    except LoopwrightError as refused:
        return _refused(request, refused, back)
    return redirect(request, _with_notice(back, "rejected"))


@router.get("/prompts/{name}")
def prompt(request: Request, name: str, state: State, caller: Viewer) -> Response:
    """A prompt: its aliases, versions (newest first), open requests and a diff picker."""
    service = _service(state, caller)
    found = service.get(name)
    versions = list(reversed(service.versions(name)))
    return render(
        request,
        "prompts/prompt.html",
        prompt=found,
        versions=versions,
        requests=service.requests("pending", name),
        rules=[r.target for r in found.policy.rules],
        notice=notice_of(request),
        back=this_page(request),
    )


@router.get("/prompts/{name}/versions/{version}")
def version(request: Request, name: str, version: str, state: State, caller: Viewer) -> Response:
    """One version: its template as text or chat messages, variables, model config, digest."""
    found = _service(state, caller).resolve(name, _ref(version))
    return render(
        request,
        "prompts/version.html",
        version=found,
        model_config=_json(found.model_config),
        response_format=_json(found.response_format),
        traces_filter=link_filter("prompt_version", f"{found.name}/{found.version}"),
    )


@router.get("/prompts/{name}/diff")
def diff(request: Request, name: str, state: State, caller: Viewer) -> Response:
    """The unified diff from version ``?a=`` to ``?b=`` (numbers or aliases)."""
    a, b = (request.query_params.get(k, "").strip() for k in ("a", "b"))
    if not a or not b or len(a) > 100 or len(b) > 100:
        raise InvalidInput("a diff needs two versions: ?a=1&b=2 (numbers or aliases)")
    service = _service(state, caller)
    old, new = service.resolve(name, _ref(a)), service.resolve(name, _ref(b))
    text = service.diff(name, old.version, new.version)
    return render(
        request,
        "prompts/diff.html",
        prompt=service.get(name),
        old=old,
        new=new,
        lines=diff_lines(text),
        versions=[v.version for v in reversed(service.versions(name))],
    )


def diff_lines(text: str) -> list[tuple[str, str]]:
    """A unified diff's lines with their class: ``diff-add``, ``diff-del``, ``diff-chg``
    (a hunk or file header) or ``""`` (context)."""
    lines = []
    for line in text.splitlines():
        if line.startswith(("+++", "---", "@@")):
            kind = "diff-chg"
        elif line.startswith("+"):
            kind = "diff-add"
        elif line.startswith("-"):
            kind = "diff-del"
        else:
            kind = ""
        lines.append((kind, line))
    return lines


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, indent=2, sort_keys=True, default=str)
