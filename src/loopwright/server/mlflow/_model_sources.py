"""Which MLflow model folder a ``create-model-version`` request names.

MLflow names the model's files by URI: a logged model (``models:/m-<id>``, or ``model_id``), a
run's artifacts (``runs:/<run>/<path>``), a served artifact path (``mlflow-artifacts:/...``) or
another version (``models:/<name>/<version>``). This module translates the URI; finding the
folder in the store, converting and registering it, and keeping it with the version are the
registry's (:mod:`loopwright.registry.mlflow_sources`).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from ...errors import InvalidInput, NotFound
from ...registry.mlflow_sources import (
    MLMODEL,
    ModelSource,
    logged_model_source,
    run_source,
    tree_source,
    version_source,
)
from ...store import artifact_trees as trees
from .._state import ServerState
from ..auth import Identity
from ._artifacts import resolve
from ._uris import model_id_in

__all__ = ["find_source", "require_exists"]


def find_source(
    state: ServerState, identity: Identity, source: str, model_id: str | None
) -> ModelSource:
    """The MLflow model folder ``source`` (or ``model_id``) names; ``InvalidInput`` if it has no
    ``MLmodel`` or lives outside this server."""
    parts = urlsplit(source)
    store = state.store
    found: ModelSource | None
    if model_id:
        found = logged_model_source(store, model_id_in(model_id))
    elif parts.scheme == "models":
        path = parts.path.strip("/")
        found = (
            version_source(store, state.registry(identity), path)
            if "/" in path
            else logged_model_source(store, model_id_in(path))
        )
    elif parts.scheme == "runs":
        run_id, _, path = parts.path.strip("/").partition("/")
        found = run_source(store, state.tracking, run_id, path)
    elif parts.scheme == "mlflow-artifacts":
        tree = resolve(state, parts.path.strip("/"))
        found = tree_source(
            store,
            tree.owner_type,
            tree.owner_id,
            tree.path,
            run_id=tree.owner_id if tree.owner_type == trees.RUN else None,
            logged_model_id=tree.owner_id if tree.owner_type == trees.LOGGED_MODEL else None,
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


def require_exists(state: ServerState, identity: Identity, name: str) -> None:
    """MLflow needs the registered model before its versions."""
    try:
        state.registry(identity).get_model(name)
    except NotFound:
        raise NotFound(
            f"registered model {name!r} does not exist; create it first "
            "(MlflowClient.create_registered_model)"
        ) from None
