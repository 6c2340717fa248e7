"""``EvaluationService``: evaluation datasets, registered scorers, judge agreement and
evaluation runs on the metadata database and blob store (the embedded backend).

An evaluation dataset is a name over versions of the dataset of the same name: every change of
its records stores a new dataset version (one ``records.jsonl``, content-addressed), so its
digest is that version's content hash and a run that reads it records the version as an input.
The row in ``eval_datasets`` holds what MLflow's API adds: tags, experiment links, the current
version.

Example:
    >>> import loopwright as lw
    >>> client = lw.connect(home="lw-doc-eval")
    >>> ds = client.evaluation.create_dataset("qa")
    >>> row = {"inputs": {"q": "2+2"}, "expectations": {"expected_response": "4"}}
    >>> counts = client.evaluation.upsert_records("qa", [row])
    >>> (counts["inserted"], client.evaluation.get_dataset("qa").record_count)
    (1, 1)
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from .._ids import new_id, now_ms
from ..data._names import check_dataset_name
from ..errors import AlreadyExists, Conflict, InvalidInput, NotFound
from ..store import schema as t
from ..store.audit import append_event
from ..store.limits import KEY, TAG_VALUE, check_text
from ._evaluate import EvaluateMixin
from ._evaluation_runs import EvaluationRunsMixin
from ._scorer_registry import ScorerRegistryMixin
from .entities import EvalDataset, EvalRecord
from .records import FILE_NAME, decode, encode, merge, parse_records

if TYPE_CHECKING:
    from ..store.home import Store
    from ..tracking.protocol import Tracking

__all__ = ["EvaluationService"]

_e = t.eval_datasets.c
_MAX_RETRIES = 8  # concurrent upserts of one dataset: re-read and merge again


class EvaluationService(ScorerRegistryMixin, EvaluationRunsMixin, EvaluateMixin):
    """Evaluation datasets, scorers and evaluation runs of one store."""

    def __init__(self, store: Store, tracking: Tracking | None = None) -> None:
        from ..data.service import DatasetService

        self._store = store
        self._db = store.db
        self._data = DatasetService(store)
        self._tracking = tracking

    @property
    def _actor(self) -> str:
        return self._store.actor

    def _server_scorer_modules(self) -> tuple[str, ...] | None:
        settings = self._store.settings
        return settings.scorer_modules if settings.hosted else None

    def _run_tracking(self) -> Tracking:
        if self._tracking is None:
            from ..tracking.service import TrackingService

            self._tracking = TrackingService(self._store)
        return self._tracking

    def close(self) -> None:
        self._data.close()

    # --- datasets -----------------------------------------------------------------------------

    def create_dataset(
        self,
        name: str,
        *,
        tags: Mapping[str, str] | None = None,
        experiment_ids: Sequence[str] = (),
    ) -> EvalDataset:
        """A new, empty evaluation dataset ``name`` (also the name of its dataset versions)."""
        check_dataset_name(name)
        tags = _check_tags(tags or {})
        now = now_ms()
        eval_id = new_id()
        with self._db.write() as conn:
            known = conn.execute(
                sa.select(t.datasets.c.id).where(t.datasets.c.name == name)
            ).first()
            if known is not None:
                raise AlreadyExists(
                    f"dataset {name!r} already exists"
                    + (
                        " as an evaluation dataset; add records to it with upsert_records"
                        if self._row(conn, name, missing_ok=True) is not None
                        else "; an evaluation dataset needs a dataset name of its own"
                    )
                )
            dataset_id = new_id()
            conn.execute(
                t.datasets.insert(),
                {
                    "id": dataset_id,
                    "name": name,
                    "description": "evaluation dataset",
                    "created_at": now,
                    "updated_at": now,
                },
            )
            conn.execute(
                t.eval_datasets.insert(),
                {
                    "id": eval_id,
                    "name": name,
                    "dataset_id": dataset_id,
                    "version_id": None,
                    "created_by": self._actor,
                    "last_updated_by": self._actor,
                    "created_at": now,
                    "updated_at": now,
                },
            )
            if tags:
                conn.execute(
                    t.eval_dataset_tags.insert(),
                    [{"eval_dataset_id": eval_id, "key": k, "value": v} for k, v in tags.items()],
                )
            self._link(conn, eval_id, experiment_ids)
            append_event(
                conn,
                actor=self._actor,
                action="eval_dataset.create",
                subject_type="eval_dataset",
                subject_id=eval_id,
                after={"name": name, "tags": tags, "experiment_ids": list(experiment_ids)},
            )
        return self.get_dataset(eval_id)

    def get_dataset(self, ref: str) -> EvalDataset:
        """An evaluation dataset by name or id."""
        with self._db.read() as conn:
            return self._entity(conn, self._row(conn, ref))

    def search_datasets(
        self,
        *,
        experiment_ids: Sequence[str] = (),
        name_like: str | None = None,
        max_results: int = 1000,
        offset: int = 0,
    ) -> list[EvalDataset]:
        """Evaluation datasets by name, optionally linked to any of ``experiment_ids`` or with a
        name matching the SQL pattern ``name_like`` (``%`` any text)."""
        query = sa.select(t.eval_datasets).order_by(_e.name)
        if experiment_ids:
            linked = sa.select(t.eval_dataset_experiments.c.eval_dataset_id).where(
                t.eval_dataset_experiments.c.experiment_id.in_(list(experiment_ids))
            )
            query = query.where(_e.id.in_(linked))
        if name_like:
            query = query.where(_e.name.like(name_like))
        with self._db.read() as conn:
            rows = conn.execute(query.limit(max_results).offset(offset)).all()
            return [self._entity(conn, row) for row in rows]

    def delete_dataset(self, ref: str) -> None:
        """Forget the evaluation dataset; its dataset versions stay (runs' lineage needs them)."""
        with self._db.write() as conn:
            row = self._row(conn, ref)
            conn.execute(t.eval_datasets.delete().where(_e.id == row.id))
            append_event(
                conn,
                actor=self._actor,
                action="eval_dataset.delete",
                subject_type="eval_dataset",
                subject_id=row.id,
                before={"name": row.name, "version_id": row.version_id},
            )

    # --- records ----------------------------------------------------------------------------

    def records(self, ref: str) -> list[EvalRecord]:
        """The current records, by record id."""
        with self._db.read() as conn:
            row = self._row(conn, ref)
        return self._records_of(row.version_id)

    def upsert_records(self, ref: str, records: Iterable[Any]) -> dict[str, Any]:
        """Insert records, or merge them into those with the same inputs; a change stores a
        new dataset version. Returns ``inserted``, ``updated``, ``digest`` and ``version``."""
        new = parse_records(records)
        return self._change(ref, lambda old: merge(old, new), "upsert")

    def delete_records(self, ref: str, record_ids: Sequence[str]) -> int:
        """Remove records by id; how many were there."""
        wanted = set(record_ids)
        gone: list[int] = []

        def drop(old: list[EvalRecord]) -> tuple[list[EvalRecord], int, int]:
            kept = [r for r in old if r.record_id not in wanted]
            gone[:] = [len(old) - len(kept)]
            return kept, 0, 0

        self._change(ref, drop, "delete")
        return gone[0]

    def _change(self, ref: str, apply: Any, what: str) -> dict[str, Any]:
        for _ in range(_MAX_RETRIES):
            with self._db.read() as conn:
                row = self._row(conn, ref)
            old = self._records_of(row.version_id)
            merged, inserted, updated = apply(old)
            if merged == old and row.version_id is not None:
                version = self._data.get_by_id(row.version_id)
                return _counts(inserted, updated, version.content_hash, version.ref)
            version = self._store_version(row.name, merged, what)
            with self._db.write() as conn:
                moved = conn.execute(
                    t.eval_datasets.update()
                    .where(_e.id == row.id)
                    .where(
                        _e.version_id.is_(None)
                        if row.version_id is None
                        else _e.version_id == row.version_id
                    )
                    .values(
                        version_id=version.id,
                        schema_json=json.dumps(_schema(merged)),
                        profile_json=json.dumps({"num_records": len(merged)}),
                        last_updated_by=self._actor,
                        updated_at=now_ms(),
                    )
                ).rowcount
                if moved:
                    append_event(
                        conn,
                        actor=self._actor,
                        action=f"eval_dataset.records_{what}",
                        subject_type="eval_dataset",
                        subject_id=row.id,
                        before={"version_id": row.version_id},
                        after={"version_id": version.id, "digest": version.content_hash},
                    )
                    return _counts(inserted, updated, version.content_hash, version.ref)
        raise Conflict(
            f"evaluation dataset {ref!r} kept changing while records were written; try again"
        )

    def _store_version(self, name: str, records: list[EvalRecord], what: str) -> Any:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / FILE_NAME
            path.write_bytes(encode(records))
            return self._data.add(name, path, message=f"evaluation records ({what})")

    def _records_of(self, version_id: str | None) -> list[EvalRecord]:
        if version_id is None:
            return []
        version = self._data.get_by_id(version_id)
        entries = [f for f in self._data.files(version) if f.path == FILE_NAME]
        if not entries:
            raise NotFound(f"dataset version {version.ref} holds no {FILE_NAME}")
        return decode(self._store.blobs.read_bytes(entries[0].hash))

    # --- tags and experiments -----------------------------------------------------------------

    def set_tags(self, ref: str, tags: Mapping[str, str]) -> None:
        """Set tags (a key set again is replaced)."""
        tags = _check_tags(tags)
        with self._db.write() as conn:
            row = self._row(conn, ref)
            for key, value in tags.items():
                conn.execute(
                    t.eval_dataset_tags.delete().where(
                        t.eval_dataset_tags.c.eval_dataset_id == row.id,
                        t.eval_dataset_tags.c.key == key,
                    )
                )
                conn.execute(
                    t.eval_dataset_tags.insert(),
                    {"eval_dataset_id": row.id, "key": key, "value": value},
                )
            self._touch(conn, row.id, "set_tags", {"tags": tags})

    def delete_tag(self, ref: str, key: str) -> None:
        with self._db.write() as conn:
            row = self._row(conn, ref)
            gone = conn.execute(
                t.eval_dataset_tags.delete().where(
                    t.eval_dataset_tags.c.eval_dataset_id == row.id,
                    t.eval_dataset_tags.c.key == key,
                )
            ).rowcount
            if not gone:
                raise NotFound(f"evaluation dataset {row.name!r} has no tag {key!r}")
            self._touch(conn, row.id, "delete_tag", {"key": key})

    def add_experiments(self, ref: str, experiment_ids: Sequence[str]) -> EvalDataset:
        with self._db.write() as conn:
            row = self._row(conn, ref)
            self._link(conn, row.id, experiment_ids)
            self._touch(conn, row.id, "add_experiments", {"experiment_ids": list(experiment_ids)})
        return self.get_dataset(row.id)

    def remove_experiments(self, ref: str, experiment_ids: Sequence[str]) -> EvalDataset:
        c = t.eval_dataset_experiments.c
        with self._db.write() as conn:
            row = self._row(conn, ref)
            conn.execute(
                t.eval_dataset_experiments.delete().where(
                    c.eval_dataset_id == row.id, c.experiment_id.in_(list(experiment_ids))
                )
            )
            self._touch(
                conn, row.id, "remove_experiments", {"experiment_ids": list(experiment_ids)}
            )
        return self.get_dataset(row.id)

    def _link(self, conn: sa.Connection, eval_id: str, experiment_ids: Sequence[str]) -> None:
        c = t.eval_dataset_experiments.c
        for experiment_id in dict.fromkeys(experiment_ids):
            known = conn.execute(
                sa.select(t.experiments.c.id).where(t.experiments.c.id == experiment_id)
            ).first()
            if known is None:
                raise NotFound(f"experiment {experiment_id!r} does not exist")
            there = conn.execute(
                sa.select(c.experiment_id).where(
                    c.eval_dataset_id == eval_id, c.experiment_id == experiment_id
                )
            ).first()
            if there is None:
                conn.execute(
                    t.eval_dataset_experiments.insert(),
                    {"eval_dataset_id": eval_id, "experiment_id": experiment_id},
                )

    def _touch(self, conn: sa.Connection, eval_id: str, action: str, change: Any) -> None:
        """Record a change of tags or experiment links: who, when, and in the audit log."""
        conn.execute(
            t.eval_datasets.update()
            .where(_e.id == eval_id)
            .values(updated_at=now_ms(), last_updated_by=self._actor)
        )
        append_event(
            conn,
            actor=self._actor,
            action=f"eval_dataset.{action}",
            subject_type="eval_dataset",
            subject_id=eval_id,
            after=change,
        )

    # --- rows -------------------------------------------------------------------------------

    def _row(self, conn: sa.Connection, ref: str, *, missing_ok: bool = False) -> Any:
        row = conn.execute(
            sa.select(t.eval_datasets).where(sa.or_(_e.id == ref, _e.name == ref))
        ).first()
        if row is None and not missing_ok:
            raise NotFound(
                f"evaluation dataset {ref!r} not found; `loopwright eval datasets` lists them"
            )
        return row

    def _entity(self, conn: sa.Connection, row: Any) -> EvalDataset:
        tags = dict(
            conn.execute(
                sa.select(t.eval_dataset_tags.c.key, t.eval_dataset_tags.c.value).where(
                    t.eval_dataset_tags.c.eval_dataset_id == row.id
                )
            ).all()
        )
        experiments = tuple(
            conn.execute(
                sa.select(t.eval_dataset_experiments.c.experiment_id)
                .where(t.eval_dataset_experiments.c.eval_dataset_id == row.id)
                .order_by(t.eval_dataset_experiments.c.experiment_id)
            ).scalars()
        )
        version = None
        if row.version_id is not None:
            version = conn.execute(
                sa.select(t.dataset_versions.c.number, t.dataset_versions.c.content_hash).where(
                    t.dataset_versions.c.id == row.version_id
                )
            ).first()
        profile = json.loads(row.profile_json) if row.profile_json else None
        return EvalDataset(
            id=row.id,
            name=row.name,
            digest=None if version is None else version.content_hash,
            version_id=row.version_id,
            version=None if version is None else version.number,
            record_count=int((profile or {}).get("num_records", 0)),
            tags=tags,
            experiment_ids=experiments,
            schema=json.loads(row.schema_json) if row.schema_json else None,
            profile=profile,
            created_by=row.created_by,
            last_updated_by=row.last_updated_by,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )


def _counts(inserted: int, updated: int, digest: str, version: str) -> dict[str, Any]:
    return {"inserted": inserted, "updated": updated, "digest": digest, "version": version}


def _check_tags(tags: Mapping[str, Any]) -> dict[str, str]:
    if not isinstance(tags, Mapping):
        raise InvalidInput("tags must be an object of string keys and string values")
    out = {}
    for key, value in tags.items():
        check_text("tag key", key, limit=KEY)
        text = value if isinstance(value, str) else json.dumps(value)
        check_text(f"tag {key!r}", text, limit=TAG_VALUE, allow_empty=True)
        out[key] = text
    return out


def _schema(records: Sequence[EvalRecord]) -> dict[str, dict[str, str]]:
    """The keys of inputs and expectations and their JSON types, as MLflow reports a schema."""
    out: dict[str, dict[str, str]] = {"inputs": {}, "expectations": {}}
    for record in records:
        for part, values in (("inputs", record.inputs), ("expectations", record.expectations)):
            for key, value in values.items():
                out[part].setdefault(key, type(value).__name__)
    return out
