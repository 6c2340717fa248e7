"""Runs a server records for remote clients (part of :class:`~loopwright.tracking.TrackingService`).

A client such as MLflow's talks to the server over HTTP: the run's times, name and user come from
the caller, and nothing about the server's own code or environment is captured. Every method here
writes before it returns, so what a server acknowledges is durable.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from .._ids import new_id, now_ms
from ..errors import Conflict, InvalidInput, NotFound
from ..paths import normalize_relpath
from ..store import schema as t
from ..store import statements
from ._base import ServiceBase
from ._round_trip import read_all
from ._validate import check_key, checked_tags, run_name
from .entities import Artifact, Run, RunStatus
from .run_rows import insert_run, insert_run_if_active

if TYPE_CHECKING:
    from ._writer import MetricWriter

__all__ = ["RemoteRunsMixin"]

_EXPERIMENT_STAGE = "SELECT lifecycle_stage FROM experiments WHERE id = ?"


class RemoteRunsMixin(ServiceBase):
    """Create, update and clean up runs for a remote caller; store uploaded artifact files."""

    _loggable: set[str]
    writer: MetricWriter[sa.Connection]

    if TYPE_CHECKING:  # provided by ArtifactsMixin

        def _store_artifacts(
            self, run_id: str, files: list[tuple[str, Path]]
        ) -> list[Artifact]: ...

    def _record_run(
        self,
        experiment_id: str,
        *,
        name: str | None = None,
        start_time: int | None = None,
        user: str | None = None,
        tags: Mapping[str, object] | None = None,
        parent_run_id: str | None = None,
        git_commit: str | None = None,
        git_branch: str | None = None,
        entry_point: str | None = None,
    ) -> Run:
        """Start a RUNNING run in the active experiment with id ``experiment_id``, as the caller
        describes it (``start_time`` in ms, default now; ``user`` default the store's actor)."""
        name = run_name(name)
        tag_values = checked_tags(tags)
        run_id = new_id()
        now = now_ms()
        start = now if start_time is None else int(start_time)
        row: dict[str, Any] = {
            "id": run_id,
            "experiment_id": experiment_id,
            "name": name or f"run-{run_id[-8:]}",
            "status": RunStatus.RUNNING.value,
            "lifecycle_stage": "active",
            "parent_run_id": parent_run_id,
            "user": user or self.store.actor,
            "entry_point": entry_point,
            "git_commit": git_commit,
            "git_branch": git_branch,
            "start_time": start,
            "heartbeat_at": now,
        }
        tag_rows = [(run_id, key, value) for key, value in tag_values.items()]
        if parent_run_id is None and self.db.dialect == "postgresql":
            # One round trip: the check is part of the insert (run_rows).
            if not insert_run_if_active(self.db, row, tag_rows):
                (found,) = read_all(self.db, [(_EXPERIMENT_STAGE, [experiment_id])])
                self._check_stage(experiment_id, found)
                raise Conflict(f"experiment id {experiment_id!r} changed; retry")
        else:
            with self.db.write() as conn:
                # Raw SQL (store/statements.py): run creation is a hot path of MLflow's client.
                self._check_active(conn, experiment_id)
                if parent_run_id is not None:
                    self._require_run(conn, parent_run_id)
                insert_run(conn, row, tag_rows)
        self._loggable.add(run_id)
        return Run(
            id=run_id,
            experiment_id=experiment_id,
            name=row["name"],
            status=RunStatus.RUNNING,
            lifecycle_stage="active",
            start_time=start,
            end_time=None,
            user=row["user"],
            host=None,
            entry_point=entry_point,
            parent_run_id=parent_run_id,
            error=None,
            heartbeat_at=now,
            git_commit=git_commit,
            git_branch=git_branch,
            tags=tag_values,
        )

    @classmethod
    def _check_active(cls, conn: sa.Connection, experiment_id: str) -> None:
        cls._check_stage(experiment_id, statements.fetch(conn, _EXPERIMENT_STAGE, [experiment_id]))

    @staticmethod
    def _check_stage(experiment_id: str, found: Sequence[Any]) -> None:
        stage = found[0][0] if found else None
        if stage is None:
            raise NotFound(f"experiment id {experiment_id!r} does not exist")
        if stage != "active":
            raise Conflict(
                f"experiment id {experiment_id!r} is deleted; restore it before starting runs"
            )

    def update_run(
        self,
        run_id: str,
        *,
        status: RunStatus | None = None,
        end_time: int | None = None,
        name: str | None = None,
    ) -> None:
        """Change an active run's status, end time or name. A terminal status flushes the run's
        buffered metrics in the same transaction (end time default: now)."""
        values: dict[str, Any] = {}
        if status is RunStatus.STALE:
            raise InvalidInput("STALE is read from a silent heartbeat, never set; set RUNNING")
        if status is not None:
            values["status"] = status.value
            if status.is_terminal:
                values["end_time"] = now_ms() if end_time is None else int(end_time)
        if end_time is not None:
            values["end_time"] = int(end_time)
        if name is not None:
            values["name"] = run_name(name) or name

        def change(conn: sa.Connection) -> None:
            self._require_active(conn, run_id)
            if values:
                conn.execute(t.runs.update().where(t.runs.c.id == run_id).values(**values))

        if status is not None and status.is_terminal:
            self.writer.untrack(run_id)
        self.writer.flush(then=change)

    def delete_tag(self, run_id: str, key: str) -> None:
        """Remove one tag of an active run; ``NotFound`` if it has none by that key."""
        tg = t.run_tags.c
        check_key("tag", key)
        with self.db.write() as conn:
            self._require_active(conn, run_id)
            done = conn.execute(t.run_tags.delete().where(tg.run_id == run_id, tg.key == key))
            if done.rowcount == 0:
                raise NotFound(f"run {run_id} has no tag {key!r}")

    def _store_artifact(
        self, run_id: str, path: str, local_file: str | os.PathLike[str]
    ) -> Artifact:
        """Store ``local_file`` as the run's artifact at ``path`` (replacing one there)."""
        relpath = normalize_relpath(path, what="artifact path")
        return self._store_artifacts(run_id, [(relpath, Path(local_file))])[0]

    def delete_artifacts(self, run_id: str, path: str | None = None) -> int:
        """Forget the run's artifact files at or under ``path`` (all without one); returns how
        many. The blobs stay until garbage collection finds them unreferenced."""
        a = t.artifacts.c
        where = [a.owner_type == "run", a.owner_id == run_id]
        if path:
            prefix = normalize_relpath(path, what="artifact path")
            where.append(sa.or_(a.path == prefix, a.path.startswith(prefix + "/", autoescape=True)))
        with self.db.write() as conn:
            self._require_active(conn, run_id)
            return conn.execute(t.artifacts.delete().where(*where)).rowcount
