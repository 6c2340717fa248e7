"""The prediction log: what every served request got, appended off the hot path to Parquet.

Serving calls :meth:`PredictionLog.append` once per request. It never blocks and never does
I/O: a sampled-out request is counted and skipped; otherwise the record joins a bounded queue,
and when the queue is full it is dropped and counted (``stats().dropped``) rather than making
the request wait. A daemon thread converts the queue to Arrow every few hundred records (so the
garbage collector never holds a second's worth of record objects) and writes it every
``flush_interval`` seconds, or sooner once ``max_batch`` records wait, as one Parquet file per
deployment and hour (``predictions/deployment=<name>/hour=YYYY-MM-DDTHH/part-*.parquet`` under
the blob store, see ``_log_files``), with one row per input row (``_log_table``).

Durability: :meth:`close` writes everything appended before it returns, and it runs at
interpreter exit too (``atexit``). A killed process loses at most what arrived during the last
flush interval (plus the write in progress); a file is never visible half-written.

Sampling is decided per request by a hash of its id, so a replay of the same traffic logs the
same requests, and every row of a logged request is kept.

Example:
    >>> import tempfile
    >>> from datetime import UTC, datetime
    >>> log = PredictionLog(tempfile.mkdtemp())
    >>> log.append(PredictionRecord(
    ...     request_id="r1", deployment="churn", variant="primary", model="churn-rf",
    ...     model_version=3, timestamp=datetime.now(UTC), latency_ms=1.8, status=200,
    ...     inputs={"age": [42, 37]}, outputs={"predict": [0, 1]}))
    True
    >>> log.close()
    >>> log.stats().rows_written
    2
"""

from __future__ import annotations

import atexit
import hashlib
import logging
import os
import threading
import time
import weakref
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from numbers import Integral, Real
from typing import TYPE_CHECKING, Any

from ..errors import InvalidInput
from ._log_files import LogFiles, check_deployment_name, hour_of, log_uri
from ._log_table import row_count, to_table, unite

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from ..config import Settings
    from ..store.blobs import BlobStore

    Column = Sequence[Any] | NDArray[Any]  # one value (or one row of values) per input row

__all__ = [
    "PredictionLog",
    "PredictionLogStats",
    "PredictionRecord",
    "is_sampled",
    "log_location",
    "log_uri",
]

_logger = logging.getLogger(__name__)
_HASH_SPACE = float(1 << 64)
# A batch that fails to write (object store unreachable ...) is retried at the next flushes;
# after this many failures in a row its records are given up and counted as failed.
_ATTEMPTS = 3
# Each fixed field: the exact types seen almost always (one set lookup), then what else passes,
# and how an error names what it must be.
_FIELD_TYPES: tuple[tuple[str, frozenset[type], type | tuple[type, ...], str], ...] = (
    ("request_id", frozenset({str}), str, "a string"),
    ("variant", frozenset({str}), str, "a string"),
    ("model", frozenset({str}), str, "a string"),
    ("model_version", frozenset({int, type(None)}), (Integral, type(None)), "an int or None"),
    ("timestamp", frozenset({datetime}), datetime, "a datetime"),
    ("latency_ms", frozenset({float, int}), Real, "a number"),
    ("status", frozenset({int}), Integral, "an int"),
)
# Records are converted to Arrow by the writer once this many wait (see PredictionLog._convert).
_CHUNK = 256
_KNOWN_DEPLOYMENTS = 1024  # deployment names remembered as valid (each is checked once)


@dataclass(frozen=True)
class PredictionRecord:
    """One served request: who answered it, how, and the rows that went in and came out.

    ``inputs`` and ``outputs`` map a column (feature, output name) to one value per input row
    (a list, a 1-D NumPy array, a pandas Series); a vector output such as ``predict_proba``
    gives a list per input row, or a 2-D array.
    ``timestamp`` is when the request arrived, with a time zone (UTC is stored).
    """

    request_id: str
    deployment: str
    variant: str
    model: str
    model_version: int | None
    timestamp: datetime
    latency_ms: float
    status: int
    inputs: Mapping[str, Column]
    outputs: Mapping[str, Column]


@dataclass(frozen=True)
class PredictionLogStats:
    """Counters since the log was opened, in requests (records) unless named ``rows``.

    ``appended``: accepted into the queue; ``sampled_out``: skipped by the sampling rate;
    ``dropped``: refused because the queue was full; ``written``: stored in a Parquet file;
    ``failed``: given up after the storage refused them repeatedly; ``queued``: accepted and not
    yet written or given up.
    """

    appended: int
    written: int
    dropped: int
    sampled_out: int
    failed: int
    queued: int
    rows_written: int
    files_written: int


def log_location(settings: Settings) -> str:
    """Where ``loopwright serve`` writes the prediction log and what reads it there.

    The ``prediction_log`` setting (``LOOPWRIGHT_PREDICTION_LOG``: a folder or an fsspec URL such
    as ``s3://bucket/predictions``) wins. Without it: ``<blob store>/predictions`` on an
    embedded store, which is also where a server reads its own log; with a server configured
    (whose blob store a client cannot reach), the folder ``prediction-log`` under the home, read
    on this machine only. For the server to read what ``serve`` writes elsewhere, give both
    the same ``prediction_log`` (or have serve's resolve to the server's blob store).
    """
    if settings.prediction_log:
        return settings.prediction_log
    if settings.is_embedded:
        return log_uri(settings.blob_uri)
    return str(settings.home / "prediction-log")


def is_sampled(request_id: str, rate: float) -> bool:
    """Whether a request is logged at sampling ``rate``: decided by a hash of its id alone."""
    if rate >= 1.0:
        return True
    if rate <= 0.0:
        return False
    digest = hashlib.blake2b(request_id.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big") / _HASH_SPACE < rate


class PredictionLog:
    """An append-only log of predictions, written in the background as Parquet.

    Args:
        location: the :class:`~loopwright.store.blobs.BlobStore` whose ``predictions/`` folder
            holds the log, or a folder path / fsspec URL (``s3://bucket/log``) used as its root.
        sample_rate: the share of requests logged, from 0 to 1 (chosen by request id hash).
        max_queue: the most records held before writing; past it, appends are dropped.
        flush_interval: seconds between writes (what a killed process may lose).
        max_batch: write early once this many records wait.
    """

    def __init__(
        self,
        location: BlobStore | str | os.PathLike[str],
        *,
        sample_rate: float = 1.0,
        max_queue: int = 100_000,
        flush_interval: float = 1.0,
        max_batch: int = 10_000,
    ) -> None:
        if not 0.0 <= sample_rate <= 1.0:
            raise InvalidInput(f"sample_rate {sample_rate!r} must be between 0 and 1")
        if max_queue < 1 or max_batch < 1:
            raise InvalidInput(
                f"max_queue ({max_queue}) and max_batch ({max_batch}) must be at least 1"
            )
        if not flush_interval > 0:
            raise InvalidInput(f"flush_interval {flush_interval!r} must be a positive number")
        self.files = LogFiles(location)
        self.sample_rate = float(sample_rate)
        self.max_queue = max_queue
        self.flush_interval = float(flush_interval)
        self.max_batch = min(max_batch, max_queue)
        self._chunk = min(_CHUNK, self.max_batch)
        self._deployments: set[str] = set()  # names already checked
        _prepare_writer(self.files)
        self._start()
        atexit.register(self.close)
        if hasattr(os, "register_at_fork"):
            this = weakref.ref(self)
            os.register_at_fork(after_in_child=lambda: _restart_in_child(this))

    def _start(self) -> None:
        """Fresh queue, counters and writer thread (on opening, and in a forked child)."""
        self._lock = threading.Lock()
        self._queue: list[PredictionRecord] = []
        self._held = 0  # queued plus being written: what max_queue bounds
        self._counts = dict.fromkeys(
            ("appended", "written", "dropped", "sampled_out", "failed", "rows", "files"), 0
        )
        self._wake = threading.Event()
        self._idle = threading.Condition(self._lock)
        self._flush_requested = 0
        self._flushes_done = 0
        self._write_ok = True
        self._closed = False
        self._thread = threading.Thread(
            target=self._run, name=f"loopwright-prediction-log-{id(self):x}", daemon=True
        )
        self._thread.start()

    def __repr__(self) -> str:
        return f"PredictionLog({self.files.uri!r}, sample_rate={self.sample_rate})"

    def append(self, record: PredictionRecord) -> bool:
        """Queue ``record`` for writing; False if it was sampled out or dropped (queue full).

        Never blocks on I/O. A record that cannot be stored (no time zone, columns of different
        lengths, a deployment name unfit for a folder) raises ``InvalidInput``.
        """
        if not self.keeps(record.request_id):
            return False
        if record.deployment not in self._deployments:
            check_deployment_name(record.deployment)
            if len(self._deployments) < _KNOWN_DEPLOYMENTS:
                self._deployments.add(record.deployment)
        _check(record)
        with self._lock:
            if self._closed:
                raise InvalidInput("the prediction log is closed; open a new PredictionLog")
            if self._held >= self.max_queue:
                self._counts["dropped"] += 1
                return False
            self._queue.append(record)
            self._held += 1
            self._counts["appended"] += 1
            wake = len(self._queue) == self._chunk or self._held == self.max_batch
        if wake:
            self._wake.set()
        return True

    def keeps(self, request_id: str) -> bool:
        """Whether the sampling rate keeps ``request_id``'s record (counted as sampled out if
        not). Ask before building a record: one the rate drops is then never built."""
        if is_sampled(request_id, self.sample_rate):
            return True
        with self._lock:
            self._counts["sampled_out"] += 1
        return False

    def stats(self) -> PredictionLogStats:
        """A snapshot of the counters."""
        with self._lock:
            c = self._counts
            return PredictionLogStats(
                appended=c["appended"],
                written=c["written"],
                dropped=c["dropped"],
                sampled_out=c["sampled_out"],
                failed=c["failed"],
                queued=self._held,
                rows_written=c["rows"],
                files_written=c["files"],
            )

    def flush(self, timeout: float | None = None) -> bool:
        """Write everything appended so far; False if ``timeout`` seconds passed first or the
        storage refused the write (it is retried at the next flushes)."""
        with self._lock:
            if not self._thread.is_alive():
                return self._held == 0
            self._flush_requested += 1
            wanted = self._flush_requested
        self._wake.set()
        with self._idle:
            done = self._idle.wait_for(lambda: self._flushes_done >= wanted, timeout)
            return done and self._write_ok

    def close(self) -> None:
        """Write everything appended, stop the writer thread; later appends raise."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        atexit.unregister(self.close)
        self._wake.set()
        self._thread.join()

    def __enter__(self) -> PredictionLog:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- the writer thread --------------------------------------------------------------------

    def _run(self) -> None:
        waiting: dict[tuple[str, datetime], _Group] = {}  # converted, not yet written
        deadline = time.monotonic() + self.flush_interval
        while True:
            self._wake.wait(max(0.0, deadline - time.monotonic()))
            self._wake.clear()
            # A full batch is written early, unless a write is failing: failed groups are
            # retried once per interval (a brief outage must not use up their attempts).
            retrying = any(group.failures for group in waiting.values())
            with self._lock:
                batch, self._queue = self._queue, []
                closing, flushing = self._closed, self._flush_requested
                full = self._held >= self.max_batch and not retrying
                due = closing or flushing > self._flushes_done or full
            if batch:
                try:
                    self._convert(batch, waiting)
                except Exception:  # not expected (append checks records): the writer goes on
                    _logger.exception("could not convert %d prediction records", len(batch))
                    self._count_failed(len(batch))
            if not due and time.monotonic() < deadline:
                continue  # converted early (few live objects for the GC), written on time
            deadline = time.monotonic() + self.flush_interval
            ok = self._write(waiting, closing)
            with self._idle:
                self._flushes_done = flushing
                self._write_ok = ok
                self._idle.notify_all()
            if closing:
                return

    def _convert(
        self, records: list[PredictionRecord], waiting: dict[tuple[str, datetime], _Group]
    ) -> None:
        """Turn queued records into Arrow tables now, one per deployment and hour.

        Done in chunks of ``_CHUNK`` records rather than once per write: Arrow columns are a
        few objects, while a second's worth of records are hundreds of thousands, which the
        garbage collector would otherwise walk in full, every second, holding the GIL the
        event loop serving requests needs (measured: ~100 ms pauses at 10k rows/s).
        """
        groups: dict[tuple[str, datetime], list[PredictionRecord]] = defaultdict(list)
        for record in records:
            groups[(record.deployment, hour_of(record.timestamp))].append(record)
        for key, group in groups.items():
            try:
                table = to_table(group)
            except Exception:  # not expected after _check; the same records would fail again
                _logger.exception("could not convert %d prediction records", len(group))
                self._count_failed(len(group))
                continue
            waiting.setdefault(key, _Group()).add(table, len(group))

    def _write(self, waiting: dict[tuple[str, datetime], _Group], closing: bool) -> bool:
        """Write each group as one file; a group that fails stays for the next write, until
        ``_ATTEMPTS`` failures (or closing). Returns whether every group was written."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        ok = True
        for key, group in list(waiting.items()):
            deployment, hour = key
            try:  # each file on its own: one that fails does not hold back the others
                table = unite(group.tables)
                sink = pa.BufferOutputStream()
                pq.write_table(table, sink, compression="zstd")
                self.files.write(deployment, hour, memoryview(sink.getvalue()))
            except Exception as exc:
                ok = False
                group.failures += 1
                if group.failures < _ATTEMPTS and not closing:
                    _logger.error(
                        "could not write %d prediction records to %s; retrying at the next flush",
                        group.records,
                        self.files.uri,
                        exc_info=exc,
                    )
                    continue
                del waiting[key]
                _logger.error(
                    "gave up %d prediction records that %s refused %d times",
                    group.records,
                    self.files.uri,
                    group.failures,
                    exc_info=exc,
                )
                self._count_failed(group.records)
                continue
            del waiting[key]
            with self._lock:
                self._counts["rows"] += table.num_rows
                self._counts["files"] += 1
                self._counts["written"] += group.records
                self._held -= group.records
        return ok

    def _count_failed(self, records: int) -> None:
        with self._lock:
            self._counts["failed"] += records
            self._held -= records


class _Group:
    """The converted tables of one deployment and hour, waiting to be written as one file."""

    __slots__ = ("failures", "records", "tables")

    def __init__(self) -> None:
        self.tables: list[Any] = []  # pyarrow.Table
        self.records = 0
        self.failures = 0

    def add(self, table: Any, records: int) -> None:
        self.tables.append(table)
        self.records += records


def _restart_in_child(ref: weakref.ref[PredictionLog]) -> None:
    """A forked worker (``--workers``) gets its own writer: the parent's thread is not copied,
    and the records queued in the parent are the parent's to write (not written twice)."""
    log = ref()
    if log is not None and not log._closed:
        log.files = LogFiles(log.files.uri)  # a remote filesystem's client is not fork-safe
        log._start()


def _prepare_writer(files: LogFiles) -> None:
    """Run the writer's code once, on a sample, before any real write.

    The last write may happen at interpreter exit, when Python refuses what first uses do:
    pyarrow importing pandas (which registers an exit hook) or fsspec starting its event-loop
    thread. Doing it now also reports a missing pyarrow, or unreachable storage, at once.
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    sample = PredictionRecord(
        request_id="sample",
        deployment="sample",
        variant="sample",
        model="sample",
        model_version=1,
        timestamp=datetime.now(UTC),
        latency_ms=0.0,
        status=200,
        inputs={"x": np.array([1.0]), "y": ["a"]},
        outputs={"p": np.array([[0.5, 0.5]])},
    )
    pq.write_table(to_table([sample]), pa.BufferOutputStream(), compression="zstd")
    files.prepare()


def _check(record: PredictionRecord) -> None:
    """Refuse at once what would fail the writer later, and with it a whole file of records."""
    for name, usual, kinds, wanted in _FIELD_TYPES:
        value = getattr(record, name)
        if type(value) in usual:
            continue
        if not isinstance(value, kinds) or isinstance(value, bool):
            raise InvalidInput(
                f"prediction record field {name} must be {wanted}, "
                f"not {type(value).__name__} {str(value)[:40]!r}"
            )
    if record.timestamp.tzinfo is None or record.timestamp.utcoffset() is None:
        raise InvalidInput(
            f"prediction record {record.request_id!r} has a timestamp without a time zone; "
            "give an aware datetime such as datetime.now(UTC)"
        )
    if record.timestamp.year in (1, 9999):  # where an offset can leave the calendar
        try:
            hour_of(record.timestamp)  # the writer's partition: failing there, it would stop
        except OverflowError:
            raise InvalidInput(
                f"prediction record {record.request_id!r} has a timestamp "
                f"{record.timestamp.isoformat()} outside the years 1-9999 in UTC"
            ) from None
    try:
        row_count(record)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None
