"""Which sources ``create-model-version`` accepts, and the MLflow folder one names here.

MLflow registers a version from any source URI, under rules its server enforces (mirrored here
from MLflow 3.17's ``handlers.py``, messages included, since clients match them):

- a URI that makes a server connect to the host it names (``http://host``, ``ftp://host``,
  ``mlflow-artifacts://host`` …) is refused;
- a local path or ``file://`` URI must lie inside the artifact folder of the run (``run_id``) or
  logged model (``model_id``) given, and that folder must be local; ``file://`` with a remote
  host is an error;
- any other URI must be absolute: no ``..`` segment, however percent-encoded, and no NUL;
- ``runs:/<run>/…`` needs ``run_id`` = ``<run>``; ``models:/m-<id>`` needs that ``model_id``;
  an ``mlflow-artifacts:/`` URI must lie inside the artifact folder of the run or model given;
- ``models:/<name>/<version>`` copies that version's run and model (given ones must match).

The run id is kept as given, whether or not the run exists (only the local and served-artifact
cases above look the run up). :func:`locate` then finds the MLflow folder the source names
among this server's files; the route registers a verified version from it, or, without one, an
external version that loads only once pinned (:mod:`loopwright.registry._external`).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, unquote_plus, urlparse, urlsplit

from ...errors import InvalidInput, LoopwrightError, NotFound
from ...registry.entities import ModelVersion
from ...registry.mlflow_sources import (
    ModelSource,
    logged_model_links,
    logged_model_source,
    run_source,
    tree_source,
    version_source,
)
from ...store import artifact_trees as trees
from ...tracking.logged_models import LoggedModelService
from .._state import ServerState
from ..auth import Identity
from ._artifacts import resolve
from ._uris import logged_model_uri, model_id_in, model_id_out, run_artifact_uri
from .errors import MlflowError

__all__ = ["AcceptedSource", "accept_source", "locate", "pin_if_local", "require_exists"]

# Schemes whose artifact repositories connect to the host the URI names (MLflow's host policy).
_HOST_ADDRESSED = frozenset(
    {"ftp", "sftp", "hdfs", "viewfs", "http", "https", "mlflow-artifacts", "r2", "b2", "abfss"}
)
_LOCAL_HOSTS = (".", "localhost", "127.0.0.1")
_ARTIFACT_ROUTE = ("api", "2.0", "mlflow-artifacts", "artifacts")


@dataclass(frozen=True)
class AcceptedSource:
    """A source MLflow would accept, with the run and logged model it is recorded under."""

    source: str
    run_id: str | None
    model_id: str | None  # as MLflow writes it, m-<hex>


def accept_source(
    state: ServerState, identity: Identity, source: str, run_id: str | None, model_id: str | None
) -> AcceptedSource:
    """``source`` checked by MLflow's rules (see the module docstring); ``InvalidInput`` names
    the rule a refused one breaks."""
    scheme = urlparse(source).scheme.lower()
    if scheme in _HOST_ADDRESSED and (scheme != "mlflow-artifacts" or urlparse(source).netloc):
        raise InvalidInput(
            f"'source' cannot use the '{scheme}' scheme: the '{scheme}' scheme addresses a host "
            "other than the tracking server's configured artifact storage, so the server would "
            "connect to the host named in the URI. Register the model from where this server "
            "stores it (runs:/, models:/ or mlflow-artifacts:/ without a host)"
        )
    accepted = _lineage(state, identity, source, run_id, model_id)
    if accepted.model_id:
        _check_for_model(state, accepted.source, accepted.model_id)
    else:
        _check_for_run(state, accepted.source, accepted.run_id)
    return accepted


def _invalid(source: str, id_name: str) -> InvalidInput:
    return InvalidInput(
        f"Invalid model version source: '{source}'. The {id_name} request parameter must "
        "identify the resource that contains the source."
    )


def _lineage(
    state: ServerState, identity: Identity, source: str, run_id: str | None, model_id: str | None
) -> AcceptedSource:
    """``models:/<name>/<ref>`` becomes ``models:/<name>/<number>``, with that version's run
    and logged model unless the request names them (then they must match)."""
    parts = urlparse(source)
    if parts.scheme != "models":
        return AcceptedSource(source, run_id, model_id)
    if parts.netloc:
        raise InvalidInput(
            f"Invalid model version source: '{source}'. Registered model sources must use the "
            "active model registry."
        )
    name, ref = _model_ref(source)
    if ref is None:
        return AcceptedSource(source, run_id, model_id)
    version = state.registry(identity).resolve(name, ref)
    linked = logged_model_links(state.store, [version.id]).get(version.id)
    linked_out = model_id_out(linked) if linked else None
    if (run_id is not None and run_id != (version.run_id or "")) or (
        model_id is not None and model_id != (linked_out or "")
    ):
        raise InvalidInput(
            f"Invalid model version source: '{source}'. The run_id and model_id request "
            "parameters must match the referenced model version."
        )
    return AcceptedSource(
        f"models:/{name}/{version.version}",
        run_id if run_id is not None else version.run_id,
        model_id if model_id is not None else linked_out,
    )


def _model_ref(source: str) -> tuple[str, str | None]:
    """``(name, ref)`` of ``models:/name/ref`` or ``models:/name@alias``; ``(id, None)`` of
    ``models:/<logged model id>``; ``InvalidInput`` for anything else, as MLflow."""
    path = urlparse(source, allow_fragments=False).path
    parts = path.lstrip("/").split("/")
    if not path.startswith("/") or len(path) <= 1 or len(parts) > 2 or not parts[0].strip():
        raise _invalid(source, "model_id")
    if len(parts) == 2:
        if not parts[1].strip():
            raise _invalid(source, "model_id")
        return parts[0], parts[1]
    if "@" in parts[0]:
        name, _, alias = parts[0].rpartition("@")
        if not alias.strip():
            raise _invalid(source, "model_id")
        return name, alias
    return parts[0], None


def _is_local(source: str) -> bool:
    parts = urlparse(source)
    if parts.scheme == "":
        return True
    if parts.scheme == "file":
        host = parts.hostname
        if host and not (host == "." or host.startswith(_LOCAL_HOSTS[1:])):
            raise MlflowError(
                "INTERNAL_ERROR",
                f"{source} is not a valid remote uri. For remote access on windows, please "
                "consider using a different scheme such as SMB (e.g. smb://<hostname>/<path>).",
            )
        return True
    return False


def _local_path(uri: str) -> Path:
    parts = urlparse(uri)
    return Path(unquote(parts.path) if parts.scheme == "file" else uri).resolve()


def _inside_local(source: str, root: str) -> bool:
    if not _is_local(root):
        return False
    folder = _local_path(root)
    path = _local_path(source)
    return folder == path or folder in path.parents


def _no_relative_paths(source: str) -> None:
    """MLflow's ``_validate_non_local_source_contains_relative_paths``."""
    message = (
        f"Invalid model version source: '{source}'. If supplying a source as an http, https, "
        "local file path, ftp, objectstore, or mlflow-artifacts uri, an absolute path must be "
        "provided without relative path references present. Please provide an absolute path."
    )
    while (unquoted := unquote_plus(source)) != source:
        source = unquoted
    path = re.sub(r"/+", "/", urlparse(source).path.rstrip("/"))
    if "\x00" in path or any(p == ".." for p in source.split("/")):
        raise InvalidInput(message)
    if os.path.splitdrive(Path(path).resolve().as_posix())[1] != path:
        raise InvalidInput(message)


def _uri_parts(uri: str) -> tuple[str, str, tuple[str, ...]]:
    parsed = urlsplit(uri)
    parts = []
    for part in parsed.path.split("/"):
        while (unquoted := unquote(part)) != part:
            part = unquoted
        if part:
            parts.append(part)
    return parsed.scheme.lower(), parsed.netloc.lower(), tuple(parts)


def _within(source: str, root: str) -> bool:
    scheme, host, parts = _uri_parts(source)
    root_scheme, root_host, root_parts = _uri_parts(root)
    return (
        (scheme, host) == (root_scheme, root_host)
        and bool(root_parts)
        and parts[: len(root_parts)] == root_parts
    )


def _served_artifacts(source: str) -> bool:
    scheme, _, parts = _uri_parts(source)
    if scheme == "mlflow-artifacts":
        return True
    n = len(_ARTIFACT_ROUTE)
    return scheme in ("http", "https") and any(
        parts[i : i + n] == _ARTIFACT_ROUTE for i in range(len(parts) - n + 1)
    )


def _run_root(state: ServerState, run_id: str, source: str) -> str:
    try:
        run = state.tracking.get_run(run_id)
    except NotFound:
        raise _invalid(source, "run_id") from None
    location = state.tracking._location_of(run.experiment_id)
    return run_artifact_uri(run.experiment_id, run.id, location)


def _model_root(state: ServerState, model_id: str, source: str) -> str:
    try:
        model = LoggedModelService(state.store).get(model_id_in(model_id))
    except NotFound:
        raise _invalid(source, "model_id") from None
    return logged_model_uri(model.experiment_id, model.id)


def _local_refused(source: str, id_name: str, owner: str) -> InvalidInput:
    return InvalidInput(
        f"Invalid model version source: '{source}'. To use a local path as a model version "
        f"source, the {id_name} request parameter has to be specified and the local path has to "
        f"be contained within the artifact directory of the {owner} specified by the {id_name}."
    )


def _check_for_run(state: ServerState, source: str, run_id: str | None) -> None:
    """MLflow's ``_validate_source_run``."""
    if _is_local(source):
        if run_id and _inside_local(source, _run_root(state, run_id, source)):
            return
        raise _local_refused(source, "run_id", "run")
    _no_relative_paths(source)
    parts = urlparse(source)
    if parts.scheme == "runs":
        named = parts.path.lstrip("/").split("/")[0]
        if parts.netloc or not named or not run_id or named != run_id:
            raise _invalid(source, "run_id")
        return
    if parts.scheme == "models" and (parts.netloc or _model_ref(source)[1] is None):
        raise _invalid(source, "model_id")
    if _served_artifacts(source):
        if run_id and _within(source, _run_root(state, run_id, source)):
            return
        raise _invalid(source, "run_id")


def _check_for_model(state: ServerState, source: str, model_id: str) -> None:
    """MLflow's ``_validate_source_model``; the logged model must exist (MLflow would fail on
    it after creating the version, tagging the model with it)."""
    if _is_local(source):
        if _inside_local(source, _model_root(state, model_id, source)):
            return
        raise _local_refused(source, "model_id", "run")
    _no_relative_paths(source)
    parts = urlparse(source)
    if parts.scheme == "models":
        name, ref = _model_ref(source)
        if parts.netloc or (ref is None and name != model_id):
            raise _invalid(source, "model_id")
    if parts.scheme == "runs":
        raise _invalid(source, "model_id")
    if _served_artifacts(source) and not _within(source, _model_root(state, model_id, source)):
        raise _invalid(source, "model_id")
    try:
        LoggedModelService(state.store).get(model_id_in(model_id))
    except NotFound:
        raise NotFound(f"Logged model with ID '{model_id}' not found.") from None


def locate(state: ServerState, identity: Identity, accepted: AcceptedSource) -> ModelSource | None:
    """The MLflow folder (with ``MLmodel``) the accepted source names among this server's
    files, or ``None``: not stored here, or not (yet) an MLflow model."""
    store, parts = state.store, urlsplit(accepted.source)
    try:
        if parts.scheme == "models":
            name, ref = _model_ref(accepted.source)
            if ref is None:
                return logged_model_source(store, model_id_in(name))
            return version_source(store, state.registry(identity), f"{name}/{ref}")
        if parts.scheme == "runs":
            run_id, _, path = parts.path.strip("/").partition("/")
            return run_source(store, state.tracking, run_id, path)
        if parts.scheme == "mlflow-artifacts" and not parts.netloc:
            tree = resolve(state, parts.path.strip("/"))
            return tree_source(
                store,
                tree.owner_type,
                tree.owner_id,
                tree.path,
                run_id=tree.owner_id if tree.owner_type == trees.RUN else None,
                logged_model_id=tree.owner_id if tree.owner_type == trees.LOGGED_MODEL else None,
            )
    except (NotFound, InvalidInput):  # no such run, model or path here
        return None
    return None


def pin_if_local(state: ServerState, identity: Identity, version: ModelVersion) -> ModelVersion:
    """``version`` pinned at once if it is external and its source a local path inside its run's
    local artifact folder that holds a model (read safely, see ``registry._run_folders``), as a
    version from a folder stored here is; otherwise (no model there yet, or not one Loopwright
    reads) it stays external, as MLflow would accept it."""
    if not version.external or urlsplit(version.source or "").scheme not in ("", "file"):
        return version
    try:
        return state.registry(identity)._pin_stored_source(
            version.model, version.version, trusted=False
        )
    except LoopwrightError:  # opportunistic: whatever stops it leaves the version external
        return version


def require_exists(state: ServerState, identity: Identity, name: str) -> None:
    """MLflow needs the registered model before its versions."""
    try:
        state.registry(identity).get_model(name)
    except NotFound:
        raise NotFound(
            f"registered model {name!r} does not exist; create it first "
            "(MlflowClient.create_registered_model)"
        ) from None
