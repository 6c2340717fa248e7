"""The ``ray`` executor: one Ray task per step call, at most ``max_parallel`` in flight.

Ray is started locally (``ray.init()``) unless it is running in this process already, or
joins the cluster at ``address``; an executor that started Ray shuts it down when closed.
Each task runs :func:`~loopwright.pipelines._worker.run_step` with no Ray retries (the engine
retries a step itself); a task past its timeout is cancelled with ``force=True``, which kills
its worker process. The function travels by reference, so it must be importable on the
workers (module level, in a module on the workers' path or the job's ``runtime_env``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from ..errors import InvalidInput
from ._dispatch import Dispatcher, Task, check_by_reference
from ._worker import run_step
from .fingerprint import project_paths

__all__ = ["RayExecutor"]


class RayExecutor(Dispatcher):
    """Step calls as Ray tasks (see the module docstring)."""

    name = "ray"

    def __init__(self, max_parallel: int | None = None, *, address: str | None = None) -> None:
        try:
            import ray
        except ImportError as exc:
            raise InvalidInput(
                "the ray executor needs Ray: pip install 'ray[default]', or choose the "
                "process executor"
            ) from exc
        self._started = not ray.is_initialized()
        if self._started:
            ray.init(address=address, include_dashboard=False, logging_level=logging.WARNING)
        cpus = int(ray.cluster_resources().get("CPU", 1))  # type: ignore[no-untyped-call]
        super().__init__(max_parallel or max(cpus, 1))
        self._remote = ray.remote(max_retries=0)(run_step)
        # Steps travel by reference: workers import the project's modules from the folders
        # this process imports them from (a cluster on other machines needs them installed,
        # or a runtime_env working_dir).
        paths = [*project_paths(), *filter(None, os.environ.get("PYTHONPATH", "").split(":"))]
        self._runtime_env = {"env_vars": {"PYTHONPATH": os.pathsep.join(dict.fromkeys(paths))}}

    def _check(self, fn: Callable[..., Any]) -> None:
        check_by_reference(fn, self.name)

    def close(self) -> None:
        super().close()
        if self._started:
            import ray

            ray.shutdown()
            self._started = False

    def _launch(self, task: Task) -> None:
        ref = self._remote.options(runtime_env=self._runtime_env).remote(
            task.fn, task.args, task.kwargs, task.context
        )
        task.handle = ref
        self._start_clock(task)
        inner: Future[Any] = ref.future()
        inner.add_done_callback(lambda done: self._done(task, done))

    def _done(self, task: Task, inner: Future[Any]) -> None:
        error = inner.exception()
        if error is None:
            self._settle(task, result=inner.result())
        else:
            self._settle(task, error=_unwrapped(error))

    def _stop(self, task: Task) -> None:
        import ray

        ray.cancel(task.handle, force=True)


def _unwrapped(error: BaseException) -> BaseException:
    """The step's own exception where Ray wrapped it (with the worker's traceback in its
    notes, as the other executors give it), else Ray's error."""
    from ray.exceptions import RayTaskError

    if isinstance(error, RayTaskError) and isinstance(error.cause, BaseException):
        return error.cause
    return error
