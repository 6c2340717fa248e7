"""``@lw.trace`` and ``lw.span``: nesting through contextvars, async code, generators, errors,
links, and export when the root span ends."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Generator, Iterator
from typing import Any

import pytest

import loopwright as lw
from loopwright.tracing import sdk
from loopwright.tracing.entities import Span, TraceLinks
from loopwright.tracing.exporter import TraceExporter


class Sink:
    """What the exporter hands to ``record``: every call, as (spans, keyword arguments)."""

    def __init__(self) -> None:
        self.calls: list[tuple[list[Span], dict[str, Any]]] = []
        self.lock = threading.Lock()

    def __call__(self, spans: list[Span], **kwargs: Any) -> list[str]:
        with self.lock:
            self.calls.append((list(spans), kwargs))
        return []

    def spans(self) -> list[Span]:
        return [s for spans, _ in self.calls for s in spans]


@pytest.fixture
def sink() -> Iterator[Sink]:
    found = Sink()
    exporter = TraceExporter(found, flush_interval=0.01)
    previous = sdk.set_exporter(exporter)
    yield found
    exporter.close()
    sdk.set_exporter(previous)


def _by_name(sink: Sink) -> dict[str, Span]:
    assert sdk.flush(5)
    return {s.name: s for s in sink.spans()}


def test_nested_spans_form_one_trace_with_inputs_outputs_and_usage(sink: Sink) -> None:
    @lw.trace(kind="AGENT")
    def answer(question: str, *, top: int = 3) -> str:
        with lw.span("retrieve", kind="RETRIEVER") as s:
            s.set_outputs(["d1", "d2"])
        with lw.span("generate", kind="LLM") as s:
            s.set_usage(12, 5, model="stub")
            s.set_cost(0.001)
        return "42"

    assert answer("why?", top=2) == "42"
    spans = _by_name(sink)
    root = spans["test_nested_spans_form_one_trace_with_inputs_outputs_and_usage.<locals>.answer"]
    assert root.kind == "AGENT" and root.parent_id is None
    assert root.attributes["lw.inputs"] == {"question": "why?", "top": 2}
    assert root.attributes["lw.outputs"] == "42"
    assert {s.trace_id for s in spans.values()} == {root.trace_id}
    assert spans["retrieve"].parent_id == root.span_id
    assert spans["generate"].attributes["gen_ai.usage.input_tokens"] == 12
    assert spans["generate"].attributes["gen_ai.request.model"] == "stub"
    assert len(sink.calls) == 1  # the whole trace went out once, when the root ended
    assert sdk.current_span() is None


def test_an_exception_ends_the_span_as_error_and_propagates(sink: Sink) -> None:
    @lw.trace(name="fails")
    def fails() -> None:
        with lw.span("inner", kind="TOOL"):
            raise KeyError("missing")

    with pytest.raises(KeyError):
        fails()
    spans = _by_name(sink)
    for name in ("fails", "inner"):
        assert spans[name].status == "ERROR"
        (event,) = spans[name].events
        assert event.name == "exception"
        assert event.attributes["exception.type"] == "KeyError"
        assert "missing" in event.attributes["exception.stacktrace"]


def test_async_functions_and_concurrent_tasks_keep_their_own_traces(sink: Sink) -> None:
    @lw.trace(name="task")
    async def task(n: int) -> int:
        await asyncio.sleep(0.01)
        with lw.span(f"inner-{n}"):
            await asyncio.sleep(0.01)
        return n

    async def main() -> list[int]:
        return await asyncio.gather(*(task(n) for n in range(5)))

    assert asyncio.run(main()) == [0, 1, 2, 3, 4]
    assert sdk.flush(5)
    roots = {s.trace_id: s for s in sink.spans() if s.name == "task"}
    assert len(roots) == 5
    for s in sink.spans():
        if s.name.startswith("inner-"):
            root = roots[s.trace_id]
            assert s.parent_id == root.span_id
            assert root.attributes["lw.inputs"] == {"n": int(s.name.split("-")[1])}


def test_generators_keep_the_span_open_and_record_the_items(sink: Sink) -> None:
    @lw.trace(name="stream", kind="LLM")
    def stream(n: int) -> Iterator[str]:
        for i in range(n):
            with lw.span(f"chunk-{i}"):
                yield f"t{i}"

    seen = []
    for item in stream(3):
        seen.append(item)
        assert sdk.current_span() is None  # the caller's code is not inside the span
    spans = _by_name(sink)
    assert seen == ["t0", "t1", "t2"]
    assert spans["stream"].attributes["lw.outputs"] == ["t0", "t1", "t2"]
    assert spans["chunk-2"].parent_id == spans["stream"].span_id

    @lw.trace(name="agen")
    async def agen() -> AsyncIterator[int]:
        yield 1
        raise RuntimeError("stream broke")

    async def consume() -> list[int]:
        return [x async for x in agen()]

    with pytest.raises(RuntimeError):
        asyncio.run(consume())
    spans = _by_name(sink)
    assert spans["agen"].status == "ERROR" and spans["agen"].attributes["lw.outputs"] == [1]


def test_a_closed_generator_still_ends_its_span(sink: Sink) -> None:
    @lw.trace(name="endless")
    def endless() -> Generator[int, None, None]:
        n = 0
        while True:
            yield n
            n += 1

    gen = endless()
    assert next(gen) == 0 and next(gen) == 1
    gen.close()
    spans = _by_name(sink)
    assert spans["endless"].status == "OK" and spans["endless"].attributes["lw.outputs"] == [0, 1]


def test_links_tags_and_the_active_run(sink: Sink, tmp_path: Any) -> None:
    with (
        lw.start_run(experiment="sdk", home=tmp_path / "home") as run,
        lw.span("call", kind="CHAIN") as s,
    ):
        s.link(prompt_version="qa/3", deployment="chat", gateway_route="main")
        s.set_trace_tag("user", "ada")
    assert sdk.flush(5)
    (call,) = sink.calls
    links = call[1]["links"]
    assert links == TraceLinks(
        prompt_versions=("qa/3",), run_id=run.id, gateway_route="main", deployment="chat"
    )
    assert call[1]["tags"] == {"user": "ada"}


def test_unknown_kinds_are_refused_at_decoration() -> None:
    with pytest.raises(ValueError, match="span kind 'LLMM'"):
        lw.trace(kind="LLMM")(lambda: None)
    with pytest.raises(ValueError, match="span kind"), lw.span("x", kind="nope"):
        pass


def test_traces_reach_the_store_through_the_default_client(tmp_path: Any) -> None:
    client = lw.connect(home=tmp_path / "home")
    exporter = TraceExporter(client.tracing.record, flush_interval=0.01)
    previous = sdk.set_exporter(exporter)
    try:

        @lw.trace
        def hello(name: str) -> str:
            return f"hi {name}"

        hello("ada")
        assert sdk.flush(5)
        assert sdk.exporter_stats().exported == 1
        (trace,) = client.tracing.search().traces
        assert trace.request_preview == '{"name": "ada"}' and trace.response_preview == "hi ada"
    finally:
        exporter.close()
        sdk.set_exporter(previous)
        client.close()


def test_without_an_exporter_or_a_factory_the_error_says_what_to_do(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sdk, "_factories", [])
    previous = sdk.set_exporter(None)
    try:
        with pytest.raises(lw.TracingError, match="set_exporter"), lw.span("orphan"):
            pass
    finally:
        sdk.set_exporter(previous)


def test_a_store_that_will_not_open_does_not_break_the_traced_code(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken() -> TraceExporter:
        raise OSError("disk full")

    monkeypatch.setattr(sdk, "_factories", [broken])
    previous = sdk.set_exporter(None)
    try:

        @lw.trace
        def still_works() -> int:
            return 7

        assert still_works() == 7
        assert "not recorded: no exporter" in caplog.text and "disk full" in caplog.text
    finally:
        sdk.set_exporter(previous)


def test_lw_tracing_is_reachable_without_importing_it() -> None:
    import subprocess
    import sys

    script = (
        "import sys, loopwright as lw\n"
        "assert 'loopwright.tracing' not in sys.modules\n"  # import loopwright stays light
        "lw.tracing.set_redactor(None)\n"
        "print(lw.tracing.mask_secrets('api_key', 'x'))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[REDACTED]"
