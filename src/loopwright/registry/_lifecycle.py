"""Aliases and stages: moves that a model's approval policy may protect.

A move to an unprotected target happens at once, in one audited transaction. A move to a
protected target (policy rule ``alias:<name>`` or ``stage:<Stage>``) opens an approval request
and returns it instead; see :mod:`loopwright.registry.approvals`.

Deleting a protected alias cannot wait for approvals (there is no version to approve), so it is
reserved to enabled admins of the users table; anyone may delete an unprotected alias.
"""

from __future__ import annotations

import sqlalchemy as sa

from ..errors import NotFound, PermissionDenied
from ..governance.users import find_user
from ..store import schema as t
from ._base import check_alias, parse_stage, require_ready
from ._changes import alias_subject, check_transition
from ._queries import load_requests, load_versions, model_row, policy_of, version_row
from .approvals import ApprovalsMixin
from .entities import AliasChange, ApprovalRequest, ModelVersion, Stage

__all__ = ["LifecycleMixin"]


class LifecycleMixin(ApprovalsMixin):
    """Set and delete aliases; move versions between stages."""

    def set_alias(
        self, name: str, alias: str, version: int, *, comment: str | None = None
    ) -> AliasChange:
        """Point ``alias`` at ``version`` (moving it if it exists), or open an approval request
        if the model's policy protects ``alias:<alias>``; the result says which (``applied``)."""
        alias = check_alias(alias)
        al = t.model_aliases.c
        with self.db.write() as conn:
            model = model_row(conn, name, lock=True)
            target = version_row(conn, model, version)
            require_ready(target, name, f"given alias {alias!r}")
            current = conn.execute(
                sa.select(al.version_id).where(al.model_id == model.id, al.alias == alias)
            ).scalar()
            policy = policy_of(model)
            rule = policy.rule_for(f"alias:{alias}")
            if current == target.id:
                pass  # already there: nothing to change or approve
            elif rule is not None:
                request_id = self._open_request(
                    conn, model, target, rule=rule, policy=policy, comment=comment
                )
                request = load_requests(conn, [self._request_row(conn, request_id)])[0]
                return AliasChange(load_versions(conn, [target])[0], request)
            else:
                self._move_alias(conn, model, alias, target, comment)
            return AliasChange(load_versions(conn, [version_row(conn, model, version)])[0])

    def delete_alias(self, name: str, alias: str) -> None:
        """Remove ``alias``; a protected alias may be deleted only by an enabled admin."""
        al, v = t.model_aliases.c, t.model_versions.c
        with self.db.write() as conn:
            model = model_row(conn, name, lock=True)
            current = conn.execute(
                sa.select(v.version)
                .join(t.model_aliases, al.version_id == v.id)
                .where(al.model_id == model.id, al.alias == alias)
            ).scalar()
            if current is None:
                known = conn.execute(
                    sa.select(al.alias).where(al.model_id == model.id).order_by(al.alias)
                ).scalars()
                raise NotFound(
                    f"model {name!r} has no alias {alias!r}; aliases: {', '.join(known) or 'none'}"
                )
            if policy_of(model).rule_for(f"alias:{alias}") is not None:
                user = find_user(conn, self.actor)
                if user is None or user.disabled or user.role != "admin":
                    raise PermissionDenied(
                        f"alias {alias!r} of model {name!r} is protected by its approval policy; "
                        "only an enabled admin may delete it (moving it with set_alias opens an "
                        "approval request instead)"
                    )
            conn.execute(t.model_aliases.delete().where(al.model_id == model.id, al.alias == alias))
            about = {"model": name, "alias": alias}
            self._audit(
                conn,
                "model_alias.delete",
                "model_alias",
                alias_subject(model.id, alias),
                before={**about, "version": current},
                after=None,
            )

    def transition_stage(
        self,
        name: str,
        version: int,
        stage: Stage | str,
        *,
        archive_existing: bool = False,
        comment: str | None = None,
    ) -> ModelVersion | ApprovalRequest:
        """Move ``version`` to ``stage`` (see ``TRANSITIONS`` in ``registry._changes``), or open
        an approval request if the policy protects ``stage:<stage>``.

        ``archive_existing`` moves the model's other versions in ``stage`` (Staging or
        Production) to Archived in the same transaction; a request records it and honours it
        when approved.
        """
        target_stage = parse_stage(stage)
        with self.db.write() as conn:
            model = model_row(conn, name, lock=True)
            target = version_row(conn, model, version)
            require_ready(target, name, f"moved to {target_stage.value}")
            check_transition(Stage(target.stage), target_stage, name, version)
            policy = policy_of(model)
            rule = policy.rule_for(f"stage:{target_stage.value}")
            if rule is not None:
                request_id = self._open_request(
                    conn,
                    model,
                    target,
                    rule=rule,
                    policy=policy,
                    comment=comment,
                    archive_existing=archive_existing,
                )
                return load_requests(conn, [self._request_row(conn, request_id)])[0]
            self._apply_stage(
                conn,
                model,
                target,
                target_stage,
                archive_existing=archive_existing,
                comment=comment,
            )
            return load_versions(conn, [version_row(conn, model, version)])[0]
