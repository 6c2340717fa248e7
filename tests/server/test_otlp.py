"""Trace ingestion over HTTP, against a real server with auth (SQLite and PostgreSQL): the
OpenTelemetry SDK's own OTLP/HTTP exporter, OTLP/JSON, GenAI and OpenInference attributes
mapped, malformed and oversized bodies, roles; and the native ``/api/v1/traces`` through the
remote client (``@lw.trace`` against a server)."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import httpx
import pytest

import loopwright as lw
from loopwright.tracing import sdk
from loopwright.tracing.exporter import TraceExporter

if TYPE_CHECKING:
    from conftest import LiveServer

USERS = (("boss", "admin"), ("ada", "editor"), ("vic", "viewer"))
PROTOBUF = {"content-type": "application/x-protobuf"}


@dataclass(frozen=True)
class Served:
    url: str
    tokens: dict[str, str]

    def client(self, user: str) -> lw.Client:
        return lw.connect(self.url, token=self.tokens[user])

    def http(self, user: str) -> httpx.Client:
        auth = {"Authorization": f"Bearer {self.tokens[user]}"}
        return httpx.Client(base_url=self.url, headers=auth, timeout=30)


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def served(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    module_server: Callable[..., AbstractContextManager[LiveServer]],
) -> Iterator[Served]:
    start = module_server(
        request, tmp_path_factory, users=USERS, user="boss", max_request_bytes=200_000
    )
    with start as server:
        yield Served(server.url, server.tokens)


def test_the_otel_sdk_exporter_records_genai_spans_with_previews(served: Served) -> None:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    with served.client("ada") as ada:
        experiment = ada.tracking.get_or_create_experiment("otel-genai")
    exporter = OTLPSpanExporter(
        endpoint=f"{served.url}/v1/traces",
        headers={
            "Authorization": f"Bearer {served.tokens['ada']}",
            "x-mlflow-experiment-id": experiment.id,
        },
    )
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("invoke_agent helper") as agent:
        agent.set_attribute("gen_ai.operation.name", "invoke_agent")
        with tracer.start_as_current_span("chat stub-model") as chat:
            chat.set_attribute("gen_ai.operation.name", "chat")
            chat.set_attribute("gen_ai.request.model", "stub-model")
            chat.set_attribute("gen_ai.usage.input_tokens", 12)
            chat.set_attribute("gen_ai.usage.output_tokens", 3)
        with tracer.start_as_current_span("search docs") as tool:
            tool.set_attribute("openinference.span.kind", "RETRIEVER")
            tool.set_attribute("input.value", "what is 42?")
            tool.set_attribute("llm.token_count.prompt", 2)
        agent.set_attribute(
            "gen_ai.input.messages", json.dumps([{"role": "user", "content": "hi"}])
        )
        agent.set_attribute("gen_ai.output.messages", "hello there")
        trace_id = f"{agent.get_span_context().trace_id:032x}"
    provider.shutdown()
    with served.client("vic") as vic:
        trace = vic.tracing.get(trace_id)
        listed = vic.tracing.search([experiment.id]).traces
    assert [t.trace_id for t in listed] == [trace_id]
    assert trace.experiment_id == experiment.id
    kinds = {s.name: s.kind for s in trace.spans}
    assert kinds == {
        "invoke_agent helper": "AGENT",
        "chat stub-model": "CHAT_MODEL",
        "search docs": "RETRIEVER",
    }
    assert trace.token_usage is not None
    assert (trace.token_usage.input_tokens, trace.token_usage.output_tokens) == (14, 3)
    assert trace.request_preview == '[{"role": "user", "content": "hi"}]'  # not empty, as MLflow's
    assert trace.response_preview == "hello there"


def _request_json(trace_hex: str) -> dict[str, object]:
    return {
        "resourceSpans": [
            {
                "scopeSpans": [
                    {
                        "spans": [
                            {
                                "traceId": trace_hex,
                                "spanId": "00f067aa0ba902b7",
                                "name": "llm call",
                                "startTimeUnixNano": "1700000000000000000",
                                "endTimeUnixNano": "1700000000250000000",
                                "status": {"code": 2, "message": "upstream 500"},
                                "attributes": [
                                    {
                                        "key": "openinference.span.kind",
                                        "value": {"stringValue": "LLM"},
                                    },
                                    {
                                        "key": "llm.token_count.completion",
                                        "value": {"intValue": "7"},
                                    },
                                ],
                            }
                        ]
                    }
                ]
            }
        ]
    }


def test_otlp_json_and_gzip_are_accepted(served: Served) -> None:
    trace_hex = "4bf92f3577b34da6a3ce929d0e0e4736"
    with served.http("ada") as http:
        body = gzip.compress(json.dumps(_request_json(trace_hex)).encode())
        done = http.post(
            "/v1/traces",
            content=body,
            headers={"content-type": "application/json", "content-encoding": "gzip"},
        )
        assert done.status_code == 200 and done.json() == {}
    with served.client("vic") as vic:
        trace = vic.tracing.get(trace_hex)
    assert (trace.state, trace.duration_ms) == ("ERROR", 250)
    (only,) = trace.spans
    assert only.kind == "LLM" and only.status_message == "upstream 500"
    assert trace.token_usage is not None and trace.token_usage.output_tokens == 7


def test_malformed_oversized_and_unauthorised_bodies_are_refused(served: Served) -> None:
    with served.http("ada") as http:
        garbage = http.post("/v1/traces", content=b"\xff\x00not protobuf", headers=PROTOBUF)
        assert garbage.status_code == 400
        assert "ExportTraceServiceRequest" in garbage.json()["message"]
        bad_json = http.post(
            "/v1/traces", content=b"{nope", headers={"content-type": "application/json"}
        )
        assert bad_json.status_code == 400
        short_id = _request_json("abcd")
        wrong = http.post("/v1/traces", json=short_id)
        assert wrong.status_code == 400
        plain = http.post("/v1/traces", content=b"x", headers={"content-type": "text/plain"})
        assert plain.status_code == 400 and "application/x-protobuf" in plain.json()["message"]
        bomb = gzip.compress(b"\x00" * 5_000_000)  # small on the wire, 5 MB inflated
        inflated = http.post(
            "/v1/traces",
            content=bomb,
            headers={**PROTOBUF, "content-encoding": "gzip"},
        )
        assert inflated.status_code == 413
        big = http.post("/v1/traces", content=b"\x00" * 300_000, headers=PROTOBUF)
        assert big.status_code == 413
        unknown = http.post(
            "/v1/traces",
            json=_request_json("5bf92f3577b34da6a3ce929d0e0e4736"),
            headers={"x-mlflow-experiment-id": "f" * 32},
        )
        assert unknown.status_code == 404 and "experiment" in unknown.json()["message"]
    with served.http("vic") as viewer:
        refused = viewer.post("/v1/traces", json=_request_json("6bf92f3577b34da6a3ce929d0e0e4736"))
        assert refused.status_code == 403
    anonymous = httpx.post(f"{served.url}/v1/traces", content=b"x", headers=PROTOBUF)
    assert anonymous.status_code == 401


def test_lw_trace_against_the_server_and_the_native_api(served: Served) -> None:
    with served.client("ada") as ada:
        exporter = TraceExporter(ada.tracing.record, flush_interval=0.01)
        previous = sdk.set_exporter(exporter)
        try:

            @lw.trace(kind="CHAIN")
            def answer(question: str, api_key: str) -> str:
                with lw.span("llm", kind="LLM") as s:
                    s.set_usage(5, 2)
                    s.link(deployment="chat-prod")
                return "fine"

            for n in range(20):
                answer(f"q{n}", api_key="sk-proj-abcdefghijklmnopqrstuv")
            assert sdk.flush(30)
            assert exporter.close().exported == 20
        finally:
            sdk.set_exporter(previous)
        page = ada.tracing.search(filter="link.deployment = 'chat-prod'", max_results=100)
        assert len(page.traces) == 20
        one = ada.tracing.get(page.traces[0].trace_id)
        assert one.spans[0].attributes["lw.inputs"]["api_key"] == "[REDACTED]"
        assert ada.tracing.get(one.trace_id, spans=False).spans == ()
        ada.tracing.set_tag(one.trace_id, "reviewed", "yes")
        feedback = ada.tracing.log_assessment(one.trace_id, "helpful", True, source_type="HUMAN")
        assert ada.tracing.assessments(one.trace_id) == [feedback]
        changed = ada.tracing.update_assessment(one.trace_id, feedback.assessment_id, value=False)
        assert changed.value is False
        ada.tracing.delete_assessment(one.trace_id, feedback.assessment_id)
        ada.tracing.delete_tag(one.trace_id, "reviewed")
        with pytest.raises(lw.NotFound):
            ada.tracing.get("0" * 32)
        with pytest.raises(lw.PermissionDenied):
            ada.tracing.delete(trace_ids=[one.trace_id])  # deleting needs an admin
    with served.client("vic") as vic:
        assert vic.tracing.get(one.trace_id).tags == {}
        with pytest.raises(lw.PermissionDenied):
            vic.tracing.set_tag(one.trace_id, "k", "v")
    with served.client("boss") as boss:
        assert boss.tracing.delete(trace_ids=[one.trace_id]) == 1


def test_a_large_batch_goes_in_several_requests_of_whole_traces(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    from loopwright.remote import tracing as remote_tracing
    from loopwright.tracing.entities import Span

    monkeypatch.setattr(remote_tracing, "_MAX_POST_CHARS", 3_000)
    spans = [
        Span(
            f"{n:032x}",
            f"{k + 1:016x}",
            None if k == 0 else "0" * 15 + "1",
            f"s{k}",
            "CHAIN",
            1_000_000,
            2_000_000,
            attributes={"note": "x" * 400},
        )
        for n in range(1, 21)
        for k in range(3)
    ]
    with served.client("ada") as ada:
        ids = ada.tracing.record(spans, tags={"batch": "big"})
        assert ids == [f"{n:032x}" for n in range(1, 21)]
        page = ada.tracing.search(filter="tags.batch = 'big'", max_results=100)
    assert sorted(t.span_count for t in page.traces) == [3] * 20
