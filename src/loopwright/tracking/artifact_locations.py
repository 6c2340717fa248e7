"""Where an experiment's artifacts live: served by the server, or a local folder it allows.

An experiment's ``artifact_location`` is ``None`` (the server keeps the files in its blob store
and MLflow clients reach them through ``mlflow-artifacts:/<experiment id>``) or a local folder.
A folder is accepted only inside a root the server's operator allowed: the
``default_artifact_root`` setting (new experiments then get ``<root>/<experiment id>``) or one of
``artifact_roots``. Everything below a root goes through the one path resolver
(:func:`loopwright.paths.safe_join`): no ``..``, no control characters or encoded separators, no
symbolic link leading out of the root. A folder that overlaps the server's own home or blob
store is refused too, as is every other scheme (``s3://``, ``runs:/``, ``mlflow-artifacts:/...``).

As ``mlflow server`` does, a scheme-less location is kept as an absolute path (a relative one is
taken from the server's working directory) and a ``file:`` URI as a ``file:`` URI. A run's
artifacts are ``<location>/<run id>/artifacts``.

Example:
    >>> roots = ArtifactRoots(default=None, allowed=("/srv/mlruns",), store=())
    >>> new_location(roots, "file:///srv/mlruns/team-a", "0123", cwd="/")
    'file:///srv/mlruns/team-a'
    >>> new_location(roots, "/etc", "0123", cwd="/")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    loopwright.errors.InvalidInput: artifact_location '/etc' is not inside a folder this server ...
"""

from __future__ import annotations

import os
import posixpath
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

import sqlalchemy as sa

from ..errors import InvalidInput, UnsafePath
from ..paths import normalize_relpath, open_folder_nofollow, safe_join
from ..store import schema as t

if TYPE_CHECKING:
    from ..config import Settings
    from ..store.home import Store

__all__ = [
    "ArtifactRoots",
    "copy_to_location",
    "local_folder",
    "new_location",
    "run_artifact_folder",
    "run_location",
    "write_run_file",
]

_WHAT = "artifact_location"
_FIX = (
    "leave artifact_location empty (the server then stores the artifacts itself) or give a "
    "local folder inside one the server allows (settings default_artifact_root and "
    "artifact_roots, LOOPWRIGHT_ARTIFACT_ROOTS)"
)


@dataclass(frozen=True)
class ArtifactRoots:
    """The folders a server may keep artifacts in, from its settings."""

    default: str | None  # new experiments' root; None: served from the blob store
    allowed: tuple[str, ...]  # roots experiments may name (the default root among them)
    store: tuple[str, ...]  # the server's home, blob folder and SQLite file: never to overlap

    @classmethod
    def from_settings(cls, settings: Settings) -> ArtifactRoots:
        default = settings.default_artifact_root
        allowed = tuple(dict.fromkeys([*([default] if default else []), *settings.artifact_roots]))
        from ..store.database import sqlite_file

        store = [str(settings.home)]
        if "://" not in settings.blob_uri:
            store.append(settings.blob_uri)
        database = sqlite_file(settings.db_uri)
        if database is not None:
            store.append(str(database))
        return cls(default=default, allowed=allowed, store=tuple(store))


def _given_path(location: str, cwd: str | os.PathLike[str]) -> tuple[str, bool]:
    """``(absolute path as given, whether it was a file: URI)``; other schemes are refused."""
    if "\x00" in location:
        raise InvalidInput(f"{_WHAT} contains a NUL character; {_FIX}")
    parts = urlsplit(location)
    scheme = parts.scheme.lower()
    if scheme == "file":
        if parts.netloc not in ("", "localhost") or parts.query or parts.fragment:
            raise InvalidInput(
                f"{_WHAT} {location!r} is not a local folder of this server (a host, query or "
                f"fragment is given); write file:///absolute/path, or {_FIX}"
            )
        return unquote(parts.path), True
    if scheme:
        raise InvalidInput(f"{_WHAT} {location!r} is not supported ({scheme}:); {_FIX}")
    return os.path.join(os.fspath(cwd), location), False


def local_folder(roots: ArtifactRoots, location: str, *, cwd: str = "/") -> Path:
    """The folder ``location`` names, checked against the roots (raises if not allowed)."""
    path, _ = _given_path(location, cwd)
    return _inside_a_root(roots, location, path)


def _inside_a_root(roots: ArtifactRoots, location: str, path: str) -> Path:
    for root in roots.allowed:
        if path.rstrip("/") == root.rstrip("/"):
            folder = Path(root)
        elif path.startswith(root.rstrip("/") + "/"):
            # The part below the root is a user path: the one resolver checks it (and that no
            # symbolic link along it leads out of the root).
            try:
                folder = safe_join(root, path[len(root.rstrip("/")) + 1 :], what=_WHAT)
            except UnsafePath as exc:
                # Said as a bad parameter, not as an unsafe artifact path, which MLflow's API
                # words as a bare "Invalid path".
                raise InvalidInput(f"{exc}; or {_FIX}") from None
        else:
            continue
        _check_apart_from_store(roots, location, folder)
        return folder
    if ".." in path.split("/"):
        raise InvalidInput(f"{_WHAT} {location!r} has a '..' segment; {_FIX}")
    raise InvalidInput(f"{_WHAT} {location!r} is not inside a folder this server allows; {_FIX}")


def _check_apart_from_store(roots: ArtifactRoots, location: str, folder: Path) -> None:
    real = os.path.realpath(folder)
    for own in roots.store:
        own_real = os.path.realpath(own)
        if os.path.commonpath([real, own_real]) in (real, own_real):
            raise InvalidInput(
                f"{_WHAT} {location!r} overlaps the server's own store (its home or blob "
                f"folder), where clients must not write; {_FIX}"
            )


def new_location(
    roots: ArtifactRoots, given: str | None, experiment_id: str, *, cwd: str | os.PathLike[str]
) -> str | None:
    """The location to record for a new experiment (``None``: served by the server).

    Raises:
        InvalidInput: ``given`` is another scheme, or not inside an allowed root.
        UnsafePath: the part below its root breaks a rule of the path resolver.
    """
    if not given:
        if roots.default is None:
            return None
        return safe_join(roots.default, experiment_id, what="experiment id").as_uri()
    path, is_uri = _given_path(given, cwd)
    folder = _inside_a_root(roots, given, path)
    return folder.as_uri() if is_uri else posixpath.normpath(str(folder))


def run_artifact_folder(roots: ArtifactRoots, location: str, run_id: str) -> Path:
    """The local folder of a run's artifacts, re-checked against today's roots."""
    folder = local_folder(roots, location)
    return safe_join(folder, f"{run_id}/artifacts", what="run id")


def write_run_file(
    roots: ArtifactRoots, location: str, run_id: str, path: str, source: Path
) -> Path:
    """Copy ``source`` to ``<location>/<run_id>/artifacts/<path>``; returns the file written.

    Clients may write into these folders themselves, so a link could appear after any check:
    the folders are opened one at a time from the allowed root down, none of them followed if
    it is a symbolic link (``O_NOFOLLOW`` relative to the folder above), and so is the file.
    """
    folder = run_artifact_folder(roots, location, run_id)
    root = next(r for r in roots.allowed if _below(folder, r))
    below = folder.relative_to(root).as_posix()
    inside = f"{below}/{normalize_relpath(path, what='artifact path')}"
    folders, name = inside.rsplit("/", 1)
    os.makedirs(root, exist_ok=True)  # the operator's root; made on first use, as MLflow does
    try:
        fd = open_folder_nofollow(root, folders, create=True)
        try:
            flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW
            out = os.open(name, flags, 0o644, dir_fd=fd)
        finally:
            os.close(fd)
    except OSError as exc:
        raise UnsafePath(
            f"artifact path {path!r} of run {run_id} cannot be written below its experiment's "
            f"folder ({exc.strerror}); a symbolic link or a file stands in the way"
        ) from None
    with os.fdopen(out, "wb") as target, source.open("rb") as data:
        shutil.copyfileobj(data, target, 1 << 20)
    return folder.joinpath(path)


def run_location(conn: sa.Connection, run_id: str) -> str | None:
    """The ``artifact_location`` of the experiment of run ``run_id`` (``None``: none, or no run)."""
    r, e = t.runs.c, t.experiments.c
    query = sa.select(e.artifact_location).join_from(t.runs, t.experiments).where(r.id == run_id)
    location: str | None = conn.execute(query).scalar()
    return location


def copy_to_location(
    store: Store, location: str | None, run_id: str, files: Sequence[tuple[str, Path]]
) -> None:
    """Write a run's newly logged files into its experiment's local folder ``location`` (read
    by :func:`run_location`), if it has one.

    The blob store keeps them as for every run; the copy is what MLflow clients, which read a
    ``file:`` artifact URI themselves, see.
    """
    if location:
        roots = ArtifactRoots.from_settings(store.settings)
        for path, source in files:
            write_run_file(roots, location, run_id, path, source)


def _below(folder: Path, root: str) -> bool:
    return folder == Path(root) or Path(root) in folder.parents
