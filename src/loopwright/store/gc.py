"""Garbage collection of blobs that no metadata row references.

The roots are every column marked ``blob_ref`` in the schema. Blobs younger than a grace period are
kept, since a writer may have stored a blob and not yet committed the row that points at it.

Example:
    >>> from loopwright.config import resolve_settings
    >>> from loopwright.store.home import open_store
    >>> report = collect_garbage(open_store(resolve_settings(home="lw-doc-gc")))
    >>> report.deleted
    False
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sqlalchemy as sa

from .._ids import now_ms
from . import schema
from .blobs import BlobInfo
from .home import Store

__all__ = ["DEFAULT_GRACE_MS", "GcReport", "collect_garbage", "referenced_hashes"]

DEFAULT_GRACE_MS = 60 * 60 * 1000


@dataclass(frozen=True)
class GcReport:
    """What a collection found: unreferenced blobs, and whether they were deleted."""

    unreferenced: list[BlobInfo] = field(default_factory=list)
    kept_young: int = 0
    referenced: int = 0
    deleted: bool = False
    kept_packed: int = 0  # unreferenced but inside a small-blob pack: reclaimed by a repack

    @property
    def bytes(self) -> int:
        return sum(info.size for info in self.unreferenced)


def referenced_hashes(store: Store) -> set[str]:
    """Every blob hash some metadata row points at."""
    found: set[str] = set()
    with store.db.read() as conn:
        for column in schema.blob_ref_columns():
            query = sa.select(column).where(column.is_not(None)).distinct()
            found.update(conn.execute(query).scalars())
    return found


def collect_garbage(
    store: Store, *, dry_run: bool = True, grace_ms: int = DEFAULT_GRACE_MS
) -> GcReport:
    """Find (and unless ``dry_run``, delete) blobs that nothing references."""
    referenced = referenced_hashes(store)
    cutoff = now_ms() - grace_ms
    candidates: list[BlobInfo] = []
    young = packed = 0
    for info in store.blobs.iter_blobs():
        if info.hash in referenced:
            continue
        if info.modified_ms is not None and info.modified_ms > cutoff:
            young += 1
            continue
        if info.packed:  # cannot be deleted alone (repacking is not implemented yet)
            packed += 1
            continue
        candidates.append(info)
    if not dry_run:
        # Re-check the roots just before deleting: a row committed since the first scan wins.
        referenced_now = referenced_hashes(store)
        still_free = [info for info in candidates if info.hash not in referenced_now]
        for info in still_free:
            store.blobs.delete(info.hash)
        hashes = [info.hash for info in still_free]
        with store.db.write() as conn:
            for start in range(0, len(hashes), 500):
                conn.execute(
                    schema.blobs.delete().where(
                        schema.blobs.c.hash.in_(hashes[start : start + 500])
                    )
                )
        candidates = still_free
    return GcReport(
        unreferenced=candidates,
        kept_young=young,
        referenced=len(referenced),
        deleted=not dry_run,
        kept_packed=packed,
    )
