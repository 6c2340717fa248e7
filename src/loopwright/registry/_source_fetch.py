"""Fetching an external version's files from its source URI, for pinning.

A source is reachable when it is a local folder (a path or a ``file://`` URI without a host), a
run's or a logged model's artifacts in this store (``runs:/<run>/<path>``, ``models:/m-<id>``),
a verified version of this registry (``models:/<name>/<version>``), or a URL an installed
fsspec backend reads (``s3://``, ``gs://`` …). Anything else is refused with the way around it:
download the files yourself and pin from that folder. What a fetch copies in is capped by the
``max_upload_bytes`` setting, the bound a server puts on any upload (:class:`FetchBudget`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from ..errors import Conflict, InvalidInput, LimitExceeded, NotFound
from ..paths import normalize_relpath, safe_join
from ..store import artifact_trees as trees

if TYPE_CHECKING:
    from ..store.home import Store
    from ._versions import VersionsMixin

__all__ = ["FetchBudget", "fetch_source", "stored_here", "write_files"]

_LOCAL_HOSTS = ("", "localhost", "127.0.0.1")
_HOW = "download the files and pin from that folder (pin_source(name, version, folder))"


class FetchBudget:
    """The bytes a pin may copy in from outside the store: ``max_upload_bytes``, so that
    fetching a source is no way around the bound an upload of the same files would meet."""

    def __init__(self, store: Store, what: str) -> None:
        self.limit = store.settings.max_upload_bytes
        self.what = what
        self.used = 0

    def take(self, size: int) -> None:
        """Count ``size`` more bytes; ``LimitExceeded`` once past the limit."""
        self.used += size
        if self.used > self.limit:
            raise LimitExceeded(
                f"{self.what} holds more than {self.limit} bytes, the max_upload_bytes setting "
                "(LOOPWRIGHT_MAX_UPLOAD_BYTES); raise it, or pin from a folder of the files "
                "(pin_source(name, version, folder))"
            )


def stored_here(source: str) -> bool:
    """Whether ``source`` names files in this store (a run, a logged model or a version)."""
    return urlsplit(source).scheme in ("runs", "models")


def fetch_source(store: Store, registry: VersionsMixin, source: str, dest: Path) -> Path:
    """The folder holding the files ``source`` names: a local folder itself, else a copy in the
    new folder ``dest``."""
    parts = urlsplit(source)
    if parts.scheme in ("", "file"):
        if parts.scheme == "file" and parts.netloc not in _LOCAL_HOSTS:
            raise InvalidInput(f"source {source!r} names another host; {_HOW}")
        folder = Path(unquote(parts.path) if parts.scheme == "file" else source)
        if not folder.is_dir():
            raise NotFound(f"source folder {str(folder)!r} does not exist here; {_HOW}")
        return folder
    if parts.scheme == "runs":
        run_id, _, path = parts.path.strip("/").partition("/")
        return _copy_tree(store, trees.RUN, run_id, path, dest, source)
    if parts.scheme == "models":
        ref = parts.path.strip("/")
        if ref.startswith("m-"):
            model_id, _, path = ref.removeprefix("m-").partition("/")
            return _copy_tree(store, trees.LOGGED_MODEL, model_id, path, dest, source)
        name, _, number = ref.partition("/")
        version = registry.resolve(name, number or "latest")
        if version.external:
            raise Conflict(
                f"source {source!r} is {version.ref}, itself an external, unverified version; "
                f"pin that one first (`loopwright models pin {name} {version.version}`)"
            )
        return registry.download_package(version, dest)
    return _fetch_url(source, dest, FetchBudget(store, f"source {source!r}"))


def _copy_tree(
    store: Store, owner_type: str, owner_id: str, path: str, dest: Path, source: str
) -> Path:
    prefix = normalize_relpath(path, what="source path") if path.strip("/") else ""
    files = trees.files_under(store.db, owner_type, owner_id, prefix)
    if not files:
        raise NotFound(f"source {source!r} holds no files in this store yet; {_HOW}")
    write_files(store, files, prefix, dest)
    return dest


def write_files(store: Store, files: Sequence[trees.FileRow], prefix: str, dest: Path) -> None:
    """Write the stored ``files`` of a tree, all below ``prefix``, into ``dest`` by their paths
    below ``prefix`` (scratch copies: not synced to disk)."""
    cut = len(prefix) + 1 if prefix else 0
    for row in files:
        target = safe_join(dest, row.path[cut:], what="file path")
        target.parent.mkdir(parents=True, exist_ok=True)
        store.blobs.get_file(row.blob_hash, target, durable=False)


def _fetch_url(source: str, dest: Path, budget: FetchBudget) -> Path:
    """Copy the folder at an fsspec URL (its backend must be installed) into ``dest``."""
    import fsspec

    try:
        # A fresh filesystem: fsspec caches instances per arguments, and one made while the
        # credentials were missing would keep failing every later use of that scheme.
        fs, path = fsspec.core.url_to_fs(source, skip_instance_cache=True)
    except (ImportError, ValueError) as exc:
        raise InvalidInput(f"cannot read source {source!r} here ({exc}); {_HOW}") from None
    root = path.rstrip("/")
    try:
        found = fs.isdir(root)
        listed = fs.find(root, detail=True) if found else {}
        listed_size = {remote: int(info.get("size") or 0) for remote, info in listed.items()}
        budget.take(sum(listed_size.values()))  # before anything is downloaded
        # File by file, each through the one path resolver: a key like "a/../../x" in a bucket
        # must not write outside ``dest``.
        for remote, size in sorted(listed_size.items()):
            relative = remote[len(root) :].lstrip("/")
            target = safe_join(dest, relative, what=f"file of source {source!r}")
            target.parent.mkdir(parents=True, exist_ok=True)
            fs.get_file(remote, str(target))
            budget.take(target.stat().st_size - size)  # a size the listing did not give
    except InvalidInput:  # ours (an unsafe path, the size cap): already says what to do
        raise
    except Exception as exc:  # any backend's failure (credentials, network): say what to do
        raise InvalidInput(
            f"cannot read source {source!r} here ({type(exc).__name__}: {exc}); {_HOW}"
        ) from exc
    if not found:
        raise NotFound(f"source {source!r} is not a folder that can be read here; {_HOW}")
    return dest
