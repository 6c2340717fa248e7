"""Content-addressed blob store: bytes are named by their BLAKE3-256 hash.

Blobs live at ``<root>/<hash[:2]>/<hash[2:]>`` (like git objects) in a local folder or behind any
fsspec URL (``s3://bucket/prefix`` …). A blob never appears under its final name half-written, and
every read verifies that the content still hashes to its name.

Example:
    >>> import tempfile
    >>> store = BlobStore.open(tempfile.mkdtemp())
    >>> info = store.put_bytes(b"weights")
    >>> store.read_bytes(info.hash)
    b'weights'

Local folders use plain ``os`` calls; fsspec (and s3fs) are imported only for remote URLs. S3
credentials and endpoint come from the usual AWS variables (botocore honours
``AWS_ENDPOINT_URL_S3`` and ``AWS_ENDPOINT_URL``).
"""

from __future__ import annotations

import io
import os
import re
import stat
import threading
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO
from urllib.parse import unquote, urlsplit

from blake3 import blake3

from loopwright.errors import BlobNotFound, IntegrityError, InvalidInput

from ._links import check_order, place
from ._local_files import (
    create_temp,
    file_state,
    fsync_dir,
    fsync_path,
    hash_file,
    read_all,
    write_all,
)
from ._local_packs import LocalPacks

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer
    from fsspec import AbstractFileSystem

__all__ = ["CHUNK_SIZE", "BlobInfo", "BlobStore"]

CHUNK_SIZE = 1 << 20
_HASH = re.compile(r"[0-9a-f]{64}\Z")
_HASHES = re.compile(r"[0-9a-f]*\Z")
_TEMP_DIR = "tmp"
# On these a PUT (or multipart upload) becomes visible only once complete.
_OBJECT_STORES = frozenset({"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "adl", "oci", "r2"})
# sync(): up to this many files written without fsync are fsynced one by one; more, and one
# os.sync() is cheaper than a journal commit per file.
_FSYNC_EACH_LIMIT = 64


@dataclass(frozen=True)
class BlobInfo:
    """A stored blob: its BLAKE3-256 ``hash`` (64 lowercase hex digits) and ``size`` in bytes.

    ``modified_ms`` (last-modified time, ms since the epoch) and ``packed`` (stored inside a
    small-blob pack, which ``delete`` cannot remove alone) are filled only by ``iter_blobs``.
    ``link`` says how a put stored new content: ``"copy"``, ``"reflink"``, ``"hardlink"`` or
    ``"pack"``; it is None when the content was already stored (and it takes no part in ``==``).
    """

    hash: str
    size: int
    modified_ms: int | None = None
    packed: bool = False
    link: str | None = field(default=None, compare=False)


def _check_hash(value: object) -> str:
    if not isinstance(value, str) or not _HASH.match(value):
        raise InvalidInput(
            f"blob hash {value!r} is not valid: expected 64 lowercase hex digits "
            "(a BLAKE3-256 digest, as returned by BlobStore.put_*)"
        )
    return value


def _chunks(stream: BinaryIO) -> Iterator[bytes]:
    while chunk := stream.read(CHUNK_SIZE):
        yield chunk


_KERNEL_COPY_BYTES = 1 << 20  # from this size on, copy in the kernel and hash with mmap


def _is_stored(final: Path, size: int) -> bool:
    """Whether the blob file exists with this size; if so its mtime is freshened, so that a gc
    grace period counts from this put. Not a hardlinked blob's: that would change the mtime of
    the workspace file it is (and make its stat-cache entry stale)."""
    try:
        st = final.stat()
    except FileNotFoundError:
        return False
    if st.st_size != size or not stat.S_ISREG(st.st_mode):
        return False
    if st.st_nlink == 1:
        os.utime(final)
    return True


def _corrupt(expected: str, actual: str, where: str) -> IntegrityError:
    return IntegrityError(
        f"blob {expected} in {where} is corrupt: its stored content hashes to "
        f"{actual}. Restore it from a remote or backup, or delete it "
        "(BlobStore.delete) and put the original content again."
    )


def _modified_ms(info: Mapping[str, Any]) -> int | None:
    """Last-modified time from an fsspec ``info`` dict (key names differ between backends)."""
    for key in ("LastModified", "last_modified", "mtime", "updated", "created"):
        value = info.get(key)
        if isinstance(value, str):
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        if isinstance(value, datetime):
            return int(value.timestamp() * 1000)
        if isinstance(value, int | float):
            return int(value * 1000)
    return None


class _VerifyingReader(io.RawIOBase):
    """Passes bytes through while hashing them; at EOF a mismatch raises ``IntegrityError``."""

    def __init__(self, inner: BinaryIO, expected: str, where: str) -> None:
        self._inner, self._expected, self._where = inner, expected, where
        self._hasher = blake3()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        view = memoryview(buffer).cast("B")
        if not view:
            return 0  # an empty read is not EOF: do not verify yet
        data = self._inner.read(len(view))
        if not data:
            self._check()
        view[: len(data)] = data
        self._hasher.update(data)
        return len(data)

    def readall(self) -> bytes:
        data = self._inner.read()
        self._hasher.update(data)
        self._check()
        return data

    def _check(self) -> None:
        actual = self._hasher.hexdigest()
        if actual != self._expected:
            raise _corrupt(self._expected, actual, self._where)

    def close(self) -> None:
        if not self.closed:
            self._inner.close()
        super().close()


class BlobStore:
    """A content-addressed store of immutable blobs in a local folder or at an fsspec URL.

    Args:
        uri: a folder path, a ``file://`` URL, or any fsspec URL such as ``s3://bucket/prefix``.
        storage_options: extra fsspec options for remote URLs (credentials, endpoint …).

    Example:
        >>> import io, tempfile
        >>> store = BlobStore(tempfile.mkdtemp())
        >>> info = store.put_stream(io.BytesIO(b"abc"))
        >>> store.exists(info.hash), store.size(info.hash)
        (True, 3)
    """

    def __init__(self, uri: str, *, storage_options: Mapping[str, Any] | None = None) -> None:
        if not uri:
            raise InvalidInput("blob store uri is empty: give a folder path or a URL")
        self._fs: AbstractFileSystem | None = None
        parts = urlsplit(uri)
        if "://" not in uri or parts.scheme == "file":
            if storage_options:
                raise InvalidInput(
                    f"storage_options were given for the local blob store {uri!r}; "
                    "they apply only to fsspec URLs such as s3://bucket/prefix"
                )
            path = unquote(parts.path) if "://" in uri else uri
            self._local = Path(os.path.abspath(os.path.expanduser(path)))
            self._local_prefix = f"{self._local}{os.sep}"
            self._packs = LocalPacks(self._local)
            self._uri = str(self._local)
            self._unsynced: set[Path] = set()
            self._unsynced_lock = threading.Lock()
            return
        from fsspec.core import url_to_fs

        # A private, listing-cache-free instance: other writers' changes are seen at once.
        options = {"skip_instance_cache": True, "use_listings_cache": False}
        self._fs, root = url_to_fs(uri, **{**options, **(storage_options or {})})
        self._root, self._uri = root.rstrip("/"), uri
        protocol = self._fs.protocol
        protocols = {protocol} if isinstance(protocol, str) else set(protocol)
        self._atomic_put = bool(protocols & _OBJECT_STORES)

    @classmethod
    def open(cls, uri: str) -> BlobStore:
        """Open the store at ``uri`` (a folder path, ``file://`` or fsspec URL)."""
        return cls(uri)

    @property
    def uri(self) -> str:
        """Where the store lives: an absolute folder path, or the fsspec URL as given."""
        return self._uri

    @property
    def is_local(self) -> bool:
        """Whether the store is a local folder (served with plain ``os`` calls)."""
        return self._fs is None

    def __repr__(self) -> str:
        return f"BlobStore({self._uri!r})"

    def put_bytes(self, data: bytes, *, durable: bool = True) -> BlobInfo:
        """Store ``data`` and return its ``BlobInfo``; putting stored content again is a no-op.

        On a local folder a repeated put also refreshes the blob's modification time.
        """
        if self._fs is None:
            # The bytes are in memory: hash first, and skip the temp file and fsync when stored.
            info = BlobInfo(blake3(data).hexdigest(), len(data))
            final = self._path(info.hash)
            if _is_stored(final, info.size):
                return info
            return self._put_local([data], durable=durable)
        fs, payload = self._fs, bytes(data)
        info = BlobInfo(blake3(payload).hexdigest(), len(payload))
        return self._upload(info, lambda target: fs.pipe_file(target, payload))

    def put_file(
        self,
        path: str | os.PathLike[str],
        *,
        durable: bool = True,
        link: Sequence[str] = ("copy",),
    ) -> BlobInfo:
        """Store the file at ``path``, streamed in chunks. It must not change meanwhile.

        ``durable=False`` skips the per-file fsyncs on a local store; a caller storing many files
        then calls :meth:`sync` once before committing metadata that points at them.

        ``link`` is the order in which to try the ways of storing new content in a local store:
        ``"reflink"``, ``"hardlink"``, ``"copy"`` (see ``loopwright.store._links`` for what each
        costs and risks; a hardlinked blob is the file itself, made read-only). The returned
        ``BlobInfo.link`` says which one was used. Remote stores always upload a copy.
        """
        order = check_order(link)
        if self._fs is None and (order != ("copy",) or os.stat(path).st_size >= _KERNEL_COPY_BYTES):
            return self._put_placed(path, durable=durable, order=order)
        with open(path, "rb") as source:
            if self._fs is None:
                return self._put_local(_chunks(source), durable=durable)
            hasher, size = blake3(), 0
            for chunk in _chunks(source):
                hasher.update(chunk)
                size += len(chunk)
        fs, local = self._fs, os.fspath(path)
        return self._upload(BlobInfo(hasher.hexdigest(), size), lambda t: fs.put_file(local, t))

    def put_small_files(
        self, paths: Sequence[str | os.PathLike[str]], *, durable: bool = True
    ) -> list[BlobInfo]:
        """Store many small files at once; on a local store the new ones share one pack file.

        Files already stored (loose or packed) are not written again.
        """
        if self._fs is not None:
            return [self.put_file(path, durable=durable) for path in paths]
        read = read_all(paths)
        stored = self.exists_many({digest for digest, _ in read})
        infos, new = [], {}
        for digest, content in read:
            fresh = digest not in stored
            if fresh and digest not in new:
                new[digest] = content
            infos.append(BlobInfo(digest, len(content), link="pack" if fresh else None))
        written = self._packs.write(list(new.items()), durable=durable)
        if not durable:
            self._defer_sync(*written, self._packs.folder)
        return infos

    def exists_many(self, hashes: Collection[str]) -> set[str]:
        """The subset of ``hashes`` that are stored (one call for many: packs are looked up in
        memory, loose blobs with one ``stat`` each)."""
        if self._fs is not None:
            return {digest for digest in hashes if self.exists(digest)}
        well_formed = all(isinstance(digest, str) and len(digest) == 64 for digest in hashes)
        if not (well_formed and _HASHES.match("".join(hashes))):
            for digest in hashes:  # one regex for all; this names the bad one
                _check_hash(digest)
        found = self._packs.known(hashes)
        try:  # one listing spares a stat per hash whose fan-out folder does not exist
            shards = {name for name in os.listdir(self._local) if len(name) == 2}
        except FileNotFoundError:
            return found
        prefix = self._local_prefix
        found.update(
            digest
            for digest in hashes
            if digest not in found
            and digest[:2] in shards
            and os.path.isfile(f"{prefix}{digest[:2]}/{digest[2:]}")
        )
        return found

    def put_stream(self, stream: BinaryIO) -> BlobInfo:
        """Store everything read from ``stream`` (which need not be seekable), in chunks."""
        if self._fs is None:
            return self._put_local(_chunks(stream))
        import tempfile

        # Remote: spool to a local file while hashing, so that an already stored blob costs
        # no upload and an interrupted stream leaves nothing behind.
        fs, hasher = self._fs, blake3()
        fd, spool = create_temp(Path(tempfile.gettempdir()), "loopwright-blob-")
        try:
            size = write_all(fd, _chunks(stream), hasher)
            info = BlobInfo(hasher.hexdigest(), size)
            return self._upload(info, lambda target: fs.put_file(str(spool), target))
        finally:
            spool.unlink(missing_ok=True)

    def sync(self) -> None:
        """Make every blob written with ``durable=False`` durable (local stores; no-op remotely).

        Only what this store wrote is fsynced; past a few dozen files one ``os.sync`` is used.
        Hardlinked blobs are the workspace files themselves and are left as durable as those.
        """
        if self._fs is not None:
            return
        with self._unsynced_lock:
            pending, self._unsynced = self._unsynced, set()
        if len(pending) > _FSYNC_EACH_LIMIT and hasattr(os, "sync"):
            os.sync()
            return
        for path in sorted(pending, key=lambda p: p.is_dir()):  # files before their folders
            try:
                if path.is_dir():
                    fsync_dir(path)
                else:
                    fsync_path(path)
            except FileNotFoundError:  # removed meanwhile (a concurrent gc): nothing to keep
                continue

    def _defer_sync(self, *paths: Path) -> None:
        with self._unsynced_lock:
            self._unsynced.update(paths)

    def _put_placed(
        self, path: str | os.PathLike[str], *, durable: bool, order: Sequence[str]
    ) -> BlobInfo:
        """Hash by mmap, then give the file its blob name by reflink, hardlink or a copy in the
        kernel: no bytes pass through Python."""
        before = os.stat(path)
        digest = hash_file(path)
        final = self._path(digest)
        if _is_stored(final, before.st_size):
            return BlobInfo(digest, before.st_size)
        temp = self._local / _TEMP_DIR / f"put-{os.urandom(12).hex()}.tmp"
        temp.parent.mkdir(parents=True, exist_ok=True)
        mode = place(path, temp, order)
        try:
            if mode == "copy":
                unchanged = hash_file(temp) == digest  # verify what was written
            else:  # a clone or the file itself: the source must not have moved since hashing
                after, placed = os.stat(path), os.stat(temp)
                unchanged = (
                    file_state(before) == file_state(after) and placed.st_size == before.st_size
                )
            if not unchanged:
                raise IntegrityError(
                    f"{os.fspath(path)} changed while it was being stored; store it again once "
                    "it is no longer being written"
                )
            if durable and mode != "hardlink":
                fsync_path(temp)
            try:
                os.replace(temp, final)
            except FileNotFoundError:
                final.parent.mkdir(exist_ok=True)
                os.replace(temp, final)
            if durable:
                fsync_dir(final.parent)
            else:
                self._defer_sync(final.parent, *([final] if mode != "hardlink" else []))
            return BlobInfo(digest, before.st_size, link=mode)
        except BaseException:
            temp.unlink(missing_ok=True)
            if mode == "hardlink":  # give the workspace file its permissions back
                os.chmod(path, before.st_mode & 0o7777)
            raise

    def _put_local(self, chunks: Iterable[bytes], *, durable: bool = True) -> BlobInfo:
        fd, temp = create_temp(self._local / _TEMP_DIR, "put-")
        try:
            hasher = blake3()
            # Synced only once known to be new: content already stored costs no fsync.
            size = write_all(fd, chunks, hasher, durable=False)
            info = BlobInfo(hasher.hexdigest(), size)
            final = self._path(info.hash)
            if _is_stored(final, info.size):  # (a damaged copy of another size is replaced)
                temp.unlink()
                return info
            if durable:
                fsync_path(temp)
            os.chmod(temp, 0o444)
            try:
                os.replace(temp, final)
            except FileNotFoundError:  # first blob of this fan-out folder
                final.parent.mkdir(exist_ok=True)
                os.replace(temp, final)
            if durable:
                fsync_dir(final.parent)
            else:
                self._defer_sync(final, final.parent)
            return BlobInfo(info.hash, info.size, link="copy")
        except BaseException:
            temp.unlink(missing_ok=True)
            raise

    def _upload(self, info: BlobInfo, send: Callable[[str], object]) -> BlobInfo:
        """Unless already stored, ``send`` the content to a key from which it appears whole."""
        assert self._fs is not None
        key = self._key(info.hash)
        if not self._fs.exists(key):
            if self._atomic_put:
                send(key)
            else:
                temp = f"{self._root}/{_TEMP_DIR}/{os.urandom(16).hex()}"
                send(temp)
                self._fs.mv(temp, key)
            self._fs.invalidate_cache(key)
        return info

    def exists(self, hash: str) -> bool:
        """Whether a blob named ``hash`` is stored (its content is not checked)."""
        if self._fs is None:
            _check_hash(hash)
            if os.path.isfile(f"{self._local_prefix}{hash[:2]}/{hash[2:]}"):
                return True
            return self._packs.lookup(hash) is not None
        return bool(self._fs.exists(self._key(hash)))

    def size(self, hash: str) -> int:
        """Size in bytes of the blob ``hash``; ``BlobNotFound`` if it is absent."""
        try:
            if self._fs is None:
                return self._path(hash).stat().st_size
            return int(self._fs.info(self._key(hash))["size"])
        except FileNotFoundError:
            packed = self._packs.lookup(hash) if self._fs is None else None
            if packed is not None:
                return packed[2]
            raise self._not_found(hash) from None

    def open_read(self, hash: str) -> BinaryIO:
        """A streaming reader over the blob ``hash`` that verifies it as it is read.

        The check happens at EOF, so read until ``read()`` returns ``b""`` (``read()`` without a
        size does): a reader stopped early cannot notice corruption. Use it as a context manager.
        """
        try:
            if self._fs is None:
                inner: BinaryIO = open(self._path(hash), "rb")  # noqa: SIM115 - the reader owns it
            else:
                inner = self._fs.open(self._key(hash), "rb")
        except FileNotFoundError:
            packed = self._packs.read(hash) if self._fs is None else None
            if packed is None:
                raise self._not_found(hash) from None
            inner = io.BytesIO(packed)
        return io.BufferedReader(_VerifyingReader(inner, hash, self._uri), CHUNK_SIZE)

    def read_bytes(self, hash: str) -> bytes:
        """The content of the blob ``hash``, verified against its name."""
        with self.open_read(hash) as reader:
            return reader.read()

    def get_file(self, hash: str, dest: str | os.PathLike[str], *, durable: bool = True) -> None:
        """Copy the blob ``hash`` to ``dest``, verified and atomic.

        The copy goes to a temp file beside ``dest``, renamed only once verified: a corrupt blob
        leaves no ``dest`` (and an existing one untouched). ``durable=False`` skips the fsyncs,
        for copies that can be made again (a checkout into a workspace).
        """
        dest = Path(dest)
        if self._fs is None:
            source = self._path(hash)
            try:
                large = source.stat().st_size >= _KERNEL_COPY_BYTES
            except FileNotFoundError:
                large = False  # open_read below reports the missing blob
            if large:
                self._get_large_local(hash, source, dest, durable=durable)
                return
        with self.open_read(hash) as reader:
            fd, temp = create_temp(dest.parent, f".{dest.name}.")
            try:
                write_all(fd, _chunks(reader), durable=durable)
                os.replace(temp, dest)
            except BaseException:
                temp.unlink(missing_ok=True)
                raise
        if durable:
            fsync_dir(dest.parent)

    def _get_large_local(self, hash: str, source: Path, dest: Path, *, durable: bool) -> None:
        import shutil

        fd, temp = create_temp(dest.parent, f".{dest.name}.")
        os.close(fd)
        try:
            shutil.copyfile(source, temp)
            actual = hash_file(temp)  # verify what was written, not what was read
            if actual != hash:
                raise _corrupt(hash, actual, self._uri)
            if durable:
                fsync_path(temp)
            os.replace(temp, dest)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        if durable:
            fsync_dir(dest.parent)

    def verify(self, hash: str) -> None:
        """Raise ``IntegrityError`` unless the blob's content hashes to ``hash``."""
        with self.open_read(hash) as reader:
            for _ in _chunks(reader):
                pass

    def delete(self, hash: str) -> bool:
        """Remove the blob ``hash``; return whether there was one."""
        if self._fs is None:
            try:
                self._path(hash).unlink()
            except FileNotFoundError:
                return False
            return True
        key = self._key(hash)
        if not self._fs.exists(key):
            return False
        self._fs.rm_file(key)
        self._fs.invalidate_cache(key)
        return True

    def iter_blobs(self) -> Iterator[BlobInfo]:
        """Every stored blob with its size and ``modified_ms``; temp files are skipped."""
        if self._fs is None:
            yield from self._iter_local()
            for digest, size, modified in self._packs.entries():
                yield BlobInfo(digest, size, modified, packed=True)
            return
        for name, info in self._fs.find(self._root, detail=True).items():
            shard, _, rest = name.removeprefix(self._root + "/").partition("/")
            if len(shard) == 2 and _HASH.match(shard + rest):
                yield BlobInfo(shard + rest, int(info["size"]), _modified_ms(info))

    def _iter_local(self) -> Iterator[BlobInfo]:
        try:
            with os.scandir(self._local) as entries:
                shards = [e.name for e in entries if len(e.name) == 2 and e.is_dir()]
        except FileNotFoundError:
            return
        for shard in shards:
            with os.scandir(self._local / shard) as entries:
                for entry in entries:
                    if not (_HASH.match(shard + entry.name) and entry.is_file()):
                        continue
                    try:
                        stat = entry.stat()
                    except FileNotFoundError:  # deleted meanwhile (a concurrent gc)
                        continue
                    yield BlobInfo(shard + entry.name, stat.st_size, stat.st_mtime_ns // 1_000_000)

    def _path(self, hash: str) -> Path:
        _check_hash(hash)
        return self._local / hash[:2] / hash[2:]

    def _key(self, hash: str) -> str:
        _check_hash(hash)
        return f"{self._root}/{hash[:2]}/{hash[2:]}"

    def _not_found(self, hash: str) -> BlobNotFound:
        return BlobNotFound(
            f"blob {hash} is not in the blob store {self._uri}; check the hash, "
            "or copy the blob in from a store that has it"
        )
