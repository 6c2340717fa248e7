"""The steps of an approval request that do not depend on what it would change.

A request (a row of ``approval_requests``) points at a model version or a prompt version
(``subject_kind``); opening it, expiring it, checking who may decide it and recording a decision
work the same for both. The registry (:mod:`.approvals`) and the prompt registry
(:mod:`loopwright.prompts.approvals`) lock their own subject, then call these inside their write
transaction, and apply the change themselves once :func:`record_decision` says ``approved``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from .._ids import new_id
from ..errors import ApprovalNotAllowed, Conflict, InvalidInput
from ..governance.users import find_user, role_at_least
from ..store import schema as t
from ..store.audit import append_event
from .entities import ApprovalPolicy, ApprovalRequest, ApprovalRule

__all__ = [
    "Decisions",
    "check_decider",
    "expire_request",
    "is_due",
    "open_request",
    "record_decision",
]

_r = t.approval_requests.c


class Decisions:
    """``approve`` and ``reject`` of a service that decides its requests in ``_decide``."""

    def approve(self, request_id: str, comment: str | None = None) -> ApprovalRequest:
        """Approve as the acting user; the last approval needed applies the change."""
        return self._decide(request_id, "approve", comment)

    def reject(self, request_id: str, comment: str) -> ApprovalRequest:
        """Reject as the acting user, saying why; the request closes and nothing changes."""
        if not isinstance(comment, str) or not comment.strip():
            raise InvalidInput("a rejection needs a comment saying why (reject(request_id, '...'))")
        return self._decide(request_id, "reject", comment)

    def _decide(self, request_id: str, decision: str, comment: str | None) -> ApprovalRequest:
        raise NotImplementedError


def is_due(row: Any, now: int) -> bool:
    """Whether the pending request ``row`` is past its expiry."""
    return bool(row.status == "pending" and row.expires_at is not None and now > row.expires_at)


def expire_request(conn: sa.Connection, row: Any, *, actor: str, now: int) -> None:
    """Mark ``row`` expired (audited), unless another process resolved it first."""
    changed = conn.execute(
        t.approval_requests.update()
        .where(_r.id == row.id, _r.status == "pending")
        .values(status="expired", resolved_at=now)
    ).rowcount
    if changed != 1:
        return
    append_event(
        conn,
        actor=actor,
        action="approval.expire",
        subject_type="approval_request",
        subject_id=row.id,
        before={"status": "pending"},
        after={"status": "expired", "expires_at": row.expires_at},
    )


def open_request(
    conn: sa.Connection,
    *,
    actor: str,
    now: int,
    subject: Mapping[str, Any],
    rule: ApprovalRule,
    policy: ApprovalPolicy,
    comment: str | None,
    about: Mapping[str, Any],
    recorded: Mapping[str, Any] | None = None,
) -> str:
    """Open a request for ``rule.target`` on ``subject`` (the request's subject columns, e.g.
    ``{"version_id": ...}``); returns its id. A pending request for the same subject and target
    is returned instead of a new one. ``about`` names the subject in the audit event;
    ``recorded`` is the rule as stored (the rule plus action-specific options)."""
    action, _, target = rule.target.partition(":")
    target = target or action  # "traffic": the action and its target
    same_subject = [_r[column] == value for column, value in subject.items()]
    pending = conn.execute(
        sa.select(t.approval_requests).where(
            *same_subject, _r.action == action, _r.target == target, _r.status == "pending"
        )
    ).all()
    for row in pending:
        if not is_due(row, now):
            return str(row.id)
        expire_request(conn, row, actor=actor, now=now)
    request_id = new_id()
    stored = dict(recorded if recorded is not None else rule.to_dict())
    expires_at = now + policy.expires_after_s * 1000
    conn.execute(
        t.approval_requests.insert(),
        {
            **subject,
            "id": request_id,
            "action": action,
            "target": target,
            "status": "pending",
            "requested_by": actor,
            "comment": comment,
            "rule_json": json.dumps(stored, sort_keys=True),
            "created_at": now,
            "expires_at": expires_at,
            "resolved_at": None,
        },
    )
    append_event(
        conn,
        actor=actor,
        action="approval.request",
        subject_type="approval_request",
        subject_id=request_id,
        after={
            **about,
            "action": action,
            "target": target,
            "rule": stored,
            "comment": comment,
            "expires_at": expires_at,
        },
    )
    return request_id


def check_decider(
    conn: sa.Connection,
    actor: str,
    request: Any,
    version: Any,
    rule: ApprovalRule,
    decision: str,
) -> str:
    """The role of ``actor``, if they may make ``decision`` on ``request`` about ``version``
    (a version row with ``version`` and ``created_by``); ``ApprovalNotAllowed`` if not."""
    if decision == "approve" and actor == version.created_by:
        raise ApprovalNotAllowed(
            f"{actor!r} registered version {version.version} and cannot approve its "
            "promotion (separation of duties); another approver must approve it"
        )
    if decision == "approve" and actor == request.requested_by:
        raise ApprovalNotAllowed(
            f"{actor!r} opened request {request.id} and cannot approve it (separation of "
            "duties); another approver must approve it"
        )
    user = find_user(conn, actor)
    if user is None:
        raise ApprovalNotAllowed(
            f"{actor!r} is not a registered user and cannot decide approval requests; an "
            f"admin adds them with UserService.add({actor!r}, {rule.role!r})"
        )
    if user.disabled:
        raise ApprovalNotAllowed(f"user {actor!r} is disabled and cannot decide requests")
    if not role_at_least(user.role, rule.role):
        raise ApprovalNotAllowed(
            f"user {actor!r} has role {user.role!r}; deciding request {request.id} needs "
            f"role {rule.role!r} or higher (ask an admin to change the role, or another user)"
        )
    return user.role


def record_decision(
    conn: sa.Connection,
    *,
    actor: str,
    role: str,
    now: int,
    request: Any,
    rule: ApprovalRule,
    decision: str,
    comment: str | None,
) -> str:
    """Store ``actor``'s decision (audited) and close the request when it is decided; returns
    its status: ``pending`` (more approvals needed), ``approved`` (the caller applies the change
    in this transaction) or ``rejected``. Each user decides a request once (``Conflict``)."""
    d = t.approval_decisions.c
    earlier = conn.execute(
        sa.select(d.decision).where(d.request_id == request.id, d.actor == actor)
    ).scalar()
    if earlier is not None:
        raise Conflict(
            f"{actor!r} already decided approval request {request.id} ({earlier}); "
            "each user decides a request once"
        )
    conn.execute(
        t.approval_decisions.insert(),
        {
            "id": new_id(),
            "request_id": request.id,
            "actor": actor,
            "role": role,
            "decision": decision,
            "comment": comment,
            "created_at": now,
        },
    )
    approvals = conn.execute(
        sa.select(sa.func.count()).where(d.request_id == request.id, d.decision == "approve")
    ).scalar_one()
    done = decision == "reject" or approvals >= rule.approvals
    status = ("approved" if decision == "approve" else "rejected") if done else "pending"
    append_event(
        conn,
        actor=actor,
        action=f"approval.{decision}",
        subject_type="approval_request",
        subject_id=request.id,
        before={"status": "pending"},
        after={
            "status": status,
            "approvals": approvals,
            "needed": rule.approvals,
            "role": role,
            "comment": comment,
        },
    )
    if done:
        conn.execute(
            t.approval_requests.update()
            .where(_r.id == request.id)
            .values(status=status, resolved_at=now)
        )
    return status
