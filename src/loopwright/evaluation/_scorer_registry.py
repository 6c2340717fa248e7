"""Registered scorers: immutable versions by name within a scope, and the approval of judges.

A version is its content: registering the same digest again returns the newest version instead
of a new one. A judge version is approved through a request: an editor asks, then a user holding
the approver role (or higher) who neither registered the version nor asked approves it, audited
in the same transaction. Judges feed gates only once approved (``require_approved``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from .._ids import new_id, now_ms
from ..errors import ApprovalNotAllowed, Conflict, InvalidInput, NotFound
from ..governance.users import find_user, role_at_least
from ..store import schema as t
from ..store.audit import append_event
from ..store.limits import check_text
from .entities import ScorerVersion

__all__ = ["KINDS", "ScorerRegistryMixin"]

KINDS = ("code", "builtin", "judge", "mlflow")
_s = t.scorer_versions.c
_MAX_CONFIG = 1_000_000  # characters of a version's JSON config (a judge's rubric, MLflow's blob)


class ScorerRegistryMixin:
    """The scorer half of :class:`~loopwright.evaluation.service.EvaluationService`."""

    _db: Any

    @property
    def _actor(self) -> str:
        """Who changes are recorded as (the service's store says)."""
        raise NotImplementedError

    def register_spec(
        self,
        name: str,
        *,
        kind: str,
        reference: str,
        digest: str,
        config: Mapping[str, Any],
        scope: str = "",
    ) -> ScorerVersion:
        """Store a scorer version as data (what ``register_scorer`` sends); the newest version
        is returned unchanged when its digest is the same."""
        check_text("scorer name", name, limit=256)
        if "/" in name or any(c.isspace() for c in name):
            # name/3 names a version, and runs record "name/3 kind digest" (gates read it).
            raise InvalidInput(
                f"scorer name {name!r} must not contain '/' or white space (name/3 is a version)"
            )
        check_text("scorer scope", scope, limit=32, allow_empty=True)
        check_text("scorer reference", reference, limit=500)
        check_text("scorer digest", digest, limit=64)
        if kind not in KINDS:
            raise InvalidInput(f"scorer kind {kind!r} is not one of {', '.join(KINDS)}")
        if kind in ("judge", "builtin"):
            # A judge or built-in is its config: the digest is computed here, never taken
            # from the caller (approvals and gates trust it).
            built = _built(name, kind, reference, config)
            reference, digest, config = built.reference, built.digest, built.config
        text = json.dumps(dict(config), sort_keys=True)
        if len(text) > _MAX_CONFIG:
            raise InvalidInput(
                f"scorer {name!r}: config is {len(text)} characters; limit {_MAX_CONFIG}"
            )
        with self._db.write() as conn:
            latest = conn.execute(
                sa.select(t.scorer_versions)
                .where(_s.scope == scope, _s.name == name)
                .order_by(_s.version.desc())
                .limit(1)
            ).first()
            if latest is not None and latest.digest == digest and latest.kind == kind:
                return _version(latest)
            row = {
                "id": new_id(),
                "scope": scope,
                "name": name,
                "version": 1 if latest is None else latest.version + 1,
                "kind": kind,
                "reference": reference,
                "digest": digest,
                "config_json": text,
                "created_by": self._actor,
                "created_at": now_ms(),
            }
            conn.execute(t.scorer_versions.insert(), row)
            append_event(
                conn,
                actor=self._actor,
                action="scorer_version.create",
                subject_type="scorer_version",
                subject_id=str(row["id"]),
                after={
                    k: row[k] for k in ("scope", "name", "version", "kind", "reference", "digest")
                },
            )
            created = conn.execute(sa.select(t.scorer_versions).where(_s.id == row["id"])).one()
            return _version(created)

    def scorer_versions(self, name: str, *, scope: str = "") -> list[ScorerVersion]:
        """Every version of scorer ``name``, newest first (``NotFound`` if none)."""
        with self._db.read() as conn:
            rows = conn.execute(
                sa.select(t.scorer_versions)
                .where(_s.scope == scope, _s.name == name)
                .order_by(_s.version.desc())
            ).all()
            if not rows:
                raise NotFound(_missing(name, scope))
            return [_version(r, _agreement(conn, r.id)) for r in rows]

    def list_scorers(self, *, scope: str = "") -> list[ScorerVersion]:
        """The newest version of every scorer of ``scope``, by name."""
        newest = (
            sa.select(_s.name, sa.func.max(_s.version).label("version"))
            .where(_s.scope == scope)
            .group_by(_s.name)
            .subquery()
        )
        query = (
            sa.select(t.scorer_versions)
            .join(newest, sa.and_(_s.name == newest.c.name, _s.version == newest.c.version))
            .where(_s.scope == scope)
            .order_by(_s.name)
        )
        with self._db.read() as conn:
            return [_version(r, _agreement(conn, r.id)) for r in conn.execute(query)]

    def get_scorer(
        self, name: str, version: int | None = None, *, scope: str = ""
    ) -> ScorerVersion:
        """A version of scorer ``name`` (the newest without ``version``)."""
        with self._db.read() as conn:
            row = _row(conn, name, version, scope)
            return _version(row, _agreement(conn, row.id))

    def delete_scorer(self, name: str, version: int | None = None, *, scope: str = "") -> int:
        """Delete one version, or every version without ``version``; how many went."""
        with self._db.write() as conn:
            query = t.scorer_versions.delete().where(_s.scope == scope, _s.name == name)
            if version is not None:
                _row(conn, name, version, scope)
                query = query.where(_s.version == version)
            gone = int(conn.execute(query).rowcount)
            if not gone:
                raise NotFound(_missing(name, scope))
            append_event(
                conn,
                actor=self._actor,
                action="scorer_version.delete",
                subject_type="scorer",
                subject_id=f"{scope}/{name}",
                before={"version": version, "deleted": gone},
            )
            return gone

    def request_approval(self, name: str, version: int, *, scope: str = "") -> ScorerVersion:
        """Ask for a judge version to be approved (asking again changes nothing)."""
        with self._db.write() as conn:
            row = _row(conn, name, version, scope)
            if row.approval_requested_by is None:
                conn.execute(
                    t.scorer_versions.update()
                    .where(_s.id == row.id)
                    .values(approval_requested_by=self._actor, approval_requested_at=now_ms())
                )
                append_event(
                    conn,
                    actor=self._actor,
                    action="scorer_version.request_approval",
                    subject_type="scorer_version",
                    subject_id=row.id,
                    after={"name": name, "version": version, "digest": row.digest},
                )
        return self.get_scorer(name, version, scope=scope)

    def approve_scorer(self, name: str, version: int, *, scope: str = "") -> ScorerVersion:
        """Approve a requested version: an approver who neither registered nor requested it."""
        actor = self._actor
        with self._db.write() as conn:
            row = _row(conn, name, version, scope)
            if row.approved_by is not None:
                raise Conflict(
                    f"scorer {name}/{version} is already approved by {row.approved_by!r}"
                )
            if row.approval_requested_by is None:
                raise Conflict(
                    f"scorer {name}/{version} has no approval request; ask first "
                    f"(`loopwright eval scorers request-approval {name} {version}`)"
                )
            for who, did in ((row.created_by, "registered"), (row.approval_requested_by, "asked")):
                if actor == who:
                    raise ApprovalNotAllowed(
                        f"{actor!r} {did} scorer {name}/{version} and cannot approve it "
                        "(separation of duties); another approver must"
                    )
            user = find_user(conn, actor)
            if user is None or user.disabled or not role_at_least(user.role, "approver"):
                raise ApprovalNotAllowed(
                    f"{actor!r} is not an enabled user with the approver role; approving "
                    f"scorer {name}/{version} needs one"
                )
            conn.execute(
                t.scorer_versions.update()
                .where(_s.id == row.id)
                .values(approved_by=actor, approved_at=now_ms())
            )
            append_event(
                conn,
                actor=actor,
                action="scorer_version.approve",
                subject_type="scorer_version",
                subject_id=row.id,
                after={"name": name, "version": version, "digest": row.digest},
            )
        return self.get_scorer(name, version, scope=scope)

    def record_agreement(
        self,
        scorer_version_id: str,
        dataset_version_id: str,
        label: str,
        metrics: Mapping[str, Any],
    ) -> str:
        """Store a judge version's agreement with human labels on a dataset version."""
        check_text("label", label, limit=250)
        row = {
            "id": new_id(),
            "scorer_version_id": scorer_version_id,
            "dataset_version_id": dataset_version_id,
            "label": label,
            "metrics_json": json.dumps(dict(metrics), sort_keys=True),
            "created_by": self._actor,
            "created_at": now_ms(),
        }
        with self._db.write() as conn:
            for table, key in (
                (t.scorer_versions, scorer_version_id),
                (t.dataset_versions, dataset_version_id),
            ):
                if conn.execute(sa.select(table.c.id).where(table.c.id == key)).first() is None:
                    raise NotFound(f"{table.name} has no row {key!r}")
            conn.execute(t.judge_agreements.insert(), row)
            append_event(
                conn,
                actor=self._actor,
                action="judge_agreement.create",
                subject_type="scorer_version",
                subject_id=scorer_version_id,
                after={"dataset_version_id": dataset_version_id, "label": label, **metrics},
            )
        return str(row["id"])


def _built(name: str, kind: str, reference: str, config: Mapping[str, Any]) -> Any:
    """The judge or built-in a registration describes (an invalid config fails here)."""
    from . import builtins
    from .judges import Judge

    if kind == "judge":
        try:
            return Judge.from_config(name, config)
        except InvalidInput:
            raise
        except (TypeError, ValueError, IndexError) as exc:  # a config value of the wrong type
            raise InvalidInput(f"judge {name!r}: invalid config ({exc})") from exc
    if not reference.startswith("builtin:"):
        raise InvalidInput(
            f"scorer {name!r}: a built-in's reference is 'builtin:NAME', not {reference!r}"
        )
    return builtins.build(reference.removeprefix("builtin:"), config)


def _missing(name: str, scope: str) -> str:
    where = f" in experiment {scope}" if scope else ""
    return f"scorer {name!r} is not registered{where}; `loopwright eval scorers list` shows them"


def _row(conn: sa.Connection, name: str, version: int | None, scope: str) -> Any:
    query = sa.select(t.scorer_versions).where(_s.scope == scope, _s.name == name)
    if version is None:
        query = query.order_by(_s.version.desc()).limit(1)
    else:
        query = query.where(_s.version == version)
    row = conn.execute(query).first()
    if row is None:
        known = conn.execute(
            sa.select(sa.func.max(_s.version)).where(_s.scope == scope, _s.name == name)
        ).scalar()
        if known is None:
            raise NotFound(_missing(name, scope))
        raise NotFound(f"scorer {name!r} has no version {version}; versions: 1..{known}")
    return row


def _agreement(conn: sa.Connection, version_id: str) -> dict[str, Any] | None:
    a = t.judge_agreements.c
    row = conn.execute(
        sa.select(a.dataset_version_id, a.label, a.metrics_json, a.created_at)
        .where(a.scorer_version_id == version_id)
        .order_by(a.created_at.desc())
        .limit(1)
    ).first()
    if row is None:
        return None
    return {
        "dataset_version_id": row.dataset_version_id,
        "label": row.label,
        "created_at": row.created_at,
        **json.loads(row.metrics_json),
    }


def _version(row: Any, agreement: Mapping[str, Any] | None = None) -> ScorerVersion:
    return ScorerVersion(
        id=row.id,
        scope=row.scope,
        name=row.name,
        version=row.version,
        kind=row.kind,
        reference=row.reference,
        digest=row.digest,
        config=json.loads(row.config_json),
        created_by=row.created_by,
        created_at=row.created_at,
        approval_requested_by=row.approval_requested_by,
        approval_requested_at=row.approval_requested_at,
        approved_by=row.approved_by,
        approved_at=row.approved_at,
        agreement=agreement,
    )
