"""``/api/v1/predictions``: the server's prediction log, read as Arrow IPC, listed, compacted,
pruned.

The log is the one at ``serving.prediction_log.log_location`` of the server's settings: the
``prediction_log`` setting, else ``<blob store>/predictions``. A read answers an Arrow IPC
stream (``application/vnd.apache.arrow.stream``) of at most :data:`MAX_ROWS` rows and
:data:`MAX_BYTES`; past either the answer is ``LIMIT_EXCEEDED``, naming how to narrow the
read. Reading needs a viewer; compaction and pruning delete files, so they need an admin.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse
from pydantic import Field

from ...errors import LimitExceeded
from ...serving.prediction_log import log_location
from ...serving.predictions import PredictionService
from ...store import limits
from ._deps import PREFIX, Admin, State, Viewer
from ._schemas import Body, Out

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["ARROW_STREAM", "MAX_BYTES", "MAX_ROWS", "router"]

router = APIRouter(prefix=PREFIX, tags=["predictions"])

ARROW_STREAM = "application/vnd.apache.arrow.stream"
MAX_ROWS = 1_000_000  # rows one read may return
MAX_BYTES = 512 << 20  # and their size in Arrow (wide inputs: tensors, long texts)
_CHUNK = 1 << 20
_LAST_MS = limits.LAST_MS
_FIRST_MS = -62_135_596_800_000  # 0001-01-01T00:00:00Z, the first
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class LoggedDeploymentOut(Out):
    name: str
    rows: int
    files: int
    first: datetime | None  # the earliest logged request (ISO 8601, UTC)
    last: datetime | None


class CompactIn(Body):
    deployment: str | None = Field(default=None, min_length=1, max_length=256)
    # UTC milliseconds; hours starting before it are merged
    before: int | None = Field(default=None, ge=_FIRST_MS, le=_LAST_MS)


class CompactionOut(Out):
    hours: int
    files_merged: int
    rows: int


class PruneIn(Body):
    older_than_ms: int = Field(ge=0, le=_LAST_MS)
    deployment: str | None = Field(default=None, min_length=1, max_length=256)


class PruningOut(Out):
    hours: int
    files: int


def _service(state: State) -> PredictionService:
    return PredictionService(log_location(state.settings), max_rows=MAX_ROWS, max_bytes=MAX_BYTES)


@router.get("/predictions")
def list_logged(state: State, _: Viewer) -> list[LoggedDeploymentOut]:
    """Every deployment in the log with its row count and time span."""
    return [LoggedDeploymentOut.of(d) for d in _service(state).deployments()]


@router.get(
    "/predictions/{deployment}",
    response_class=StreamingResponse,
    responses={200: {"description": "An Arrow IPC stream", "content": {ARROW_STREAM: {}}}},
)
def read_log(
    deployment: str,
    state: State,
    _: Viewer,
    since: datetime | None = None,
    until: datetime | None = None,
    columns: Annotated[list[str] | None, Query(max_length=10_000)] = None,
    limit: Annotated[int | None, Query(ge=1, le=limits.INT64_MAX)] = None,
) -> StreamingResponse:
    """Rows with ``since <= timestamp < until`` (ISO 8601; without a zone: UTC), oldest first:
    the newest ``limit`` of them, the ``columns`` given (repeat the parameter) or all."""
    table = _service(state)._read(deployment, since, until, columns, limit)
    if table.nbytes > MAX_BYTES:
        raise LimitExceeded(
            f"the {table.num_rows:,} rows of {deployment!r} asked for take "
            f"{table.nbytes / (1 << 20):,.0f} MiB, past the {MAX_BYTES >> 20} MiB one read may "
            "return; pick fewer columns, narrow since / until, or pass a smaller limit"
        )
    return StreamingResponse(_ipc(table), media_type=ARROW_STREAM)


def _ipc(table: pa.Table) -> Iterator[bytes]:
    import pyarrow as pa

    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    data = memoryview(sink.getvalue())
    for start in range(0, len(data), _CHUNK):
        yield bytes(data[start : start + _CHUNK])


@router.post("/predictions/compact")
def compact(body: CompactIn, state: State, _: Admin) -> CompactionOut:
    """Merge each closed hour's files into one (one compaction at a time per log)."""
    before = None if body.before is None else _EPOCH + timedelta(milliseconds=body.before)
    return CompactionOut.of(_service(state).compact(body.deployment, before=before))


@router.post("/predictions/prune")
def prune(body: PruneIn, state: State, _: Admin) -> PruningOut:
    """Delete the hours that ended more than ``older_than_ms`` ago."""
    older_than = timedelta(milliseconds=body.older_than_ms)
    return PruningOut.of(_service(state).prune(older_than, deployment=body.deployment))
