"""Where batch scoring's units run: this process, a pool of processes, or Ray tasks.

Every executor runs the same :func:`~._batch_score.score_unit` on the same tasks and gets back
the same parts, so the output does not depend on the executor. Workers receive the package's
folder in the local model cache (a :class:`ModelSource`), never a pickled model, and load it
once per process through the verifying loader.

- ``local``: units one after the other, in this process;
- ``process``: ``workers`` processes, this one and ``workers - 1`` started fresh (``spawn``:
  the caller may hold threads and database connections that a fork would copy half-way), no
  more than there are units. They take units from one shared counter as each becomes free,
  so this process scores from the start while the others start up (about a second and a half
  of imports, skops' most of it, and loading): see ``_batch_processes``;
- ``ray``: one Ray task per unit (``ray.init()`` locally unless Ray is running, or the cluster
  at ``ray_address``; the input and the output folder must be reachable from its nodes at the
  same paths).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError, InvalidInput, LoopwrightError, ModelFailed
from ._batch_processes import process_executor, worker_died
from ._batch_score import PartResult, ScoreTask, score_unit

if TYPE_CHECKING:
    from .sources import ModelSource

__all__ = ["EXECUTORS", "Progress", "Runner", "open_executor"]

EXECUTORS = ("local", "process", "ray")
Progress = Callable[[int], None]
# Scores every task, returning the results in task order; the first failure stops the rest.
Runner = Callable[[Sequence[ScoreTask], Progress], list[PartResult]]


@contextmanager
def open_executor(
    executor: str, source: ModelSource, *, workers: int, ray_address: str | None = None
) -> Iterator[Runner]:
    """Start ``executor``'s workers for ``source``; yields the function that runs tasks."""
    if executor == "local":
        yield lambda tasks, progress: [score_unit(task, progress) for task in tasks]
    elif executor == "process":
        with process_executor(source, max(1, workers)) as run:
            yield run
    elif executor == "ray":
        with _ray(ray_address):
            yield lambda tasks, progress: _on_ray(tasks, workers, progress)
    else:
        raise InvalidInput(f"executor {executor!r} is unknown; use one of {', '.join(EXECUTORS)}")


@contextmanager
def _ray(address: str | None) -> Iterator[None]:
    """Ray as found, or started here (and stopped again) when it is not running."""
    try:
        import ray
    except ImportError:
        raise ConfigError(
            "the ray executor needs Ray: pip install 'loopwright[ray]', or use --executor process"
        ) from None

    started = not ray.is_initialized()
    if started:
        ray.init(address=address, include_dashboard=False, logging_level=logging.WARNING)
    try:
        yield
    finally:
        if started:
            ray.shutdown()


def _on_ray(tasks: Sequence[ScoreTask], workers: int, progress: Progress) -> list[PartResult]:
    import ray
    from ray.exceptions import RayError, RayTaskError

    remote = ray.remote(num_cpus=1, max_retries=0)(score_unit)
    queue = list(tasks)
    running: dict[Any, ScoreTask] = {}
    results: list[PartResult] = []
    limit = workers if workers > 0 else len(queue)
    try:
        while queue or running:
            while queue and len(running) < limit:
                task = queue.pop(0)
                running[remote.remote(task)] = task
            done, _ = ray.wait(list(running), num_returns=1)
            for ref in done:
                task = running.pop(ref)
                try:
                    result = ray.get(ref)
                except RayTaskError as exc:
                    cause = exc.cause
                    if isinstance(cause, LoopwrightError):
                        raise cause from None
                    raise ModelFailed(
                        f"{task.unit.describe(0, task.unit.rows or 1)}: a Ray task failed: "
                        f"{type(cause).__name__}: {cause}"
                    ) from None
                except RayError as exc:
                    raise worker_died(
                        [task.unit], "Ray", detail=f" ({type(exc).__name__})"
                    ) from None
                results.append(result)
                progress(result.rows)
    finally:
        for ref in running:
            ray.cancel(ref, force=True)
    return sorted(results, key=lambda result: result.index)
