"""Where a package comes from: a local folder (stored as blobs) or a run's artifacts (shared).

Both check every file against the manifest before anything is recorded: a folder's files by
the hash of the bytes stored, a run's by its artifact rows (and the manifest blob by its hash).
Files the manifest does not list are refused rather than silently left out.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from blake3 import blake3

from ..errors import InvalidModelPackage
from ..paths import safe_join
from ..store import schema as t
from ..store.blobs import BlobStore
from ..store.database import Database
from .packaging._package_manifest import MANIFEST_FILE as MANIFEST
from .packaging._package_manifest import PackageManifest

__all__ = ["PackageFile", "package_from_folder", "package_from_run"]


@dataclass(frozen=True)
class PackageFile:
    """One stored file of a package: its path inside the package, BLAKE3 hash and size."""

    path: str
    blob_hash: str
    size: int


def _read_manifest(data: bytes, where: str) -> tuple[PackageManifest, list[PackageFile]]:
    """Check and read a manifest with the packaging layer's own checks, and list its files.

    ``load_package`` uses the same parser, so the registry accepts exactly the same manifests.
    """
    manifest = PackageManifest.from_json(data, where=f"model package {where}")
    listed = [PackageFile(p, entry.hash, entry.size) for p, entry in sorted(manifest.files.items())]
    return manifest, listed


def package_from_folder(
    blobs: BlobStore, folder: Path
) -> tuple[PackageManifest, list[PackageFile]]:
    """Check the package folder against its manifest and store its files as blobs."""
    where = repr(str(folder))
    manifest_path = folder / MANIFEST
    if not manifest_path.is_file():
        raise InvalidModelPackage(
            f"{where} is not a model package (no {MANIFEST}); build one with "
            "loopwright.registry.packaging.package or pass run_id="
        )
    data = manifest_path.read_bytes()
    manifest, listed_files = _read_manifest(data, where)
    listed = {f.path for f in listed_files}
    present = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
    extra = sorted(present - listed - {MANIFEST})
    if extra:
        raise InvalidModelPackage(
            f"model package {where} holds files its manifest does not list: "
            f"{', '.join(extra[:5])}; remove them or rebuild the package"
        )
    files = [PackageFile(MANIFEST, blobs.put_bytes(data).hash, len(data))]
    for entry in listed_files:
        path = safe_join(folder, entry.path, what="package path")
        if not path.is_file():
            raise InvalidModelPackage(
                f"model package {where} lacks {entry.path!r}, which its manifest lists"
            )
        stored = blobs.put_file(path)
        if (stored.hash, stored.size) != (entry.blob_hash, entry.size):
            raise InvalidModelPackage(
                f"model package {where}: {entry.path!r} does not match its manifest "
                "(hash or size differ); the file changed after the package was built"
            )
        files.append(entry)
    return manifest, files


def package_from_run(
    db: Database, blobs: BlobStore, run_id: str, prefix: str
) -> tuple[PackageManifest, list[PackageFile]]:
    """Check the run's artifacts under ``prefix`` against the manifest among them."""
    a = t.artifacts.c
    query = sa.select(a.path, a.blob_hash, a.size).where(
        a.owner_type == "run", a.owner_id == run_id
    )
    if prefix:
        query = query.where(a.path.startswith(prefix + "/", autoescape=True))
    with db.read() as conn:
        rows = conn.execute(query).all()
    cut = len(prefix) + 1 if prefix else 0
    found = {row.path[cut:]: row for row in rows}
    where = f"runs:/{run_id}/{prefix}"
    if MANIFEST not in found:
        raise InvalidModelPackage(
            f"run {run_id} has no model package at {prefix or 'its artifact root'!r} (no "
            f"{MANIFEST}); log the package folder there or pass artifact_path="
        )
    head = found[MANIFEST]
    data = blobs.read_bytes(head.blob_hash)
    if blake3(data).hexdigest() != head.blob_hash:
        raise InvalidModelPackage(f"{where}: the manifest's bytes do not match its hash")
    manifest, listed_files = _read_manifest(data, where)
    extra = sorted(set(found) - {f.path for f in listed_files} - {MANIFEST})
    if extra:
        raise InvalidModelPackage(
            f"{where} holds files its manifest does not list: {', '.join(extra[:5])}; "
            "register from a folder holding only the package"
        )
    for entry in listed_files:
        row = found.get(entry.path)
        if row is None or not blobs.exists(entry.blob_hash):
            raise InvalidModelPackage(f"{where} lacks {entry.path!r}, which its manifest lists")
        if (row.blob_hash, row.size) != (entry.blob_hash, entry.size):
            raise InvalidModelPackage(
                f"{where}: {entry.path!r} does not match its manifest (hash or size differ)"
            )
    return manifest, [PackageFile(MANIFEST, head.blob_hash, head.size), *listed_files]
