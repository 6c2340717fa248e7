"""``@pipeline``: a function that calls steps; each run is recorded, cached and resumable.

Example:
    >>> import loopwright as lw
    >>> @lw.step
    ... def load(n: int) -> list[int]:
    ...     return list(range(n))
    >>> @lw.pipeline
    ... def count(n: int = 3) -> int:
    ...     return len(load(n))
    >>> count.ref
    'loopwright.pipelines.pipeline:count'

``count(n=5)`` runs it in-process on the default client (``lw.pipeline`` hands it down) and
returns 5; ``count.run(client=...)`` returns the recorded :class:`PipelineRun` (``failed`` with
its ``error`` rather than raising), and ``resume(run_id, client=...)`` re-runs a failed or killed
run, serving the steps that had completed.
"""

from __future__ import annotations

import functools
import importlib
import logging
import os
import secrets
import socket
import sys
import threading
import traceback
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, overload

from ..errors import Conflict, InvalidInput, NotFound, StepFailed
from . import _outputs, engine, fingerprint
from ._params import bind_params
from ._source import pipeline_context
from .entities import HEARTBEAT_INTERVAL_MS, ArtifactRef, PipelineRun

if TYPE_CHECKING:
    from ..client import Client

__all__ = ["Pipeline", "load_output", "load_pipeline", "load_result", "pipeline", "resume"]

log = logging.getLogger(__name__)

OnStart = Callable[[PipelineRun], None]
_EXECUTORS = ("inprocess", "process", "ray")


class Pipeline:
    """A pipeline function with its name, experiment and importable reference."""

    def __init__(
        self,
        fn: Callable[..., Any],
        *,
        name: str | None = None,
        experiment: str | None = None,
        client_factory: Callable[[], Client] | None = None,
    ) -> None:
        if not callable(fn):
            raise InvalidInput(f"@pipeline needs a function, got {type(fn).__name__}")
        self.fn = fn
        self.name = name or fn.__name__
        self.experiment = experiment
        # lw.pipeline hands down the default client's factory (pipelines sit below _active).
        self.client_factory = client_factory
        functools.update_wrapper(self, fn)

    @property
    def ref(self) -> str:
        """``module:qualname``, what ``loopwright pipelines run`` and ``resume`` import."""
        return f"{_module_name(self.fn)}:{self.fn.__qualname__}"

    def __call__(self, **params: Any) -> Any:
        """Run in-process on the default client (``lw.pipeline``) and return the function's value;
        raises what the run raised (``StepFailed`` for a failed step). Inside a running
        pipeline it is a plain call (a sub-pipeline's steps join the running pipeline)."""
        if engine.current() is not None:
            return self.fn(**params)
        _, value, error = self._execute(params=params)
        if error is not None:
            raise error
        return value

    def run(
        self,
        *,
        client: Client | None = None,
        executor: str = "inprocess",
        max_parallel: int | None = None,
        name: str | None = None,
        params: Mapping[str, Any] | None = None,
        ray_address: str | None = None,
        on_start: OnStart | None = None,
    ) -> PipelineRun:
        """Run and return the recorded run (``failed``, with ``error``, if a step failed)."""
        run, _, error = self._execute(
            client=client,
            executor=executor,
            max_parallel=max_parallel,
            name=name,
            params=params,
            ray_address=ray_address,
            on_start=on_start,
        )
        if isinstance(error, KeyboardInterrupt | SystemExit):
            raise error
        return run

    def _execute(
        self,
        *,
        client: Client | None = None,
        executor: str = "inprocess",
        max_parallel: int | None = None,
        name: str | None = None,
        params: Mapping[str, Any] | None = None,
        ray_address: str | None = None,
        on_start: OnStart | None = None,
        resumed: PipelineRun | None = None,
    ) -> tuple[PipelineRun, Any, BaseException | None]:
        if client is None:
            if self.client_factory is None:
                raise InvalidInput(
                    f"pipeline {self.ref} has no client: pass client=lw.connect(...), or "
                    "decorate it with lw.pipeline, whose runs use the default client"
                )
            client = self.client_factory()
        ref = self.ref
        bound = bind_params(self.fn, params or {}, ref=ref)
        code_digest, _ = fingerprint.code_fingerprint(self.fn)
        if executor not in _EXECUTORS:
            raise InvalidInput(
                f"unknown executor {executor!r}; choose one of {', '.join(_EXECUTORS)}"
            )
        if max_parallel is not None and (type(max_parallel) is not int or max_parallel < 1):
            raise InvalidInput(
                f"max_parallel must be a whole number of at least 1, not {max_parallel!r}"
            )
        record = client.pipelines.start_run(
            ref,
            # Told apart at a glance in run lists, as MLflow's random run names are.
            name=name or f"{self.name}-{secrets.token_hex(2)}",
            params=bound,
            executor=executor,
            code_digest=code_digest,
            experiment=self.experiment,
            resumed_from=None if resumed is None else resumed.id,
            host=socket.gethostname(),
            pid=os.getpid(),
            context=pipeline_context(self.fn, ref),
        )
        result: ArtifactRef | None = None
        value: Any = None
        try:
            if on_start is not None:
                on_start(record)
            state = engine.RunState(
                client,
                record,
                client.tracking.get_run(_tracked_id(record)),
                executor,
                max_parallel=max_parallel,
                ray_address=ray_address,
                resumable=() if resumed is None else resumed.steps,
            )
        except BaseException as exc:  # recorded, not left running until its heartbeat is stale
            error: BaseException | None = exc
        else:
            try:
                with _Heartbeat(client, record.id):
                    value, error = _call(state, self.fn, bound)
                    if error is None:
                        try:
                            result = _store_result(client, state, record, value)
                        except Exception as exc:
                            error = exc
            finally:
                state.close()
        if error is None:
            client.pipelines.finish_run(record.id, "completed", result=result)
        else:
            killed = not isinstance(error, Exception)
            client.pipelines.finish_run(
                record.id, "killed" if killed else "failed", error=_error_text(error)
            )
        return client.pipelines.get_run(record.id), value, error

    def __repr__(self) -> str:
        return f"<Pipeline {self.name} ({self.ref})>"


def _call(
    state: engine.RunState, fn: Callable[..., Any], params: Mapping[str, Any]
) -> tuple[Any, BaseException | None]:
    with state.active():
        try:
            return fn(**params), None
        except BaseException as exc:  # recorded as the run's end, then raised to the caller
            return None, exc


def _store_result(
    client: Client, state: engine.RunState, record: PipelineRun, value: Any
) -> ArtifactRef | None:
    if value is None:
        return None
    known = state.ref_of(value)
    if known is not None:
        return known
    try:
        refs = _outputs.store_outputs(
            client,
            _tracked_id(record),
            value,
            allow_pickle=False,
            base="result",
            folder="result",
            split=False,
        )
    except InvalidInput as exc:
        # The run did its work; a return value no materializer stores is only not kept.
        log.warning("pipeline run %s: result not stored: %s", record.id, exc)
        return None
    return refs[0]


def _error_text(error: BaseException) -> str:
    if isinstance(error, StepFailed):
        return error.message
    if not isinstance(error, Exception):
        return f"interrupted ({type(error).__name__})"
    return "".join(traceback.format_exception(type(error), error, error.__traceback__))


def _tracked_id(record: PipelineRun) -> str:
    if record.run_id is None:
        raise Conflict(f"pipeline run {record.id} has no tracked run")
    return record.run_id


class _Heartbeat:
    """Says the run is alive every HEARTBEAT_INTERVAL_MS from a daemon thread."""

    def __init__(self, client: Client, pipeline_run_id: str) -> None:
        self._client = client
        self._id = pipeline_run_id
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._beat, name=f"lw-heartbeat-{pipeline_run_id[:8]}", daemon=True
        )

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_INTERVAL_MS / 1000):
            try:
                self._client.pipelines.heartbeat(self._id)
            except Exception as exc:  # a missed beat is retried at the next interval
                log.warning("pipeline run %s: heartbeat failed: %s", self._id, exc)

    def __enter__(self) -> _Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(timeout=1.0)  # a beat stuck on a slow server must not hold the run


@overload
def pipeline(fn: Callable[..., Any], /) -> Pipeline: ...


@overload
def pipeline(
    fn: None = None,
    /,
    *,
    name: str | None = None,
    experiment: str | None = None,
    client_factory: Callable[[], Client] | None = None,
) -> Callable[[Callable[..., Any]], Pipeline]: ...


def pipeline(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    experiment: str | None = None,
    client_factory: Callable[[], Client] | None = None,
) -> Pipeline | Callable[[Callable[..., Any]], Pipeline]:
    """Make ``fn`` a pipeline (bare ``@pipeline`` or ``@pipeline(name=..., experiment=...)``).

    Its runs are tracked runs in ``experiment`` (default: the pipeline's name); its typed
    parameters convert command-line strings by their annotations. ``client_factory`` gives the
    client of runs started without one (``lw.pipeline`` passes the default client's).
    """

    def make(f: Callable[..., Any]) -> Pipeline:
        return Pipeline(f, name=name, experiment=experiment, client_factory=client_factory)

    return make if fn is None else make(fn)


def resume(
    pipeline_run_id: str,
    *,
    client: Client | None = None,
    executor: str | None = None,
    max_parallel: int | None = None,
    cwd: str | None = None,
    on_start: OnStart | None = None,
) -> PipelineRun:
    """Run a ``failed`` or ``killed`` pipeline run again as a new run (``resumed_from``): calls
    matching a completed step run of the old run (invocation and cache key) are served from it,
    even with ``cache=False``; the rest run."""
    client = _need(client, "resume")
    old = client.pipelines.get_run(pipeline_run_id)
    if old.status not in ("failed", "killed"):
        raise Conflict(
            f"pipeline run {old.id} is {old.status}: only a failed or killed run can be "
            + (
                "resumed; it finished, run the pipeline again instead"
                if old.status == "completed"
                else "resumed; wait for it to end, or for its heartbeat to go stale if it died"
            )
        )
    chosen = load_pipeline(old.pipeline, cwd=cwd)
    run, _, error = chosen._execute(
        client=client,
        executor=executor or old.executor,
        max_parallel=max_parallel,
        name=old.name,
        params=old.params,
        on_start=on_start,
        resumed=old,
    )
    if isinstance(error, KeyboardInterrupt | SystemExit):
        raise error
    return run


def load_pipeline(ref: str, *, cwd: str | None = None) -> Pipeline:
    """The ``@pipeline`` named ``module:qualname``, importing the module with ``cwd`` (default:
    the current directory) on ``sys.path``."""
    module_name, sep, qualname = ref.partition(":")
    if not sep or not module_name or not qualname:
        raise InvalidInput(
            f"pipeline reference {ref!r} is not MODULE:PIPELINE (e.g. train:pipeline for a "
            "@pipeline named pipeline in train.py)"
        )
    if "<locals>" in qualname or "<lambda>" in qualname:
        raise InvalidInput(
            f"pipeline {ref} was defined inside a function, so it cannot be imported again (to "
            "resume it or run it from the command line); define it at module level"
        )
    folder = str(Path(cwd or os.getcwd()).resolve())
    if folder not in sys.path:
        sys.path.insert(0, folder)
    try:
        target: Any = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and module_name.startswith(exc.name):
            raise NotFound(
                f"pipeline {ref}: no module {module_name!r} importable from {folder}; run from "
                "the project folder or pass --cwd"
            ) from exc
        raise
    for part in qualname.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise NotFound(
                f"pipeline {ref}: module {module_name!r} ({getattr(target, '__file__', '?')}) "
                f"has no {part!r}"
            ) from None
    if not isinstance(target, Pipeline):
        raise InvalidInput(
            f"{ref} is a {type(target).__name__}, not a @pipeline: decorate the function with "
            "@lw.pipeline"
        )
    return target


def load_result(run: PipelineRun, *, client: Client | None = None, trusted: bool = False) -> Any:
    """The value the pipeline function returned in ``run`` (None when it returned None or its
    value could not be stored; a tuple of JSON values comes back as a list)."""
    if run.result is None:
        if run.status != "completed":
            raise Conflict(f"pipeline run {run.id} is {run.status}: it has no result")
        return None
    return load_output(run.result, client=client, trusted=trusted)


def load_output(ref: ArtifactRef, *, client: Client | None = None, trusted: bool = False) -> Any:
    """The stored value ``ref`` names (``trusted=True`` for a pickled one)."""
    return _outputs.load_ref(_need(client, "load_output"), ref, trusted=trusted)


def _need(client: Client | None, what: str) -> Client:
    if client is None:
        raise InvalidInput(f"{what} needs a client: pass client=lw.connect(...)")
    return client


def _module_name(fn: Callable[..., Any]) -> str:
    """The importable name of ``fn``'s module (a script run as ``python train.py``: ``train``)."""
    module = fn.__module__
    if module != "__main__":
        return module
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    if spec is not None and spec.name:
        return str(spec.name)
    file = getattr(main, "__file__", None)
    return Path(file).stem if file else module
