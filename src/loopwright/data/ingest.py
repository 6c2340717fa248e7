"""Turning user sources (files, folders, globs, tables, fsspec URLs) into a stored manifest.

Every file is read once: hashed while it is copied into the blob store. A stat cache skips
unchanged files entirely. Blob writes skip their per-file fsync and the store is synced once at
the end, before any metadata points at the blobs.

Symlinks: a symlinked file is stored with its target's content when the target lies inside the
source folder, and refused when it points outside; symlinked folders are not followed.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from blake3 import blake3

from ..errors import DataError, IntegrityError, InvalidInput
from ..paths import normalize_relpath
from ..store.blobs import BlobStore
from .entities import FileEntry
from .stat_cache import FileKey, StatCache, file_key

__all__ = [
    "collect_files",
    "manifest_hash",
    "manifest_text",
    "parse_manifest",
    "store_files",
    "store_table",
]

Progress = Callable[[int], None]

SMALL_FILE_BYTES = 64 * 1024  # smaller files are packed together in the blob store
_SMALL_BATCH = 4096


def manifest_text(entries: Sequence[FileEntry]) -> bytes:
    """The canonical manifest: sorted ``path, size, hash`` lines. Its BLAKE3 is the content hash,
    so a manifest stored as a blob is found by the version's content hash alone."""
    ordered = sorted(entries, key=lambda e: e.path)
    return "".join(f"{e.path}\t{e.size}\t{e.hash}\n" for e in ordered).encode()


def parse_manifest(text: bytes) -> list[FileEntry]:
    entries = []
    for number, line in enumerate(text.decode().splitlines(), start=1):
        path, size, digest = line.split("\t")
        if not size.isdigit():
            raise DataError(f"manifest line {number} is malformed: {line!r}")
        entries.append(FileEntry(normalize_relpath(path, what="dataset path"), int(size), digest))
    return entries


def manifest_hash(entries: Sequence[FileEntry]) -> str:
    """The content hash of a version: BLAKE3 of :func:`manifest_text`."""
    return blake3(manifest_text(entries)).hexdigest()


def _walk(root: Path, prefix: str, out: list[tuple[str, str]]) -> None:
    """Files below ``root`` in sorted order (``os.scandir``: no extra stat per file)."""
    real_root = os.path.realpath(root)
    pending = [(os.fspath(root), prefix)]
    while pending:
        folder, rel_prefix = pending.pop()
        with os.scandir(folder) as listing:
            items = sorted(listing, key=lambda item: item.name)
        subfolders = []
        for item in items:
            if item.is_symlink():
                target = os.path.realpath(item.path)
                if not os.path.isfile(target):
                    continue  # a dangling link or a link to a folder: not followed
                if os.path.commonpath([real_root, target]) != real_root:
                    raise InvalidInput(
                        f"{item.path} is a symlink to {target}, outside {root}; copy the file "
                        "in or add its target directly"
                    )
            elif item.is_dir():
                subfolders.append((item.path, f"{rel_prefix}{item.name}/"))
                continue
            elif not item.is_file():
                continue  # sockets, fifos, devices
            out.append((normalize_relpath(rel_prefix + item.name, what="dataset path"), item.path))
        pending.extend(reversed(subfolders))


def collect_files(sources: Sequence[str | os.PathLike[str]]) -> list[tuple[str, str]]:
    """``(path in the version, file on disk)`` for every file the sources name.

    One folder: its contents at the version's root. Otherwise every file under its own name and
    every folder under its folder name. Globs (``data/*.csv``, ``**``) are expanded.
    """
    expanded: list[Path] = []
    for source in sources:
        text = os.fspath(source)
        if glob.has_magic(text):
            matches = sorted(glob.glob(text, recursive=True))
            if not matches:
                raise InvalidInput(f"the pattern {text!r} matches no file")
            expanded.extend(Path(m) for m in matches)
        else:
            path = Path(text)
            if not path.exists():
                raise InvalidInput(f"{text!r} does not exist; give a file, a folder or a glob")
            expanded.append(path)
    files: list[tuple[str, str]] = []
    if len(expanded) == 1 and expanded[0].is_dir():
        _walk(expanded[0], "", files)
    else:
        for path in expanded:
            if path.is_dir():
                _walk(path, f"{path.name}/", files)
            elif path.is_file():
                files.append((normalize_relpath(path.name, what="dataset path"), os.fspath(path)))
    seen: set[str] = set()
    for rel, _ in files:
        if rel in seen:
            raise InvalidInput(f"two sources give the path {rel!r}; add them separately")
        seen.add(rel)
    if not files:
        raise InvalidInput(f"no files found in {', '.join(os.fspath(s) for s in sources)}")
    return files


def store_files(
    files: Sequence[tuple[str, str]],
    blobs: BlobStore,
    cache: StatCache | None,
    *,
    workers: int = 4,
    progress: Progress | None = None,
) -> list[FileEntry]:
    """Hash and store each file (skipping those the stat cache vouches for); return the entries.

    Raises:
        DataError: a file changed while it was being read (the version would mix two states).
    """
    absolute = [os.path.abspath(path) for _, path in files]
    cached = cache.get_many(absolute) if cache is not None else {}
    new_cache: list[tuple[str, FileKey, str]] = []
    wrote = False

    def one(index: int) -> FileEntry:
        nonlocal wrote
        rel, path = files[index]
        key = keys[index]
        changed = DataError(
            f"{path} changed while it was being added; nothing was recorded, add it again "
            "once it is no longer being written"
        )
        try:
            info = blobs.put_file(path, durable=False)
        except IntegrityError:  # the store saw the bytes change between hashing and copying
            raise changed from None
        wrote = True
        after = file_key(os.stat(path))
        if after != key or info.size != key[0]:
            raise changed
        new_cache.append((absolute[index], key, info.hash))
        return FileEntry(rel, info.size, info.hash)

    # Unchanged files (the stat cache vouches for them) cost a stat; the rest go to the pool.
    keys = [file_key(os.stat(path)) for _, path in files]
    results: list[FileEntry | None] = [None] * len(files)
    misses = []
    for index, (rel, _) in enumerate(files):
        hit = cached.get(absolute[index])
        if hit is not None and hit[0] == keys[index] and blobs.exists(hit[1]):
            results[index] = FileEntry(rel, keys[index][0], hit[1])
        else:
            misses.append(index)
    if progress is not None and len(misses) < len(files):
        progress(len(files) - len(misses))
    # Small files go into shared pack files (one file creation per batch, not per file).
    small = [i for i in misses if keys[i][0] < SMALL_FILE_BYTES]
    for start in range(0, len(small), _SMALL_BATCH):
        batch = small[start : start + _SMALL_BATCH]
        infos = blobs.put_small_files([files[i][1] for i in batch], durable=False)
        wrote = True
        for index, info in zip(batch, infos, strict=True):
            rel, path = files[index]
            if file_key(os.stat(path)) != keys[index] or info.size != keys[index][0]:
                raise DataError(
                    f"{path} changed while it was being added; nothing was recorded, add it "
                    "again once it is no longer being written"
                )
            new_cache.append((absolute[index], keys[index], info.hash))
            results[index] = FileEntry(rel, info.size, info.hash)
        if progress is not None:
            progress(len(batch))
    large = [i for i in misses if keys[i][0] >= SMALL_FILE_BYTES]
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for index, entry in zip(large, pool.map(one, large), strict=True):
            results[index] = entry
            if progress is not None:
                progress(1)
    entries = [entry for entry in results if entry is not None]
    if wrote:
        blobs.sync()
    if cache is not None:
        cache.put_many(new_cache)
    return entries


def store_table(table: Any, blobs: BlobStore, name: str) -> FileEntry:
    """Store a pandas DataFrame or Arrow table as one Parquet file named ``name``."""
    import tempfile

    import pyarrow as pa
    import pyarrow.parquet as pq

    if not isinstance(table, pa.Table):
        table = pa.Table.from_pandas(table, preserve_index=False)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "table.parquet"
        pq.write_table(table, path)
        info = blobs.put_file(path)
    return FileEntry(normalize_relpath(name, what="dataset path"), info.size, info.hash)
