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
    from .service import DatasetService

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
    found: list[DatasetVersion | tuple[Pointer, list[FileEntry]]] = []
    for target in targets:
        if isinstance(target, DatasetVersion):
            found.append(target)
            continue
        try:  # by id (checked against the pointer's dataset and content), else by content
            found.append(service.resolve_pointer(target))
            continue
        except NotFound:
            pass
        pull(remote, local, [target.content_hash])
        found.append(
            (target, _read_manifest(local.read_bytes(target.content_hash), target, remote_uri))
        )
    files = [service.files(item) if isinstance(item, DatasetVersion) else item[1] for item in found]
    report = pull(
        remote, local, sorted({e.hash for entries in files for e in entries}), progress=progress
    )
    # A version is recorded only once all its files are here and match the manifest.
    versions = [
        item if isinstance(item, DatasetVersion) else _import(service, *item, remote_uri)
        for item in found
    ]
    return versions, report


def _import(
    service: DatasetService, pointer: Pointer, entries: list[FileEntry], remote_uri: str
) -> DatasetVersion:
    blobs = service.store.blobs
    wrong = [e.path for e in entries if blobs.size(e.hash) != e.size]
    if wrong:
        raise IntegrityError(
            f"the manifest of {pointer.ref} on {remote_uri} gives sizes that its files do not "
            f"have ({', '.join(wrong[:3])}); push the version again from a store that has it"
        )
    return service.import_version(pointer, entries, source=remote_uri)


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
