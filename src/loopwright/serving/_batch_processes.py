"""The process executor: ``workers`` processes score the units, this process being one of them.

Units are taken in order from one shared counter by whichever process is free. This process
takes its first unit at once, while the other ``workers - 1`` processes start (spawned fresh,
so none inherits the caller's threads or database connections: about a second and a half of
imports and the model load each), and they join as each becomes ready. So their start-up
overlaps useful work instead of delaying it, and a job shorter than that start-up runs as fast
as the local executor. Each unit still writes the part of its number, so the output does not
depend on who scored what.

A worker reports to this process through its own pipe: the unit it took, the rows of each batch
written (progress), the finished part, or its error. A worker whose process ends while holding
a unit (the model crashed it, the machine ran out of memory) fails the job naming the unit.
The model runs in this process too, so a model that crashes its process can end the job as the
local executor would; the output is never half-written either way (see ``_batch_output``).
"""

from __future__ import annotations

import contextlib
import copy
import os
import pickle
import traceback
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import LoopwrightError, ModelFailed
from ._batch_score import PartResult, ScoreTask, loaded_model, score_unit

if TYPE_CHECKING:
    from multiprocessing.connection import Connection
    from multiprocessing.process import BaseProcess
    from multiprocessing.queues import Queue
    from multiprocessing.sharedctypes import Synchronized

    from ._batch_executors import Progress, Runner
    from ._batch_input import WorkUnit
    from .sources import ModelSource

__all__ = ["process_executor", "start_worker", "worker_died"]


@contextmanager
def process_executor(source: ModelSource, workers: int) -> Iterator[Runner]:
    """Start ``workers - 1`` processes for ``source`` (this process is the other one); yields
    the function that runs tasks. Leaving stops them."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    claimed: Synchronized[int] = context.Value("q", 0)
    inbox: Queue[Sequence[ScoreTask] | None] = context.Queue()
    started: list[_Worker] = []
    try:
        for number in range(1, workers):
            reader, writer = context.Pipe(duplex=False)
            process = context.Process(
                target=_serve,
                args=(source, inbox, claimed, writer),
                name=f"loopwright-batch-{number}",
                # Not a daemon (as ProcessPoolExecutor's are not): a model may start processes
                # of its own. Leaving this stops them; a killed caller's see it and stop.
                daemon=False,
            )
            process.start()
            writer.close()
            started.append(_Worker(process, reader))

        def run(tasks: Sequence[ScoreTask], progress: Progress) -> list[PartResult]:
            for _ in started:
                inbox.put(list(tasks))
            return _Job(tasks, started, claimed, progress).run()

        yield run
    finally:
        with claimed.get_lock():
            claimed.value = 1 << 62  # nothing more is taken
        # Stopped, not awaited: once every part is in, none holds a unit, and one still
        # starting up (a short job) would delay the job by its whole start-up. After a
        # failure the units they score are discarded with the staging folder.
        for worker in started:
            if worker.process.is_alive():
                worker.process.terminate()
            worker.process.join()
            worker.reader.close()
        inbox.cancel_join_thread()  # tasks never read (a failed job) must not hold up exit
        inbox.close()


@dataclass
class _Worker:
    process: BaseProcess
    reader: Connection
    holding: int | None = None  # the unit it took and has not finished
    ended: bool = False


@dataclass
class _Job:
    """One run of tasks: this process scores units too, and reads the workers' reports
    between its batches (so progress and failures are seen within a batch)."""

    tasks: Sequence[ScoreTask]
    workers: Sequence[_Worker]
    claimed: Synchronized[int]
    progress: Progress
    results: dict[int, PartResult] = field(default_factory=dict)

    def run(self) -> list[PartResult]:
        with _one_thread_if(bool(self.workers)):
            while (index := _claim(self.claimed, len(self.tasks))) is not None:
                part = score_unit(self.tasks[index], self._scored_batch)
                self.results[part.index] = part
                self._read(block=False)
        while len(self.results) < len(self.tasks):
            self._read(block=True)
        return [self.results[index] for index in sorted(self.results)]

    def _scored_batch(self, rows: int) -> None:
        self.progress(rows)
        self._read(block=False)

    def _read(self, *, block: bool) -> None:
        """Handle what the workers reported; ``block``: wait for at least one report or end."""
        from multiprocessing.connection import wait

        live = [worker for worker in self.workers if not worker.ended]
        if block and not live:
            missing = [self.tasks[i].unit for i in range(len(self.tasks)) if i not in self.results]
            raise worker_died(missing[:3], "process")
        waitables: list[Any] = [w.reader for w in live] + [w.process.sentinel for w in live]
        ready = set(wait(waitables, timeout=None if block else 0))
        for worker in live:
            if (
                worker.reader in ready
                or worker.process.sentinel in ready
                or (not block and worker.process.exitcode is not None)
            ):
                self._drain(worker)

    def _drain(self, worker: _Worker) -> None:
        while True:
            try:
                if not worker.reader.poll():
                    break
                message = worker.reader.recv()
            except (EOFError, OSError):
                break
            self._handle(worker, message)
        if worker.process.exitcode is None:
            return
        worker.ended = True
        if worker.holding is not None:
            raise worker_died([self.tasks[worker.holding].unit], "process")

    def _handle(self, worker: _Worker, message: tuple[str, Any]) -> None:
        kind, value = message
        if kind == "took":
            worker.holding = value
        elif kind == "rows":
            self.progress(value)
        elif kind == "done":
            self.results[value.index] = value
            worker.holding = None
        else:  # "error": the worker's exception, with its traceback if not one of ours
            error, where = value
            if where:
                error.add_note(where)
            raise error


def _claim(claimed: Synchronized[int], count: int) -> int | None:
    """The next unit's index, or ``None`` when every unit is taken."""
    with claimed.get_lock():
        index = claimed.value
        if index >= count:
            return None
        claimed.value = index + 1
        return index


def _serve(
    source: ModelSource,
    inbox: Queue[Sequence[ScoreTask] | None],
    claimed: Synchronized[int],
    results: Connection,
) -> None:
    """A worker process: start up, then score units until none is left or the caller is gone."""
    import multiprocessing

    parent = multiprocessing.parent_process()
    try:
        start_worker(source)
        tasks = _tasks(inbox, parent)
        while tasks is not None and _alive(parent):  # an orphan stops: nobody publishes its parts
            index = _claim(claimed, len(tasks))
            if index is None:
                return
            results.send(("took", index))
            part = score_unit(tasks[index], lambda rows: results.send(("rows", rows)))
            results.send(("done", part))
    except BaseException as exc:
        with contextlib.suppress(OSError):  # the caller is gone: nobody to tell
            results.send(("error", _portable(exc)))
    finally:
        results.close()


def _tasks(
    inbox: Queue[Sequence[ScoreTask] | None], parent: BaseProcess | None
) -> Sequence[ScoreTask] | None:
    """The job's tasks once the caller sends them; ``None`` if it is gone first."""
    import queue

    while _alive(parent):
        with contextlib.suppress(queue.Empty):
            return inbox.get(timeout=1.0)
    return None


def _alive(parent: BaseProcess | None) -> bool:
    return parent is None or parent.is_alive()


def _portable(exc: BaseException) -> tuple[BaseException, str]:
    """The exception as the caller can unpickle it, and the worker's traceback when the
    error is not one of ours (ours name the rows and the fix; a bug needs the traceback)."""
    where = "" if isinstance(exc, LoopwrightError) else _traceback(exc)
    try:
        pickle.dumps(exc)
        # Rebuilt as unpickling would (``__reduce_ex__``), without unpickling here.
        rebuilt = copy.deepcopy(exc)
    except Exception:  # an exception class whose arguments do not round-trip
        return ModelFailed(f"a worker process failed: {type(exc).__name__}: {exc}"), where
    return rebuilt, where


def _traceback(exc: BaseException) -> str:
    text = "".join(traceback.format_exception(exc))
    return f"in batch-scoring worker process {os.getpid()}:\n{text}"


@contextmanager
def _one_thread_if(limit: bool) -> Iterator[None]:
    """One thread of numeric work in this process while worker processes score beside it."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # scikit-learn brings it; other models' libraries may not
        limit = False
    if not limit:
        yield
        return
    with threadpool_limits(1):
        yield


def start_worker(source: ModelSource) -> None:
    """A worker process's set-up: one thread of numeric work (the processes are the
    parallelism) and the model, loaded and verified once."""
    import pyarrow as pa

    pa.set_cpu_count(1)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # scikit-learn brings it; other models' libraries may not
        pass
    else:
        threadpool_limits(1)
    # The caller loads it too and reports why it fails; this worker's tasks would fail anyway.
    with contextlib.suppress(LoopwrightError):
        loaded_model(source)


def worker_died(units: Sequence[WorkUnit], kind: str, detail: str = "") -> ModelFailed:
    """The error of a worker (``kind``: process, Ray) that ended while scoring ``units``."""
    scoring = "; ".join(
        unit.describe(0, unit.rows) if unit.rows else f"{unit.path} (part {unit.index})"
        for unit in units
    )
    return ModelFailed(
        f"a {kind} worker died{detail} while scoring one of: {scoring}. The model may have "
        "crashed its process, or the machine ran out of memory (try fewer --workers or a "
        "smaller --batch-rows); nothing was written to the output"
    )
