"""Monitoring on a Ray cluster: where a drift pass scores its columns (``executor="ray"``).

A wide window's per-column scoring is the expensive part of a pass; with ``executor="ray"`` it
runs as Ray tasks over groups of columns: the reference sketch is put once in the object store
and each task receives its group's current columns as an Arrow table. The multiple-testing
correction and the dataset rule are applied by the caller exactly as for a local pass, so the
result does not depend on the executor.

Ray is used as found (``ray.init()`` already called, or ``RAY_ADDRESS`` set), or started
locally for the pass and stopped again.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

from ..errors import ConfigError, InvalidInput, LoopwrightError

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["EXECUTORS", "check_executor", "on_ray", "ray_session", "scatter"]

EXECUTORS = ("local", "ray")
# Columns per task: big enough that a task's overhead (~ms) is small next to its scoring.
GROUP_COLUMNS = 8

T = TypeVar("T")


def check_executor(executor: str) -> str:
    """``executor`` if it is a known one; InvalidInput naming the choices otherwise."""
    if executor not in EXECUTORS:
        raise InvalidInput(f"executor {executor!r} is unknown; use one of {', '.join(EXECUTORS)}")
    return executor


@contextmanager
def ray_session() -> Iterator[None]:
    """Ray as found, or started here (and stopped again) when it is not running."""
    try:
        import ray
    except ImportError:
        raise ConfigError(
            "the ray executor needs Ray: pip install 'loopwright[ray]', or use --executor local"
        ) from None
    started = not ray.is_initialized()
    if started:
        ray.init(include_dashboard=False, logging_level=logging.WARNING)
    try:
        yield
    finally:
        if started:
            ray.shutdown()


def groups(columns: Sequence[str], size: int = GROUP_COLUMNS) -> list[list[str]]:
    """``columns`` in consecutive groups of at most ``size``, at least as many groups as Ray
    has CPUs when there are enough columns (so a wide pass uses the whole cluster)."""
    import ray

    cpus = int(ray.cluster_resources().get("CPU", 1)) or 1  # type: ignore[no-untyped-call]
    per = max(1, min(size, -(-len(columns) // cpus)))
    return [list(columns[i : i + per]) for i in range(0, len(columns), per)]


def scatter(task: Callable[..., T], shared: object, parts: Sequence[tuple[Any, ...]]) -> list[T]:
    """``task(shared, *part)`` for every part as Ray tasks (``shared`` put in the object store
    once), results in the order of ``parts``; the first failure cancels the rest and raises."""
    import ray

    remote = ray.remote(num_cpus=1, max_retries=0)(task)
    ref = ray.put(shared)
    pending = [remote.remote(ref, *part) for part in parts]
    try:
        return _gather(pending)
    except BaseException:
        for p in pending:
            ray.cancel(p, force=True)  # finished ones ignore it
        raise


def _gather(pending: Sequence[Any]) -> list[Any]:
    import ray
    from ray.exceptions import RayError, RayTaskError

    try:
        return [ray.get(p) for p in pending]
    except RayTaskError as exc:
        cause = exc.cause
        if isinstance(cause, LoopwrightError):
            raise cause from None
        raise LoopwrightError(
            f"a monitoring Ray task failed: {type(cause).__name__}: {cause}"
        ) from None
    except RayError as exc:
        raise LoopwrightError(
            f"a monitoring Ray task was lost ({type(exc).__name__}: {exc}); check the cluster"
        ) from None


def on_ray(
    task: Callable[..., T], shared: object, table: pa.Table, columns: Sequence[str], *extra: Any
) -> list[T]:
    """``task(shared, group_table, group, *extra)`` per column group of ``columns``, on Ray;
    each task gets only its group's columns of ``table`` (those it has) as Arrow."""
    parts = []
    for group in groups(columns):
        present = [c for c in group if c in table.column_names]
        parts.append((table.select(present), group, *extra))
    return scatter(task, shared, parts)


def cpus() -> int:
    """CPUs of the Ray cluster (of this machine when Ray is not running)."""
    import ray

    if not ray.is_initialized():
        return os.cpu_count() or 1
    return int(ray.cluster_resources().get("CPU", 1)) or 1  # type: ignore[no-untyped-call]
