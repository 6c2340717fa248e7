"""A run's artifacts as the dashboard shows them: a folder's entries, and a file's preview
(text, image, table) or its size and a download link.

Paths go through ``normalize_relpath``, as the API's, so ``..``, absolute paths and their
encoded forms are refused before any lookup; a file is served only if it is an artifact of
the run (its blob is found by the run's artifact row, never by the path).
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from typing import Any

from ...errors import InvalidInput, NotFound
from ...paths import normalize_relpath
from ...store.blobs import BlobStore
from ...tracking.entities import Artifact

__all__ = ["IMAGE_TYPES", "Entry", "Preview", "entries", "find_file", "preview", "relpath"]

TEXT_BYTES = 64 * 1024
TABLE_ROWS = 100
TABLE_BYTES = 20 * 1024 * 1024  # a table file larger than this is not parsed for a preview
IMAGE_TYPES = {
    "png": "image/png",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "gif": "image/gif",
    "svg": "image/svg+xml",
    "webp": "image/webp",
}
TEXT_SUFFIXES = {
    "txt", "log", "md", "py", "yaml", "yml", "toml", "cfg", "ini", "json", "jsonl", "csv",
    "tsv", "xml", "html", "sh", "sql", "r", "ipynb", "mlmodel", "requirements",
}  # fmt: skip


@dataclass(frozen=True)
class Entry:
    """One row of a folder listing: a file or a sub-folder (with its files' count and size)."""

    name: str
    path: str
    is_dir: bool
    size: int
    files: int = 1


@dataclass(frozen=True)
class Preview:
    kind: str  # "text", "image", "table", "binary"
    text: str = ""
    truncated: bool = False
    columns: list[str] = field(default_factory=list)
    rows: list[list[Any]] = field(default_factory=list)
    note: str = ""


def relpath(path: str | None) -> str:
    """The listing's folder or file, checked like the API's artifact paths ("" is the root)."""
    if path is None or path.strip("/") == "":
        return ""
    return normalize_relpath(path, what="artifact path")


def entries(files: list[Artifact], folder: str) -> list[Entry]:
    """The direct children of ``folder`` among ``files`` (every file under it), folders first."""
    prefix = f"{folder}/" if folder else ""
    dirs: dict[str, list[int]] = {}
    found: list[Entry] = []
    for item in files:
        if not item.path.startswith(prefix):
            continue
        rest = item.path[len(prefix) :]
        head, sep, _ = rest.partition("/")
        if sep:
            totals = dirs.setdefault(head, [0, 0])
            totals[0] += 1
            totals[1] += item.size
        else:
            found.append(Entry(head, item.path, False, item.size))
    folders = [
        Entry(name, prefix + name, True, size, count)
        for name, (count, size) in sorted(dirs.items())
    ]
    return folders + found


def find_file(files: list[Artifact], path: str, run_id: str) -> Artifact | None:
    """The artifact at ``path`` exactly; None when ``path`` is a folder; NotFound otherwise."""
    exact = next((a for a in files if a.path == path), None)
    if exact is not None or any(a.path.startswith(path + "/") for a in files):
        return exact
    raise NotFound(
        f"run {run_id} has no artifact {path!r}; its artifacts are listed at "
        f"/ui/runs/{run_id}/artifacts"
    )


def suffix(path: str) -> str:
    name = path.rpartition("/")[2]
    return name.rpartition(".")[2].lower() if "." in name else name.lower()


def preview(blobs: BlobStore, item: Artifact) -> Preview:
    """What the artifact page shows of ``item``."""
    kind = suffix(item.path)
    if kind in IMAGE_TYPES:
        return Preview("image")
    if kind in ("csv", "tsv") and item.size <= TABLE_BYTES:
        return _csv(_head(blobs, item, TABLE_BYTES), "\t" if kind == "tsv" else ",")
    if kind == "parquet" and item.size <= TABLE_BYTES:
        return _parquet(blobs.read_bytes(item.blob_hash))
    if kind in ("json", "jsonl") and item.size <= TABLE_BYTES:
        table = _json_table(_head(blobs, item, TABLE_BYTES), lines=kind == "jsonl")
        if table is not None:
            return table
    head = _head(blobs, item, TEXT_BYTES)
    if kind in TEXT_SUFFIXES or _looks_textual(head):
        text = head.decode("utf-8", errors="replace")
        return Preview("text", text=text, truncated=item.size > TEXT_BYTES)
    return Preview("binary")


def _head(blobs: BlobStore, item: Artifact, limit: int) -> bytes:
    with blobs.open_read(item.blob_hash) as reader:
        return reader.read(limit)


def _looks_textual(data: bytes) -> bool:
    if b"\x00" in data[:8192]:
        return False
    try:
        data[:8192].decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start > 8188  # only a character cut at the sample's end
    return True


def _csv(data: bytes, delimiter: str) -> Preview:
    text = data.decode("utf-8", errors="replace")
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    try:
        header = next(reader, [])
        rows = [row for _, row in zip(range(TABLE_ROWS), reader, strict=False)]
    except csv.Error as exc:
        return Preview("text", text=text[:TEXT_BYTES], note=f"not read as a table: {exc}")
    return Preview("table", columns=header, rows=rows, note=_first(len(rows)))


def _first(count: int) -> str:
    return f"the first {count} rows" if count >= TABLE_ROWS else f"{count} rows"


def _parquet(data: bytes) -> Preview:
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(io.BytesIO(data))
        batch = next(parquet.iter_batches(batch_size=TABLE_ROWS), None)
    except Exception as exc:  # a damaged file is shown as binary, not a server error
        return Preview("binary", note=f"not readable as Parquet: {exc}")
    if batch is None:
        return Preview("table", columns=parquet.schema_arrow.names, note="no rows")
    columns = batch.schema.names
    table = batch.to_pydict()
    rows = [[table[c][i] for c in columns] for i in range(batch.num_rows)]
    note = f"{_first(len(rows))} of {parquet.metadata.num_rows:,}"
    return Preview("table", columns=columns, rows=rows, note=note)


def _json_table(data: bytes, *, lines: bool) -> Preview | None:
    """Records (a list of objects, or JSON lines) as a table; None for any other JSON."""
    try:
        text = data.decode("utf-8")
        if lines:
            records = [json.loads(line) for line in text.splitlines()[:TABLE_ROWS] if line.strip()]
        else:
            records = json.loads(text)
    except (UnicodeDecodeError, ValueError, RecursionError):
        # Deep nesting (200,000 "[") exhausts the parser's stack: shown as text, not a 500.
        return None
    if isinstance(records, dict) and all(isinstance(v, list) for v in records.values()):
        columns = list(records)  # column-oriented: {"a": [...], "b": [...]}
        length = min((len(v) for v in records.values()), default=0)
        rows = [[records[c][i] for c in columns] for i in range(min(length, TABLE_ROWS))]
        return Preview("table", columns=columns, rows=rows, note=_first(len(rows)))
    if (
        not isinstance(records, list)
        or not records
        or not all(isinstance(r, dict) for r in records)
    ):
        return None
    columns = list(dict.fromkeys(k for r in records[:TABLE_ROWS] for k in r))
    rows = [[r.get(c) for c in columns] for r in records[:TABLE_ROWS]]
    return Preview("table", columns=columns, rows=rows, note=_first(len(rows)))


def check_raw_path(path: str | None) -> str:
    if not path:
        raise InvalidInput("path is required: the artifact file to send")
    return relpath(path)
