"""Writing a package folder all at once: build in a temporary sibling, then rename.

The temporary folder sits next to the destination (same filesystem), so the final ``rename`` is
atomic: a crash leaves either no package or a whole one, never half of one. Files are hashed
after the flavor has written them, so the manifest lists exactly what the folder holds.
"""

from __future__ import annotations

import os
import platform
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypedDict

from blake3 import blake3

from ..._ids import now_ms
from ...errors import AlreadyExists, InvalidInput
from ._package_manifest import MANIFEST_FILE, FileEntry, PackageManifest
from .signature import Signature

__all__ = ["PackageContent", "hash_file", "iter_files", "write_package"]

_CHUNK = 1 << 20


class PackageContent(TypedDict):
    """What a package builder reports about the files it wrote."""

    flavor: str
    flavor_options: dict[str, Any]
    signature: Signature | None
    input_example: str | None
    libraries: dict[str, str]
    uses_pickle: bool
    executes_code: bool


def write_package(
    path: str | os.PathLike[str],
    build: Callable[[Path], PackageContent],
    *,
    python: str | None = None,
) -> PackageManifest:
    """Create the package folder ``path``: ``build`` fills a fresh folder, the manifest follows.

    Raises:
        AlreadyExists: ``path`` exists and is not an empty folder.
    """
    dest = Path(path)
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise AlreadyExists(
            f"cannot save a model package into {str(dest)!r}: it exists and is not an empty "
            "folder; pick a new path or remove it first"
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.parent / f".{dest.name}.tmp-{uuid.uuid4().hex[:12]}"
    tmp.mkdir()
    try:
        content = build(tmp)
        files = {}
        for relative, full in iter_files(tmp):
            if relative == MANIFEST_FILE:
                raise InvalidInput(f"the model's files may not include {MANIFEST_FILE}")
            files[relative] = hash_file(full)
        manifest = PackageManifest(
            **content,
            python=python or platform.python_version(),
            created_at=now_ms(),
            files=files,
        )
        (tmp / MANIFEST_FILE).write_bytes(manifest.to_json())
        os.replace(tmp, dest)  # also replaces an empty folder at dest
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return manifest


def hash_file(path: Path) -> FileEntry:
    """BLAKE3 and size of a file, read in 1 MiB chunks."""
    hasher, size = blake3(), 0
    with open(path, "rb") as file:
        while chunk := file.read(_CHUNK):
            hasher.update(chunk)
            size += len(chunk)
    return FileEntry(hasher.hexdigest(), size)


def iter_files(root: Path) -> Iterator[tuple[str, Path]]:
    """Every regular file below ``root`` as (POSIX relative path, path), sorted.

    Raises:
        InvalidInput: a symbolic link or special file (packages hold regular files only).
    """
    for folder, dirs, names in os.walk(root):
        dirs.sort()
        for name in sorted(names + [d for d in dirs if os.path.islink(Path(folder, d))]):
            full = Path(folder, name)
            if full.is_symlink() or not full.is_file():
                raise InvalidInput(
                    f"{full.relative_to(root).as_posix()!r} is a symbolic link or special file; "
                    "packages hold regular files only"
                )
            yield full.relative_to(root).as_posix(), full
