"""Recording and reading traces in the store (SQLite and PostgreSQL): one transaction per
batch, summaries derived from spans, search, tags, links, caps, redaction, assessments."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from _trace_spans import span, trace_id

from loopwright.client import Client
from loopwright.errors import InvalidInput, NotFound
from loopwright.tracing import caps, redaction
from loopwright.tracing.entities import (
    COST_KEY,
    INPUT_TOKENS_KEY,
    INPUTS_KEY,
    OUTPUT_TOKENS_KEY,
    OUTPUTS_KEY,
    Span,
    TraceLinks,
)


@pytest.fixture(autouse=True)
def _default_redactor() -> Iterator[None]:
    yield
    redaction.set_redactor(redaction.mask_secrets)


def _five_span_trace(n: int) -> list[Span]:
    llm = {
        INPUT_TOKENS_KEY: 10,
        OUTPUT_TOKENS_KEY: 4,
        COST_KEY: 0.002,
    }
    return [
        span(
            n,
            0,
            kind="CHAIN",
            start_ms=1_000 + n,
            end_ms=1_050 + n,
            **{
                INPUTS_KEY.replace(".", "__"): {"q": f"question {n}"},
                OUTPUTS_KEY.replace(".", "__"): f"answer {n}",
            },
        ),
        span(n, 1, 0, kind="RETRIEVER", start_ms=1_001 + n, end_ms=1_040 + n),
        span(n, 2, 0, kind="RERANKER", start_ms=1_001 + n, end_ms=1_040 + n),
        span(n, 3, 0, kind="PARSER", start_ms=1_001 + n, end_ms=1_040 + n),
        span(
            n,
            4,
            0,
            kind="LLM",
            start_ms=1_001 + n,
            end_ms=1_040 + n,
            **{k.replace(".", "__"): v for k, v in llm.items()},
        ),
    ]


def test_a_batch_of_traces_is_recorded_and_summarised(client: Client) -> None:
    spans = [s for n in range(30) for s in _five_span_trace(n)]
    ids = client.tracing.record(spans, tags={"app": "chat"}, links=TraceLinks(deployment="d1"))
    assert ids == [trace_id(n) for n in range(30)]
    trace = client.tracing.get(trace_id(7))
    assert trace.state == "OK"
    assert trace.request_time == 1_007 and trace.duration_ms == 50
    assert trace.request_preview == '{"q": "question 7"}'
    assert trace.response_preview == "answer 7"
    assert trace.token_usage is not None and trace.token_usage.total_tokens == 14
    assert trace.cost_usd == pytest.approx(0.002)
    assert [s.kind for s in trace.spans] == ["CHAIN", "RETRIEVER", "RERANKER", "PARSER", "LLM"]
    assert trace.tags == {"app": "chat"} and trace.links.deployment == "d1"
    page = client.tracing.search(max_results=1000)
    assert len(page.traces) == 30 and page.next_page_token is None
    assert page.traces[0].trace_id == trace_id(29)  # newest first


def test_spans_arriving_later_join_their_trace(client: Client) -> None:
    client.tracing.record([span(1, 1, 0, start_ms=1_005, end_ms=1_008)])
    in_progress = client.tracing.get(trace_id(1))
    assert in_progress.span_count == 1
    client.tracing.record([span(1, 0, start_ms=1_000, end_ms=None)])
    assert client.tracing.get(trace_id(1)).state == "IN_PROGRESS"
    ended = span(1, 0, start_ms=1_000, end_ms=1_020)
    client.tracing.record([ended])  # the same span again, now ended: replaced, not doubled
    trace = client.tracing.get(trace_id(1))
    assert (trace.state, trace.span_count, trace.duration_ms) == ("OK", 2, 20)


def test_search_filters_pages_and_orders(client: Client) -> None:
    spans = [s for n in range(12) for s in _five_span_trace(n)]
    client.tracing.record(spans[:30], tags={"team": "a"})
    client.tracing.record(
        spans[30:], tags={"team": "b"}, links=TraceLinks(prompt_versions=("qa/3",))
    )
    first = client.tracing.search(filter="tags.team = 'a'", max_results=4)
    assert len(first.traces) == 4 and first.next_page_token is not None
    rest = client.tracing.search(
        filter="tags.team = 'a'", max_results=4, page_token=first.next_page_token
    )
    assert len(rest.traces) == 2 and rest.next_page_token is None
    linked = client.tracing.search(filter="link.prompt_version = 'qa/3'", max_results=100)
    assert {t.trace_id for t in linked.traces} == {trace_id(n) for n in range(6, 12)}
    oldest = client.tracing.search(order_by=["timestamp_ms ASC"], max_results=1).traces[0]
    assert oldest.trace_id == trace_id(0)
    assert client.tracing.search(filter="status = 'ERROR'").traces == []
    with pytest.raises(InvalidInput):
        client.tracing.search(filter="nonsense.key = 1")
    with pytest.raises(InvalidInput, match="page token"):
        client.tracing.search(page_token="not-a-token")
    with pytest.raises(InvalidInput, match="max_results"):
        client.tracing.search(max_results=0)


def test_bad_spans_are_refused_whole_naming_the_span(client: Client) -> None:
    good = span(1, 0)
    bad_id = span(2, 0).__class__(**{**span(2, 0).__dict__, "trace_id": "XYZ"})
    with pytest.raises(InvalidInput, match="32 lowercase hex"):
        client.tracing.record([good, bad_id])
    with pytest.raises(InvalidInput, match="kind 'BOGUS'"):
        client.tracing.record([span(3, 0, kind="BOGUS")])
    for start, end in ((-1, 5), (0, 2**63), (2**64, None)):  # not nanoseconds since 1970
        late = span(4, 0).__class__(**{**span(4, 0).__dict__, "start_ns": start, "end_ns": end})
        with pytest.raises(InvalidInput, match="is not a time"):
            client.tracing.record([good, late])
    with pytest.raises(NotFound):
        client.tracing.get(trace_id(1))  # the batch failed whole: nothing stored
    with pytest.raises(NotFound, match="experiment"):
        client.tracing.record([good], experiment_id="f" * 32)


def test_sizes_are_capped_and_the_cut_is_stated(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(caps, "MAX_SPANS_PER_TRACE", 3)
    huge = "x" * (caps.MAX_ATTRIBUTE_CHARS + 500)
    spans = [span(1, 0, note=huge)] + [span(1, n, 0) for n in range(1, 6)]
    client.tracing.record(spans)
    trace = client.tracing.get(trace_id(1))
    assert trace.span_count == 3
    assert trace.tags[caps.TRUNCATED_SPANS_TAG] == "3"
    note = trace.spans[0].attributes["note"]
    assert len(note) <= caps.MAX_ATTRIBUTE_CHARS and note.endswith("chars]")


def test_secrets_are_masked_by_default_and_the_redactor_is_pluggable(client: Client) -> None:
    inputs = {"prompt": "key sk-proj-abcdefghijklmnopqrstuvwx ok", "api_key": "plain", "n": 3}
    client.tracing.record([span(1, 0, lw__inputs=inputs, authorization="Bearer abcdefghijklmnop")])
    stored = client.tracing.get(trace_id(1)).spans[0].attributes
    assert stored["lw.inputs"] == {"prompt": "key [REDACTED] ok", "api_key": "[REDACTED]", "n": 3}
    assert stored["authorization"] == "[REDACTED]"
    redaction.set_redactor(lambda key, value: "<email>" if key == "email" else value)
    client.tracing.record([span(2, 0, email="a@b.c", api_key="kept")])
    assert client.tracing.get(trace_id(2)).spans[0].attributes == {
        "email": "<email>",
        "api_key": "kept",
    }
    redaction.set_redactor(None)
    client.tracing.record([span(3, 0, api_key="sk-proj-abcdefghijklmnopqrstuvwx")])
    assert client.tracing.get(trace_id(3)).spans[0].attributes["api_key"].startswith("sk-proj")


def test_tags_links_and_deletion(client: Client) -> None:
    client.tracing.record([span(1, 0), span(2, 0)])
    client.tracing.set_tag(trace_id(1), "reviewed", "yes")
    client.tracing.link([trace_id(1)], TraceLinks(run_id="r" * 32, model_version="m/2"))
    trace = client.tracing.get(trace_id(1))
    assert trace.tags == {"reviewed": "yes"}
    assert (trace.links.run_id, trace.links.model_version) == ("r" * 32, "m/2")
    client.tracing.delete_tag(trace_id(1), "reviewed")
    with pytest.raises(NotFound, match="no tag"):
        client.tracing.delete_tag(trace_id(1), "reviewed")
    with pytest.raises(NotFound):
        client.tracing.set_tag(trace_id(9), "k", "v")
    with pytest.raises(InvalidInput):
        client.tracing.delete()
    assert client.tracing.delete(trace_ids=[trace_id(1)]) == 1
    with pytest.raises(NotFound):
        client.tracing.get(trace_id(1))
    assert [e.action for e in client.audit_events(subject_type="trace")][-1] == "trace.delete"


def test_assessments_override_update_and_delete(client: Client) -> None:
    client.tracing.record([span(1, 0)])
    first = client.tracing.log_assessment(
        trace_id(1), "correct", False, source_type="LLM_JUDGE", source_id="judge/1"
    )
    fixed = client.tracing.log_assessment(
        trace_id(1),
        "correct",
        True,
        source_type="HUMAN",
        source_id="ada",
        rationale="checked",
        overrides=first.assessment_id,
    )
    client.tracing.log_assessment(trace_id(1), "answer", {"text": "42"}, kind="expectation")
    found = {a.assessment_id: a for a in client.tracing.assessments(trace_id(1))}
    assert not found[first.assessment_id].valid and found[fixed.assessment_id].valid
    updated = client.tracing.update_assessment(trace_id(1), fixed.assessment_id, value=0.5)
    assert updated.value == 0.5 and updated.rationale == "checked"
    client.tracing.delete_assessment(trace_id(1), fixed.assessment_id)
    assert client.tracing.get_assessment(trace_id(1), first.assessment_id).valid  # restored
    with pytest.raises(InvalidInput, match="source type"):
        client.tracing.log_assessment(trace_id(1), "x", 1, source_type="ROBOT")
    with pytest.raises(InvalidInput, match="JSON"):
        client.tracing.log_assessment(trace_id(1), "x", float("nan"))
    with pytest.raises(NotFound):
        client.tracing.log_assessment(trace_id(5), "x", 1)
    with pytest.raises(NotFound, match="to override"):
        client.tracing.log_assessment(trace_id(1), "x", 1, overrides="0" * 32)
