"""A tiny but well-formed model package for registry tests that need no real model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from blake3 import blake3

from loopwright.registry.packaging._package_manifest import FileEntry, PackageManifest


def make_package(folder: Path, payload: bytes = b"w", **overrides: Any) -> Path:
    """``folder`` with one file and a manifest listing it; ``overrides`` replace manifest fields
    (as raw JSON values, so tests can also write malformed ones)."""
    folder.mkdir(parents=True)
    (folder / "model.bin").write_bytes(payload)
    manifest = PackageManifest(
        flavor="demo",
        flavor_options={},
        signature=None,
        input_example=None,
        python="3.11.7",
        libraries={},
        uses_pickle=False,
        executes_code=False,
        created_at=0,
        files={"model.bin": FileEntry(blake3(payload).hexdigest(), len(payload))},
    )
    document = {**json.loads(manifest.to_json()), **overrides}
    (folder / "loopwright-model.json").write_text(json.dumps(document), encoding="utf-8")
    return folder
