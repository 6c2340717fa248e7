"""What MLflow records about a run beyond params, metrics and tags: its dataset inputs and the
logged models it read or produced.

MLflow's datasets are descriptions (name, digest, source, schema, profile), not versioned data,
so they are kept as told in ``run_external_datasets``. A dataset whose source names a Loopwright
dataset version (``loopwright:/<name>@v3``, or source type ``loopwright``) is also recorded as
the run's lineage input in ``run_inputs``, like ``run.use_dataset``.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from .._ids import now_ms
from ..errors import NotFound
from ..store import schema as t
from ..store import statements
from ..store.upsert import upsert
from ._round_trip import read_all
from .logged_models import logged_model_ref

if TYPE_CHECKING:
    from ..store.database import Database

__all__ = [
    "DatasetInput",
    "RunLinks",
    "links_from",
    "links_queries",
    "load_links",
    "loopwright_ref",
    "record_inputs",
    "record_outputs",
]

CONTEXT_TAG = "mlflow.data.context"
_LOOPWRIGHT = "loopwright:"


@dataclass(frozen=True)
class DatasetInput:
    name: str
    digest: str
    source_type: str | None = None
    source: str | None = None
    schema: str | None = None
    profile: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RunLinks:
    datasets: tuple[DatasetInput, ...] = ()
    model_inputs: tuple[str, ...] = ()
    model_outputs: tuple[tuple[str, int], ...] = ()  # (model id, step)


def loopwright_ref(dataset: DatasetInput) -> str | None:
    """The Loopwright dataset reference (``name@v3``) a dataset's source names, if any."""
    uri = None
    if dataset.source:
        try:
            document = json.loads(dataset.source)
        except (json.JSONDecodeError, TypeError):
            document = None
        if isinstance(document, dict):
            uri = document.get("uri") or document.get("ref")
        elif dataset.source.startswith(_LOOPWRIGHT):
            uri = dataset.source
    if isinstance(uri, str) and uri.startswith(_LOOPWRIGHT):
        return uri[len(_LOOPWRIGHT) :].lstrip("/") or None
    if dataset.source_type == "loopwright" and isinstance(uri, str) and uri:
        return uri
    return None


def record_inputs(
    db: Database,
    run_id: str,
    datasets: Sequence[DatasetInput],
    models: Sequence[str] = (),
) -> None:
    """Keep the run's dataset inputs (as described) and link the logged models it read."""
    with db.write() as conn:
        if datasets:
            _record_datasets(conn, run_id, datasets)
        if models:
            _record_models(conn, run_id, "input", [(model_id, None) for model_id in models])


def record_outputs(db: Database, run_id: str, models: Sequence[tuple[str, int | None]]) -> None:
    """Link the run to the logged models it produced, each at a step."""
    if models:
        with db.write() as conn:
            _record_models(conn, run_id, "output", models)


def _record_datasets(conn: sa.Connection, run_id: str, datasets: Sequence[DatasetInput]) -> None:
    """Keep the datasets' descriptions (a dataset logged again is updated)."""
    now = now_ms()
    rows = [
        {
            "run_id": run_id,
            "name": d.name,
            "digest": d.digest,
            "source_type": d.source_type,
            "source": d.source,
            "schema_json": d.schema,
            "profile_json": d.profile,
            "tags_json": json.dumps(dict(d.tags), sort_keys=True) if d.tags else None,
            "created_at": now,
        }
        for d in datasets
    ]
    upsert(
        conn,
        t.run_external_datasets,
        rows,
        update=["source_type", "source", "schema_json", "profile_json", "tags_json"],
    )


def _record_models(
    conn: sa.Connection, run_id: str, direction: str, models: Sequence[tuple[str, int | None]]
) -> None:
    """Link the run to logged models it read (``input``) or produced (``output``, at a step)."""
    ids = sorted({model_id for model_id, _ in models})
    known = set(
        conn.execute(sa.select(t.logged_models.c.id).where(t.logged_models.c.id.in_(ids))).scalars()
    )
    missing = [logged_model_ref(i) for i in ids if i not in known]
    if missing:
        raise NotFound(f"logged model(s) {', '.join(missing)} do not exist")
    now = now_ms()
    upsert(
        conn,
        t.run_logged_models,
        [
            {
                "run_id": run_id,
                "model_id": model_id,
                "direction": direction,
                "step": step,
                "created_at": now,
            }
            for model_id, step in models
        ],
        update=["step"],
    )


# Raw SQL (store/statements.py): runs/get and runs/search read the links of every run they return.
_DATASETS_SQL = (
    'SELECT "run_id", "name", "digest", "source_type", "source", "schema_json", "profile_json",'
    ' "tags_json" FROM run_external_datasets WHERE run_id IN ({}) ORDER BY created_at, name'
)
_MODELS_SQL = (
    'SELECT "run_id", "model_id", "direction", "step" FROM run_logged_models'
    " WHERE run_id IN ({}) ORDER BY created_at, model_id"
)


def load_links(db: Database, run_ids: Sequence[str]) -> dict[str, RunLinks]:
    """Each run's dataset inputs and logged-model links (runs without any are left out)."""
    found: dict[str, RunLinks] = {}
    with db.one_read() if db.dialect != "postgresql" else contextlib.nullcontext():
        for start in range(0, len(run_ids), 900):
            chunk = list(run_ids[start : start + 900])
            found.update(links_from(*read_all(db, links_queries(chunk))))
    return found


def links_queries(run_ids: Sequence[str]) -> list[tuple[str, Sequence[str]]]:
    """The two reads :func:`links_from` takes the rows of (at most 900 runs): a caller may send
    them with its own (``tracking._round_trip``)."""
    ids = statements.marks(len(run_ids))
    return [(_DATASETS_SQL.format(ids), run_ids), (_MODELS_SQL.format(ids), run_ids)]


def links_from(dataset_rows: Sequence[Any], model_rows: Sequence[Any]) -> dict[str, RunLinks]:
    """The links in the rows of :func:`links_queries`."""
    datasets: dict[str, list[DatasetInput]] = {}
    inputs: dict[str, list[str]] = {}
    outputs: dict[str, list[tuple[str, int]]] = {}
    for run_id, name, digest, kind, source, schema, profile, tags_json in dataset_rows:
        tags = json.loads(tags_json) if tags_json else {}
        datasets.setdefault(run_id, []).append(
            DatasetInput(name, digest, kind, source, schema, profile, tags)
        )
    for run_id, model_id, direction, step in model_rows:
        if direction == "input":
            inputs.setdefault(run_id, []).append(model_id)
        else:
            outputs.setdefault(run_id, []).append((model_id, step or 0))
    return {
        run_id: RunLinks(
            tuple(datasets.get(run_id, ())),
            tuple(inputs.get(run_id, ())),
            tuple(outputs.get(run_id, ())),
        )
        for run_id in {*datasets, *inputs, *outputs}
    }
