"""Reading a model package's manifest (``loopwright-model.json``) as untrusted input.

The registry needs only the manifest's ``flavor``, ``signature`` and ``files``. The package hash is
the BLAKE3 of the manifest's bytes, so it pins the hash of every file the manifest lists.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ._package_manifest import MANIFEST_FILE, MAX_MANIFEST_BYTES, PackageManifest

__all__ = ["MANIFEST", "MAX_MANIFEST_BYTES", "Manifest", "PackageFile", "parse_manifest"]

MANIFEST = MANIFEST_FILE


@dataclass(frozen=True)
class PackageFile:
    """One file of a package: its path inside the package, BLAKE3 hash and size."""

    path: str
    blob_hash: str
    size: int


@dataclass(frozen=True)
class Manifest:
    flavor: str
    signature: Mapping[str, Any] | None
    files: tuple[PackageFile, ...]


def parse_manifest(data: bytes, where: str) -> Manifest:
    """Check and read a manifest; ``where`` names the package in error messages.

    The checks are the packaging layer's own (:meth:`PackageManifest.from_json`), so the
    registry and ``load_package`` accept exactly the same manifests.
    """
    parsed = PackageManifest.from_json(data, where=f"model package {where}")
    files = tuple(
        PackageFile(path, entry.hash, entry.size) for path, entry in sorted(parsed.files.items())
    )
    signature = None if parsed.signature is None else parsed.signature.to_dict()
    return Manifest(parsed.flavor, signature, files)
