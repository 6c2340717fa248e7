"""``push`` and ``pull`` of dataset versions to a remote blob store (an S3 URL or a folder).

A push sends every file blob of the versions plus each version's manifest, stored as a blob
whose hash is the version's content hash. A pull therefore needs only a pointer file: it
fetches the manifest by content hash, records the version locally if this store has never
seen it, then fetches the files. Small blobs travel in packs (``store/transfer.py``).
A pulled manifest is checked line by line (plain relative paths, sizes, 64-hex hashes) and
against the pointer's content hash before a version is recorded from it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from ..errors import DataError, IntegrityError, InvalidInput, NotFound
from ..store.home import open_blob_store
from ..store.transfer import TransferReport, pull, push
from .entities import DatasetVersion, FileEntry
from .ingest import manifest_hash, manifest_text, parse_manifest
from .pointer import Pointer, is_content_hash
from .service import local_service

if TYPE_CHECKING:
    from .protocol import Datasets

__all__ = ["pull_versions", "push_versions"]

Progress = Callable[[int, int], None]


def push_versions(
    service: Datasets,
    versions: Sequence[DatasetVersion],
    remote_uri: str,
    *,
    progress: Progress | None = None,
) -> TransferReport:
    service = local_service(service, "data push")
    local = service.store.blobs
    hashes: set[str] = set()
    for version in versions:
        entries = service.files(version)
        hashes.update(e.hash for e in entries)
        hashes.add(local.put_bytes(manifest_text(entries)).hash)
    remote = open_blob_store(remote_uri, what="--remote")
    return push(local, remote, sorted(hashes), progress=progress)


def pull_versions(
    service: Datasets,
    targets: Sequence[DatasetVersion | Pointer],
    remote_uri: str,
    *,
    progress: Progress | None = None,
) -> tuple[list[DatasetVersion], TransferReport]:
    """Fetch the files of each version (a pointer's version is imported first if unknown)."""
    service = local_service(service, "data pull")
    local, remote = service.store.blobs, open_blob_store(remote_uri, what="--remote")
    versions: list[DatasetVersion] = []
    for target in targets:
        if isinstance(target, DatasetVersion):
            versions.append(target)
            continue
        try:  # by id (checked against the pointer's dataset and content), else by content
            versions.append(service.resolve_pointer(target))
            continue
        except NotFound:
            pass
        pull(remote, local, [target.content_hash])
        entries = _read_manifest(local.read_bytes(target.content_hash), target, remote_uri)
        versions.append(service.import_version(target, entries, source=remote_uri))
    hashes = sorted({e.hash for v in versions for e in service.files(v)})
    return versions, pull(remote, local, hashes, progress=progress)


def _read_manifest(text: bytes, pointer: Pointer, remote_uri: str) -> list[FileEntry]:
    """The entries of a manifest fetched from a remote, refused unless every line is sound."""
    where = f"the manifest of {pointer.ref} on {remote_uri}"
    try:
        entries = parse_manifest(text)
    except (ValueError, DataError) as exc:  # UnicodeDecodeError and InvalidInput included
        detail = exc.message if isinstance(exc, InvalidInput | DataError) else str(exc)
        raise DataError(f"{where} is malformed ({detail}); push the version again") from None
    bad = [e.path for e in entries if not is_content_hash(e.hash)]
    if bad:
        raise DataError(
            f"{where} lists {len(bad)} file(s) whose hash is not 64 lowercase hex digits "
            f"({', '.join(bad[:3])}); push the version again"
        )
    if manifest_hash(entries) != pointer.content_hash:
        raise IntegrityError(f"{where} does not match the pointer's content hash")
    return entries
