"""Versions against folders on disk: checkout (materialise), status, and diff between versions."""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from ..errors import Conflict
from ..paths import safe_join
from .entities import DatasetDiff, DatasetVersion, FileEntry, WorkspaceStatus
from .service import local_service
from .stat_cache import FileKey, file_key

if TYPE_CHECKING:
    from .protocol import Datasets
    from .service import DatasetService

__all__ = ["checkout", "diff", "status"]

_P = TypeVar("_P", str, Path)


def _hash_on_disk(service: DatasetService, paths: list[_P]) -> dict[_P, str]:
    """Hashes of existing files, from the stat cache where it vouches for them."""
    return dict(zip(paths, service.stat_cache.hashes(paths), strict=True))


def status(
    service: Datasets, version: DatasetVersion, folder: str | os.PathLike[str]
) -> WorkspaceStatus:
    """Which files in ``folder`` differ from ``version`` (added, removed, modified)."""
    service = local_service(service, "data status")
    root = os.path.abspath(folder)
    entries = {e.path: e for e in service.files(version)}
    on_disk: dict[str, str] = {}  # plain strings: pathlib costs more than the walk itself
    if os.path.isfile(root):
        on_disk[Path(folder).name] = root
    elif os.path.isdir(root):
        for dirpath, _, names in os.walk(root):
            rel = os.path.relpath(dirpath, root).replace(os.sep, "/")
            prefix = "" if rel == "." else f"{rel}/"
            for name in names:
                on_disk[prefix + name] = os.path.join(dirpath, name)
    present = [on_disk[p] for p in entries if p in on_disk]
    hashes = _hash_on_disk(service, present)
    modified = sorted(p for p in entries if p in on_disk and hashes[on_disk[p]] != entries[p].hash)
    return WorkspaceStatus(
        version=version,
        added=sorted(set(on_disk) - set(entries)),
        removed=sorted(set(entries) - set(on_disk)),
        modified=modified,
    )


def checkout(
    service: Datasets,
    version: DatasetVersion,
    dest: str | os.PathLike[str],
    *,
    force: bool = False,
    progress: Callable[[int], None] | None = None,
) -> list[str]:
    """Write the version's files under ``dest``; returns the paths written.

    Files already matching are left alone. A local file whose content differs from the version
    and is not stored (a local change) is not overwritten without ``force``: the whole checkout
    is refused before anything changes. A file holding stored content is replaced.
    """
    service = local_service(service, "data checkout")
    root = Path(dest)
    entries = service.files(version)
    targets = [(entry, safe_join(root, entry.path, what="dataset path")) for entry in entries]
    blocked = [e.path for e, path in targets if path.exists() and not path.is_file()]
    if blocked:
        raise Conflict(
            f"a folder (or other non-file) is in the way of {len(blocked)} file(s) in {root} "
            f"({', '.join(blocked[:5])}); move it away, nothing was written"
        )
    existing = [path for _, path in targets if path.is_file()]
    hashes = _hash_on_disk(service, existing) if existing else {}
    differing = {e.path: hashes[path] for e, path in targets if hashes.get(path, e.hash) != e.hash}
    # A file whose content is stored (another version's, after a `git checkout` of its pointer)
    # can be restored at any time: only content the store lacks is a local change.
    stored = service.store.blobs.exists_many(set(differing.values())) if differing else set()
    conflicts = [rel for rel, digest in differing.items() if digest not in stored]
    if conflicts and not force:
        shown = ", ".join(conflicts[:5]) + (" …" if len(conflicts) > 5 else "")
        raise Conflict(
            f"{len(conflicts)} file(s) in {root} have local changes ({shown}); commit them as a "
            "new version with `loopwright data add`, or pass --force to overwrite"
        )
    todo = [(entry, path) for entry, path in targets if hashes.get(path) != entry.hash]
    for folder in sorted({path.parent for _, path in todo}):
        folder.mkdir(parents=True, exist_ok=True)

    def write(item: tuple[FileEntry, Path]) -> tuple[str, FileKey, str]:
        entry, path = item
        # A workspace copy can always be checked out again: no fsync (as git and DVC do).
        service.store.blobs.get_file(entry.hash, path, durable=False)
        return (os.path.abspath(path), file_key(os.stat(path)), entry.hash)

    if progress is not None and len(todo) < len(targets):
        progress(len(targets) - len(todo))
    fresh = []
    # File creation dominates on many small files, and it releases the GIL: use a few threads.
    with ThreadPoolExecutor(max_workers=4) as pool:
        for record in pool.map(write, todo):
            fresh.append(record)
            if progress is not None:
                progress(1)
    service.stat_cache.put_many(fresh)
    return [entry.path for entry, _ in todo]


def diff(service: Datasets, old: DatasetVersion, new: DatasetVersion) -> DatasetDiff:
    """Files added, removed and changed, plus schema, row-count and column-statistic changes."""
    before = {e.path: e for e in service.files(old)}
    after = {e.path: e for e in service.files(new)}
    changed = [
        (before[p], after[p])
        for p in sorted(before.keys() & after.keys())
        if before[p].hash != after[p].hash
    ]
    return DatasetDiff(
        old=old,
        new=new,
        added=[after[p] for p in sorted(after.keys() - before.keys())],
        removed=[before[p] for p in sorted(before.keys() - after.keys())],
        changed=changed,
        tabular=_tabular_diff(old, new),
    )


_STATS = ("null_fraction", "distinct", "mean", "std", "min", "max")


def _tabular_diff(old: DatasetVersion, new: DatasetVersion) -> dict[str, Any]:
    """Per tabular file present in both profiles: schema changes, row counts, column stats."""
    result: dict[str, Any] = {}
    old_profiles, new_profiles = old.profile or {}, new.profile or {}
    for path in sorted(old_profiles.keys() & new_profiles.keys()):
        a, b = old_profiles[path], new_profiles[path]
        cols_a, cols_b = a.get("columns", {}), b.get("columns", {})
        columns: dict[str, Any] = {}
        for name in sorted(cols_a.keys() & cols_b.keys()):
            changes = {
                stat: [cols_a[name].get(stat), cols_b[name].get(stat)]
                for stat in ("type", *_STATS)
                if cols_a[name].get(stat) != cols_b[name].get(stat)
            }
            if changes:
                columns[name] = changes
        result[path] = {
            "rows": [a.get("row_count"), b.get("row_count")],
            "columns_added": sorted(cols_b.keys() - cols_a.keys()),
            "columns_removed": sorted(cols_a.keys() - cols_b.keys()),
            "columns_changed": columns,
        }
    return result
