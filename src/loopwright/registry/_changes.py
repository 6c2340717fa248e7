"""Applying alias moves and stage transitions inside a write transaction, audited.

Direct changes (unprotected targets) and approved requests both go through these methods, so the
stage table and the audit events are the same whichever way a change arrives.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from ..errors import StageTransitionNotAllowed
from ..store import schema as t
from ..store.upsert import upsert
from ._base import RegistryBase
from .entities import Stage

__all__ = ["TRANSITIONS", "ChangeBase", "check_transition"]

# Where a version may move from each stage. Production cannot fall back to None directly:
# it is archived (or demoted to Staging) first, so leaving Production always leaves a trace.
TRANSITIONS: Mapping[Stage, tuple[Stage, ...]] = {
    Stage.NONE: (Stage.STAGING, Stage.PRODUCTION, Stage.ARCHIVED),
    Stage.STAGING: (Stage.PRODUCTION, Stage.ARCHIVED, Stage.NONE),
    Stage.PRODUCTION: (Stage.ARCHIVED, Stage.STAGING),
    Stage.ARCHIVED: (Stage.NONE, Stage.STAGING),
}


def check_transition(current: Stage, target: Stage, model: str, version: int) -> None:
    allowed = TRANSITIONS[current]
    if target not in allowed:
        raise StageTransitionNotAllowed(
            f"version {version} of model {model!r} is in stage {current.value} and cannot move "
            f"to {target.value}; from {current.value} it can move to "
            f"{', '.join(s.value for s in allowed)}"
        )


def alias_subject(model_id: str, alias: str) -> str:
    return f"{model_id}:{alias}"


class ChangeBase(RegistryBase):
    """The audited primitive changes: move an alias, set a stage (archiving others)."""

    def _move_alias(
        self, conn: sa.Connection, model: Any, alias: str, version: Any, comment: str | None
    ) -> None:
        al, v = t.model_aliases.c, t.model_versions.c
        previous = conn.execute(
            sa.select(v.version)
            .join(t.model_aliases, al.version_id == v.id)
            .where(al.model_id == model.id, al.alias == alias)
        ).scalar()
        upsert(
            conn,
            t.model_aliases,
            [
                {
                    "model_id": model.id,
                    "alias": alias,
                    "version_id": version.id,
                    "updated_at": self._now(),
                }
            ],
            update=["version_id", "updated_at"],
        )
        about = {"model": model.name, "alias": alias}
        self._audit(
            conn,
            "model_alias.set",
            "model_alias",
            alias_subject(model.id, alias),
            before={**about, "version": previous},
            after={**about, "version": version.version, "comment": comment},
        )

    def _apply_stage(
        self,
        conn: sa.Connection,
        model: Any,
        version: Any,
        stage: Stage,
        *,
        archive_existing: bool,
        comment: str | None,
    ) -> None:
        check_transition(Stage(version.stage), stage, model.name, version.version)
        self._set_stage(conn, model, version, stage, comment=comment)
        if archive_existing and stage in (Stage.STAGING, Stage.PRODUCTION):
            v = t.model_versions.c
            others = conn.execute(
                sa.select(t.model_versions).where(
                    v.model_id == model.id,
                    v.stage == stage.value,
                    v.id != version.id,
                    v.status != "DELETED",
                )
            ).all()
            for other in others:
                self._set_stage(
                    conn,
                    model,
                    other,
                    Stage.ARCHIVED,
                    comment=f"archived as version {version.version} moved to {stage.value}",
                )

    def _set_stage(
        self, conn: sa.Connection, model: Any, version: Any, stage: Stage, *, comment: str | None
    ) -> None:
        conn.execute(
            t.model_versions.update()
            .where(t.model_versions.c.id == version.id)
            .values(stage=stage.value, updated_at=self._now())
        )
        about = {"model": model.name, "version": version.version}
        self._audit(
            conn,
            "model_version.stage",
            "model_version",
            version.id,
            before={**about, "stage": version.stage},
            after={**about, "stage": stage.value, "comment": comment},
        )
