"""Turning user sources (files, folders, globs, tables, fsspec URLs) into a stored manifest.

Every file is read once: hashed while it is copied into the blob store. A stat cache skips
unchanged files entirely. Blob writes skip their per-file fsync and the store is synced once at
the end, before any metadata points at the blobs. Files from 64 KiB on can be reflinked or
hardlinked into a local store instead of copied (the ``data_link`` setting; see
``loopwright.store._links`` for the trade-offs); smaller ones are always packed.

Symlinks: a symlinked file is stored with its target's content when the target lies inside the
source folder, and refused when it points outside; symlinked folders are not followed.
"""

from __future__ import annotations

import glob
import os
import re
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from blake3 import blake3

from .._logging import get_logger
from .._numbers import is_number
from ..config import DEFAULT_DATA_LINK
from ..errors import DataError, IntegrityError, InvalidInput
from ..paths import MAX_PATH_BYTES, normalize_relpath
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
# A name that normalize_relpath accepts unchanged, whatever folder it is in: checked with one
# regular expression instead of the full rules (the common case, on every file of a big folder).
_PLAIN_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+=,@-]{0,254}\Z")
_log = get_logger(__name__)


def manifest_text(entries: Sequence[FileEntry]) -> bytes:
    """The canonical manifest: sorted ``path, size, hash`` lines. Its BLAKE3 is the content hash,
    so a manifest stored as a blob is found by the version's content hash alone."""
    ordered = sorted(entries, key=lambda e: e.path)
    return "".join(f"{e.path}\t{e.size}\t{e.hash}\n" for e in ordered).encode()


def parse_manifest(text: bytes) -> list[FileEntry]:
    entries = []
    for number, line in enumerate(text.decode().splitlines(), start=1):
        path, size, digest = line.split("\t")
        if not is_number(size):
            raise DataError(f"manifest line {number} is malformed: {line!r}")
        entries.append(FileEntry(normalize_relpath(path, what="dataset path"), int(size), digest))
    return entries


def manifest_hash(entries: Sequence[FileEntry]) -> str:
    """The content hash of a version: BLAKE3 of :func:`manifest_text`."""
    return blake3(manifest_text(entries)).hexdigest()


def _relpath(prefix: str, name: str, plain_prefix: bool) -> str:
    rel = prefix + name
    if plain_prefix and _PLAIN_NAME.match(name) and len(rel) <= MAX_PATH_BYTES:
        return rel  # already normal: plain segments joined by "/"
    return normalize_relpath(rel, what="dataset path")


def _walk(root: Path, prefix: str, out: list[tuple[str, str]]) -> None:
    """Files below ``root`` in sorted order (``os.scandir``: no extra stat per file), with
    absolute paths on disk."""
    real_root = os.path.realpath(root)
    plain = prefix == "" or bool(_PLAIN_NAME.match(prefix.removesuffix("/")))
    pending = [(os.path.abspath(root), prefix, plain)]
    while pending:
        folder, rel_prefix, plain = pending.pop()
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
                plain_sub = plain and bool(_PLAIN_NAME.match(item.name))
                subfolders.append((item.path, f"{rel_prefix}{item.name}/", plain_sub))
                continue
            elif not item.is_file():
                continue  # sockets, fifos, devices
            out.append((_relpath(rel_prefix, item.name, plain), item.path))
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
                files.append(
                    (normalize_relpath(path.name, what="dataset path"), os.path.abspath(path))
                )
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
    link: Sequence[str] = ("copy",),
) -> list[FileEntry]:
    """Hash and store each file (skipping those the stat cache vouches for); return the entries.

    ``link`` is the order of ways to store files of 64 KiB and more in a local store
    (``"reflink"``, ``"hardlink"``, ``"copy"``); the ways used are logged.

    Raises:
        DataError: a file changed while it was being read (the version would mix two states).
    """
    absolute = [path if os.path.isabs(path) else os.path.abspath(path) for _, path in files]
    cached = cache.get_many(absolute) if cache is not None else {}
    new_cache: list[tuple[str, FileKey, str]] = []
    used: Counter[str] = Counter()

    def changed(path: str) -> DataError:
        return DataError(
            f"{path} changed while it was being added; nothing was recorded, add it again "
            "once it is no longer being written"
        )

    def one(index: int) -> tuple[FileEntry, str | None]:
        rel, path = files[index]
        key = keys[index]
        try:
            info = blobs.put_file(path, durable=False, link=link)
        except IntegrityError:  # the store saw the bytes change between hashing and copying
            raise changed(path) from None
        if file_key(os.stat(path)) != key or info.size != sizes[index]:
            raise changed(path)
        new_cache.append((absolute[index], key, info.hash))
        return FileEntry(rel, info.size, info.hash), info.link

    # Unchanged files (the stat cache vouches for them) cost a stat; the rest go to the pool.
    stats = [os.stat(path) for _, path in files]
    keys, sizes = [file_key(st) for st in stats], [st.st_size for st in stats]
    results: list[FileEntry | None] = [None] * len(files)
    vouched = {}
    for index, path in enumerate(absolute):
        hit = cached.get(path)
        if hit is not None and hit[0] == keys[index]:
            vouched[index] = hit[1]
    present = blobs.exists_many(set(vouched.values())) if vouched else set()
    for index, digest in vouched.items():
        if digest in present:
            results[index] = FileEntry(files[index][0], sizes[index], digest)
    misses = [index for index, entry in enumerate(results) if entry is None]
    if progress is not None and len(misses) < len(files):
        progress(len(files) - len(misses))
    # Small files go into shared pack files (one file creation per batch, not per file).
    small = [i for i in misses if sizes[i] < SMALL_FILE_BYTES]
    for start in range(0, len(small), _SMALL_BATCH):
        batch = small[start : start + _SMALL_BATCH]
        infos = blobs.put_small_files([files[i][1] for i in batch], durable=False)
        for index, info in zip(batch, infos, strict=True):
            rel, path = files[index]
            if file_key(os.stat(path)) != keys[index] or info.size != sizes[index]:
                raise changed(path)
            new_cache.append((absolute[index], keys[index], info.hash))
            results[index] = FileEntry(rel, info.size, info.hash)
            used[info.link or "already stored"] += 1
        if progress is not None:
            progress(len(batch))
    large = [i for i in misses if sizes[i] >= SMALL_FILE_BYTES]
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for index, (entry, how) in zip(large, pool.map(one, large), strict=True):
            results[index] = entry
            used[how or "already stored"] += 1
            if progress is not None:
                progress(1)
    entries = [entry for entry in results if entry is not None]
    if misses:
        blobs.sync()
        _report(used, link)
    if cache is not None:
        cache.put_many(new_cache)
    return entries


def _report(used: Counter[str], link: Sequence[str]) -> None:
    """Log how the new files were stored; warn when large files could not use the first mode
    of an order that asked for links explicitly."""
    _log.info("stored: %s", ", ".join(f"{count} by {how}" for how, count in used.most_common()))
    fell_back = sum(used[mode] for mode in link[1:])
    if link[0] != "copy" and fell_back and tuple(link) != DEFAULT_DATA_LINK:
        _log.warning(
            "%d file(s) could not be stored by %s on this filesystem and were stored by %s "
            "instead (the data_link setting or --link gives the order)",
            fell_back,
            link[0],
            " or ".join(mode for mode in link[1:] if used[mode]),
        )


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
