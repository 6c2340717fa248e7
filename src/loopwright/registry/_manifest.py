"""Reading a model package's manifest (``loopwright-model.json``) as untrusted input.

The registry needs only the manifest's ``flavor``, ``signature`` and ``files``; everything is
type-checked here, and every listed path goes through the one path resolver. The package hash is
the BLAKE3 of the manifest's bytes, so it pins the hash of every file the manifest lists.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import InvalidModelPackage, UnsafePath
from ..paths import normalize_relpath

__all__ = ["MANIFEST", "MAX_MANIFEST_BYTES", "Manifest", "PackageFile", "parse_manifest"]

MANIFEST = "loopwright-model.json"
MAX_MANIFEST_BYTES = 16 << 20
_HASH = re.compile(r"[0-9a-f]{64}")


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
    """Check and read a manifest; ``where`` names the package in error messages."""

    def bad(problem: str) -> InvalidModelPackage:
        return InvalidModelPackage(
            f"model package {where}: {MANIFEST} {problem}; rebuild the package with "
            "loopwright.registry.package"
        )

    if len(data) > MAX_MANIFEST_BYTES:
        raise bad(f"is larger than {MAX_MANIFEST_BYTES} bytes")
    try:
        document = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise bad(f"is not valid UTF-8 JSON ({exc})") from None
    if not isinstance(document, dict):
        raise bad("must hold a JSON object")
    flavor = document.get("flavor")
    if not isinstance(flavor, str) or not 0 < len(flavor) <= 50:
        raise bad("needs a 'flavor' string of 1-50 characters")
    signature = document.get("signature")
    if signature is not None and not isinstance(signature, dict):
        raise bad("has a 'signature' that is neither an object nor null")
    listed = document.get("files")
    if not isinstance(listed, dict):
        raise bad("needs a 'files' object mapping paths to {hash, size}")
    files = []
    for raw_path, entry in listed.items():
        try:
            path = normalize_relpath(raw_path, what="package path")
        except UnsafePath as exc:
            raise bad(f"lists an unsafe path: {exc.message}") from None
        if path == MANIFEST:
            raise bad(f"lists {MANIFEST} itself")
        if not isinstance(entry, dict):
            raise bad(f"has a non-object entry for {path!r}")
        blob_hash, size = entry.get("hash"), entry.get("size")
        if not isinstance(blob_hash, str) or not _HASH.fullmatch(blob_hash):
            raise bad(f"gives {path!r} a hash that is not 64 lowercase hex digits")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise bad(f"gives {path!r} a size that is not a non-negative integer")
        files.append(PackageFile(path, blob_hash, size))
    if len({f.path for f in files}) != len(files):
        raise bad("lists the same path twice (after normalisation)")
    return Manifest(flavor, signature, tuple(sorted(files, key=lambda f: f.path)))
