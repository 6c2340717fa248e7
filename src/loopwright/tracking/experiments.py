"""Experiments: named groups of runs (part of :class:`~loopwright.tracking.TrackingService`)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

import sqlalchemy as sa

from .._ids import new_id, now_ms
from ..errors import AlreadyExists, Conflict, InvalidInput, NotFound
from ..store import schema as t
from ..store import statements
from ..store.audit import append_event
from ..store.database import WouldBlock, in_nonblocking_block
from ..store.limits import check_text
from ..store.upsert import upsert
from ._base import ServiceBase
from ._round_trip import read_all
from ._validate import check_key, checked_tags, experiment_name
from .artifact_locations import ArtifactRoots, new_location
from .entities import Experiment
from .protocol import DEFAULT_EXPERIMENT

__all__ = ["DEFAULT_EXPERIMENT_ID", "ExperimentsMixin"]

DEFAULT_EXPERIMENT_ID = "0"  # MLflow's id of the Default experiment


class ExperimentsMixin(ServiceBase):
    """Create, find, rename, delete and restore experiments; names are cached per process."""

    _experiment_ids: dict[str, str]
    _artifact_locations: dict[str, str | None]

    def create_experiment(self, name: str, *, description: str | None = None) -> Experiment:
        """Create an experiment; its artifacts go to the blob store, or below the
        ``default_artifact_root`` setting when that is a local folder."""
        return self._create_experiment(name, description=description)

    def _create_experiment(
        self,
        name: str,
        *,
        description: str | None = None,
        artifact_location: str | None = None,
        id_: str | None = None,
    ) -> Experiment:
        """:meth:`create_experiment` with MLflow's ``artifact_location``: a local folder inside a
        root the settings allow (:mod:`~loopwright.tracking.artifact_locations`)."""
        if in_nonblocking_block():
            # A new experiment is a write before the request's own: rare, so never on the event
            # loop (running the request again in the thread pool is safe: nothing is written yet).
            raise WouldBlock("creating an experiment takes a write of its own")
        name = experiment_name(name)
        now = now_ms()
        experiment_id = id_ or new_id()
        roots = ArtifactRoots.from_settings(self.store.settings)
        location = new_location(roots, artifact_location, experiment_id, cwd=os.getcwd())
        row = {
            "id": experiment_id,
            "name": name,
            "description": description,
            "lifecycle_stage": "active",
            "created_at": now,
            "updated_at": now,
            "artifact_location": location,
        }
        try:
            with self.db.write() as conn:
                conn.execute(t.experiments.insert(), row)
                append_event(
                    conn,
                    actor=self.store.actor,
                    action="experiment.create",
                    subject_type="experiment",
                    subject_id=experiment_id,
                    after={"name": name} | ({"artifact_location": location} if location else {}),
                )
        except sa.exc.IntegrityError:
            raise AlreadyExists(f"experiment {name!r} already exists; pick another name") from None
        return self.get_experiment(experiment_id)

    def get_or_create_experiment(self, name: str) -> Experiment:
        """The experiment called ``name``, created if missing.

        The ``Default`` experiment is created with id ``"0"``, MLflow's id for it, unless that id
        is taken (an older store's Default was renamed, say).
        """
        found = self.find_experiment(name)
        if found is not None:
            return found
        id_ = new_id()
        if name == DEFAULT_EXPERIMENT and not self._has_experiment_id(DEFAULT_EXPERIMENT_ID):
            id_ = DEFAULT_EXPERIMENT_ID
        try:
            return self._create_experiment(name, id_=id_)
        except AlreadyExists:  # another process created it meanwhile
            return self.get_experiment_by_name(name)

    def _id_named(self, name: str) -> str:
        """The id of the experiment called ``name``, created if missing: one raw statement when
        it exists, for the hot path that names one on every call (MLflow's ``"0"``, Default)."""
        with self.db.read() as conn:
            found = statements.fetch(conn, "SELECT id FROM experiments WHERE name = ?", (name,))
        return str(found[0][0]) if found else self.get_or_create_experiment(name).id

    def _has_experiment_id(self, experiment_id: str) -> bool:
        with self.db.read() as conn:
            found = conn.execute(
                sa.select(t.experiments.c.id).where(t.experiments.c.id == experiment_id)
            ).first()
        return found is not None

    def find_experiment(self, name: str) -> Experiment | None:
        # Any length may be looked up (and not found); text no column can hold is refused.
        check_text(
            "experiment name",
            name,
            limit=len(name) if isinstance(name, str) else 0,
            allow_empty=True,
        )
        with self.db.read() as conn:
            row = conn.execute(sa.select(t.experiments).where(t.experiments.c.name == name)).first()
        return None if row is None else self._experiment(row)

    def get_experiment_by_name(self, name: str) -> Experiment:
        found = self.find_experiment(name)
        if found is None:
            raise NotFound(
                f"experiment {name!r} does not exist; `loopwright experiments list` shows them"
            )
        return found

    def get_experiment(self, experiment_id: str) -> Experiment:
        with self.db.read() as conn:
            row = conn.execute(
                sa.select(t.experiments).where(t.experiments.c.id == experiment_id)
            ).first()
        if row is None:
            raise NotFound(f"experiment id {experiment_id!r} does not exist")
        return self._experiment(row)

    def _locations_of(self, experiment_ids: Iterable[str]) -> dict[str, str | None]:
        """Each experiment's ``artifact_location`` (``None``: served from the blob store).

        Cached per process: a location is fixed when its experiment is created. Unknown ids are
        left out.
        """
        wanted = set(experiment_ids)
        missing = [e for e in wanted if e not in self._artifact_locations]
        if missing:
            # One round trip (read_all): a server's runs/create asks after its write.
            sql = "SELECT id, artifact_location FROM experiments WHERE id IN ({})"
            (rows,) = read_all(self.db, [(sql.format(statements.marks(len(missing))), missing)])
            self._artifact_locations.update(dict(rows))
        return {e: self._artifact_locations[e] for e in wanted if e in self._artifact_locations}

    def _location_of(self, experiment_id: str) -> str | None:
        """One experiment's ``artifact_location`` (see :meth:`_locations_of`)."""
        return self._locations_of([experiment_id]).get(experiment_id)

    def list_experiments(self, *, include_deleted: bool = False) -> list[Experiment]:
        query = sa.select(t.experiments).order_by(t.experiments.c.created_at)
        if not include_deleted:
            query = query.where(t.experiments.c.lifecycle_stage == "active")
        with self.db.read() as conn:
            rows = conn.execute(query).all()
        return [self._experiment(row) for row in rows]

    def rename_experiment(self, name: str, new_name: str) -> Experiment:
        new_name = experiment_name(new_name)
        experiment = self.get_experiment_by_name(name)
        try:
            with self.db.write() as conn:
                conn.execute(
                    t.experiments.update()
                    .where(t.experiments.c.id == experiment.id)
                    .values(name=new_name, updated_at=now_ms())
                )
                append_event(
                    conn,
                    actor=self.store.actor,
                    action="experiment.rename",
                    subject_type="experiment",
                    subject_id=experiment.id,
                    before={"name": name},
                    after={"name": new_name},
                )
        except sa.exc.IntegrityError:
            raise AlreadyExists(
                f"experiment {new_name!r} already exists; pick another name"
            ) from None
        self._experiment_ids.pop(name, None)
        return self.get_experiment(experiment.id)

    def set_experiment_lifecycle(self, name: str, stage: str) -> Experiment:
        """Soft-delete (``"deleted"``) or restore (``"active"``) an experiment and its runs' view.

        Deleted experiments keep their runs; they are hidden from listings until restored.
        """
        if stage not in ("active", "deleted"):
            raise InvalidInput(f"lifecycle stage must be 'active' or 'deleted', not {stage!r}")
        experiment = self.get_experiment_by_name(name)
        with self.db.write() as conn:
            conn.execute(
                t.experiments.update()
                .where(t.experiments.c.id == experiment.id)
                .values(lifecycle_stage=stage, updated_at=now_ms())
            )
            append_event(
                conn,
                actor=self.store.actor,
                action="experiment." + ("delete" if stage == "deleted" else "restore"),
                subject_type="experiment",
                subject_id=experiment.id,
                before={"lifecycle_stage": experiment.lifecycle_stage},
                after={"lifecycle_stage": stage},
            )
        self._experiment_ids.pop(name, None)
        return self.get_experiment(experiment.id)

    def set_experiment_tags(self, experiment_id: str, tags: Mapping[str, object]) -> None:
        """Set tags on the experiment with id ``experiment_id`` (a key set again is replaced)."""
        rows = [
            {"experiment_id": experiment_id, "key": k, "value": v}
            for k, v in checked_tags(tags).items()
        ]
        with self.db.write() as conn:
            self._require_experiment(conn, experiment_id)
            upsert(conn, t.experiment_tags, rows, update=["value"])

    def delete_experiment_tag(self, experiment_id: str, key: str) -> None:
        """Remove one tag of the experiment; ``NotFound`` if it has none by that key."""
        tg = t.experiment_tags.c
        check_key("tag", key)
        with self.db.write() as conn:
            self._require_experiment(conn, experiment_id)
            done = conn.execute(
                t.experiment_tags.delete().where(tg.experiment_id == experiment_id, tg.key == key)
            )
            if done.rowcount == 0:
                raise NotFound(f"experiment id {experiment_id!r} has no tag {key!r}")

    @staticmethod
    def _require_experiment(conn: sa.Connection, experiment_id: str) -> None:
        found = conn.execute(
            sa.select(t.experiments.c.id).where(t.experiments.c.id == experiment_id)
        ).first()
        if found is None:
            raise NotFound(f"experiment id {experiment_id!r} does not exist")

    def _experiment(self, row: sa.Row[Any]) -> Experiment:
        with self.db.read() as conn:
            tags = dict(
                conn.execute(
                    sa.select(t.experiment_tags.c.key, t.experiment_tags.c.value).where(
                        t.experiment_tags.c.experiment_id == row.id
                    )
                ).all()
            )
        return Experiment(
            id=row.id,
            name=row.name,
            description=row.description,
            lifecycle_stage=row.lifecycle_stage,
            created_at=row.created_at,
            updated_at=row.updated_at,
            tags=tags,
            artifact_location=row.artifact_location,
        )

    @staticmethod
    def _experiment_still(conn: sa.Connection, experiment_id: str, name: str) -> bool:
        """Whether the cached id still names an active experiment called ``name``."""
        found = statements.fetch(
            conn, "SELECT name, lifecycle_stage FROM experiments WHERE id = ?", (experiment_id,)
        )
        return [tuple(row) for row in found] == [(name, "active")]

    def _experiment_id(self, name: str) -> str:
        cached = self._experiment_ids.get(name)
        if cached is None:
            experiment = self.get_or_create_experiment(name)
            if experiment.lifecycle_stage != "active":
                raise Conflict(
                    f"experiment {name!r} is deleted; restore it with "
                    f"`loopwright experiments restore {name}` or use another experiment"
                )
            cached = self._experiment_ids[name] = experiment.id
        return cached
