"""``/ui/audit``: the audit log, newest first, filtered and paged on the server, with the hash
chain's verification status.

Verifying walks every event (O(all events)), so a page view verifies only a short chain itself;
a longer one is verified on the "Verify chain" button (``/ui/audit/verify``) and the page shows
the last result with when it was taken and the head it reached: events appended since are not
covered by it, and the page says so.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from fastapi import APIRouter, Request
from fastapi.responses import Response

from ..._ids import now_ms
from ...errors import InvalidInput
from ...store import schema as t
from ...store.audit import AuditEvent, ChainReport, verify_chain
from ..api._deps import State, Viewer
from ..auth import UI_PREFIX
from ._page import render
from ._paging import paging

if TYPE_CHECKING:
    from ...store.database import Database
    from ._paging import Paging

__all__ = ["INLINE_VERIFY", "router"]

router = APIRouter(prefix=UI_PREFIX, include_in_schema=False)

INLINE_VERIFY = 2_000
"""Up to this many events a page view verifies the chain itself (a few milliseconds)."""
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
    return _page(request, state, caller.user, verify=False)


@router.get("/audit/verify")
def audit_verified(request: Request, state: State, caller: Viewer) -> Response:
    """The audit page after verifying the whole chain now."""
    return _page(request, state, caller.user, verify=True)


def _page(request: Request, state: Any, user: str, *, verify: bool) -> Response:
    query = request.query_params
    filters = _filters(query)
    page = paging(query.get("offset"), query.get("limit"))
    found, more = _events(state.store.db, filters, page)
    head = _head_seq(state.store.db)
    check: Check | None = getattr(request.app.state, "lw_ui_audit_check", None)
    how = "kept"
    # No head yet: no event, or the head record was removed (then the walk says so).
    if verify or head is None or head <= INLINE_VERIFY:
        check = Check(verify_chain(state.store.db), now_ms(), user)
        how = "button" if verify else "view"
        if verify:
            request.app.state.lw_ui_audit_check = check
    params = {k: v for k, v in query.items() if k in (*_FIELDS, "since", "until", "limit")}
    return render(
        request,
        "audit/events.html",
        events=found,
        more=more,
        offset=page.offset,
        limit=page.limit,
        params=params,
        check=check,
        head=head,
        how=how,
    )


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
    found = [_event(row) for row in rows[: page.limit]]
    return found, len(rows) > page.limit


def _event(row: Any) -> AuditEvent:
    return AuditEvent(
        seq=row.seq,
        id=row.id,
        timestamp=row.timestamp,
        actor=row.actor,
        action=row.action,
        subject_type=row.subject_type,
        subject_id=row.subject_id,
        before=json.loads(row.before_json) if row.before_json else None,
        after=json.loads(row.after_json) if row.after_json else None,
        prev_hash=row.prev_hash,
        hash=row.hash,
    )


def _head_seq(db: Database) -> int | None:
    """The newest event's number as the chain's head records it (None: no event yet)."""
    with db.read() as conn:
        found = conn.execute(sa.select(t.audit_head.c.seq).where(t.audit_head.c.id == 1)).scalar()
    return None if found is None else int(found)
