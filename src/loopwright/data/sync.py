"""``push`` and ``pull`` of dataset versions to a remote blob store (an S3 URL or a folder).

A push sends every file blob of the versions plus each version's manifest, stored as a blob
whose hash is the version's content hash. A pull therefore needs only a pointer file: it
fetches the manifest by content hash, records the version locally if this store has never
seen it, then fetches the files. Small blobs travel in packs (``store/transfer.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from ..errors import IntegrityError
from ..store.blobs import BlobStore
from ..store.transfer import TransferReport, pull, push
from .entities import DatasetVersion
from .ingest import manifest_hash, manifest_text, parse_manifest
from .pointer import Pointer

if TYPE_CHECKING:
    from .service import DatasetService

__all__ = ["pull_versions", "push_versions"]

Progress = Callable[[int, int], None]


def push_versions(
    service: DatasetService,
    versions: Sequence[DatasetVersion],
    remote_uri: str,
    *,
    progress: Progress | None = None,
) -> TransferReport:
    local = service.store.blobs
    hashes: set[str] = set()
    for version in versions:
        entries = service.files(version)
        hashes.update(e.hash for e in entries)
        hashes.add(local.put_bytes(manifest_text(entries)).hash)
    return push(local, BlobStore.open(remote_uri), sorted(hashes), progress=progress)


def pull_versions(
    service: DatasetService,
    targets: Sequence[DatasetVersion | Pointer],
    remote_uri: str,
    *,
    progress: Progress | None = None,
) -> tuple[list[DatasetVersion], TransferReport]:
    """Fetch the files of each version (a pointer's version is imported first if unknown)."""
    local, remote = service.store.blobs, BlobStore.open(remote_uri)
    versions: list[DatasetVersion] = []
    for target in targets:
        if isinstance(target, DatasetVersion):
            versions.append(target)
            continue
        known = service.find_version(target.dataset, target.content_hash)
        if known is not None:
            versions.append(known)
            continue
        pull(remote, local, [target.content_hash])
        entries = parse_manifest(local.read_bytes(target.content_hash))
        if manifest_hash(entries) != target.content_hash:
            raise IntegrityError(f"the manifest of {target.ref} on {remote_uri} does not match")
        versions.append(service.import_version(target, entries, source=remote_uri))
    hashes = sorted({e.hash for v in versions for e in service.files(v)})
    return versions, pull(remote, local, hashes, progress=progress)
