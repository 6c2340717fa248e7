"""``/ui/audit``: the audit log, newest first, filtered and paged on the server, with the hash
chain's verification status.

Verifying walks every event (O(all events)), so a page view verifies only a short chain itself;
a longer one is verified on the "Verify chain" button (a CSRF-checked POST to
``/ui/audit/verify`` that redirects back to the page) and the page shows the last result with
when it was taken and the head it reached: events appended since are not covered by it, and the
page says so. A check younger than ``REUSE_MS`` is reused rather than walked again, so repeating
the button cannot keep the server walking the chain.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from ..._ids import now_ms
from ...errors import InvalidInput
from ...store import schema as t
from ...store.audit import AuditEvent, ChainReport, event_of, verify_chain
from ..api._deps import State, Viewer
from ..auth import UI_PREFIX
from ._page import csrf_checked, form_fields, redirect, render, with_query
from ._paging import paging

if TYPE_CHECKING:
    from ...store.database import Database
    from ._paging import Paging

__all__ = ["INLINE_VERIFY", "REUSE_MS", "router"]

router = APIRouter(prefix=UI_PREFIX, include_in_schema=False)

INLINE_VERIFY = 2_000
"""Up to this many events a page view verifies the chain itself (a few milliseconds)."""
REUSE_MS = 10_000
"""A button's check younger than this is shown again instead of walking the chain anew."""
_FIELDS = {"actor": 200, "action": 100, "subject_type": 50, "subject_id": 300}


@dataclass(frozen=True)
class Check:
    """One verification of the chain: its report, when and for whom it ran."""

    report: ChainReport
    at: int
    by: str


@dataclass(frozen=True)
class Filters:
    actor: str | None
    action: str | None
    subject_type: str | None
    subject_id: str | None
    since: int | None  # ms, inclusive
    until: int | None  # ms, exclusive


@router.get("/audit")
def audit(request: Request, state: State, caller: Viewer) -> Response:
    query = request.query_params
    filters = _filters(query)
    page = paging(query.get("offset"), query.get("limit"))
    found, more = _events(state.store.db, filters, page)
    head = _head_seq(state.store.db)
    check: Check | None = _kept(request)
    how = "kept" if check is None or now_ms() - check.at >= REUSE_MS else "button"
    # A missing head record while events exist is itself a break the walk reports; whether
    # this view walks is decided by the newest event's number either way.
    newest = head if head is not None else _max_seq(state.store.db)
    if newest is None or newest <= INLINE_VERIFY:
        check = Check(verify_chain(state.store.db), now_ms(), caller.user)
        how = "view"
    return render(
        request,
        "audit/events.html",
        events=found,
        more=more,
        offset=page.offset,
        limit=page.limit,
        params=_params(query),
        check=check,
        head=newest,
        how=how,
    )


@router.post("/audit/verify", dependencies=[Depends(csrf_checked)])
async def audit_verify(request: Request, state: State, caller: Viewer) -> Response:
    """Verify the whole chain now (or reuse a check younger than ``REUSE_MS``), then show the
    audit page again with the form's filters. Viewer role: it changes nothing stored."""
    fields = await form_fields(request)
    kept = _kept(request)
    if kept is None or now_ms() - kept.at >= REUSE_MS:
        report = await run_in_threadpool(verify_chain, state.store.db)
        request.app.state.lw_ui_audit_check = Check(report, now_ms(), caller.user)
    kept_filters = dict(parse_qsl(fields.get("filters", "")))
    return redirect(request, with_query(f"{UI_PREFIX}/audit", _params(kept_filters)))


def _kept(request: Request) -> Check | None:
    kept = getattr(request.app.state, "lw_ui_audit_check", None)
    return kept if isinstance(kept, Check) else None


def _params(query: Any) -> dict[str, str]:
    """The filters and page size to carry over (links, the verify form, its redirect)."""
    return {k: str(v) for k, v in query.items() if k in (*_FIELDS, "since", "until", "limit") and v}


def _text(query: Any, name: str) -> str | None:
    value = query.get(name)
    if value is None or not value.strip():
        return None
    value = value.strip()
    if len(value) > _FIELDS[name] or "\x00" in value:
        raise InvalidInput(f"the {name} filter is no valid {name} (at most {_FIELDS[name]} chars)")
    return str(value)


def _moment(query: Any, name: str) -> int | None:
    """``YYYY-MM-DD`` or ``YYYY-MM-DDTHH:MM[:SS]`` (UTC) as epoch milliseconds."""
    value = query.get(name)
    if value is None or not value.strip():
        return None
    try:
        moment = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        raise InvalidInput(
            f"{name}={value!r} is no time: write 2026-12-05 or 2026-12-05T14:30 (UTC)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return int(moment.timestamp() * 1000)


def _filters(query: Any) -> Filters:
    filters = Filters(
        actor=_text(query, "actor"),
        action=_text(query, "action"),
        subject_type=_text(query, "subject_type"),
        subject_id=_text(query, "subject_id"),
        since=_moment(query, "since"),
        until=_moment(query, "until"),
    )
    if filters.since is not None and filters.until is not None and filters.since >= filters.until:
        raise InvalidInput(
            f"since ({query.get('since')}) is not before until ({query.get('until')}): "
            "the time range is empty; swap them"
        )
    return filters


def _events(db: Database, filters: Filters, page: Paging) -> tuple[list[AuditEvent], bool]:
    """A page of events, newest first, and whether older ones match too."""
    a = t.audit_events.c
    query = sa.select(t.audit_events)
    for column, value in (
        (a.actor, filters.actor),
        (a.subject_type, filters.subject_type),
        (a.subject_id, filters.subject_id),
    ):
        if value is not None:
            query = query.where(column == value)
    if filters.action is not None:
        # "model_version" finds every action on model versions; a full name finds itself.
        query = query.where(
            sa.or_(
                a.action == filters.action,
                a.action.startswith(f"{filters.action}.", autoescape=True),
            )
        )
    if filters.since is not None:
        query = query.where(a.timestamp >= filters.since)
    if filters.until is not None:
        query = query.where(a.timestamp < filters.until)
    query = query.order_by(a.seq.desc()).offset(page.offset).limit(page.limit + 1)
    with db.read() as conn:
        rows = conn.execute(query).all()
    found = [event_of(row) for row in rows[: page.limit]]
    return found, len(rows) > page.limit


def _head_seq(db: Database) -> int | None:
    """The newest event's number as the chain's head records it (None: no event yet)."""
    with db.read() as conn:
        found = conn.execute(sa.select(t.audit_head.c.seq).where(t.audit_head.c.id == 1)).scalar()
    return None if found is None else int(found)


def _max_seq(db: Database) -> int | None:
    """The newest event's number as the events table holds it (None: no event)."""
    with db.read() as conn:
        found = conn.execute(sa.select(sa.func.max(t.audit_events.c.seq))).scalar()
    return None if found is None else int(found)
