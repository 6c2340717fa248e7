"""Push and pull blobs between two blob stores, sending only what is missing, small blobs packed.

``loopwright data push/pull`` move blobs between the local store and a remote one (an S3 URL, or
a folder on a NAS). Twenty thousand small files must not cost twenty thousand requests, so:

- **What is missing** comes from one recursive listing of the remote (paginated; not one HEAD per
  blob) plus its pack indexes. ``BlobStore.exists`` is never called per blob on the remote.
- **Small blobs** (under ``pack_threshold`` bytes), sorted by hash, are concatenated into packs of
  about ``pack_target`` bytes. Packs live apart from the loose blobs, so gc and verification of
  loose blobs are unaffected::

      <root>/packs/<pack-hash>.pack   the blobs' bytes back to back; pack-hash = BLAKE3 of them
      <root>/packs/<pack-hash>.idx    b"LWPKIDX1", u64 count, count x (32-byte raw blob hash,
                                      u64 offset, u64 length), then the 32-byte BLAKE3 of all
                                      that (integers big-endian)

  Each object appears whole (a single PUT on object stores, temp file and rename elsewhere) and
  the pack is written before its index: a pack without an index (an interrupted push) and an index
  without its pack are both ignored, and the next push finishes the job.
- **Large blobs** travel loose, through the ``BlobStore`` API.
- **Pull** streams loose blobs and reads packed ones with ranged reads, merged across small gaps
  (so a pack that is mostly needed is read in a few large requests). Every blob is verified
  against its BLAKE3 hash before it is stored: a damaged range raises ``IntegrityError`` naming
  the blob and the pack, and nothing wrong is stored.
- Transfers run on a pool of ``workers`` threads; ``progress(done, total)`` counts blobs.

Example:
    >>> import tempfile
    >>> local, remote = BlobStore(tempfile.mkdtemp()), BlobStore(tempfile.mkdtemp())
    >>> hashes = [local.put_bytes(bytes([i]) * 100).hash for i in range(50)]
    >>> push(local, remote, hashes).packs
    1
    >>> pull(remote, BlobStore(tempfile.mkdtemp()), hashes).transferred
    50
"""

from __future__ import annotations

import os
import struct
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from blake3 import blake3

from loopwright.errors import BlobNotFound, IntegrityError, InvalidInput, StoreError

from ._local_files import create_temp, fsync_dir, write_all
from .blobs import _HASH, _TEMP_DIR, BlobStore, _check_hash

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem

__all__ = ["TransferReport", "pull", "push", "remote_inventory"]

Progress = Callable[[int, int], None]
_Job = tuple[Callable[[], int], int]  # a unit of work returning bytes moved, and its blob count

PACKS_DIR = "packs"
_INDEX_MAGIC = b"LWPKIDX1"
_HEADER = struct.Struct(">8sQ")
_ENTRY = struct.Struct(">32sQQ")
_DIGEST = 32
# A ranged read swallows gaps up to _MAX_GAP (one request costs more than reading them) and stops
# growing at _MAX_SPAN, which bounds the memory each worker holds.
_MAX_GAP = 1 << 20
_MAX_SPAN = 8 << 20


@dataclass(frozen=True)
class TransferReport:
    """What a push or pull did: blobs asked for, already there, sent; payload bytes; packs
    written (push) or read from (pull); wall-clock seconds."""

    requested: int
    already_present: int
    transferred: int
    bytes: int
    packs: int
    seconds: float


class _Slot(NamedTuple):
    """Where the packed blob ``hash`` lives: ``length`` bytes at ``offset`` in pack ``pack``."""

    hash: str
    pack: str
    offset: int
    length: int


@dataclass(frozen=True)
class _Inventory:
    loose: dict[str, int]  # hash -> size
    packed: dict[str, _Slot]
    files: dict[str, int]  # everything under packs/, name -> size

    def __contains__(self, hash: object) -> bool:
        return hash in self.loose or hash in self.packed


def _encode_index(entries: Sequence[tuple[str, int, int]]) -> bytes:
    """The binary index of a pack holding ``(blob hash, offset, length)`` entries."""
    body = bytearray(_HEADER.pack(_INDEX_MAGIC, len(entries)))
    for hash, offset, length in entries:
        body += _ENTRY.pack(bytes.fromhex(hash), offset, length)
    return bytes(body) + blake3(body).digest()


def _decode_index(data: bytes, *, pack: str, pack_size: int, where: str) -> dict[str, _Slot]:
    """Parse and check an index written by ``_encode_index``; ``IntegrityError`` if damaged."""
    body, digest = data[:-_DIGEST], data[-_DIGEST:]
    count = (len(body) - _HEADER.size) // _ENTRY.size
    if (
        len(data) < _HEADER.size + _DIGEST
        or blake3(body).digest() != digest
        or _HEADER.unpack_from(body) != (_INDEX_MAGIC, count)
        or len(body) != _HEADER.size + count * _ENTRY.size
    ):
        raise IntegrityError(
            f"pack index {pack}.idx in {where} is damaged; delete {PACKS_DIR}/{pack}.idx and "
            f"{PACKS_DIR}/{pack}.pack, then push again from a store that has the blobs"
        )
    slots: dict[str, _Slot] = {}
    for raw, offset, length in _ENTRY.iter_unpack(body[_HEADER.size :]):
        if offset + length > pack_size:
            raise IntegrityError(
                f"pack {pack} in {where} is shorter than its index says ({pack_size} bytes); "
                f"delete {PACKS_DIR}/{pack}.idx and .pack, then push again"
            )
        slots[raw.hex()] = _Slot(raw.hex(), pack, offset, length)
    return slots


class _Site:
    """Raw access to a blob store's root, for the ``packs/`` namespace and one-shot listings."""

    def __init__(self, store: BlobStore) -> None:
        # The transfer works beside BlobStore on the same root, hence its private handles.
        self.store = store
        self.fs: AbstractFileSystem | None = store._fs
        self.root = Path(store.uri) if self.fs is None else store._root
        self.atomic_put = self.fs is not None and store._atomic_put

    def _key(self, name: str) -> str:
        return f"{self.root}/{PACKS_DIR}/{name}"

    def listing(self) -> tuple[dict[str, int], dict[str, int]]:
        """Loose blobs and ``packs/`` files, each name -> size, from one listing of the root."""
        if self.fs is None:
            folder = Path(self.root) / PACKS_DIR
            found = list(folder.iterdir()) if folder.is_dir() else []
            packs = {path.name: path.stat().st_size for path in found if path.is_file()}
            return {info.hash: info.size for info in self.store.iter_blobs()}, packs
        loose, packs = {}, {}
        for name, info in self.fs.find(self.root, detail=True).items():
            head, _, rest = name.removeprefix(f"{self.root}/").partition("/")
            if head == PACKS_DIR and "/" not in rest:
                packs[rest] = int(info["size"])
            elif len(head) == 2 and _HASH.match(head + rest):
                loose[head + rest] = int(info["size"])
        return loose, packs

    def read(self, name: str, start: int, end: int) -> bytes:
        """Bytes ``start:end`` of ``packs/<name>`` (one ranged request on remote stores)."""
        if end <= start:
            return b""
        if self.fs is None:
            with open(self._key(name), "rb") as source:
                source.seek(start)
                return source.read(end - start)
        return bytes(self.fs.cat_file(self._key(name), start=start, end=end))

    def spool(self) -> tuple[int, Path]:
        """A new temp file to build a pack in, on the same disk as the root when local."""
        folder = Path(self.root) / _TEMP_DIR if self.fs is None else Path(tempfile.gettempdir())
        return create_temp(folder, "pack-")

    def publish(self, temp: Path, name: str) -> None:
        """Move the finished file ``temp`` to ``packs/<name>``, where it appears whole."""
        if self.fs is None:  # the temp file is on the same disk (see spool): rename it
            final = Path(self._key(name))
            final.parent.mkdir(exist_ok=True)
            os.chmod(temp, 0o444)
            os.replace(temp, final)
            fsync_dir(final.parent)
            return
        try:
            staged = f"{self.root}/{_TEMP_DIR}/{os.urandom(16).hex()}"
            self.fs.put_file(str(temp), self._key(name) if self.atomic_put else staged)
            if not self.atomic_put:
                self.fs.mv(staged, self._key(name))
        finally:
            temp.unlink(missing_ok=True)

    def write(self, name: str, data: bytes) -> None:
        fd, temp = self.spool()
        try:
            write_all(fd, [data])
            self.publish(temp, name)
        finally:
            temp.unlink(missing_ok=True)  # already gone once published


@contextmanager
def _reaching(store: BlobStore) -> Iterator[None]:
    """Errors from listing a remote (no such bucket, no access) as one that names it."""
    try:
        yield
    except OSError as exc:
        raise StoreError(
            f"cannot list the blob store {store.uri}: {exc.strerror or exc}; check the URL, "
            "that the bucket or folder exists, and the credentials"
        ) from exc


def _inventory(site: _Site, workers: int) -> _Inventory:
    with _reaching(site.store):
        loose, files = site.listing()
    packs = {name[:-5]: size for name, size in files.items() if name.endswith(".pack")}
    indexes = [name[:-4] for name in files if name.endswith(".idx") and name[:-4] in packs]

    def load(pack: str) -> dict[str, _Slot]:
        data = site.read(f"{pack}.idx", 0, files[f"{pack}.idx"])
        return _decode_index(data, pack=pack, pack_size=packs[pack], where=site.store.uri)

    packed: dict[str, _Slot] = {}
    with ThreadPoolExecutor(max(1, min(workers, len(indexes)))) as pool:
        for slots in pool.map(load, indexes):
            packed.update(slots)
    return _Inventory(loose, packed, files)


def remote_inventory(remote: BlobStore) -> set[str]:
    """Every blob hash available on ``remote``, stored loose or inside a complete pack."""
    found = _inventory(_Site(remote), workers=8)
    return set(found.loose) | set(found.packed)


def _requested(hashes: Iterable[str]) -> list[str]:
    return [_check_hash(hash) for hash in dict.fromkeys(hashes)]


def _check_options(workers: int, pack_threshold: int = 0, pack_target: int = 1) -> None:
    limits = {"workers": (workers, 1), "pack_threshold": (pack_threshold, 0)}
    for name, (value, least) in {**limits, "pack_target": (pack_target, 1)}.items():
        if not isinstance(value, int) or value < least:
            raise InvalidInput(f"{name} must be an integer >= {least}, got {value!r}")


def _sizes(store: BlobStore, hashes: list[str]) -> dict[str, int]:
    """Sizes of those ``hashes`` that ``store`` holds: a stat each on a folder, else a listing."""
    if store.is_local:
        return {hash: store.size(hash) for hash in hashes if store.exists(hash)}
    listed = {info.hash: info.size for info in store.iter_blobs()}
    return {hash: listed[hash] for hash in hashes if hash in listed}


def _absent(store: BlobStore, hashes: list[str], what: str) -> BlobNotFound:
    shown = ", ".join(hashes[:3]) + (" …" if len(hashes) > 3 else "")
    return BlobNotFound(
        f"{len(hashes)} blob(s) to {what} are not in the blob store {store.uri}: {shown}; "
        "check the hashes, or copy the blobs in from a store that has them"
    )


def _run(jobs: list[_Job], workers: int, progress: Progress | None) -> int:
    """Run ``(job, blob count)`` pairs on a pool; return the bytes the jobs report."""
    total = sum(count for _, count in jobs)
    done = sent = 0
    if progress is not None:
        progress(0, total)
    if not jobs:
        return 0
    pool = ThreadPoolExecutor(min(workers, len(jobs)), thread_name_prefix="loopwright-transfer")
    try:
        pending: dict[Future[int], int] = {pool.submit(job): count for job, count in jobs}
        while pending:
            finished, _ = wait(pending, return_when=FIRST_EXCEPTION)
            for future in finished:
                sent += future.result()  # the first failure stops the transfer
                done += pending.pop(future)
                if progress is not None:
                    progress(done, total)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return sent


def _pack_groups(sizes: dict[str, int], target: int) -> list[list[str]]:
    groups: list[list[str]] = [[]]
    filled = 0
    for hash in sorted(sizes):  # sorted, so a retried push tends to rebuild the same packs
        if filled >= target:
            groups.append([])
            filled = 0
        groups[-1].append(hash)
        filled += sizes[hash]
    return [group for group in groups if group]


def _push_pack(local: BlobStore, site: _Site, hashes: list[str], known: set[str]) -> int:
    fd, temp = site.spool()
    try:
        entries: list[tuple[str, int, int]] = []
        hasher, offset = blake3(), 0
        with open(fd, "wb") as out:
            for hash in hashes:
                data = local.read_bytes(hash)  # verified: a damaged local blob is never sent
                out.write(data)
                hasher.update(data)
                entries.append((hash, offset, len(data)))
                offset += len(data)
            out.flush()
            os.fsync(out.fileno())
        pack = hasher.hexdigest()
        if f"{pack}.pack" not in known:  # else left by an interrupted push, lacking its index
            site.publish(temp, f"{pack}.pack")
        site.write(f"{pack}.idx", _encode_index(entries))  # last: the pack is now visible
        return offset
    finally:
        temp.unlink(missing_ok=True)


def _push_loose(local: BlobStore, remote: BlobStore, hash: str) -> int:
    with local.open_read(hash) as reader:
        return remote.put_stream(reader).size


def push(
    local: BlobStore,
    remote: BlobStore,
    hashes: Iterable[str],
    *,
    pack_threshold: int = 1 << 20,
    pack_target: int = 64 << 20,
    workers: int = 8,
    progress: Progress | None = None,
) -> TransferReport:
    """Copy to ``remote`` the blobs among ``hashes`` that it lacks; small ones go in packs.

    Args:
        local: the store the blobs come from; every requested blob must be in it or on
            ``remote`` (else ``BlobNotFound``, before anything is sent).
        remote: the store to fill (an fsspec URL or a folder).
        hashes: blob hashes to make available on ``remote``; duplicates count once.
        pack_threshold: blobs smaller than this many bytes are packed (0 packs nothing).
        pack_target: a pack is closed once it holds at least this many bytes.
        workers: uploads running at once.
        progress: called with ``(blobs done, blobs to send)`` from the calling thread.
    """
    _check_options(workers, pack_threshold, pack_target)
    started = time.monotonic()
    wanted = _requested(hashes)
    site = _Site(remote)
    inventory = _inventory(site, workers)
    missing = [hash for hash in wanted if hash not in inventory]
    sizes = _sizes(local, missing)
    if len(sizes) < len(missing):
        raise _absent(local, [hash for hash in missing if hash not in sizes], "push")
    small = {hash: size for hash, size in sizes.items() if size < pack_threshold}
    groups = _pack_groups(small, pack_target)
    singles = [group[0] for group in groups if len(group) == 1]
    groups = [group for group in groups if len(group) > 1]
    big = [hash for hash in missing if hash not in small] + singles

    known = set(inventory.files)
    jobs: list[_Job] = [(partial(_push_pack, local, site, g, known), len(g)) for g in groups]
    jobs += [(partial(_push_loose, local, remote, hash), 1) for hash in big]
    sent = _run(jobs, workers, progress)
    elapsed = time.monotonic() - started
    return TransferReport(
        len(wanted), len(wanted) - len(missing), len(missing), sent, len(groups), elapsed
    )


def _runs(slots: list[_Slot]) -> list[list[_Slot]]:
    """Group one pack's slots into runs (by offset) that one ranged read can cover."""
    runs: list[list[_Slot]] = []
    for slot in sorted(slots, key=lambda slot: slot.offset):
        if runs:
            start, end = runs[-1][0].offset, runs[-1][-1].offset + runs[-1][-1].length
            if slot.offset - end <= _MAX_GAP and slot.offset + slot.length - start <= _MAX_SPAN:
                runs[-1].append(slot)
                continue
        runs.append([slot])
    return runs


def _pull_run(site: _Site, local: BlobStore, run: list[_Slot]) -> int:
    pack, start = run[0].pack, run[0].offset
    data = site.read(f"{pack}.pack", start, max(slot.offset + slot.length for slot in run))
    for slot in run:
        blob = data[slot.offset - start : slot.offset - start + slot.length]
        if (actual := blake3(blob).hexdigest()) != slot.hash:
            raise IntegrityError(
                f"blob {slot.hash} in pack {pack} of {site.store.uri} is corrupt: bytes "
                f"{slot.offset}..{slot.offset + slot.length} of the pack hash to {actual}. "
                f"Delete {PACKS_DIR}/{pack}.idx and {PACKS_DIR}/{pack}.pack there, then push "
                "the blobs again from a store that has them"
            )
        local.put_bytes(blob, durable=False)  # one sync for the whole pull, below
    return sum(slot.length for slot in run)


def _pull_loose(remote: BlobStore, local: BlobStore, hash: str) -> int:
    with remote.open_read(hash) as reader:  # verifies at EOF, before the blob is stored
        return local.put_stream(reader).size


def pull(
    remote: BlobStore,
    local: BlobStore,
    hashes: Iterable[str],
    *,
    workers: int = 8,
    progress: Progress | None = None,
) -> TransferReport:
    """Copy into ``local`` the blobs among ``hashes`` that it lacks, from ``remote``.

    Every requested blob must be in ``local`` or on ``remote`` (else ``BlobNotFound``, before
    anything is fetched). ``progress`` is called with ``(blobs done, blobs to fetch)``.
    """
    _check_options(workers)
    started = time.monotonic()
    wanted = _requested(hashes)
    have = _sizes(local, wanted)
    missing = [hash for hash in wanted if hash not in have]
    site = _Site(remote)
    inventory = _inventory(site, workers)
    absent = [hash for hash in missing if hash not in inventory]
    if absent:
        raise _absent(remote, absent, "pull")

    by_pack: dict[str, list[_Slot]] = {}
    jobs: list[_Job] = []
    for hash in missing:
        slot = inventory.packed.get(hash)
        if slot is not None:  # preferred when a blob is both packed and loose: fewer requests
            by_pack.setdefault(slot.pack, []).append(slot)
        else:
            jobs.append((partial(_pull_loose, remote, local, hash), 1))
    for slots in by_pack.values():
        jobs += [(partial(_pull_run, site, local, run), len(run)) for run in _runs(slots)]
    sent = _run(jobs, workers, progress)
    if missing:
        local.sync()
    elapsed = time.monotonic() - started
    return TransferReport(
        len(wanted), len(wanted) - len(missing), len(missing), sent, len(by_pack), elapsed
    )
