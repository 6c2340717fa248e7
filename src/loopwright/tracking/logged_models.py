"""MLflow 3's LoggedModels: rows, tags, params, metrics and their status lifecycle.

A logged model is created PENDING, receives its files (``artifacts`` rows of owner type
``logged_model``), then is finalized READY (or FAILED). Deleting one is soft, as in MLflow.
Models are named ``m-<32 hex>`` to users (:func:`logged_model_ref`) and by the hex in the store.
The MLflow server's routes translate requests into :class:`LoggedModelService` calls.

As in MLflow, a model's source run need not exist: the ``source_run_id`` column links a run this
store has; an id it does not have is kept in the reserved tag :data:`UNLINKED_SOURCE_RUN_TAG`,
which the model reports as its ``source_run_id`` and never among its tags.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import sqlalchemy as sa

from .._ids import new_id, now_ms
from ..errors import Conflict, InvalidInput, NotFound
from ..store import artifact_trees as trees
from ..store import schema as t
from ..store.home import Store
from ..store.upsert import insert_ignore, upsert

__all__ = [
    "SEARCH_ATTRIBUTES",
    "STATUSES",
    "UNLINKED_SOURCE_RUN_TAG",
    "DatasetRef",
    "LoggedModel",
    "LoggedModelService",
    "ModelMetric",
    "logged_model_ref",
    "parse_status",
]

Lookup = Callable[[str, str], Any]
# A dataset named in a search: (name, digest); a digest of None matches any digest.
DatasetRef = tuple[str, str | None]
UNLINKED_SOURCE_RUN_TAG = "loopwright.unlinked_source_run_id"

# MLflow's LoggedModelStatus names and numbers -> the stored status.
STATUSES = {
    "LOGGED_MODEL_PENDING": "PENDING",
    "LOGGED_MODEL_READY": "READY",
    "LOGGED_MODEL_UPLOAD_FAILED": "FAILED",
}
_STATUS_NUMBERS = {1: "PENDING", 2: "READY", 3: "FAILED"}
SEARCH_ATTRIBUTES = frozenset(
    {
        "name",
        "model_id",
        "model_type",
        "status",
        "source_run_id",
        "creation_timestamp",
        "creation_time",
        "last_updated_timestamp",
    }
)
_m = t.logged_models.c


def logged_model_ref(model_id: str) -> str:
    """How users name a logged model: ``m-`` and its stored id (MLflow's form)."""
    return f"m-{model_id}"


def parse_status(status: str | int) -> str:
    found = _STATUS_NUMBERS.get(status) if isinstance(status, int) else STATUSES.get(status)
    if found is None:
        raise InvalidInput(f"logged model status {status!r} is not one of {', '.join(STATUSES)}")
    return found


@dataclass(frozen=True)
class ModelMetric:
    key: str
    value: float
    step: int
    timestamp: int
    run_id: str | None = None
    dataset_name: str | None = None
    dataset_digest: str | None = None


@dataclass(frozen=True)
class LoggedModel:
    id: str
    experiment_id: str
    name: str
    source_run_id: str | None
    model_type: str | None
    status: str  # PENDING | READY | FAILED
    status_message: str | None
    lifecycle_stage: str
    created_by: str | None
    created_at: int
    updated_at: int
    tags: Mapping[str, str] = field(default_factory=dict)
    params: Mapping[str, str] = field(default_factory=dict)
    metrics: tuple[ModelMetric, ...] = ()

    def lookup(self, entity: str, key: str) -> Any:
        """The value of a filter column (``entity`` attributes, tags, params or metrics)."""
        if entity == "tags":
            return self.tags.get(key)
        if entity == "params":
            return self.params.get(key)
        if entity == "metrics":
            latest = [m for m in self.metrics if m.key == key]
            return max(latest, key=lambda m: (m.step, m.timestamp)).value if latest else None
        return {
            "name": self.name,
            "model_id": logged_model_ref(self.id),
            "model_type": self.model_type,
            "status": self.status,
            "source_run_id": self.source_run_id,
            "creation_timestamp": self.created_at,
            "creation_time": self.created_at,
            "last_updated_timestamp": self.updated_at,
        }.get(key)


def _check_not_reserved(keys: Iterable[str]) -> None:
    if UNLINKED_SOURCE_RUN_TAG in keys:
        raise InvalidInput(
            f"tag {UNLINKED_SOURCE_RUN_TAG!r} is reserved (a source run this store does not "
            "have); name the source run when creating the model"
        )


def _on_datasets(model: LoggedModel, datasets: Sequence[DatasetRef]) -> LoggedModel | None:
    """``model`` with only its metrics on ``datasets``; None if it has none."""
    metrics = tuple(
        m
        for m in model.metrics
        if any(
            m.dataset_name == name and (digest is None or m.dataset_digest == digest)
            for name, digest in datasets
        )
    )
    return replace(model, metrics=metrics) if metrics else None


def _matches(
    model: LoggedModel, matches: Callable[[Lookup], bool] | None, datasets: Sequence[DatasetRef]
) -> bool:
    seen = _on_datasets(model, datasets) if datasets else model
    return seen is not None and (matches is None or matches(seen.lookup))


class LoggedModelService:
    """Create, find, finalize, tag, search and delete logged models."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.db = store.db

    def create(
        self,
        experiment_id: str,
        *,
        name: str | None = None,
        source_run_id: str | None = None,
        model_type: str | None = None,
        params: Mapping[str, str] | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> LoggedModel:
        _check_not_reserved(tags or {})
        model_id, now = new_id(), now_ms()
        with self.db.write() as conn:
            stage = conn.execute(
                sa.select(t.experiments.c.lifecycle_stage).where(
                    t.experiments.c.id == experiment_id
                )
            ).scalar()
            if stage != "active":
                state = "does not exist" if stage is None else "is deleted"
                raise NotFound(f"experiment id {experiment_id!r} {state}")
            tags = dict(tags or {})
            if (
                source_run_id
                and not conn.execute(
                    sa.select(t.runs.c.id).where(t.runs.c.id == source_run_id)
                ).first()
            ):
                tags[UNLINKED_SOURCE_RUN_TAG] = source_run_id
                source_run_id = None
            conn.execute(
                t.logged_models.insert(),
                {
                    "id": model_id,
                    "experiment_id": experiment_id,
                    "name": name or f"model-{model_id[-8:]}",
                    "source_run_id": source_run_id or None,
                    "model_type": model_type or None,
                    "status": "PENDING",
                    "lifecycle_stage": "active",
                    "created_by": self.store.actor,
                    "created_at": now,
                    "updated_at": now,
                },
            )
            self._write_pairs(conn, t.logged_model_params, model_id, params or {}, replace=False)
            self._write_pairs(conn, t.logged_model_tags, model_id, tags, replace=True)
            return self._load(conn, [self._row(conn, model_id)])[0]

    def get(self, model_id: str, *, allow_deleted: bool = False) -> LoggedModel:
        with self.db.read() as conn:
            return self._load(conn, [self._row(conn, model_id, allow_deleted=allow_deleted)])[0]

    def finalize(self, model_id: str, status: str, message: str | None = None) -> LoggedModel:
        with self.db.write() as conn:
            self._row(conn, model_id)
            conn.execute(
                t.logged_models.update()
                .where(_m.id == model_id)
                .values(status=status, status_message=message, updated_at=now_ms())
            )
            return self._load(conn, [self._row(conn, model_id)])[0]

    def set_tags(self, model_id: str, tags: Mapping[str, str]) -> LoggedModel:
        _check_not_reserved(tags)
        with self.db.write() as conn:
            self._row(conn, model_id)
            self._write_pairs(conn, t.logged_model_tags, model_id, tags, replace=True)
            self._touch(conn, model_id)
            return self._load(conn, [self._row(conn, model_id)])[0]

    def delete_tag(self, model_id: str, key: str) -> None:
        _check_not_reserved([key])
        tg = t.logged_model_tags.c
        with self.db.write() as conn:
            self._row(conn, model_id)
            gone = conn.execute(
                t.logged_model_tags.delete().where(tg.model_id == model_id, tg.key == key)
            ).rowcount
            if not gone:
                raise NotFound(f"logged model {logged_model_ref(model_id)} has no tag {key!r}")
            self._touch(conn, model_id)

    def log_params(self, model_id: str, params: Mapping[str, str]) -> None:
        with self.db.write() as conn:
            self._row(conn, model_id)
            self._write_pairs(conn, t.logged_model_params, model_id, params, replace=False)
            self._touch(conn, model_id)

    def delete(self, model_id: str) -> None:
        with self.db.write() as conn:
            self._row(conn, model_id)
            conn.execute(
                t.logged_models.update()
                .where(_m.id == model_id)
                .values(lifecycle_stage="deleted", updated_at=now_ms())
            )

    def delete_files(self, model_id: str, path: str = "") -> int:
        """Forget the model's files at or below ``path`` (the blobs stay until gc)."""
        with self.db.write() as conn:
            self._row(conn, model_id)
            return trees.delete_tree(conn, trees.LOGGED_MODEL, model_id, path)

    def log_metrics(self, points: Sequence[tuple[str, ModelMetric]]) -> None:
        """Record ``(model_id, metric)`` points (exact repeats are ignored)."""
        ids = sorted({model_id for model_id, _ in points})
        rows = []
        for model_id, m in points:
            nan = math.isnan(m.value)
            rows.append(
                {
                    "model_id": model_id,
                    "key": m.key,
                    "step": m.step,
                    "timestamp": m.timestamp,
                    "value": 0.0 if nan else m.value,
                    "is_nan": nan,
                    "run_id": m.run_id,
                    "dataset_name": m.dataset_name,
                    "dataset_digest": m.dataset_digest,
                }
            )
        with self.db.write() as conn:
            known = set(conn.execute(sa.select(_m.id).where(_m.id.in_(ids))).scalars())
            missing = [logged_model_ref(i) for i in ids if i not in known]
            if missing:
                raise NotFound(f"logged model(s) {', '.join(missing)} do not exist")
            insert_ignore(conn, t.logged_model_metrics, rows)

    def search(
        self,
        experiment_ids: Sequence[str],
        *,
        matches: Callable[[Lookup], bool] | None = None,
        order_by: Sequence[tuple[str, bool]] = (),
        datasets: Sequence[DatasetRef] = (),
    ) -> list[LoggedModel]:
        """Active logged models of the experiments that ``matches`` accepts (given each model's
        :meth:`LoggedModel.lookup`), ordered by ``(attribute, ascending)`` pairs (default:
        newest first).

        With ``datasets``, as in MLflow, only models with a metric on one of them are found,
        and ``matches`` sees only the metrics on them."""
        with self.db.read() as conn:
            rows = conn.execute(
                sa.select(t.logged_models).where(
                    _m.experiment_id.in_(list(experiment_ids)), _m.lifecycle_stage == "active"
                )
            ).all()
            models = [m for m in self._load(conn, rows) if _matches(m, matches, datasets)]
        models.sort(key=lambda m: (-m.created_at, m.id))
        for key, ascending in reversed(order_by):
            missing = [m for m in models if m.lookup("attributes", key) is None]
            present = [m for m in models if m.lookup("attributes", key) is not None]
            present.sort(key=lambda m: m.lookup("attributes", key), reverse=not ascending)
            models = present + missing
        return models

    # --- rows ------------------------------------------------------------------------------

    def _row(self, conn: sa.Connection, model_id: str, *, allow_deleted: bool = False) -> Any:
        row = conn.execute(sa.select(t.logged_models).where(_m.id == model_id)).first()
        if row is None or (row.lifecycle_stage != "active" and not allow_deleted):
            raise NotFound(f"logged model {logged_model_ref(model_id)} does not exist")
        return row

    @staticmethod
    def _touch(conn: sa.Connection, model_id: str) -> None:
        conn.execute(t.logged_models.update().where(_m.id == model_id).values(updated_at=now_ms()))

    @staticmethod
    def _write_pairs(
        conn: sa.Connection,
        table: sa.Table,
        model_id: str,
        pairs: Mapping[str, str],
        *,
        replace: bool,
    ) -> None:
        rows = [{"model_id": model_id, "key": k, "value": str(v)} for k, v in pairs.items()]
        if replace:
            upsert(conn, table, rows, update=["value"])
            return
        insert_ignore(conn, table, rows)
        stored = dict(
            conn.execute(
                sa.select(table.c.key, table.c.value).where(
                    table.c.model_id == model_id, table.c.key.in_(list(pairs))
                )
            ).all()
        )
        for key, value in pairs.items():
            if stored.get(key) != str(value):
                raise Conflict(
                    f"param {key!r} of logged model {logged_model_ref(model_id)} is already "
                    f"{stored.get(key)!r}; params cannot change"
                )

    @staticmethod
    def _load(conn: sa.Connection, rows: Sequence[Any]) -> list[LoggedModel]:
        ids = [row.id for row in rows]
        tags: dict[str, dict[str, str]] = {i: {} for i in ids}
        params: dict[str, dict[str, str]] = {i: {} for i in ids}
        metrics: dict[str, list[ModelMetric]] = {i: [] for i in ids}
        for start in range(0, len(ids), 900):
            chunk = ids[start : start + 900]
            for table, into in ((t.logged_model_tags, tags), (t.logged_model_params, params)):
                for model_id, key, value in conn.execute(
                    sa.select(table.c.model_id, table.c.key, table.c.value).where(
                        table.c.model_id.in_(chunk)
                    )
                ):
                    into[model_id][key] = value
            lm = t.logged_model_metrics.c
            for r in conn.execute(
                sa.select(t.logged_model_metrics)
                .where(lm.model_id.in_(chunk))
                .order_by(lm.key, lm.step, lm.timestamp)
            ):
                value = math.nan if r.is_nan else r.value
                metrics[r.model_id].append(
                    ModelMetric(
                        r.key,
                        value,
                        r.step,
                        r.timestamp,
                        r.run_id,
                        r.dataset_name,
                        r.dataset_digest,
                    )
                )
        return [
            LoggedModel(
                id=row.id,
                experiment_id=row.experiment_id,
                name=row.name,
                source_run_id=tags[row.id].pop(UNLINKED_SOURCE_RUN_TAG, row.source_run_id),
                model_type=row.model_type,
                status=row.status,
                status_message=row.status_message,
                lifecycle_stage=row.lifecycle_stage,
                created_by=row.created_by,
                created_at=row.created_at,
                updated_at=row.updated_at,
                tags=tags[row.id],
                params=params[row.id],
                metrics=tuple(metrics[row.id]),
            )
            for row in rows
        ]
