"""Registering an MLflow model folder as an ordinary Loopwright model version.

MLflow's ``create-model-version`` names where the model's files are: a logged model
(``models:/m-<id>``), a run's artifacts (``runs:/<run>/<path>``), a served artifact path
(``mlflow-artifacts:/...``) or another version (``models:/<name>/<version>``). The folder must
hold an ``MLmodel`` file. It is fetched from the blob store into a temp folder, converted into a
Loopwright package with ``convert_mlflow_model(..., trusted=False)`` (pickles are kept and marked,
nothing is unpickled) and registered with ``RegistryService.register``.

The MLflow folder itself is kept with the version (``artifacts`` rows of owner type
``mlflow_version``, sharing the blobs: no bytes are copied), so ``get-download-uri`` hands MLflow
clients the files they expect and ``mlflow.pyfunc.load_model("models:/name@alias")`` works. The
version and its snapshot are written in two transactions; if the second never happens the
download URI falls back to the Loopwright package's files.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import sqlalchemy as sa

from ..._ids import now_ms
from ...errors import InvalidInput, NotFound
from ...paths import normalize_relpath, safe_join
from ...store import schema as t
from ...store.upsert import upsert
from .._state import ServerState
from ..auth import Identity
from . import _files
from ._artifacts import resolve
from ._logged_model_store import LoggedModelStore
from ._uris import model_id_in, model_id_out

__all__ = [
    "MLMODEL",
    "ModelSource",
    "find_source",
    "forget_snapshots",
    "logged_model_links",
    "register_mlflow_model",
    "require_exists",
]

MLMODEL = "MLmodel"
VERSIONS_TAG = "mlflow.modelVersions"  # on a logged model: the versions registered from it


@dataclass(frozen=True)
class ModelSource:
    """An MLflow model folder in some artifact tree, and where it came from."""

    files: list[_files.FileRow]  # every file below ``prefix``
    prefix: str
    run_id: str | None
    logged_model_id: str | None


def _tree_source(
    state: ServerState, owner_type: str, owner_id: str, prefix: str, **origin: str | None
) -> ModelSource | None:
    files = _files.files_under(state.store.db, owner_type, owner_id, prefix)
    mlmodel = f"{prefix}/{MLMODEL}" if prefix else MLMODEL
    if not any(f.path == mlmodel for f in files):
        return None
    return ModelSource(files, prefix, origin.get("run_id"), origin.get("logged_model_id"))


def _logged_model_source(state: ServerState, model_id: str) -> ModelSource | None:
    model = LoggedModelStore(state.store).get(model_id_in(model_id))
    return _tree_source(
        state,
        _files.LOGGED_MODEL,
        model.id,
        "",
        run_id=model.source_run_id,
        logged_model_id=model.id,
    )


def _run_source(state: ServerState, run_id: str, path: str) -> ModelSource | None:
    prefix = normalize_relpath(path, what="artifact path") if path.strip("/") else ""
    found = _tree_source(state, _files.RUN, run_id, prefix, run_id=run_id)
    if found is not None:
        return found
    # MLflow 3 keeps logged models apart from run artifacts: a logged model of that name.
    models = [
        m
        for m in LoggedModelStore(state.store).search(
            [state.tracking.get_run(run_id).experiment_id],
            filter_string=f"name = '{prefix}'" if "'" not in prefix else None,
            max_results=50_000,
        )[0]
        if m.source_run_id == run_id and m.name == prefix
    ]
    return _logged_model_source(state, model_id_out(models[0].id)) if models else None


def _version_source(state: ServerState, identity: Identity, ref: str) -> ModelSource | None:
    name, _, number = ref.partition("/")
    registry = state.registry(identity)
    version = registry.resolve(name, int(number) if number.isdigit() else number)
    owner = _files.MLFLOW_VERSION
    return _tree_source(
        state,
        owner,
        version.id,
        "",
        run_id=version.run_id,
        logged_model_id=logged_model_links(state, [version.id]).get(version.id),
    )


def find_source(
    state: ServerState, identity: Identity, source: str, model_id: str | None
) -> ModelSource:
    """The MLflow model folder ``source`` (or ``model_id``) names; ``InvalidInput`` if it has no
    ``MLmodel`` or lives outside this server."""
    parts = urlsplit(source)
    found: ModelSource | None
    if model_id:
        found = _logged_model_source(state, model_id)
    elif parts.scheme == "models":
        path = parts.path.strip("/")
        found = (
            _version_source(state, identity, path)
            if "/" in path
            else _logged_model_source(state, path)
        )
    elif parts.scheme == "runs":
        run_id, _, path = parts.path.strip("/").partition("/")
        found = _run_source(state, run_id, path)
    elif parts.scheme == "mlflow-artifacts":
        tree = resolve(state, parts.path.strip("/"))
        found = _tree_source(
            state,
            tree.owner_type,
            tree.owner_id,
            tree.path,
            run_id=tree.owner_id if tree.owner_type == _files.RUN else None,
            logged_model_id=tree.owner_id if tree.owner_type == _files.LOGGED_MODEL else None,
        )
    else:
        raise InvalidInput(
            f"model version source {source!r} is not stored on this server; log the model "
            "through it first and register models:/<model_id>, runs:/<run_id>/<path> or an "
            "mlflow-artifacts:/ URI"
        )
    if found is None:
        raise InvalidInput(
            f"model version source {source!r} holds no {MLMODEL} file; register the folder that "
            "mlflow.<flavor>.log_model wrote"
        )
    return found


def _fetch(state: ServerState, source: ModelSource, folder: Path) -> None:
    cut = len(source.prefix) + 1 if source.prefix else 0
    for row in source.files:
        dest = safe_join(folder, row.path[cut:], what="model file path")
        dest.parent.mkdir(parents=True, exist_ok=True)
        state.store.blobs.get_file(row.blob_hash, dest, durable=False)


def register_mlflow_model(
    state: ServerState,
    identity: Identity,
    name: str,
    source_uri: str,
    source: ModelSource,
    *,
    run_id: str | None,
    description: str | None,
    tags: Mapping[str, str],
) -> str:
    """Convert and register the folder as a new version of ``name``; returns the version id."""
    from ...registry.mlflow_import import convert_mlflow_model

    registry = state.registry(identity)
    with tempfile.TemporaryDirectory(prefix="lw-mlflow-register-") as tmp:
        folder, package = Path(tmp) / "mlflow-model", Path(tmp) / "package"
        folder.mkdir()
        _fetch(state, source, folder)
        convert_mlflow_model(folder, package, trusted=False)
        version = registry.register(
            name,
            package,
            run_id=run_id,
            source=source_uri,
            description=description,
            tags=dict(tags),
        )
    with state.store.db.write() as conn:
        conn.execute(
            t.mlflow_model_versions.insert(),
            {
                "version_id": version.id,
                "logged_model_id": source.logged_model_id,
                "source_uri": source_uri,
                "created_at": now_ms(),
            },
        )
        _files.copy_tree(conn, source.files, source.prefix, _files.MLFLOW_VERSION, version.id)
        if source.logged_model_id:
            _note_version(conn, source.logged_model_id, name, version.version)
    return version.id


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


def logged_model_links(state: ServerState, version_ids: Sequence[str]) -> dict[str, str]:
    """version id -> the logged model it was registered from (versions without one left out)."""
    mv = t.mlflow_model_versions.c
    if not version_ids:
        return {}
    with state.store.db.read() as conn:
        rows = conn.execute(
            sa.select(mv.version_id, mv.logged_model_id).where(
                mv.version_id.in_(list(version_ids)), mv.logged_model_id.is_not(None)
            )
        ).all()
    return {row.version_id: row.logged_model_id for row in rows}


def forget_snapshots(state: ServerState, version_ids: Sequence[str]) -> None:
    """Drop the MLflow folders kept for these (deleted) versions."""
    with state.store.db.write() as conn:
        for version_id in version_ids:
            _files.delete_tree(conn, _files.MLFLOW_VERSION, version_id)


def require_exists(state: ServerState, identity: Identity, name: str) -> None:
    """MLflow needs the registered model before its versions."""
    try:
        state.registry(identity).get_model(name)
    except NotFound:
        raise NotFound(
            f"registered model {name!r} does not exist; create it first "
            "(MlflowClient.create_registered_model)"
        ) from None
