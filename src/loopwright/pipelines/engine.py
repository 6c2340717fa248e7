"""The engine: one pipeline run in progress, turning step calls into recorded step runs.

Per call: bind the arguments, split them into inputs (values an earlier step of this run
returned: their stored digest) and parameters (other values: hashed by the materializers), make
the cache key with the code fingerprint, then serve the call from the resumed run or the cache,
or run it (retries, timeout per attempt) and store its outputs. Each call costs a few record
round trips (``find_cached``, ``previous_step`` on a miss, ``start_step``, one artifact upload,
``finish_step``) and no subprocess with the in-process executor.

Values returned by steps are known by identity (not hashed again), so they are taken as
immutable: a value changed in place in the pipeline body before it is passed on keeps the
digest it was stored with. Return a new value from a step instead.
"""

from __future__ import annotations

import contextvars
import dataclasses
import logging
import os
import threading
import time
import traceback
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from .._run_stack import pop_run, push_run
from ..errors import StepFailed
from . import _outputs
from ._binding import Call, Values, bind
from ._invocations import Invocations
from ._keys import miss_reason
from .entities import ArtifactRef, PipelineRun, StepRun

if TYPE_CHECKING:
    from ..client import Client
    from ..store.blobs import BlobInfo
    from ..tracking import Run
    from .executors import Executor
    from .service import PipelineService
    from .step import Step

__all__ = ["RunState", "current", "executing"]

log = logging.getLogger(__name__)

_current: contextvars.ContextVar[RunState | None] = contextvars.ContextVar(
    "loopwright_pipeline_run", default=None
)
# True while a step's function runs in this thread: steps it calls are plain calls.
_executing: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "loopwright_step_executing", default=False
)

_SERVABLE = ("completed", "cached", "resumed")
_INPROCESS_PARALLEL = 4
_UNBOUND = "unbound"  # the cache key of a call whose arguments did not bind (never served)


def current() -> RunState | None:
    """The pipeline run in progress in this thread or task, if any."""
    return _current.get()


def executing() -> bool:
    """True inside a step's function (its own step calls are not recorded as steps)."""
    return _executing.get()


class _AttemptsFailed(Exception):
    def __init__(self, error: BaseException, attempts: int) -> None:
        super().__init__(str(error))
        self.error = error
        self.attempts = attempts


class RunState:
    """A pipeline run in progress: its records, executor, names and the values its steps made."""

    def __init__(
        self,
        client: Client,
        record: PipelineRun,
        tracked: Run,
        executor: str,
        *,
        max_parallel: int | None,
        ray_address: str | None = None,
        resumable: Sequence[StepRun] = (),
    ) -> None:
        self.client = client
        self.record = record
        self.executor_name = executor
        # In-process steps without a timeout run inline here: the executor is made only when a
        # call needs one (a timeout, a process pool, Ray), so a plain run starts none.
        self.inline = executor == "inprocess"
        # In-process map items default to a few threads: an item's cost is mostly waiting on
        # the store (a transaction, an fsync), which threads overlap, as Prefect's default task
        # runner does; max_parallel=1 runs them one after another.
        default = _INPROCESS_PARALLEL if self.inline else os.cpu_count() or 1
        self.max_parallel = max_parallel or default
        self._ray_address = ray_address
        self._executor: Executor | None = None
        self._executor_lock = threading.Lock()
        self._tracked = tracked
        self._resumable = {s.invocation: s for s in resumable if s.status in _SERVABLE}
        self._names = Invocations()
        self._values = Values()
        self._direct: PipelineService | None = None
        self._direct_decided = False

    def executor(self) -> Executor:
        """The run's executor, made on first use."""
        with self._executor_lock:
            if self._executor is None:
                from .executors import get_executor

                self._executor = get_executor(
                    self.executor_name,
                    max_parallel=self.max_parallel,
                    ray_address=self._ray_address,
                )
            return self._executor

    def close(self) -> None:
        """Stop the executor, if one was made."""
        with self._executor_lock:
            if self._executor is not None:
                self._executor.close()
                self._executor = None

    @contextmanager
    def active(self) -> Iterator[None]:
        """Make this the current pipeline run and its tracked run the active run."""
        handle = self._handle(self._tracked)
        push_run(handle, nested=True)
        token = _current.set(self)
        try:
            yield
        finally:
            _current.reset(token)
            pop_run(handle)

    def ref_of(self, value: object) -> ArtifactRef | None:
        """The stored ref of ``value`` if a step of this run returned it."""
        return self._values.ref_of(value)

    # --- calls ----------------------------------------------------------------------------

    def call(self, step: Step, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> Any:
        """One recorded step call; raises StepFailed when it failed."""
        return self._run(self._bind(step, self._names.next(step.name), args, kwargs))

    def fan_out(
        self, step: Step, jobs: Sequence[tuple[tuple[Any, ...], Mapping[str, Any]]]
    ) -> list[Any]:
        """One map: each job a recorded call ``name[i]``, up to ``max_parallel`` at a time."""
        call_name = self._names.next(step.name)
        calls: list[Call | StepFailed] = []
        hashed: dict[int, tuple[str, str]] = {}  # values the items share, hashed once
        for i, (args, kwargs) in enumerate(jobs):
            try:  # an item that does not bind is a failed item; the others still run
                item = Invocations.item(call_name, i)
                calls.append(self._bind(step, item, args, kwargs, hashed))
            except StepFailed as exc:
                calls.append(exc)
        outcomes: list[tuple[bool, Any]]
        if self.max_parallel == 1 or len(calls) <= 1:
            outcomes = [self._outcome(c) for c in calls]
        else:
            with ThreadPoolExecutor(
                max_workers=min(self.max_parallel, len(calls)), thread_name_prefix="lw-map"
            ) as pool:
                # Each item gets its own copy of this context: the current pipeline run and the
                # active run stack come along into the worker thread.
                futures = [
                    pool.submit(contextvars.copy_context().run, self._outcome, c) for c in calls
                ]
                outcomes = [f.result() for f in futures]
        failed = [
            (Invocations.item(call_name, i), v) for i, (ok, v) in enumerate(outcomes) if not ok
        ]
        if failed:
            _, error = failed[0]
            raise StepFailed(
                f"{len(failed)} of {len(calls)} items of {step.name}.map failed "
                f"({', '.join(name for name, _ in failed[:5])}{'...' if len(failed) > 5 else ''}); "
                f"first: {error}"
            ) from error
        results = [v for _, v in outcomes]
        self._values.add_list(results, [c.outputs for c in calls if isinstance(c, Call)])
        return results

    def _outcome(self, call: Call | StepFailed) -> tuple[bool, Any]:
        if isinstance(call, StepFailed):
            return False, call
        try:
            return True, self._run(call)
        except StepFailed as exc:
            return False, exc

    def _bind(
        self,
        step: Step,
        invocation: str,
        args: tuple[Any, ...],
        kwargs: Mapping[str, Any],
        hashed: dict[int, tuple[str, str]] | None = None,
    ) -> Call:
        """The bound call; one whose arguments do not bind (or cannot be hashed) is recorded as
        a failed step run with the error before StepFailed is raised, so the run shows it."""
        try:
            return bind(self._values, step, invocation, args, kwargs, hashed)
        except StepFailed as exc:
            pipelines = self.client.pipelines
            record = pipelines.start_step(
                self.record.id,
                invocation=invocation,
                step=step.name,
                cache_key=_UNBOUND,
                cache_reason="not run: its arguments did not bind",
            )
            pipelines.finish_step(record.id, "failed", attempts=0, error=str(exc))
            raise

    # --- serving and running --------------------------------------------------------------

    def _run(self, call: Call) -> Any:
        pipelines = self.client.pipelines
        step = call.step
        unreadable = ""
        old = self._resumable.get(call.invocation)
        if old is not None and old.cache_key == call.key:
            reason = f"resumed: step run {old.id} of pipeline run {old.pipeline_run_id}"
            served = self._serve(call, old, "resumed", reason)
            if isinstance(served, tuple):
                return served[0]
            unreadable = served
        if step.cache and not unreadable:
            hit = pipelines.find_cached(call.key)
            if hit is not None:
                reason = f"cache hit: step run {hit.id} of pipeline run {hit.pipeline_run_id}"
                served = self._serve(call, hit, "cached", reason)
                if isinstance(served, tuple):
                    return served[0]
                unreadable = served
        if unreadable:
            reason = unreadable
        elif step.cache:
            before = pipelines.previous_step(self.record.pipeline, call.invocation)
            reason = miss_reason(
                call.parts, before.key_parts if before else None, before.id if before else ""
            )
        else:
            reason = "cache off"
        return self._execute(call, reason)

    def _serve(self, call: Call, source: StepRun, status: str, reason: str) -> tuple[Any] | str:
        """``source``'s outputs as this call's result, recorded; the reason to run the step
        instead when they cannot be read."""
        try:
            value = _outputs.load_outputs(self.client, source.outputs, trusted=call.step.pickle)
        except Exception as exc:  # deleted run, lost blob: run the step instead
            log.warning(
                "step %s: outputs of step run %s unreadable (%s); running it",
                call.invocation,
                source.id,
                exc,
            )
            text = f"{type(exc).__name__}: {exc}"[:500]
            return f"outputs of step run {source.id} unreadable ({text}); ran again"
        self.client.pipelines.record_served(
            self.record.id,
            invocation=call.invocation,
            step=call.step.name,
            cache_key=call.key,
            cache_reason=reason,
            source=source,
            status=status,  # type: ignore[arg-type]
            inputs=call.inputs,
            key_parts=call.parts,
        )
        self._values.add_result(value, source.outputs)
        call.outputs = source.outputs
        return (value,)

    def _execute(self, call: Call, reason: str) -> Any:
        pipelines = self.client.pipelines
        step_run = pipelines.start_step(
            self.record.id,
            invocation=call.invocation,
            step=call.step.name,
            cache_key=call.key,
            cache_reason=reason,
            inputs=call.inputs,
            key_parts=call.parts,
        )
        attempts = 1
        direct = self._direct_service()
        files: list[tuple[str, BlobInfo]] = []
        try:
            value, attempts = self._attempts(call, step_run)
            if direct is None:
                refs = _outputs.store_outputs(
                    self.client, _run_id(step_run), value, allow_pickle=call.step.pickle
                )
            else:
                refs, files = _outputs.store_output_blobs(
                    self.client, _run_id(step_run), value, allow_pickle=call.step.pickle
                )
        except BaseException as exc:
            error = exc.error if isinstance(exc, _AttemptsFailed) else exc
            attempts = exc.attempts if isinstance(exc, _AttemptsFailed) else attempts
            text = "".join(traceback.format_exception(type(error), error, error.__traceback__))
            interrupted = not isinstance(error, Exception)
            pipelines.finish_step(
                step_run.id,
                "failed",
                attempts=attempts,
                error=("interrupted\n" if interrupted else "") + text,
            )
            if interrupted:
                raise
            raise StepFailed(
                f"step {call.invocation} failed after {attempts} attempt(s): "
                f"{type(error).__name__}: {error}"
            ) from error
        if direct is None:
            pipelines.finish_step(step_run.id, "completed", outputs=refs, attempts=attempts)
        else:
            direct._finish_step(
                step_run.id, "completed", outputs=refs, attempts=attempts, files=files
            )
        self._values.add_result(value, refs)
        call.outputs = refs
        return value

    def _direct_service(self) -> PipelineService | None:
        """The embedded service when outputs go straight into the local blob store and their
        artifact rows commit with the step's end (a step costs one transaction less); None
        through a server, on an object store, or when the experiment has its own artifact
        folder (``log_artifacts`` writes the copies MLflow clients read there)."""
        # Once per run; a map thread asking meanwhile gets None: log_artifacts, just as correct.
        if not self._direct_decided:
            self._direct_decided = True
            from .service import PipelineService

            pipelines = self.client.pipelines
            if isinstance(pipelines, PipelineService) and self.client.store.blobs.is_local:
                from ..tracking.artifact_locations import run_location

                with self.client.store.db.read() as conn:
                    if run_location(conn, self._tracked.id) is None:
                        self._direct = pipelines
        return self._direct

    def _attempts(self, call: Call, step_run: StepRun) -> tuple[Any, int]:
        step = call.step
        attempt = 1
        while True:
            try:
                return self._attempt(call, step_run), attempt
            except Exception as exc:
                if attempt > step.retries:
                    raise _AttemptsFailed(exc, attempt) from exc
                wait = step.backoff(attempt)
                log.info(
                    "step %s attempt %d failed (%s); retrying in %.1f s",
                    call.invocation,
                    attempt,
                    exc,
                    wait,
                )
                time.sleep(wait)
                attempt += 1

    def _attempt(self, call: Call, step_run: StepRun) -> Any:
        step = call.step
        handle = None
        if self.inline:
            handle = self._handle(
                dataclasses.replace(
                    self._tracked,
                    id=_run_id(step_run),
                    name=call.invocation,
                    parent_run_id=self._tracked.id,
                )
            )
        if handle is not None and step.timeout is None:
            push_run(handle, nested=True)
            token = _executing.set(True)
            try:
                return step.fn(*call.args, **call.kwargs)
            finally:
                _executing.reset(token)
                pop_run(handle)
        from .executors import StepContext

        # Workers get the Step (pickled by reference: the module attribute is the Step, not the
        # function); in-process threads get the function and this client's run handle.
        fn = step.fn if self.inline else step
        context = StepContext(self.client.settings, _run_id(step_run), call.invocation, run=handle)
        future = self.executor().submit(
            fn, call.args, dict(call.kwargs), timeout=step.timeout, context=context
        )
        return future.result()

    def _handle(self, run: Run) -> Any:
        from ..tracking import ActiveRun

        return ActiveRun(
            self.client.tracking, run, on_end=pop_run, model_logger=self.client._log_model
        )


def _run_id(step_run: StepRun) -> str:
    if step_run.run_id is None:  # start_step always makes the nested run
        raise StepFailed(f"step run {step_run.id} has no tracked run to store its outputs in")
    return step_run.run_id
