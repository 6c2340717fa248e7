"""Compacting and pruning the prediction log: fewer, larger files; old hours deleted.

The writer adds a small Parquet file per deployment and hour every flush (a second), so a
busy hour holds thousands of them, and every read lists and opens each. :func:`compact`
merges a closed hour's files into one, crash-safe in three steps:

1. write ``compact-<id>.json``, naming the files to merge;
2. write the merged ``compact-<id>.parquet`` (whole or not at all); from now on readers skip
   the named files (``LogFiles.live``): each row is read once, from the merged file;
3. delete the named files, then the manifest.

Killed before step 2 ends, the parts stand and the stale manifest is removed next time; killed
during step 3, the next compaction finishes the deletions first. Compactions and prunings of
one log never run at the same time: within a process they take turns; across processes the
log's lease (``_log_lease``) refuses the second with ``Conflict``. Writers and readers may run
meanwhile.

:func:`prune` deletes whole hours older than a retention period: merged files first (which
voids their manifests), then parts, then manifests, so no moment shows a row twice.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from ..errors import InvalidInput
from ._log_files import (
    COMPACT,
    HourFiles,
    LogFiles,
    check_deployment_name,
    hour_of,
    new_name,
    utc,
)
from ._log_lease import compaction_lease
from ._prediction_protocol import Compaction, Pruning

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["CLOSED_AFTER", "compact", "prune"]

# An hour counts as closed this long after it ends: a writer may still be flushing, or
# retrying, records that arrived in its last seconds.
CLOSED_AFTER = timedelta(minutes=10)
_HOUR = timedelta(hours=1)


def compact(
    files: LogFiles, deployment: str | None = None, *, before: datetime | None = None
) -> Compaction:
    """Merge the files of each hour that starts before ``before`` (default: every hour that
    ended at least :data:`CLOSED_AFTER` ago) into one, for ``deployment`` or all of them."""
    if before is None:
        limit = hour_of(datetime.now(UTC) - CLOSED_AFTER)
    elif isinstance(before, datetime):
        limit = utc(before)
    else:
        raise InvalidInput(f"before must be a datetime or None, not {type(before).__name__}")
    hours = merged = rows = 0
    with compaction_lease(files) as lease:
        for name in _deployments(files, deployment):
            for hour_files in files.hours(name, until=limit):
                lease.renew()
                done = _compact_hour(files, _finish(files, hour_files))
                if done is not None:
                    hours, merged, rows = hours + 1, merged + done[0], rows + done[1]
    return Compaction(hours=hours, files_merged=merged, rows=rows)


def prune(files: LogFiles, older_than: timedelta, *, deployment: str | None = None) -> Pruning:
    """Delete every hour that ended more than ``older_than`` ago."""
    if not isinstance(older_than, timedelta) or older_than < timedelta(0):
        raise InvalidInput(
            f"older_than {older_than!r} must be a timedelta of zero or more, "
            "e.g. timedelta(days=30)"
        )
    try:
        # Hours that ended by the cutoff: those starting at most an hour before it.
        until = datetime.now(UTC) - older_than - _HOUR + timedelta(microseconds=1)
    except OverflowError:  # before year 1: no hour has ended that long ago
        return Pruning(hours=0, files=0)
    hours = removed = 0
    with compaction_lease(files) as lease:
        for name in _deployments(files, deployment):
            for hour_files in files.hours(name, until=until):
                lease.renew()
                # Merged files first: their manifests no longer hide any part, so no moment
                # of the deletion shows a row twice.
                for path in [*hour_files.compacts, *hour_files.parts, *hour_files.manifests]:
                    files.remove(path)
                    removed += 1
                files.remove_folder(hour_files.folder)
                hours += 1
    return Pruning(hours=hours, files=removed)


def _deployments(files: LogFiles, deployment: str | None) -> list[str]:
    return files.deployments() if deployment is None else [check_deployment_name(deployment)]


def _finish(files: LogFiles, hour_files: HourFiles) -> HourFiles:
    """Complete what an interrupted compaction left: delete the files a finished merge
    replaced, and manifests whose merge never finished. Returns the hour's files after."""
    if not hour_files.manifests:
        return hour_files
    replaced = files.replaced(hour_files)
    for path in replaced:
        files.remove(path)
    for manifest in hour_files.manifests:
        files.remove(manifest)
    return HourFiles(
        hour_files.folder,
        hour_files.hour,
        [p for p in hour_files.parts if p not in replaced],
        [p for p in hour_files.compacts if p not in replaced],
        [],
    )


def _compact_hour(files: LogFiles, hour_files: HourFiles) -> tuple[int, int] | None:
    """Merge the hour's files into one; ``(files merged, rows)``, or None if one or none."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    sources = [*hour_files.compacts, *hour_files.parts]
    if len(sources) < 2:
        return None
    table = _merged([files.read_table(path) for path in sources])
    name = new_name(COMPACT)
    manifest = {"merged": f"{name}.parquet", "replaces": [p.rsplit("/", 1)[-1] for p in sources]}
    files.put(f"{hour_files.folder}/{name}.json", json.dumps(manifest).encode())
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd", row_group_size=128 * 1024)
    files.put(f"{hour_files.folder}/{name}.parquet", memoryview(sink.getvalue()))
    for path in sources:
        files.remove(path)
    files.remove(f"{hour_files.folder}/{name}.json")
    return len(sources), table.num_rows


def _merged(tables: list[pa.Table]) -> pa.Table:
    from ._log_table import unite

    order = [("timestamp", "ascending"), ("request_id", "ascending"), ("row", "ascending")]
    return unite(tables).sort_by(order)
