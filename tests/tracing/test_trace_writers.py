"""Who may write to a stored trace: its recorder only, never to a gateway trace, replacing
stored spans only while it is in progress, each replacement audited; and who reads a gateway
trace: its user and editors and above."""

from __future__ import annotations

import pytest
from _trace_spans import span, trace_id

from loopwright.client import Client
from loopwright.errors import Conflict, NotFound, PermissionDenied
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
        service._record_gateway([span(5, 0, end_ms=None, lw__gateway__user="bob")])
    assert service.get(trace_id(5)).metadata["lw.gateway.user"] == "bob"
    with acting_as("gw"), pytest.raises(PermissionDenied, match="produced by the LLM gateway"):
        service.record([span(5, 0, end_ms=None, lw__outputs="forged")])
    with acting_as("gw"), pytest.raises(PermissionDenied, match="produced by the LLM gateway"):
        service.record_info(
            trace_id(5), experiment_id=None, request_time=1, duration_ms=1, state="OK"
        )
    assert "lw.outputs" not in service.get(trace_id(5)).spans[0].attributes


def _gateway_traces(client: Client) -> TracingService:
    """Gateway traces 10 (bob's) and 11 (carl's), and trace 12 recorded through ingest."""
    service = TracingService(client.store)
    with acting_as("gw"):
        service._record_gateway([span(10, 0, lw__gateway__user="bob", lw__inputs="bob asks")])
        service._record_gateway([span(11, 0, lw__gateway__user="carl")])
    with acting_as("ada"):
        service.record([span(12, 0)])
    return service


def test_a_viewer_reads_only_their_own_gateway_traces(client: Client) -> None:
    _gateway_traces(client)
    bob = TracingService(client.store, reader=("bob", "viewer"))
    with pytest.raises(NotFound):
        bob.get(trace_id(11))
    assert bob.get_many([trace_id(n) for n in (10, 11, 12)]) == bob.get_many(
        [trace_id(10), trace_id(12)]
    )
    found = bob.search(filter="text LIKE '%'")
    assert sorted(t.trace_id for t in found.traces) == [trace_id(10), trace_id(12)]
    first = bob.search(max_results=1)
    assert first.next_page_token is not None  # paging counts only what bob may see
    second = bob.search(max_results=1, page_token=first.next_page_token)
    assert second.next_page_token is None
    assert bob.get(trace_id(10)).spans[0].attributes["lw.inputs"] == "bob asks"


def test_editors_and_the_embedded_api_read_every_trace(client: Client) -> None:
    _gateway_traces(client)
    everyone = [trace_id(n) for n in (10, 11, 12)]
    for reader in (None, ("ed", "editor"), ("root", "admin"), ("ann", "approver")):
        service = TracingService(client.store, reader=reader)
        assert sorted(t.trace_id for t in service.search().traces) == everyone
        assert service.get(trace_id(11)).metadata["lw.gateway.user"] == "carl"
