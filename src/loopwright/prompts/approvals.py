"""Prompt aliases under approval: the registry's policy, requests and rules, for prompts.

A prompt's :class:`~loopwright.registry.entities.ApprovalPolicy` protects aliases
(``alias:production`` ...). Moving a protected alias opens an approval request (a row of the
registry's ``approval_requests`` of kind ``prompt``) and moves nothing; the alias moves in the
transaction of the last approval needed. The rules are the registry's, through the same code
(:mod:`loopwright.registry._approval_core`): approvers hold the rule's role, neither whoever
registered the version nor whoever asked may approve it, one decision per user, a rejection says
why, an expired request cannot be decided. Deleting a protected alias is for enabled admins.
Every move, request and decision is in the audit log.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from ..errors import ApprovalExpired, Conflict, InvalidInput, NotFound, PermissionDenied
from ..governance.users import find_user
from ..registry._approval_core import (
    Decisions,
    check_decider,
    expire_request,
    is_due,
    open_request,
    record_decision,
)
from ..registry._base import check_alias
from ..registry._queries import load_requests, request_rule
from ..registry.entities import ApprovalRequest
from ..store import schema as t
from ..store.named import Audited
from ..store.upsert import upsert
from ._gates import require_passed_gate
from ._rows import alias_row, load_versions, no_alias, policy_of, prompt_row, version_row
from .entities import PromptAliasChange

__all__ = ["PromptApprovals"]

_r, _a, _v = t.approval_requests.c, t.prompt_aliases.c, t.prompt_versions.c
_STATUSES = ("pending", "approved", "rejected", "expired", "cancelled")


class PromptApprovals(Audited, Decisions):
    """Set and delete prompt aliases; list, approve and reject the requests protected moves
    open."""

    _subject_type = "prompt"

    def set_alias(
        self, name: str, alias: str, version: int, *, comment: str | None = None
    ) -> PromptAliasChange:
        """Point ``alias`` at ``version``, or open an approval request if the prompt's policy
        protects ``alias:<alias>``; the result says which (``applied``)."""
        alias = check_alias(alias)
        with self.db.write() as conn:
            prompt = prompt_row(conn, name, lock=True)
            target = version_row(conn, prompt, version)
            held = alias_row(conn, prompt, alias)
            current = None if held is None else held.id
            policy = policy_of(prompt)
            rule = policy.rule_for(f"alias:{alias}")
            request = None
            if current != target.id and rule is not None:
                recorded, about = None, {"prompt": name, "version": target.version}
                if rule.gate is not None:  # the version's evaluation gate first (_gates.py)
                    about["gate_result_id"] = require_passed_gate(conn, name, target, rule.gate)
                    recorded = {**rule.to_dict(), "gate_result_id": about["gate_result_id"]}
                request_id = open_request(
                    conn,
                    actor=self._actor_name(),
                    now=self._clock(),
                    subject={"subject_kind": "prompt", "prompt_version_id": target.id},
                    rule=rule,
                    policy=policy,
                    comment=comment,
                    about=about,
                    recorded=recorded,
                )
                request = self._requests(conn, _r.id == request_id)[0]
            elif current != target.id:
                self._move_alias(conn, prompt, alias, target, comment)
            loaded = load_versions(conn, [target], name)[0]
            return PromptAliasChange(loaded, request)

    def delete_alias(self, name: str, alias: str) -> None:
        """Remove ``alias``; a protected alias may be deleted only by an enabled admin."""
        with self.db.write() as conn:
            prompt = prompt_row(conn, name, lock=True)
            held = alias_row(conn, prompt, alias)
            if held is None:
                raise no_alias(conn, prompt, alias)
            if policy_of(prompt).rule_for(f"alias:{alias}") is not None:
                self._require_admin(
                    conn,
                    f"alias {alias!r} of prompt {name!r} is protected by its approval policy; "
                    "only an enabled admin may delete it (moving it with set_alias opens an "
                    "approval request instead)",
                )
            conn.execute(
                t.prompt_aliases.delete().where(_a.prompt_id == prompt.id, _a.alias == alias)
            )
            about = {"prompt": name, "alias": alias}
            self._audit(
                conn,
                "prompt_alias.delete",
                f"{prompt.id}:{alias}",
                before={**about, "version": held.version},
                kind="prompt_alias",
            )

    def requests(
        self, status: str | None = "pending", prompt: str | None = None
    ) -> list[ApprovalRequest]:
        """Requests about prompt versions with ``status`` (None: any), oldest first,
        optionally of one prompt. Pending requests past their expiry are marked expired first."""
        if status is not None and status not in _STATUSES:
            raise InvalidInput(f"status {status!r} is not one of {', '.join(_STATUSES)} or None")
        self._expire_due()
        terms = [] if status is None else [_r.status == status]
        with self.db.read() as conn:
            if prompt is not None:
                prompt_id = prompt_row(conn, prompt).id
                terms.append(
                    _r.prompt_version_id.in_(sa.select(_v.id).where(_v.prompt_id == prompt_id))
                )
            return self._requests(conn, *terms)

    def get_request(self, request_id: str) -> ApprovalRequest:
        """One request about a prompt version, with its decisions."""
        self._expire_due(request_id)
        with self.db.read() as conn:
            self._request_row(conn, request_id)
            return self._requests(conn, _r.id == request_id)[0]

    # --- internals ---------------------------------------------------------------------------

    def _require_admin(self, conn: sa.Connection, refusal: str) -> None:
        user = find_user(conn, self._actor_name())
        if user is None or user.disabled or user.role != "admin":
            raise PermissionDenied(refusal)

    def _require_admin_to_delete(self, conn: sa.Connection, prompt: Any) -> None:
        """Refuse deleting ``prompt`` to all but enabled admins while it holds a protected alias,
        has a policy of its own or pending requests: deleting and recreating it would otherwise
        drop that policy (for the default one) or those requests, even for an alias not held
        yet."""
        held = conn.execute(sa.select(_a.alias).where(_a.prompt_id == prompt.id)).scalars()
        policy = policy_of(prompt)
        protected = sorted(a for a in held if policy.rule_for(f"alias:{a}") is not None)
        pending = conn.execute(
            sa.select(sa.func.count()).where(
                _r.subject_kind == "prompt",
                _r.status == "pending",
                _r.prompt_version_id.in_(sa.select(_v.id).where(_v.prompt_id == prompt.id)),
            )
        ).scalar_one()
        reasons = []
        if protected:
            reasons.append(f"holds protected aliases ({', '.join(protected)})")
        if prompt.approval_policy_json is not None:
            reasons.append("has an approval policy of its own")
        if pending:
            reasons.append(f"has {pending} pending approval request(s)")
        if reasons:
            self._require_admin(
                conn,
                f"prompt {prompt.name!r} {' and '.join(reasons)}; only an enabled admin may "
                "delete it",
            )

    def _requests(self, conn: sa.Connection, *terms: Any) -> list[ApprovalRequest]:
        """Requests about prompt versions matching ``terms``, oldest first."""
        rows = conn.execute(
            sa.select(t.approval_requests)
            .where(_r.subject_kind == "prompt", *terms)
            .order_by(_r.created_at, _r.id)
        ).all()
        return load_requests(conn, rows)

    def _request_row(self, conn: sa.Connection, request_id: str) -> Any:
        row = conn.execute(sa.select(t.approval_requests).where(_r.id == request_id)).first()
        if row is None or row.subject_kind != "prompt":
            raise NotFound(
                f"approval request {request_id!r} is not about a prompt version; "
                "client.prompts.requests() lists those pending (model requests: client.registry)"
            )
        return row

    def _expire_due(self, request_id: str | None = None) -> None:
        now = self._clock()
        query = sa.select(t.approval_requests).where(
            _r.subject_kind == "prompt", _r.status == "pending", _r.expires_at < now
        )
        if request_id is not None:
            query = query.where(_r.id == request_id)
        with self.db.read() as conn:
            if not conn.execute(query.limit(1)).first():
                return
        with self.db.write() as conn:
            # Prompts locked first, in one order, as every prompt write does (no deadlock
            # against a writer holding a prompt and waiting on the audit log).
            prompt_ids = conn.execute(
                sa.select(_v.prompt_id)
                .where(_v.id.in_(query.with_only_columns(_r.prompt_version_id)))
                .distinct()
            ).scalars()
            for prompt_id in sorted(prompt_ids):
                conn.execute(
                    sa.select(t.prompts.c.id).where(t.prompts.c.id == prompt_id).with_for_update()
                )
            for row in conn.execute(query).all():
                expire_request(conn, row, actor=self._actor_name(), now=now)

    def _decide(self, request_id: str, decision: str, comment: str | None) -> ApprovalRequest:
        actor = self._actor_name()
        with self.db.write() as conn:
            found = self._request_row(conn, request_id)
            version = conn.execute(
                sa.select(t.prompt_versions).where(_v.id == found.prompt_version_id)
            ).one()
            prompt = conn.execute(
                sa.select(t.prompts).where(t.prompts.c.id == version.prompt_id).with_for_update()
            ).one()
            request = self._request_row(conn, request_id)  # re-read under the prompt's lock
            if request.status != "pending":
                raise Conflict(
                    f"approval request {request_id} is {request.status}; only pending requests "
                    "can be decided"
                )
            now = self._clock()
            expired = is_due(request, now)
            if expired:
                expire_request(conn, request, actor=actor, now=now)
            else:
                rule, _ = request_rule(request.rule_json, f"{request.action}:{request.target}")
                role = check_decider(conn, actor, request, version, rule, decision)
                status = record_decision(
                    conn,
                    actor=actor,
                    role=role,
                    now=now,
                    request=request,
                    rule=rule,
                    decision=decision,
                    comment=comment,
                )
                if status == "approved" and request.action == "alias":
                    if rule.gate is not None:  # a newer result of the gate may have failed
                        require_passed_gate(conn, prompt.name, version, rule.gate)
                    note = f"approved request {request.id}"
                    self._move_alias(conn, prompt, request.target, version, note)
        if expired:  # raised after the commit, so the request stays marked expired
            raise ApprovalExpired(
                f"approval request {request_id} expired; ask again to open a new request"
            )
        with self.db.read() as conn:
            return self._requests(conn, _r.id == request_id)[0]

    def _move_alias(
        self, conn: sa.Connection, prompt: Any, alias: str, version: Any, comment: str | None
    ) -> None:
        held = alias_row(conn, prompt, alias)
        now = self._clock()
        upsert(
            conn,
            t.prompt_aliases,
            [{"prompt_id": prompt.id, "alias": alias, "version_id": version.id, "updated_at": now}],
            update=["version_id", "updated_at"],
        )
        conn.execute(t.prompts.update().where(t.prompts.c.id == prompt.id).values(updated_at=now))
        about = {"prompt": prompt.name, "alias": alias}
        self._audit(
            conn,
            "prompt_alias.set",
            f"{prompt.id}:{alias}",
            before={**about, "version": None if held is None else held.version},
            after={**about, "version": version.version, "comment": comment},
            kind="prompt_alias",
        )
