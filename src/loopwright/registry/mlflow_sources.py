"""MLflow model folders registered as ordinary model versions, and the folder kept beside each.

MLflow's ``create-model-version`` names where a model's files are: a logged model, a run's
artifacts, a served artifact path or another version. Each is an artifact tree in the store;
the folder must hold an ``MLmodel`` file. :func:`register_mlflow_model` fetches it into a temp
folder, converts it into a Loopwright package with ``convert_mlflow_model(..., trusted=False)``
(pickles are kept and marked, nothing is unpickled) and registers it with
``RegistryService.register``, so approvals, audit, cards and SBOMs apply.

The MLflow folder itself is kept with the version (``artifacts`` rows of owner type
``mlflow_version``, sharing the blobs: no bytes are copied), so an MLflow client downloading the
version gets the files it expects. The version and its folder are written in two transactions;
if the second never happens, the version's download falls back to the package's files.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa

from .._ids import now_ms
from .._numbers import is_number
from ..paths import normalize_relpath
from ..store import artifact_trees as trees
from ..store import schema as t
from ..store.upsert import insert_ignore, upsert
from ..tracking.logged_models import LoggedModelService
from ._source_fetch import write_files

if TYPE_CHECKING:
    from ..store.home import Store
    from ..tracking.service import TrackingService
    from .service import RegistryService

__all__ = [
    "MLMODEL",
    "ModelSource",
    "forget_folders",
    "has_folder",
    "keep_pinned_folder",
    "logged_model_links",
    "logged_model_source",
    "register_external",
    "register_mlflow_model",
    "run_source",
    "tree_source",
    "version_source",
]

MLMODEL = "MLmodel"
VERSIONS_TAG = "mlflow.modelVersions"  # on a logged model: the versions registered from it


@dataclass(frozen=True)
class ModelSource:
    """An MLflow model folder in some artifact tree, and where it came from."""

    files: list[trees.FileRow]  # every file below ``prefix``
    prefix: str
    run_id: str | None
    logged_model_id: str | None


def tree_source(
    store: Store,
    owner_type: str,
    owner_id: str,
    prefix: str,
    *,
    run_id: str | None = None,
    logged_model_id: str | None = None,
) -> ModelSource | None:
    """The MLflow model folder at ``prefix`` of an owner's tree; ``None`` without ``MLmodel``."""
    files = trees.files_under(store.db, owner_type, owner_id, prefix)
    mlmodel = f"{prefix}/{MLMODEL}" if prefix else MLMODEL
    if not any(f.path == mlmodel for f in files):
        return None
    return ModelSource(files, prefix, run_id, logged_model_id)


def logged_model_source(store: Store, model_id: str) -> ModelSource | None:
    """A logged model's folder (``model_id`` as stored, without ``m-``)."""
    model = LoggedModelService(store).get(model_id)
    return tree_source(
        store,
        trees.LOGGED_MODEL,
        model.id,
        "",
        run_id=model.source_run_id,
        logged_model_id=model.id,
    )


def run_source(
    store: Store, tracking: TrackingService, run_id: str, path: str
) -> ModelSource | None:
    """The folder at ``path`` of a run's artifacts, or else the run's logged model of that name
    (MLflow 3 keeps logged models apart from run artifacts)."""
    prefix = normalize_relpath(path, what="artifact path") if path.strip("/") else ""
    found = tree_source(store, trees.RUN, run_id, prefix, run_id=run_id)
    if found is not None:
        return found
    experiment_id = tracking.get_run(run_id).experiment_id
    for model in LoggedModelService(store).search([experiment_id]):
        if model.source_run_id == run_id and model.name == prefix:
            return logged_model_source(store, model.id)
    return None


def version_source(store: Store, registry: RegistryService, ref: str) -> ModelSource | None:
    """The MLflow folder kept with the version ``ref`` (``name/3``, ``name/Production``)."""
    name, _, number = ref.partition("/")
    version = registry.resolve(name, int(number) if is_number(number) else number)
    return tree_source(
        store,
        trees.MLFLOW_VERSION,
        version.id,
        "",
        run_id=version.run_id,
        logged_model_id=logged_model_links(store, [version.id]).get(version.id),
    )


def register_mlflow_model(
    store: Store,
    registry: RegistryService,
    name: str,
    source_uri: str,
    source: ModelSource,
    *,
    run_id: str | None,
    description: str | None,
    tags: Mapping[str, str],
) -> str:
    """Convert and register the folder as a new version of ``name``, keep the folder with it;
    returns the version id."""
    from .packaging.mlflow_import import convert_mlflow_model

    with tempfile.TemporaryDirectory(prefix="lw-mlflow-register-") as tmp:
        folder, package = Path(tmp) / "mlflow-model", Path(tmp) / "package"
        folder.mkdir()
        write_files(store, source.files, source.prefix, folder)
        convert_mlflow_model(folder, package, trusted=False)
        version = registry._register_folder(
            name,
            package,
            run_id=run_id,
            source=source_uri,
            description=description,
            tags=dict(tags),
        )
    _keep_with(store, name, version.id, version.version, source_uri, source)
    return version.id


def register_external(
    store: Store,
    registry: RegistryService,
    name: str,
    source_uri: str,
    *,
    run_id: str | None,
    logged_model_id: str | None,
    description: str | None,
    tags: Mapping[str, str],
) -> str:
    """Record ``source_uri``, whose MLflow folder is not stored here, as an external version of
    ``name`` (loadable once pinned); returns the version id."""
    version = registry._register_external(
        name, source_uri, run_id=run_id, description=description, tags=tags
    )
    _keep_with(
        store,
        name,
        version.id,
        version.version,
        source_uri,
        ModelSource([], "", run_id, logged_model_id),
    )
    return version.id


def _keep_with(
    store: Store, name: str, version_id: str, number: int, source_uri: str, source: ModelSource
) -> None:
    """Keep the MLflow folder (and the logged model it came from) with the version."""
    with store.db.write() as conn:
        conn.execute(
            t.mlflow_model_versions.insert(),
            {
                "version_id": version_id,
                "logged_model_id": source.logged_model_id,
                "source_uri": source_uri,
                "created_at": now_ms(),
            },
        )
        if source.files:
            trees.copy_tree(conn, source.files, source.prefix, trees.MLFLOW_VERSION, version_id)
        if source.logged_model_id:
            _note_version(conn, source.logged_model_id, name, number)


def registered_through_mlflow(conn: sa.Connection, version_id: str) -> bool:
    """Whether MLflow's API registered the version (its clients then download an MLflow
    folder kept with it)."""
    mv = t.mlflow_model_versions.c
    found = conn.execute(sa.select(mv.version_id).where(mv.version_id == version_id)).first()
    return found is not None


def keep_pinned_folder(
    conn: sa.Connection, version_id: str, files: Sequence[trees.FileRow]
) -> None:
    """Keep the MLflow folder an external version was pinned from (``files``, stored as blobs)
    with it, if MLflow's API registered it: MLflow clients download that folder."""
    if not registered_through_mlflow(conn, version_id):
        return
    now = now_ms()
    insert_ignore(
        conn, t.blobs, [{"hash": f.blob_hash, "size": f.size, "created_at": now} for f in files]
    )
    trees.copy_tree(conn, list(files), "", trees.MLFLOW_VERSION, version_id)


def _note_version(conn: sa.Connection, model_id: str, name: str, number: int) -> None:
    """Add the version to the logged model's ``mlflow.modelVersions`` tag, as MLflow does."""
    tg = t.logged_model_tags.c
    current = conn.execute(
        sa.select(tg.value).where(tg.model_id == model_id, tg.key == VERSIONS_TAG)
    ).scalar()
    try:
        versions = json.loads(current) if current else []
    except json.JSONDecodeError:
        versions = []
    versions.append({"name": name, "version": number})
    upsert(
        conn,
        t.logged_model_tags,
        [{"model_id": model_id, "key": VERSIONS_TAG, "value": json.dumps(versions)}],
        update=["value"],
    )


def logged_model_links(store: Store, version_ids: Sequence[str]) -> dict[str, str]:
    """version id -> the logged model it was registered from (versions without one left out)."""
    mv = t.mlflow_model_versions.c
    if not version_ids:
        return {}
    with store.db.read() as conn:
        rows = conn.execute(
            sa.select(mv.version_id, mv.logged_model_id).where(
                mv.version_id.in_(list(version_ids)), mv.logged_model_id.is_not(None)
            )
        ).all()
    return {row.version_id: row.logged_model_id for row in rows}


def has_folder(store: Store, version_id: str) -> bool:
    """Whether the version was registered from an MLflow folder, kept with it."""
    mv = t.mlflow_model_versions.c
    with store.db.read() as conn:
        found = conn.execute(sa.select(mv.version_id).where(mv.version_id == version_id)).first()
    return found is not None


def forget_folders(store: Store, version_ids: Sequence[str]) -> None:
    """Drop the MLflow folders kept for these (deleted) versions."""
    with store.db.write() as conn:
        for version_id in version_ids:
            trees.delete_tree(conn, trees.MLFLOW_VERSION, version_id)
