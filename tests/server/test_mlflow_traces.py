"""MLflow's own client against our trace API: ``@mlflow.trace`` with synchronous and with the
default asynchronous export, ``mlflow.get_trace`` / ``search_traces``, trace tags, assessments
(feedback, expectations, update, override, delete) and run links, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any, cast

import httpx
import pytest

# MLflow's tracing swallows its own warnings' exceptions (-W error) and drops the trace.
pytestmark = pytest.mark.filterwarnings("ignore")


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def url(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    module_server: Callable[..., AbstractContextManager[Any]],
) -> Iterator[str]:
    with module_server(request, tmp_path_factory) as server:
        yield server.url


@pytest.fixture
def mlflow(url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    import mlflow as real_mlflow
    import mlflow.tracking.fluent as fluent

    for name, value in (
        ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0"),
        ("MLFLOW_HTTP_REQUEST_TIMEOUT", "60"),
        ("MLFLOW_DISABLE_TELEMETRY", "true"),
        ("DO_NOT_TRACK", "true"),
        ("MLFLOW_TRACKING_URI", url),
    ):
        monkeypatch.setenv(name, value)
    for name in ("MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_TRACKING_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    real_mlflow.set_tracking_uri(url)
    try:
        yield real_mlflow
    finally:
        real_mlflow.flush_trace_async_logging()
        while real_mlflow.active_run() is not None:
            real_mlflow.end_run()
        fluent._active_experiment_id = None
        real_mlflow.set_tracking_uri(None)  # type: ignore[arg-type]
        cast(Callable[[], None], real_mlflow.tracing.reset)()  # untyped in MLflow


def _pipeline(mlflow: Any) -> Callable[[str], str]:
    """The benchmark's shape: CHAIN -> RETRIEVER, RERANKER, PARSER, LLM."""
    trace: Callable[..., Callable[[Callable[[str], str]], Callable[[str], str]]] = mlflow.trace

    @trace(span_type="LLM")
    def generate(prompt: str) -> str:
        return f"answer to {prompt}"

    @trace(span_type="CHAIN")
    def answer(question: str) -> str:
        with mlflow.start_span("retrieve", span_type="RETRIEVER") as span:
            span.set_inputs({"query": question})
            span.set_outputs(["doc-1", "doc-2"])
        with mlflow.start_span("rerank", span_type="RERANKER") as span:
            span.set_outputs(["doc-2"])
        with mlflow.start_span("parse", span_type="PARSER") as span:
            span.set_outputs({"prompt": question})
        return generate(question)

    return answer


@pytest.mark.parametrize("asynchronous", ["false", "true"], ids=["sync", "async"])
def test_mlflow_trace_exports_every_trace(
    mlflow: Any, monkeypatch: pytest.MonkeyPatch, asynchronous: str
) -> None:
    monkeypatch.setenv("MLFLOW_ENABLE_ASYNC_TRACE_LOGGING", asynchronous)
    mlflow.tracing.reset()
    experiment = mlflow.set_experiment(f"traces-{asynchronous}")
    answer = _pipeline(mlflow)
    for n in range(25):
        answer(f"q{n}")
    mlflow.flush_trace_async_logging()
    traces = mlflow.search_traces(
        locations=[experiment.experiment_id], return_type="list", max_results=100
    )
    assert len(traces) == 25
    previews = {t.info.request_preview: t.info.trace_id for t in traces}
    assert set(previews) == {f'{{"question": "q{n}"}}' for n in range(25)}
    trace = mlflow.get_trace(previews['{"question": "q24"}'])
    assert trace.info.state == "OK"
    assert trace.info.response_preview == '"answer to q24"'
    spans = {span.name: span for span in trace.data.spans}
    assert {name: span.span_type for name, span in spans.items()} == {
        "answer": "CHAIN",
        "retrieve": "RETRIEVER",
        "rerank": "RERANKER",
        "parse": "PARSER",
        "generate": "LLM",
    }
    root = spans["answer"]
    assert root.parent_id is None and spans["generate"].parent_id == root.span_id
    assert spans["retrieve"].inputs == {"query": "q24"}
    assert spans["retrieve"].outputs == ["doc-1", "doc-2"]
    assert root.outputs == "answer to q24"


def test_search_filters_tags_and_run_links(mlflow: Any) -> None:
    mlflow.set_experiment("traces-search")
    answer = _pipeline(mlflow)
    with mlflow.start_run() as run:
        answer("inside a run")
    answer("outside")
    mlflow.flush_trace_async_logging()
    found = mlflow.search_traces(run_id=run.info.run_id, return_type="list")
    assert [t.info.request_preview for t in found] == ['{"question": "inside a run"}']
    trace_id = found[0].info.trace_id
    mlflow.set_trace_tag(trace_id, "reviewed", "yes")
    tagged = mlflow.search_traces(filter_string="tags.reviewed = 'yes'", return_type="list")
    assert [t.info.trace_id for t in tagged] == [trace_id]
    mlflow.delete_trace_tag(trace_id, "reviewed")
    assert "reviewed" not in mlflow.get_trace(trace_id).info.tags
    ok = mlflow.search_traces(filter_string="trace.status = 'OK'", return_type="list")
    assert len(ok) == 2
    with pytest.raises(mlflow.exceptions.MlflowException):
        mlflow.search_traces(filter_string="nonsense.x = 1", return_type="list")


def test_assessments_round_trip(mlflow: Any) -> None:
    from mlflow.entities import AssessmentSource, Feedback

    mlflow.set_experiment("traces-assessments")
    _pipeline(mlflow)("judge me")
    mlflow.flush_trace_async_logging()
    trace_id = mlflow.get_last_active_trace_id()
    human = AssessmentSource(source_type="HUMAN", source_id="ada")
    feedback = mlflow.log_feedback(
        trace_id=trace_id, name="correct", value=False, source=human, rationale="wrong doc"
    )
    expectation = mlflow.log_expectation(
        trace_id=trace_id, name="expected", value={"answer": "42"}, source=human
    )
    stored = mlflow.get_assessment(trace_id, feedback.assessment_id)
    assert (stored.value, stored.rationale, stored.source.source_id) == (False, "wrong doc", "ada")
    mlflow.update_assessment(
        trace_id=trace_id,
        assessment_id=feedback.assessment_id,
        assessment=Feedback(name="correct", value=True),
    )
    assert mlflow.get_assessment(trace_id, feedback.assessment_id).value is True
    override = mlflow.override_feedback(
        trace_id=trace_id, assessment_id=feedback.assessment_id, value=False, rationale="again"
    )
    assert override.overrides == feedback.assessment_id
    assert mlflow.get_assessment(trace_id, feedback.assessment_id).valid is False
    mlflow.delete_assessment(trace_id, expectation.assessment_id)
    names = sorted((a.name, a.valid) for a in mlflow.get_trace(trace_id).info.assessments)
    assert names == [("correct", False), ("correct", True)]
    with pytest.raises(mlflow.exceptions.MlflowException):
        mlflow.get_assessment(trace_id, "a-" + "0" * 32)


def test_malformed_trace_requests_get_mlflow_errors(url: str) -> None:
    with httpx.Client(base_url=f"{url}/api/3.0/mlflow", timeout=30) as http:
        bad_id = http.post("/traces", json={"trace": {"trace_info": {"trace_id": "tr-xyz"}}})
        assert bad_id.status_code == 400
        assert bad_id.json()["error_code"] == "INVALID_PARAMETER_VALUE"
        missing = http.get("/traces/get", params={"trace_id": "tr-" + "0" * 32})
        assert missing.status_code == 404
        assert missing.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
        bad_time = http.post(
            "/traces",
            json={"trace": {"trace_info": {"trace_id": "tr-" + "1" * 32, "request_time": "soon"}}},
        )
        assert bad_time.status_code == 400
        for when in (-(2**51), 2**62, "0001-01-01T00:00:00Z", 1e300):  # no Timestamp, or pre-1970
            info = {"trace_id": "tr-" + "2" * 32, "request_time": when}
            refused = http.post("/traces", json={"trace": {"trace_info": info}})
            assert refused.status_code == 400, (when, refused.text)
            assert "is not a time" in refused.json()["message"]
        assert http.post("/traces/search", json={}).status_code == 200  # nothing half-stored
    with httpx.Client(base_url=f"{url}/api/2.0/mlflow", timeout=30) as http:
        refused = http.post("/traces", json={"experiment_id": "0", "timestamp_ms": -1})
        assert refused.status_code == 400, refused.text
    assert httpx.get(f"{url}/version").text.startswith("3.")


def test_links_before_the_trace_full_text_and_serialized_expectations(url: str) -> None:
    with httpx.Client(base_url=f"{url}/api/3.0/mlflow", timeout=30) as http:
        early = "tr-" + "e" * 32
        linked = http.post("/traces/link-to-run", json={"trace_ids": [early], "run_id": "r" * 32})
        assert linked.status_code == 200  # the trace comes later (async export): a place is held
        held = http.get(f"/traces/{early}").json()["trace"]["trace_info"]
        assert held["state"] == "IN_PROGRESS"
        info = {
            "trace_id": early,
            "trace_location": {"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {}},
            "request_time": "2026-01-01T00:00:00Z",
            "execution_duration": "0.250s",
            "state": "OK",
            "request_preview": "refund my order",
        }
        assert http.post("/traces", json={"trace": {"trace_info": info}}).status_code == 200
        found = http.post("/traces/search", json={"filter": "run_id = '" + "r" * 32 + "'"})
        assert [t["trace_id"] for t in found.json()["traces"]] == [early]
        assert found.json()["traces"][0]["execution_duration"] == "0.250s"
        text = http.post("/traces/search", json={"filter": "trace.text LIKE '%refund%'"})
        assert [t["trace_id"] for t in text.json()["traces"]] == [early]
        named = {**info, "trace_id": "tr-1234"}  # MLflow lets a client pick a short id
        assert http.post("/traces", json={"trace": {"trace_info": named}}).status_code == 200
        expectation = {
            "assessment_name": "expected",
            "expectation": {"value": {"answer": 42}},
            "source": {"source_type": "HUMAN", "source_id": "ada"},
        }
        made = http.post("/traces/tr-1234/assessments", json={"assessment": expectation})
        serialized = made.json()["assessment"]["expectation"]["serialized_value"]
        assert serialized == {"serialization_format": "JSON_FORMAT", "value": '{"answer": 42}'}
        bad = http.post("/traces/search", json={"filter": "trace.text > 'x'"})
        assert bad.status_code == 400


def test_the_trace_data_file_matches_mlflows_span_dicts(mlflow: Any, url: str) -> None:
    from mlflow.entities import SpanEvent, TraceData

    mlflow.set_experiment("traces-artifact")
    with mlflow.start_span(name="test") as span:
        span.set_attributes({"fruit": "apple"})
        # SpanEvent's stubs leave from_proto abstract; the class is concrete at run time.
        event = cast(Any, SpanEvent)("test_event", timestamp=99999, attributes={"foo": "bar"})
        span.add_event(event)
    mlflow.flush_trace_async_logging()
    response = httpx.get(
        f"{url}/ajax-api/2.0/mlflow/get-trace-artifact", params={"request_id": span.trace_id}
    )
    assert response.status_code == 200
    assert response.headers["Content-Disposition"] == "attachment; filename=traces.json"
    (stored,) = TraceData.from_dict(response.json()).spans
    assert stored.to_dict() == span.to_dict()


def test_mlflow_2_start_end_and_get_trace_info(mlflow: Any) -> None:
    from mlflow.entities.trace_status import TraceStatus

    client = mlflow.MlflowClient()
    experiment_id = client.create_experiment("legacy traces")
    store = client._tracing_client.store
    started = store.deprecated_start_trace_v2(
        experiment_id=experiment_id,
        timestamp_ms=1000,
        request_metadata={"meta1": "apple"},
        tags={"tag1": "football"},
    )
    assert (started.timestamp_ms, started.status) == (1000, TraceStatus.IN_PROGRESS)
    ended = store.deprecated_end_trace_v2(
        request_id=started.request_id,
        timestamp_ms=3000,
        status=TraceStatus.OK,
        request_metadata={"meta2": "grape"},
        tags={"tag1": "soccer"},
    )
    assert (ended.execution_time_ms, ended.status) == (2000, TraceStatus.OK)
    assert ended.request_metadata == {"meta1": "apple", "meta2": "grape"}
    assert {k: v for k, v in ended.tags.items() if not k.startswith("mlflow.")} == {
        "tag1": "soccer"
    }
    assert client._tracing_client.get_trace_info(started.request_id).experiment_id == experiment_id


def test_filter_correlation_as_mlflow_computes_it(mlflow: Any) -> None:
    import math

    from mlflow.entities.trace_status import TraceStatus
    from mlflow.tracing.client import TracingClient

    client = mlflow.MlflowClient()
    experiment_id = client.create_experiment("correlation")
    for n in range(10):
        tags = {"env": "prod" if n < 6 else "dev", "kind": "TOOL" if n < 7 else "LLM"}
        span = client.start_trace(name=f"t{n}", experiment_id=experiment_id, tags=tags)
        client.end_trace(request_id=span.request_id, status=TraceStatus.OK)
    mlflow.flush_trace_async_logging()
    tracing = TracingClient(tracking_uri=mlflow.get_tracking_uri())
    found = tracing.calculate_trace_filter_correlation(
        experiment_ids=[experiment_id],
        filter_string1="tags.env = 'prod'",
        filter_string2="tags.kind = 'TOOL'",
    )
    counts = (found.total_count, found.filter1_count, found.filter2_count, found.joint_count)
    assert counts == (10, 6, 7, 6)
    assert 0.6 < found.npmi < 0.8 and found.npmi_smoothed is not None
    never = tracing.calculate_trace_filter_correlation(
        experiment_ids=[experiment_id],
        filter_string1="tags.env = 'staging'",
        filter_string2="tags.kind = 'TOOL'",
    )
    assert math.isnan(never.npmi)
    with pytest.raises(mlflow.exceptions.MlflowException, match="Invalid"):
        tracing.calculate_trace_filter_correlation(
            experiment_ids=[experiment_id],
            filter_string1="invalid.filter = 'x'",
            filter_string2="tags.kind = 'TOOL'",
        )


def test_trace_metrics_by_status(mlflow: Any, url: str) -> None:
    from dataclasses import asdict

    from mlflow.entities.trace_metrics import AggregationType, MetricAggregation, MetricViewType
    from mlflow.entities.trace_status import TraceStatus
    from mlflow.tracing.constant import TraceMetricDimensionKey, TraceMetricKey

    client = mlflow.MlflowClient()
    experiment_id = client.create_experiment("trace metrics")
    for name, status in (("a", TraceStatus.OK), ("b", TraceStatus.OK), ("c", TraceStatus.ERROR)):
        span = client.start_trace(name=name, experiment_id=experiment_id)
        client.end_trace(request_id=span.request_id, status=status)
    mlflow.flush_trace_async_logging()
    store = client._tracing_client.store
    points = store.query_trace_metrics(
        experiment_ids=[experiment_id],
        view_type=MetricViewType.TRACES,
        metric_name=TraceMetricKey.TRACE_COUNT,
        aggregations=[MetricAggregation(aggregation_type=AggregationType.COUNT)],
        dimensions=[TraceMetricDimensionKey.TRACE_STATUS],
    )
    assert [asdict(p) for p in points] == [
        {
            "metric_name": "trace_count",
            "dimensions": {"trace_status": "ERROR"},
            "values": {"COUNT": 1},
        },
        {
            "metric_name": "trace_count",
            "dimensions": {"trace_status": "OK"},
            "values": {"COUNT": 2},
        },
    ]
    latency = store.query_trace_metrics(
        experiment_ids=[experiment_id],
        view_type=MetricViewType.TRACES,
        metric_name=TraceMetricKey.LATENCY,
        aggregations=[
            MetricAggregation(aggregation_type=AggregationType.PERCENTILE, percentile_value=95)
        ],
    )
    assert list(latency[0].values) == ["P95.0"] and latency[0].values["P95.0"] >= 0
    with pytest.raises(mlflow.exceptions.MlflowException, match="only TRACES"):
        store.query_trace_metrics(
            experiment_ids=[experiment_id],
            view_type=MetricViewType.SPANS,
            metric_name="span_count",
            aggregations=[MetricAggregation(aggregation_type=AggregationType.COUNT)],
        )


def test_a_viewer_reads_only_their_own_gateway_traces_and_cannot_delete(
    auth_server: Any,
) -> None:
    """The rule of the tracing service, through the native and MLflow routes: vic (viewer)
    finds only his own gateway trace; ada (editor) finds both; deleting needs an admin."""
    from loopwright.store.home import acting_as, open_store
    from loopwright.tracing.entities import Span
    from loopwright.tracing.service import TracingService

    ids = {user: f"{n:032x}" for n, user in ((1, "vic"), (2, "ada"))}
    with open_store(auth_server.settings) as store, acting_as("gateway"):
        for user, trace_id in ids.items():
            attributes = {"lw.gateway.user": user}
            root = Span(trace_id, "a" * 16, None, "chat", "LLM", 1, 2, attributes=attributes)
            TracingService(store)._record_gateway([root])

    def call(user: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {auth_server.tokens[user]}"}
        return httpx.request(method, auth_server.url + path, headers=headers, timeout=60, **kwargs)

    assert call("vic", "GET", f"/api/v1/traces/{ids['vic']}").status_code == 200
    assert call("vic", "GET", f"/api/v1/traces/{ids['ada']}").status_code == 404
    assert call("vic", "GET", f"/api/3.0/mlflow/traces/tr-{ids['ada']}").status_code == 404
    assert call("vic", "GET", f"/ajax-api/2.0/mlflow/traces/{ids['ada']}/info").status_code == 404
    for user, expected in (("vic", [ids["vic"]]), ("ada", sorted(ids.values()))):
        native = call(user, "POST", "/api/v1/traces/search", json={})
        assert sorted(t["trace_id"] for t in native.json()["traces"]) == expected
        found = call(user, "POST", "/api/3.0/mlflow/traces/search", json={})
        assert sorted(t["trace_id"][3:] for t in found.json()["traces"]) == expected
    body = {"experiment_id": "0", "request_ids": [f"tr-{ids['ada']}"]}
    for user in ("vic", "ada"):
        refused = call(user, "POST", "/api/3.0/mlflow/traces/delete-traces", json=body)
        assert refused.status_code == 403, refused.text
    assert (
        call("vic", "POST", "/api/v1/traces/delete", json={"trace_ids": [ids["ada"]]}).status_code
        == 403
    )
    assert call(
        "boss", "POST", "/api/v1/traces/delete", json={"trace_ids": [ids["ada"]]}
    ).json() == {"deleted": 1}
