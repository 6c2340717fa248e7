"""Packs of small blobs inside a local blob store (``<root>/small/``).

Creating a file is the dominant cost of storing many small blobs (0.2-0.5 ms each on some
filesystems), so a batch of small blobs is written as one pack file plus an index. A pack is
written and made durable before its index appears (temp file + rename), so a reader never sees an
index whose pack is incomplete; a pack without an index is ignored.

Index format: ``b"LWSMALL1"``, then one 48-byte entry per blob (32-byte raw BLAKE3 hash, u64
offset, u64 length, big-endian). Packed blobs are verified on read like loose ones. They are not
listed for garbage collection: reclaiming them needs a repack, which is not implemented yet.
"""

from __future__ import annotations

import os
import struct
import threading
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

__all__ = ["LocalPacks"]

_MAGIC = b"LWSMALL1"
_ENTRY = struct.Struct(">32sQQ")
_WRITE_BUFFER = 1 << 20  # one write() per MiB, not per small blob


class LocalPacks:
    """The small-blob packs of one local store; the index is loaded lazily and refreshed when
    the folder changes."""

    def __init__(self, root: Path) -> None:
        self.folder = root / "small"
        self._lock = threading.Lock()
        self._index: dict[str, tuple[str, int, int]] = {}
        self._loaded: set[str] = set()  # the index files read into _index
        self._seen_mtime: int | None = None

    def _refresh(self) -> None:
        try:
            mtime = os.stat(self.folder).st_mtime_ns
        except FileNotFoundError:
            return
        if mtime == self._seen_mtime:
            return
        names = {name for name in os.listdir(self.folder) if name.endswith(".idx")}
        # Packs are only ever added, except by hand: read the new indexes, or all if one went.
        keep = self._loaded <= names
        index = dict(self._index) if keep else {}
        for name in sorted(names - self._loaded if keep else names):
            pack = name[: -len(".idx")] + ".pack"
            data = (self.folder / name).read_bytes()
            if not data.startswith(_MAGIC) or (len(data) - len(_MAGIC)) % _ENTRY.size:
                continue  # not ours, or damaged: its blobs stay unknown rather than wrong
            for raw, offset, length in _ENTRY.iter_unpack(data[len(_MAGIC) :]):
                index.setdefault(raw.hex(), (pack, offset, length))
        self._index, self._loaded, self._seen_mtime = index, names, mtime

    def lookup(self, hash: str) -> tuple[Path, int, int] | None:
        """``(pack path, offset, length)`` of a packed blob, or None."""
        with self._lock:
            found = self._index.get(hash)
            if found is None:
                self._refresh()
                found = self._index.get(hash)
        return None if found is None else (self.folder / found[0], found[1], found[2])

    def known(self, hashes: Iterable[str]) -> set[str]:
        """The packed ones among ``hashes`` (the index is refreshed once, not per hash)."""
        with self._lock:
            self._refresh()
            index = self._index
        return {digest for digest in hashes if digest in index}

    def read(self, hash: str) -> bytes | None:
        """The packed bytes (unverified: the caller's reader verifies them), or None."""
        where = self.lookup(hash)
        if where is None:
            return None
        path, offset, length = where
        with open(path, "rb") as pack:
            pack.seek(offset)
            return pack.read(length)

    def write(self, blobs: Sequence[tuple[str, bytes]], *, durable: bool) -> list[Path]:
        """Store ``(hash, content)`` pairs (already hashed by the caller) as one pack; return the
        files written (to be fsynced later when not ``durable``)."""
        if not blobs:
            return []
        self.folder.mkdir(parents=True, exist_ok=True)
        name = os.urandom(16).hex()
        pack, index = self.folder / f"{name}.pack", self.folder / f"{name}.idx"
        entries, offset = [], 0
        with open(pack, "xb", buffering=_WRITE_BUFFER) as out:
            for digest, content in blobs:
                out.write(content)
                entries.append(_ENTRY.pack(bytes.fromhex(digest), offset, len(content)))
                offset += len(content)
            if durable:
                out.flush()
                os.fsync(out.fileno())
        temp = self.folder / f"{name}.idx.tmp"
        with open(temp, "xb") as out:
            out.write(_MAGIC + b"".join(entries))
            if durable:
                out.flush()
                os.fsync(out.fileno())
        os.replace(temp, index)  # the pack is complete before its index exists
        return [pack, index]

    def entries(self) -> Iterator[tuple[str, int, int]]:
        """``(hash, size, pack mtime in ms)`` of every packed blob."""
        with self._lock:
            self._refresh()
            index = dict(self._index)
        mtimes: dict[str, int] = {}
        for digest, (pack, _, length) in index.items():
            if pack not in mtimes:
                try:
                    mtimes[pack] = os.stat(self.folder / pack).st_mtime_ns // 1_000_000
                except FileNotFoundError:
                    continue
            yield digest, length, mtimes[pack]
