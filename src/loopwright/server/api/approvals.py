"""``/api/v1/approvals``: list, read, approve and reject approval requests.

Decisions are made as the caller: the registry checks their role in the users table and
separation of duties (no approving your own registration or request) exactly as it does
embedded.
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter

from ._deps import PREFIX, Approver, State, Viewer
from ._schemas import ApprovalRequestOut, DecisionIn, RejectIn

__all__ = ["router"]

router = APIRouter(prefix=PREFIX, tags=["approvals"])

Status = Literal["pending", "approved", "rejected", "expired", "cancelled", "any"]


@router.get("/approvals")
def list_requests(
    state: State, caller: Viewer, status: Status = "pending", model: str | None = None
) -> list[ApprovalRequestOut]:
    """Requests with ``status`` (``any`` for all), oldest first, optionally for one model."""
    found = state.registry(caller).requests(None if status == "any" else status, model)
    return [ApprovalRequestOut.of(r) for r in found]


@router.get("/approvals/{request_id}")
def get_request(request_id: str, state: State, caller: Viewer) -> ApprovalRequestOut:
    return ApprovalRequestOut.of(state.registry(caller).get_request(request_id))


@router.post("/approvals/{request_id}/approve")
def approve(
    request_id: str, body: DecisionIn, state: State, caller: Approver
) -> ApprovalRequestOut:
    """Approve as the caller; the last approval needed applies the change."""
    return ApprovalRequestOut.of(state.registry(caller).approve(request_id, body.comment))


@router.post("/approvals/{request_id}/reject")
def reject(request_id: str, body: RejectIn, state: State, caller: Approver) -> ApprovalRequestOut:
    """Reject as the caller, saying why; nothing changes."""
    return ApprovalRequestOut.of(state.registry(caller).reject(request_id, body.comment))
