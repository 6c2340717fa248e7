"""``@lw.trace`` and ``lw.span(...)``: spans built in-process, nested through contextvars.

A trace is exported when its root span ends: its spans go to the process's
:class:`~.exporter.TraceExporter` (made on first use for the default client, flushed at exit),
so the traced call never waits for the store unless the queue is full (backpressure).
Exceptions end their span as ``ERROR`` with an ``exception`` event and propagate unchanged.
Generators (sync and async) keep their span open until exhausted or closed; their yielded items
become the outputs.

Example (into a list rather than the default client's store):
    >>> import loopwright as lw
    >>> from loopwright.tracing.exporter import TraceExporter
    >>> stored = []
    >>> previous = set_exporter(TraceExporter(lambda spans, **kw: stored.extend(spans)))
    >>> @lw.trace(kind="LLM")
    ... def answer(question: str) -> str:
    ...     with lw.span("retrieve", kind="RETRIEVER") as s:
    ...         s.set_outputs(["doc-1"])
    ...     return "42"
    >>> answer("why?")
    '42'
    >>> flush(5.0), sorted(span.name for span in stored)
    (True, ['answer', 'retrieve'])
    >>> set_exporter(previous).close().exported
    1
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import logging
import random
import threading
import time
import traceback
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, TypeVar, overload

from ..errors import TracingError
from .entities import (
    COST_KEY,
    INPUT_TOKENS_KEY,
    INPUTS_KEY,
    MODEL_KEY,
    OUTPUT_TOKENS_KEY,
    OUTPUTS_KEY,
    SPAN_KINDS,
    Span,
    SpanEvent,
    TraceLinks,
)

if TYPE_CHECKING:
    from .exporter import ExporterStats, TraceExporter

__all__ = [
    "LiveSpan",
    "current_span",
    "exporter_stats",
    "flush",
    "set_default_factory",
    "set_exporter",
    "span",
    "trace",
]

F = TypeVar("F", bound=Callable[..., Any])
_MAX_STREAM_ITEMS = 1_000
log = logging.getLogger("loopwright.tracing")  # yielded items kept as a generator's outputs

_current: ContextVar[LiveSpan | None] = ContextVar("loopwright_span", default=None)
_rng = random.Random()  # ids need uniqueness, not secrecy (as OTel's SDK)


class _TraceState:
    """The spans of one trace in this process, until its root span ends."""

    def __init__(self, trace_id: str) -> None:
        self.trace_id = trace_id
        self.finished: list[Span] = []
        self.tags: dict[str, str] = {}
        self.links: dict[str, Any] = {}
        self.prompt_versions: list[str] = []
        self.experiment_id: str | None = None
        self.exported = False
        self.lock = threading.Lock()


class LiveSpan:
    """A span being recorded: what ``with lw.span(...) as s`` gives."""

    def __init__(self, name: str, kind: str, parent: LiveSpan | None) -> None:
        if kind not in SPAN_KINDS:
            raise ValueError(f"span kind {kind!r}; kinds: {', '.join(sorted(SPAN_KINDS))}")
        self.name = name
        self.kind = kind
        self.parent = parent
        self._trace: _TraceState = (
            parent._trace if parent is not None else _TraceState(_new_id(128))
        )
        self.span_id = _new_id(64)
        self.start_ns = time.time_ns()
        self.attributes: dict[str, Any] = {}
        self.events: list[SpanEvent] = []
        self.status = "OK"
        self.status_message = ""
        self._ended = False

    @property
    def trace_id(self) -> str:
        return self._trace.trace_id

    def set_inputs(self, inputs: Any) -> None:
        self.attributes[INPUTS_KEY] = inputs

    def set_outputs(self, outputs: Any) -> None:
        self.attributes[OUTPUTS_KEY] = outputs

    def set_attribute(self, key: str, value: Any) -> None:
        self.attributes[key] = value

    def set_attributes(self, attributes: Mapping[str, Any]) -> None:
        self.attributes.update(attributes)

    def set_usage(self, input_tokens: int, output_tokens: int, *, model: str | None = None) -> None:
        self.attributes[INPUT_TOKENS_KEY] = int(input_tokens)
        self.attributes[OUTPUT_TOKENS_KEY] = int(output_tokens)
        if model is not None:
            self.attributes[MODEL_KEY] = model

    def set_cost(self, usd: float) -> None:
        self.attributes[COST_KEY] = float(usd)

    def set_status(self, status: str, message: str = "") -> None:
        self.status, self.status_message = status, message

    def add_event(self, name: str, attributes: Mapping[str, Any] | None = None) -> None:
        self.events.append(SpanEvent(name, time.time_ns(), dict(attributes or {})))

    def set_trace_tag(self, key: str, value: str) -> None:
        """A tag of the whole trace (searchable as ``tags.<key>``)."""
        with self._trace.lock:
            self._trace.tags[key] = value

    def link(
        self,
        *,
        prompt_version: str | None = None,
        model_version: str | None = None,
        gateway_route: str | None = None,
        deployment: str | None = None,
        run_id: str | None = None,
    ) -> None:
        """Say what produced this trace (kept on the whole trace)."""
        with self._trace.lock:
            if prompt_version is not None:
                self._trace.prompt_versions.append(prompt_version)
            for key, value in (
                ("model_version", model_version),
                ("gateway_route", gateway_route),
                ("deployment", deployment),
                ("run_id", run_id),
            ):
                if value is not None:
                    self._trace.links[key] = value

    def set_experiment(self, experiment_id: str) -> None:
        self._trace.experiment_id = experiment_id

    def record_exception(self, exc: BaseException) -> None:
        self.set_status("ERROR", f"{type(exc).__name__}: {exc}")
        self.add_event(
            "exception",
            {
                "exception.type": type(exc).__qualname__,
                "exception.message": str(exc),
                "exception.stacktrace": "".join(traceback.format_exception(exc)),
            },
        )

    def end(self) -> None:
        if self._ended:
            return
        self._ended = True
        finished = Span(
            trace_id=self.trace_id,
            span_id=self.span_id,
            parent_id=None if self.parent is None else self.parent.span_id,
            name=self.name,
            kind=self.kind,
            start_ns=self.start_ns,
            end_ns=time.time_ns(),
            status=self.status,
            status_message=self.status_message,
            attributes=self.attributes,
            events=tuple(self.events),
        )
        state = self._trace
        with state.lock:
            state.finished.append(finished)
            if self.parent is not None and not state.exported:
                return
            spans, state.finished = state.finished, []
            state.exported = True  # spans ending after the root go out on their own
        _export(state, spans)


def _new_id(bits: int) -> str:
    value = 0
    while not value:
        value = _rng.getrandbits(bits)
    return f"{value:0{bits // 4}x}"


def _export(state: _TraceState, spans: list[Span]) -> None:
    links = dict(state.links)
    if "run_id" not in links:
        from .._run_stack import active_run

        run = active_run()
        if run is not None:
            links["run_id"] = run.id
    found = TraceLinks(prompt_versions=tuple(state.prompt_versions), **links)
    try:
        exporter = _default_exporter()
    except TracingError:
        raise  # no way to export was ever set up: a programming error, said loudly
    except Exception:
        # The traced code must not fail because its trace cannot be stored (the default
        # client's store would not open): the trace is lost, and the log says so.
        log.exception("trace %s (%d spans) not recorded: no exporter", state.trace_id, len(spans))
        return
    exporter.submit(
        spans,
        experiment_id=state.experiment_id,
        tags=state.tags or None,
        links=found if found.pairs() else None,
    )


def current_span() -> LiveSpan | None:
    """The innermost open span of this thread or task."""
    return _current.get()


@contextlib.contextmanager
def span(
    name: str, kind: str = "UNKNOWN", *, attributes: Mapping[str, Any] | None = None
) -> Iterator[LiveSpan]:
    """Record the block as a span, child of the current one (a new trace at the top)."""
    live = LiveSpan(name, kind, _current.get())
    if attributes:
        live.set_attributes(attributes)
    token = _current.set(live)
    try:
        yield live
    except BaseException as exc:
        live.record_exception(exc)
        raise
    finally:
        _current.reset(token)
        live.end()


@overload
def trace(func: F, /) -> F: ...
@overload
def trace(
    *, name: str | None = None, kind: str = "CHAIN", attributes: Mapping[str, Any] | None = None
) -> Callable[[F], F]: ...
def trace(
    func: Any = None,
    /,
    *,
    name: str | None = None,
    kind: str = "CHAIN",
    attributes: Mapping[str, Any] | None = None,
) -> Any:
    """Trace each call of a function (sync, async, generator or async generator): its arguments
    become the span's inputs, its result (or yielded items) the outputs."""

    def decorate(fn: Any) -> Any:
        if kind not in SPAN_KINDS:
            raise ValueError(f"span kind {kind!r}; kinds: {', '.join(sorted(SPAN_KINDS))}")
        label = name or fn.__qualname__
        signature = inspect.signature(fn)

        def start(args: Any, kwargs: Any) -> LiveSpan:
            live = LiveSpan(label, kind, _current.get())
            if attributes:
                live.set_attributes(attributes)
            live.set_inputs(_arguments(signature, args, kwargs))
            return live

        if inspect.isasyncgenfunction(fn):
            return functools.wraps(fn)(_async_generator(fn, start))
        if inspect.isgeneratorfunction(fn):
            return functools.wraps(fn)(_generator(fn, start))
        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def run_async(*args: Any, **kwargs: Any) -> Any:
                live = start(args, kwargs)
                token = _current.set(live)
                try:
                    result = await fn(*args, **kwargs)
                    live.set_outputs(result)
                    return result
                except BaseException as exc:
                    live.record_exception(exc)
                    raise
                finally:
                    _current.reset(token)
                    live.end()

            return run_async

        @functools.wraps(fn)
        def run(*args: Any, **kwargs: Any) -> Any:
            live = start(args, kwargs)
            token = _current.set(live)
            try:
                result = fn(*args, **kwargs)
                live.set_outputs(result)
                return result
            except BaseException as exc:
                live.record_exception(exc)
                raise
            finally:
                _current.reset(token)
                live.end()

        return run

    return decorate(func) if func is not None else decorate


def _generator(fn: Any, start: Callable[[Any, Any], LiveSpan]) -> Callable[..., Iterator[Any]]:
    def run(*args: Any, **kwargs: Any) -> Iterator[Any]:
        live = start(args, kwargs)
        items: list[Any] = []
        inner = fn(*args, **kwargs)
        try:
            while True:
                token = _current.set(live)  # the span is current only while the body runs
                try:
                    item = next(inner)
                except StopIteration:
                    break
                finally:
                    _current.reset(token)
                if len(items) < _MAX_STREAM_ITEMS:
                    items.append(item)
                yield item
        except BaseException as exc:
            if not isinstance(exc, GeneratorExit):
                live.record_exception(exc)
            raise
        finally:
            inner.close()
            live.set_outputs(items)
            live.end()

    return run


def _async_generator(
    fn: Any, start: Callable[[Any, Any], LiveSpan]
) -> Callable[..., AsyncIterator[Any]]:
    async def run(*args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        live = start(args, kwargs)
        items: list[Any] = []
        inner = fn(*args, **kwargs)
        try:
            while True:
                token = _current.set(live)
                try:
                    item = await inner.__anext__()
                except StopAsyncIteration:
                    break
                finally:
                    _current.reset(token)
                if len(items) < _MAX_STREAM_ITEMS:
                    items.append(item)
                yield item
        except BaseException as exc:
            if not isinstance(exc, GeneratorExit):
                live.record_exception(exc)
            raise
        finally:
            await inner.aclose()
            live.set_outputs(items)
            live.end()

    return run


def _arguments(signature: inspect.Signature, args: Any, kwargs: Any) -> dict[str, Any]:
    try:
        bound = signature.bind_partial(*args, **kwargs)
    except TypeError:
        return {"args": list(args), **kwargs}
    return {k: v for k, v in bound.arguments.items() if k not in ("self", "cls")}


# --- the process's exporter -------------------------------------------------------------------

_exporter_lock = threading.Lock()
_exporters: list[TraceExporter] = []
_factories: list[Callable[[], TraceExporter]] = []


def set_default_factory(factory: Callable[[], TraceExporter]) -> None:
    """How the process's exporter is made on first use when none was set (``loopwright``
    registers one exporting to the default client: tracing does not import the client)."""
    with _exporter_lock:
        _factories[:] = [factory]


def _default_exporter() -> TraceExporter:
    with _exporter_lock:
        if not _exporters:
            if not _factories:
                raise TracingError(
                    "no trace exporter: use lw.trace / lw.span (import loopwright), or call "
                    "loopwright.tracing.sdk.set_exporter(TraceExporter(...)) first"
                )
            import atexit

            exporter = _factories[0]()
            _exporters.append(exporter)
            atexit.register(exporter.close)
        return _exporters[0]


def set_exporter(exporter: TraceExporter | None) -> TraceExporter | None:
    """Send this process's traces to ``exporter`` from now on (``None``: the default client's,
    made on next use); returns the previous one, which the caller should close."""
    with _exporter_lock:
        previous = _exporters[0] if _exporters else None
        _exporters[:] = [] if exporter is None else [exporter]
        return previous


def flush(timeout: float | None = 30.0) -> bool:
    """Wait until every finished trace of this process is durable (or failed, counted)."""
    with _exporter_lock:
        exporter = _exporters[0] if _exporters else None
    return True if exporter is None else exporter.flush(timeout)


def exporter_stats() -> ExporterStats:
    """Traces queued, exported, dropped after the bounded wait, and failed, in this process."""
    from .exporter import ExporterStats

    with _exporter_lock:
        exporter = _exporters[0] if _exporters else None
    return ExporterStats(0, 0, 0, 0) if exporter is None else exporter.stats
