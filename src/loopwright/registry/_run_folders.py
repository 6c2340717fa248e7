"""Reading a model's files from a run's local artifact folder, for pinning on a server.

A run of an experiment with a local ``artifact_location`` keeps its artifacts in a folder MLflow
clients write themselves, so a version's source may be a path inside it. A server reads such a
folder only after checking it against today's allowed roots (``tracking.artifact_locations``),
and then the way it writes there: each folder opened from the allowed root down, no symbolic link
followed (``O_NOFOLLOW``), links inside skipped, so nothing a client plants leads elsewhere.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

import sqlalchemy as sa

from ..errors import NotFound, UnsafePath
from ..paths import normalize_relpath, open_folder_nofollow, safe_join
from ..store import schema as t
from ..tracking.artifact_locations import ArtifactRoots, run_artifact_folder
from ._source_fetch import FetchBudget

if TYPE_CHECKING:
    from ..store.home import Store

__all__ = ["copy_run_folder", "inside_run_folder"]

_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW


def inside_run_folder(store: Store, run_id: str | None, source: str) -> str | None:
    """The path of the local ``source`` below its run's local artifact folder (``""``: the folder
    itself), or ``None``: not a local path, no such run, no local folder, or not inside it."""
    parts = urlsplit(source)
    if not run_id or parts.scheme not in ("", "file") or parts.netloc not in ("", "localhost"):
        return None
    r, e = t.runs.c, t.experiments.c
    query = sa.select(e.artifact_location).join_from(t.runs, t.experiments).where(r.id == run_id)
    with store.db.read() as conn:
        location = conn.execute(query).scalar()
    if not location:
        return None
    folder = run_artifact_folder(ArtifactRoots.from_settings(store.settings), location, run_id)
    path = os.path.normpath(unquote(parts.path) if parts.scheme == "file" else source)
    below = os.path.relpath(path, folder)
    if below == ".":
        return ""
    if below.startswith(".."):
        return None
    return normalize_relpath(below, what="source path")


def copy_run_folder(store: Store, run_id: str, below: str, dest: Path) -> Path:
    """Copy the run's local artifact folder at ``below`` (see :func:`inside_run_folder`) into the
    new folder ``dest``, following no symbolic link; returns ``dest``. At most the
    ``max_upload_bytes`` setting is copied (:class:`FetchBudget`)."""
    r, e = t.runs.c, t.experiments.c
    query = sa.select(e.artifact_location).join_from(t.runs, t.experiments).where(r.id == run_id)
    with store.db.read() as conn:
        location = str(conn.execute(query).scalar())
    roots = ArtifactRoots.from_settings(store.settings)
    folder = run_artifact_folder(roots, location, run_id)
    root = next(r for r in roots.allowed if folder == Path(r) or Path(r) in folder.parents)
    inside = folder.relative_to(root).as_posix() + (f"/{below}" if below else "")
    fd = -1
    try:
        fd = open_folder_nofollow(root, inside)
        dest.mkdir(parents=True)
        _copy_dir(fd, dest, FetchBudget(store, f"the folder of run {run_id} at {below or '.'!r}"))
    except FileNotFoundError:
        raise NotFound(
            f"run {run_id} has no files at {below or '.'!r} in its experiment's folder yet; pin "
            "the version once the model is written there"
        ) from None
    except OSError as exc:
        raise UnsafePath(
            f"the files of run {run_id} at {below or '.'!r} cannot be read below its "
            f"experiment's folder ({exc.strerror}); a symbolic link or a file stands in the way"
        ) from None
    finally:
        if fd >= 0:
            os.close(fd)
    return dest


def _copy_dir(fd: int, dest: Path, budget: FetchBudget) -> None:
    for entry in os.scandir(fd):
        if entry.is_symlink():
            continue  # never followed, never copied
        target = safe_join(dest, entry.name, what="file name")
        if entry.is_dir(follow_symlinks=False):
            inner = os.open(entry.name, _DIR, dir_fd=fd)
            try:
                target.mkdir()
                _copy_dir(inner, target, budget)
            finally:
                os.close(inner)
        elif entry.is_file(follow_symlinks=False):
            budget.take(entry.stat(follow_symlinks=False).st_size)
            data = os.open(entry.name, os.O_RDONLY | os.O_NOFOLLOW, dir_fd=fd)
            with os.fdopen(data, "rb") as source, target.open("wb") as out:
                shutil.copyfileobj(source, out, 1 << 20)
