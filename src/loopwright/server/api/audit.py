"""``/api/v1/audit``: read the hash-chained audit log and verify it."""

from __future__ import annotations

from fastapi import APIRouter, Query

from ...store.audit import MAX_EVENTS, events, verify_chain
from ._deps import PREFIX, State, Viewer
from ._schemas import AuditEventOut, ChainReportOut

__all__ = ["router"]

router = APIRouter(prefix=PREFIX, tags=["audit"])
_NO_NUL = r"^[^\x00]*$"  # PostgreSQL cannot compare with a string holding NUL


@router.get("/audit/events")
def list_events(
    state: State,
    _: Viewer,
    subject_type: str | None = Query(default=None, max_length=50, pattern=_NO_NUL),
    subject_id: str | None = Query(default=None, max_length=300, pattern=_NO_NUL),
    actor: str | None = Query(default=None, max_length=200, pattern=_NO_NUL),
    limit: int | None = Query(default=None, ge=1, le=MAX_EVENTS),
) -> list[AuditEventOut]:
    """Events in order of appending (the newest ``limit`` of them), optionally filtered."""
    found = events(
        state.store.db,
        subject_type=subject_type,
        subject_id=subject_id,
        actor=actor,
        limit=limit,
    )
    return [AuditEventOut.of(e) for e in found]


@router.get("/audit/verify")
def verify(state: State, _: Viewer) -> ChainReportOut:
    """Recompute the chain; ``ok`` is false and ``broken_seq`` names the first tampered event."""
    return ChainReportOut.of(verify_chain(state.store.db))
