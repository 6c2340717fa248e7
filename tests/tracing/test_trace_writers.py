"""Who may write to a stored trace: its recorder only, never to a gateway trace, replacing
stored spans only while it is in progress, each replacement audited."""

from __future__ import annotations

import pytest
from _trace_spans import span, trace_id

from loopwright.client import Client
from loopwright.errors import Conflict, PermissionDenied
from loopwright.store.audit import events
from loopwright.store.home import acting_as
from loopwright.tracing.service import TracingService


def test_another_user_cannot_add_or_replace_spans_or_info(client: Client) -> None:
    service = TracingService(client.store)
    with acting_as("ada"):
        service.record([span(1, 0, end_ms=None, lw__inputs="real question")])
    with acting_as("mallory"):
        with pytest.raises(PermissionDenied, match="recorded by 'ada'"):
            service.record([span(1, 0, end_ms=None, lw__inputs="forged")])
        with pytest.raises(PermissionDenied, match="recorded by 'ada'"):
            service.record([span(1, 7, 0)])
        with pytest.raises(PermissionDenied, match="recorded by 'ada'"):
            service.record_info(
                trace_id(1),
                experiment_id=None,
                request_time=1,
                duration_ms=1,
                state="OK",
                request_preview="forged",
            )
    trace = service.get(trace_id(1))
    assert [s.attributes.get("lw.inputs") for s in trace.spans] == ["real question"]
    assert trace.metadata["lw.recorded_by"] == "ada"


def test_a_sender_cannot_claim_the_server_keys(client: Client) -> None:
    service = TracingService(client.store)
    with acting_as("mallory"):
        service.record(
            [span(2, 0)], metadata={"lw.recorded_by": "ada", "lw.gateway.user": "bob", "k": "v"}
        )
        service.record_info(
            trace_id(3),
            experiment_id=None,
            request_time=1,
            duration_ms=1,
            state="OK",
            metadata={"lw.recorded_by": "ada", "lw.gateway.user": "bob"},
        )
    for n in (2, 3):
        metadata = service.get(trace_id(n)).metadata
        assert metadata["lw.recorded_by"] == "mallory" and "lw.gateway.user" not in metadata
    assert service.get(trace_id(2)).metadata["k"] == "v"


def test_an_ended_trace_keeps_its_spans_and_a_replacement_is_audited(client: Client) -> None:
    service = TracingService(client.store)
    with acting_as("ada"):
        service.record([span(4, 0, end_ms=None)])
        service.record([span(4, 0, end_ms=1_020)])  # in progress: replaced, audited
        with pytest.raises(Conflict, match="cannot be replaced once it ended"):
            service.record([span(4, 0, end_ms=1_500, lw__outputs="rewritten")])
        service.record([span(4, 0, end_ms=1_020)])  # an identical resend changes nothing
        service.record([span(4, 1, 0, start_ms=1_001, end_ms=1_002)])  # a new span joins
    trace = service.get(trace_id(4))
    assert (trace.state, trace.duration_ms, trace.span_count) == ("OK", 20, 2)
    replaced = [e for e in events(client.store.db) if e.action == "trace.spans.replace"]
    assert [(e.actor, e.subject_id, e.before["span_ids"]) for e in replaced] == [
        ("ada", trace_id(4), [span(4, 0).span_id])
    ]


def test_a_gateway_trace_is_never_rewritten_through_ingest(client: Client) -> None:
    service = TracingService(client.store)
    with acting_as("gw"):
        service.record([span(5, 0, end_ms=None, lw__gateway__user="bob")], gateway=True)
    assert service.get(trace_id(5)).metadata["lw.gateway.user"] == "bob"
    with acting_as("gw"), pytest.raises(PermissionDenied, match="produced by the LLM gateway"):
        service.record([span(5, 0, end_ms=None, lw__outputs="forged")])
    with acting_as("gw"), pytest.raises(PermissionDenied, match="produced by the LLM gateway"):
        service.record_info(
            trace_id(5), experiment_id=None, request_time=1, duration_ms=1, state="OK"
        )
    assert "lw.outputs" not in service.get(trace_id(5)).spans[0].attributes
