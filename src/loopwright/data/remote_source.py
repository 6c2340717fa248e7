"""Adding data straight from an fsspec URL (``s3://bucket/prefix``, ``gs://…``, ``https://…``)."""

from __future__ import annotations

from collections.abc import Sequence

from ..errors import InvalidInput
from ..paths import normalize_relpath
from ..store.blobs import BlobStore
from .entities import FileEntry

__all__ = ["fetch_remote"]


def fetch_remote(urls: Sequence[str], blobs: BlobStore) -> list[FileEntry]:
    """Stream every file under each URL into the blob store (one URL: paths relative to it)."""
    import fsspec

    entries: list[FileEntry] = []
    for url in urls:
        try:
            fs, root = fsspec.core.url_to_fs(url)
        except (ValueError, ImportError) as exc:  # an unknown protocol, or its package missing
            raise InvalidInput(
                f"cannot read {url!r} ({exc}); give a local path or an fsspec URL (s3://, gs://, "
                "https://, …) whose package is installed"
            ) from None
        root = root.rstrip("/")
        if fs.isdir(root):
            prefix = "" if len(urls) == 1 else root.rsplit("/", 1)[-1] + "/"
            paths = sorted(fs.find(root))
            pairs = [(prefix + p[len(root) :].lstrip("/"), p) for p in paths]
        elif fs.isfile(root):
            pairs = [(root.rsplit("/", 1)[-1], root)]
        else:
            raise InvalidInput(f"{url!r} does not exist or cannot be listed")
        for rel, path in pairs:
            with fs.open(path, "rb") as stream:
                info = blobs.put_stream(stream)
            entries.append(
                FileEntry(normalize_relpath(rel, what="dataset path"), info.size, info.hash)
            )
    if not entries:
        raise InvalidInput(f"no files found under {', '.join(urls)}")
    return entries
