"""Step outputs: stored as artifacts of the step's nested run, loaded back by reference.

A tuple return value is stored item by item (``output.0``, ``output.1``...) and comes back as a
tuple; anything else is one ``output``. Values are written by the materializers into a temporary
folder and sent with one ``log_artifacts`` call, so a step costs one artifact round trip.

Immutable values (numbers, strings, bytes, tuples of those) are kept in a small per-process
LRU by digest, so a cache hit on one this process made or loaded recently skips the download.
Mutable ones (frames, arrays, models, lists) are not: a step that changes its input in place
would otherwise change what a later cache hit in this process is served, under the old digest.
"""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import InvalidInput
from ..tracking.artifacts import artifact_files
from . import materializers
from .entities import ArtifactRef

if TYPE_CHECKING:
    from ..client import Client
    from ..store.blobs import BlobInfo

__all__ = ["load_outputs", "load_ref", "remember", "store_output_blobs", "store_outputs"]

_LRU_SIZE = 128
# Small values go through a scratch folder in memory (/dev/shm) when there is one: on a busy
# disk, creating, syncing and removing a temporary file per step cost more than the step.
_SMALL_BYTES = 1 << 20
_MEMORY_DIR = "/dev/shm"  # noqa: S108  (only as dir= of mkdtemp: private 0700 folders)
# Materializers whose loaded value may point into the download folder, which must then stay.
_KEEP_FOLDER = frozenset({"path", "model"})
_CHECKS_TRUST = frozenset({"pickle", "model"})
# Download folders of loaded path and model values: they live as long as this process.
_kept: list[Path] = []


@atexit.register
def _remove_kept() -> None:
    for folder in _kept:
        shutil.rmtree(folder, ignore_errors=True)


class _Recent:
    """Values by digest, least recently used dropped first (thread-safe)."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: OrderedDict[str, object] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, digest: str) -> tuple[bool, object]:
        with self._lock:
            if digest not in self._items:
                return False, None
            self._items.move_to_end(digest)
            return True, self._items[digest]

    def put(self, digest: str, value: object) -> None:
        with self._lock:
            self._items[digest] = value
            self._items.move_to_end(digest)
            while len(self._items) > self._size:
                self._items.popitem(last=False)


# Process-wide on purpose: a cached re-run in the same process (a notebook, the loop driver)
# reuses what the last run made without reading it back from the store.
_recent = _Recent(_LRU_SIZE)


@functools.cache
def _memory_dir() -> str | None:
    try:
        with tempfile.TemporaryDirectory(dir=_MEMORY_DIR):
            return _MEMORY_DIR
    except OSError:
        return None


def _scratch(small: bool) -> str | None:
    """Where a scratch folder goes: memory for small values when possible, else the default."""
    return _memory_dir() if small and os.name == "posix" else None


def remember(ref: ArtifactRef, value: object) -> None:
    """Keep ``value`` as the loaded form of ``ref`` for later cache hits in this process, if it
    cannot be changed in place."""
    if _immutable(value):
        _recent.put(ref.digest, value)


def _immutable(value: object, depth: int = 0) -> bool:
    if value is None or isinstance(value, bool | int | float | complex | str | bytes):
        return True
    if type(value) in (tuple, frozenset) and depth < 4:
        return all(_immutable(item, depth + 1) for item in value)  # type: ignore[attr-defined]
    return False


def _named(value: object, base: str) -> list[tuple[str, object]]:
    if isinstance(value, tuple) and value:
        return [(f"{base}.{i}", item) for i, item in enumerate(value)]
    return [(base, value)]


def store_outputs(
    client: Client,
    run_id: str,
    value: object,
    *,
    allow_pickle: bool,
    base: str = "output",
    folder: str = "outputs",
    split: bool = True,
) -> tuple[ArtifactRef, ...]:
    """Materialize ``value`` (a tuple item by item, with ``split``) under the run's ``folder``."""
    refs, _ = _materialize(client, run_id, value, allow_pickle, base, folder, split, direct=False)
    return refs


def store_output_blobs(
    client: Client, run_id: str, value: object, *, allow_pickle: bool
) -> tuple[tuple[ArtifactRef, ...], list[tuple[str, BlobInfo]]]:
    """:func:`store_outputs` into the embedded client's local blob store only (each blob durable
    before this returns): the refs, and the artifact rows still to record, ``(artifact path,
    blob)``, which the caller commits with the step's end instead of a ``log_artifacts``."""
    return _materialize(client, run_id, value, allow_pickle, "output", "outputs", True, direct=True)


def _materialize(
    client: Client,
    run_id: str,
    value: object,
    allow_pickle: bool,
    base: str,
    folder: str,
    split: bool,
    *,
    direct: bool,
) -> tuple[tuple[ArtifactRef, ...], list[tuple[str, BlobInfo]]]:
    named = _named(value, base) if split else [(base, value)]
    small = all(_is_small(item, allow_pickle) for _, item in named)
    try:
        refs, files = _store(client, run_id, named, folder, allow_pickle, _scratch(small), direct)
    except OSError:
        if not small:
            raise
        # A JSON value larger than a small /dev/shm (64 MB in Docker) holds: on disk, then.
        refs, files = _store(client, run_id, named, folder, allow_pickle, None, direct)
    for ref, (_, item) in zip(refs, named, strict=True):
        if not isinstance(item, tuple):  # a stored tuple loads back as a list: keep one form
            remember(ref, item)
    return refs, files


def _store(
    client: Client,
    run_id: str,
    named: Sequence[tuple[str, object]],
    folder: str,
    allow_pickle: bool,
    scratch: str | None,
    direct: bool,
) -> tuple[tuple[ArtifactRef, ...], list[tuple[str, BlobInfo]]]:
    refs: list[ArtifactRef] = []
    files: list[tuple[str, BlobInfo]] = []
    with tempfile.TemporaryDirectory(prefix="lw-step-", dir=scratch) as tmp:
        root = Path(tmp)
        for name, item in named:
            stored = materializers.save(item, root, name, allow_pickle=allow_pickle)
            relative = stored.path.relative_to(root).as_posix()
            refs.append(
                ArtifactRef(
                    name=name,
                    digest=stored.digest,
                    materializer=stored.materializer,
                    run_id=run_id,
                    path=f"{folder}/{relative}",
                    size=stored.size,
                    type_name=stored.type_name,
                )
            )
        if direct:
            blobs = client.store.blobs
            for name, path in artifact_files(root, folder):
                files.append((name, blobs.put_file(path)))
        else:
            client.tracking.log_artifacts(run_id, root, folder)
    return tuple(refs), files


def load_ref(client: Client, ref: ArtifactRef, *, trusted: bool) -> object:
    """The value ``ref`` names: from this process's recent values, else downloaded and loaded."""
    # Kinds whose loading checks trust are served from memory only to a trusted caller, so
    # memory never hands out what an untrusted load would refuse.
    found, value = (
        (False, None)
        if ref.materializer in _CHECKS_TRUST and not trusted
        else (_recent.get(ref.digest))
    )
    if found:
        return value
    if ref.run_id is None or ref.path is None:
        raise InvalidInput(
            f"artifact {ref.name!r} (digest {ref.digest[:12]}) was hashed, not stored: it was "
            "given by value, so there is nothing to load"
        )
    small = ref.size <= _SMALL_BYTES and ref.materializer not in _KEEP_FOLDER
    folder = Path(tempfile.mkdtemp(prefix="lw-output-", dir=_scratch(small)))
    try:
        client.tracking.download_artifacts(ref.run_id, folder, ref.path)
        value = materializers.load(ref.materializer, folder / ref.path, trusted=trusted)
    finally:
        if ref.materializer not in _KEEP_FOLDER:
            shutil.rmtree(folder, ignore_errors=True)
        else:
            _kept.append(folder)
    remember(ref, value)
    return value


def _is_small(value: object, allow_pickle: bool) -> bool:
    """A JSON value or bytes under the small limit (other kinds may be large: to disk)."""
    if isinstance(value, bytes):
        return len(value) <= _SMALL_BYTES
    try:
        return materializers.materializer_for(value, allow_pickle=allow_pickle) == "json"
    except Exception:  # save reports it, naming the type and the fix
        return False


def load_outputs(client: Client, outputs: Sequence[ArtifactRef], *, trusted: bool) -> object:
    """A step run's return value from its output refs (a tuple when it returned one)."""
    if len(outputs) == 1 and "." not in outputs[0].name:
        return load_ref(client, outputs[0], trusted=trusted)
    ordered = sorted(outputs, key=lambda ref: int(ref.name.rsplit(".", 1)[1]))
    return tuple(load_ref(client, ref, trusted=trusted) for ref in ordered)
