"""A per-machine cache of file hashes keyed by ``stat``, so unchanged files are not read again.

An entry is trusted only while the file's size, modification time (ns), inode and device are all
unchanged. It lives in its own SQLite file inside the home (``cache/stat.db``), not in the metadata
store: it describes this machine's files, and the metadata store may be a shared PostgreSQL.

Example:
    >>> import os, pathlib, tempfile
    >>> folder = tempfile.mkdtemp()
    >>> cache = StatCache(os.path.join(folder, "stat.db"))
    >>> path = os.path.join(folder, "a.txt")
    >>> _ = pathlib.Path(path).write_text("hi")
    >>> key = file_key(os.stat(path))
    >>> cache.put_many([(path, key, "ab" * 32)])
    >>> cache.get_many([path]) == {path: (key, "ab" * 32)}
    True
    >>> cache.close()
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path

__all__ = ["FileKey", "StatCache", "file_key"]

_SELECT = "SELECT path, key, hash FROM stat_cache WHERE path IN "
_LAYOUT = 2  # PRAGMA user_version; layout 1 kept the four numbers in four columns

# "size:mtime_ns:inode:device", compared whole: one string is read back from SQLite several
# times faster than four integers, and a status of 20,000 files reads 20,000 entries.
FileKey = str


def file_key(st: os.stat_result) -> FileKey:
    return f"{st.st_size}:{st.st_mtime_ns}:{st.st_ino}:{st.st_dev}"


def _hash_file(path: str) -> str:
    from blake3 import blake3

    hasher = blake3()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            hasher.update(chunk)
    return str(hasher.hexdigest())


class StatCache:
    """Path → (stat key, BLAKE3 hash). Thread-safe; each call is one short transaction."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(os.fspath(path), timeout=30, check_same_thread=False)
        self._lock = threading.Lock()
        with self._lock, self._conn:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=OFF")  # a lost entry only costs a re-hash
            if self._conn.execute("PRAGMA user_version").fetchone()[0] != _LAYOUT:
                self._conn.execute("DROP TABLE IF EXISTS stat_cache")  # a cache: rebuilt as used
                self._conn.execute(f"PRAGMA user_version = {_LAYOUT}")
            self._conn.execute(
                "CREATE TABLE IF NOT EXISTS stat_cache (path TEXT PRIMARY KEY, key TEXT, "
                "hash TEXT) WITHOUT ROWID"
            )

    def get_many(self, paths: Sequence[str]) -> dict[str, tuple[FileKey, str]]:
        """Cached entries for ``paths`` (absolute); paths without an entry are left out."""
        found: dict[str, tuple[FileKey, str]] = {}
        with self._lock:
            for start in range(0, len(paths), 900):
                chunk = paths[start : start + 900]
                marks = ",".join("?" * len(chunk))
                query = _SELECT + "(" + marks + ")"  # placeholders only
                rows = self._conn.execute(query, chunk)
                for path, key, digest in rows:
                    found[path] = (key, digest)
        return found

    def hashes(self, paths: Sequence[str | os.PathLike[str]]) -> list[str]:
        """The BLAKE3 of each file: from the cache where it vouches for the file, else read (and
        remembered). Absolute ``str`` paths are taken as they are (``os.walk`` of an absolute
        folder gives them); others are made absolute first."""
        absolute = [p if isinstance(p, str) and p[:1] == "/" else os.path.abspath(p) for p in paths]
        cached = self.get_many(absolute)
        found, fresh = [], []
        for path in absolute:
            key = file_key(os.stat(path))
            hit = cached.get(path)
            if hit is not None and hit[0] == key:
                found.append(hit[1])
                continue
            found.append(_hash_file(path))
            fresh.append((path, key, found[-1]))
        self.put_many(fresh)
        return found

    def put_many(self, entries: Iterable[tuple[str, FileKey, str]]) -> None:
        rows = list(entries)
        if not rows:
            return
        with self._lock, self._conn:
            self._conn.executemany("INSERT OR REPLACE INTO stat_cache VALUES (?, ?, ?)", rows)

    def close(self) -> None:
        self._conn.close()
