"""Approval requests: protected alias moves and stage transitions wait for enough approvals.

A model's :class:`~loopwright.registry.entities.ApprovalPolicy` names the protected targets
(``stage:Production``, ``alias:champion`` …). Asking for such a change opens a request that
records the rule in force; the change is applied, in the transaction of the last approval
needed, once ``rule.approvals`` users holding ``rule.role`` or higher have approved.

Rules of decision:

- the deciding user must exist in the users table, be enabled and hold the rule's role;
- separation of duties: neither whoever registered the version nor whoever opened the request
  may approve it (either may reject it);
- one decision per user per request; a rejection (its comment is required) closes the request
  and changes nothing;
- a request past ``expires_at`` cannot be decided: it is marked ``expired`` when touched or
  listed;
- if the version changed meanwhile so that the change no longer applies (deleted, or moved to a
  stage the target cannot be reached from), approving raises ``Conflict`` and changes nothing.

Asking again for the same version and target while a request is pending returns that request.

A ``traffic`` rule guards deployments rather than the registry: a version may take live traffic
once it holds a protected alias or stage or has an approved ``traffic`` request
(:meth:`ApprovalsMixin._traffic_clearance`); approving such a request changes nothing here.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from .._numbers import is_number
from ..errors import ApprovalExpired, Conflict, InvalidInput, NotFound, PermissionDenied
from ..store import schema as t
from ._approval_core import (
    Decisions,
    check_decider,
    expire_request,
    is_due,
    open_request,
    record_decision,
)
from ._base import check_alias, parse_stage
from ._changes import ChangeBase, check_transition
from ._queries import load_requests, lock_model, model_row, policy_of, request_rule, resolve_row
from .entities import ApprovalPolicy, ApprovalRequest, ApprovalRule, Stage

__all__ = ["ApprovalsMixin"]

_r = t.approval_requests.c


class ApprovalsMixin(ChangeBase, Decisions):
    """List, open, approve and reject approval requests."""

    def requests(
        self, status: str | None = "pending", model: str | None = None
    ) -> list[ApprovalRequest]:
        """Requests with ``status`` (None: any), oldest first, optionally for one model.

        Pending requests past their expiry are marked expired first.
        """
        statuses = ("pending", "approved", "rejected", "expired", "cancelled")
        if status is not None and status not in statuses:
            raise InvalidInput(f"status {status!r} is not one of {', '.join(statuses)} or None")
        self._expire_due()
        v = t.model_versions.c
        query = sa.select(t.approval_requests).join(t.model_versions, v.id == _r.version_id)
        if status is not None:
            query = query.where(_r.status == status)
        with self.db.read() as conn:
            if model is not None:
                query = query.where(v.model_id == model_row(conn, model).id)
            rows = conn.execute(query.order_by(_r.created_at, _r.id)).all()
            return load_requests(conn, rows)

    def get_request(self, request_id: str) -> ApprovalRequest:
        """One request with its decisions (marked expired first if it is past its expiry)."""
        with self.db.read() as conn:
            row = self._request_row(conn, request_id)
        if self._is_due(row):
            self._expire_due(request_id)
        with self.db.read() as conn:
            return load_requests(conn, [self._request_row(conn, request_id)])[0]

    # --- internals ---------------------------------------------------------------------------

    def _request_row(self, conn: sa.Connection, request_id: str) -> Any:
        row = conn.execute(sa.select(t.approval_requests).where(_r.id == request_id)).first()
        if row is None:
            raise NotFound(
                f"approval request {request_id!r} does not exist; requests() lists pending ones"
            )
        if row.subject_kind != "model":
            raise NotFound(
                f"approval request {request_id!r} is about a {row.subject_kind}, not a model "
                f"version; decide it with client.prompts.approve / reject"
            )
        return row

    def _is_due(self, row: Any) -> bool:
        return is_due(row, self._now())

    def _expire_due(self, request_id: str | None = None) -> None:
        """Mark pending requests past their expiry (all, or the one given) expired."""
        query = sa.select(_r.id).where(
            _r.subject_kind == "model", _r.status == "pending", _r.expires_at < self._now()
        )
        if request_id is not None:
            query = query.where(_r.id == request_id)
        with self.db.read() as conn:
            if not conn.execute(query.limit(1)).first():
                return
        v = t.model_versions.c
        with self.db.write() as conn:
            # Lock the models first, in one order: registry writers lock the model, then append
            # to the audit log, so taking a model lock after an audit append could deadlock.
            model_ids = conn.execute(
                sa.select(v.model_id)
                .where(v.id.in_(query.with_only_columns(_r.version_id)))
                .distinct()
            ).scalars()
            for model_id in sorted(model_ids):
                lock_model(conn, model_id)
            for row in conn.execute(query.with_only_columns(t.approval_requests)).all():
                self._expire(conn, row)

    def _expire(self, conn: sa.Connection, row: Any) -> None:
        expire_request(conn, row, actor=self.actor, now=self._now())

    def _open_request(
        self,
        conn: sa.Connection,
        model: Any,
        version: Any,
        *,
        rule: ApprovalRule,
        policy: ApprovalPolicy,
        comment: str | None,
        archive_existing: bool = False,
    ) -> str:
        """Open a request for ``rule.target`` (``stage:X`` / ``alias:Y``); returns its id.

        A pending request for the same version and target is returned instead of a new one.
        """
        recorded: dict[str, Any] = rule.to_dict()
        if rule.target.startswith("stage:"):
            recorded["archive_existing"] = archive_existing
        return open_request(
            conn,
            actor=self.actor,
            now=self._now(),
            subject={"version_id": version.id},
            rule=rule,
            policy=policy,
            comment=comment,
            about={"model": model.name, "version": version.version},
            recorded=recorded,
        )

    def _decide(self, request_id: str, decision: str, comment: str | None) -> ApprovalRequest:
        with self.db.write() as conn:
            found = self._request_row(conn, request_id)
            version_model = conn.execute(
                sa.select(t.model_versions.c.model_id).where(
                    t.model_versions.c.id == found.version_id
                )
            ).scalar_one()
            model = lock_model(conn, version_model)  # then re-read: the row may have moved on
            request = self._request_row(conn, request_id)
            if request.status != "pending":
                raise Conflict(
                    f"approval request {request_id} is {request.status}; only pending requests "
                    "can be decided"
                )
            expired = self._is_due(request)
            if expired:
                self._expire(conn, request)
            else:
                self._record_decision(conn, model, request, decision, comment)
        if expired:  # raised after the commit, so the request stays marked expired
            raise ApprovalExpired(
                f"approval request {request_id} expired; ask again to open a new request"
            )
        return self.get_request(request_id)

    def _record_decision(
        self, conn: sa.Connection, model: Any, request: Any, decision: str, comment: str | None
    ) -> None:
        rule, archive_existing = request_rule(
            request.rule_json, f"{request.action}:{request.target}"
        )
        version = conn.execute(
            sa.select(t.model_versions).where(t.model_versions.c.id == request.version_id)
        ).one()
        role = check_decider(conn, self.actor, request, version, rule, decision)
        if decision == "approve":
            self._check_applicable(model, version, request)
        status = record_decision(
            conn,
            actor=self.actor,
            role=role,
            now=self._now(),
            request=request,
            rule=rule,
            decision=decision,
            comment=comment,
        )
        if status != "approved":
            return
        note = f"approved request {request.id}"
        if request.action == "alias":
            self._move_alias(conn, model, request.target, version, note)
        elif request.action == "stage":
            self._apply_stage(
                conn,
                model,
                version,
                Stage(request.target),
                archive_existing=archive_existing,
                comment=note,
            )

    def _traffic_clearance(
        self, conn: sa.Connection, name: str, ref: str, *, live: bool = True
    ) -> tuple[int, str | None]:
        """The version ``ref`` names now (as ``resolve`` reads it) and, if it may not take live
        traffic, the id of the pending ``traffic`` approval request for it (opened now, or the
        one already open); None when it may (or ``live`` is false: a shadow answers nobody).

        Cleared are: any version when the model's policy has no ``traffic`` rule; a reference
        that follows a protected alias or stage (``@champion``, ``Production``); a version
        holding a protected alias or stage now; a version with an approved ``traffic`` request.
        A live reference following an unprotected alias or stage, or ``latest``, is refused
        (PermissionDenied): it could later move to a version nobody cleared.
        Call inside the write transaction of the change, which must not be applied (but
        committed, so the request stays) when a request id comes back.
        """
        model = model_row(conn, name, lock=True)
        row = resolve_row(conn, model, ref)
        policy = policy_of(model)
        rule = policy.rule_for("traffic")
        followed = _followed(ref)
        if not live or rule is None or policy.rule_for(followed) is not None:
            return row.version, None
        if not is_number(ref):
            # An unprotected alias, a stage or `latest` moves without approval, and live
            # traffic would follow it to a version nobody cleared.
            protected = ", ".join(r.target for r in policy.rules if r.target != "traffic")
            raise PermissionDenied(
                f"live traffic to {name!r} may follow only what its approval policy protects "
                f"({protected or 'nothing'}) or a pinned version: {ref!r} can move to a version "
                f"nobody approved for traffic. Pin the version (models:/{name}/{row.version}) "
                "or protect the alias or stage (loopwright models policy)"
            )
        al = t.model_aliases.c
        aliases = conn.execute(sa.select(al.alias).where(al.version_id == row.id)).scalars()
        held = [f"alias:{alias}" for alias in aliases] + [f"stage:{row.stage}"]
        approved = conn.execute(
            sa.select(_r.id).where(
                _r.version_id == row.id, _r.action == "traffic", _r.status == "approved"
            )
        ).first()
        if approved is not None or any(policy.rule_for(target) for target in held):
            return row.version, None
        return row.version, self._open_request(
            conn, model, row, rule=rule, policy=policy, comment="live traffic in a deployment"
        )

    def _promotion_alias(
        self, conn: sa.Connection, name: str, alias: str, ref: str, comment: str
    ) -> tuple[int, str | None]:
        """Point ``alias`` of model ``name`` at the version ``ref`` names now, inside the write
        transaction of a deployment's promotion (so it moves only if the promotion is stored):
        the version and, when the policy protects the alias, the id of the pending request
        opened (or found) instead of moving it. An alias there already changes nothing.
        """
        alias = check_alias(alias)
        model = model_row(conn, name, lock=True)
        target = resolve_row(conn, model, ref)
        al = t.model_aliases.c
        current = conn.execute(
            sa.select(al.version_id).where(al.model_id == model.id, al.alias == alias)
        ).scalar()
        if current == target.id:
            return target.version, None
        policy = policy_of(model)
        rule = policy.rule_for(f"alias:{alias}")
        if rule is not None:
            request_id = self._open_request(
                conn, model, target, rule=rule, policy=policy, comment=comment
            )
            return target.version, request_id
        self._move_alias(conn, model, alias, target, comment)
        return target.version, None

    @staticmethod
    def _check_applicable(model: Any, version: Any, request: Any) -> None:
        if version.status == "DELETED":
            raise Conflict(
                f"version {version.version} of model {model.name!r} was deleted after request "
                f"{request.id} was opened; the request cannot be approved (reject it)"
            )
        if request.action == "stage":
            try:
                check_transition(
                    Stage(version.stage), Stage(request.target), model.name, version.version
                )
            except Conflict as exc:
                raise Conflict(
                    f"request {request.id} can no longer be applied: {exc.message}; reject it "
                    "and ask again"
                ) from None


def _followed(ref: str) -> str:
    """The policy target a reference follows: ``alias:x`` for ``@x`` or ``x``, ``stage:S`` for a
    stage; ``""`` (no rule has it) for a version number or ``latest``."""
    if is_number(ref) or ref.lower() == "latest":
        return ""
    if ref.lower() in {"none", "staging", "production", "archived"}:
        return f"stage:{parse_stage(ref).value}"
    return f"alias:{ref.removeprefix('@')}"
