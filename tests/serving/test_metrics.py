"""SLA metrics: ``/metrics`` counts what a served model answered, summed over workers, and
``live_stats`` reads percentiles, throughput and error rates back from the instances."""

from __future__ import annotations

import glob
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from _served_model import MODEL, free_port, live, training_frame

from loopwright.client import Client
from loopwright.serving.live import MIN_WINDOW_REQUESTS, live_stats, quantile
from loopwright.serving.metrics import LATENCY_BUCKETS
from loopwright.serving.model import ServedModel
from loopwright.serving.repository import ModelRepository
from loopwright.serving.server import ServeConfig, build_app
from loopwright.serving.sources import load_source, resolve_source

INFER = f"/v2/models/{MODEL}/infer"
MODEL_LABELS = {"deployment": MODEL, "variant": "primary", "model": MODEL, "version": "1"}


def _samples(text: str) -> list[tuple[str, dict[str, str], float]]:
    from prometheus_client.parser import text_string_to_metric_families

    return [
        (sample.name, sample.labels, sample.value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    ]


def _value(samples: list[tuple[str, dict[str, str], float]], name: str, **labels: str) -> float:
    """The sum of ``name``'s samples whose labels include ``labels`` (0 if none)."""
    return sum(
        value
        for sample, have, value in samples
        if sample == name and all(have.get(k) == v for k, v in labels.items())
    )


def _infer_body(color: str = "red", rows: int = 1) -> dict[str, Any]:
    def column(name: str, datatype: str, value: Any) -> dict[str, Any]:
        return {"name": name, "datatype": datatype, "shape": [rows], "data": [value] * rows}

    return {
        "inputs": [
            column("a", "FP64", 0.1),
            column("b", "FP64", 1.0),
            column("color", "BYTES", color),
        ]
    }


def _records(rows: int) -> dict[str, Any]:
    X, _ = training_frame()
    return {"dataframe_records": X[:rows].to_dict(orient="records")}


@pytest.fixture
def served(client: Client, model: Any, tmp_path: Path) -> Iterator[str]:
    repository = ModelRepository([resolve_source(f"models:/{MODEL}/1", client)])
    repository.load_all()
    config = ServeConfig(sources=(), log_root=str(tmp_path / "predictions"))
    with live(build_app(config, repository)) as url:
        yield url


def test_metrics_count_answers_errors_latencies_batches_and_the_log(served: str) -> None:
    url = served
    good = [httpx.post(f"{url}{INFER}", json=_infer_body(rows=r)) for r in (1, 2, 3)]
    good += [httpx.post(f"{url}/invocations", json=_records(r)) for r in (1, 4)]
    assert [a.status_code for a in good] == [200] * 5
    missing = httpx.post(f"{url}{INFER}", json={"inputs": _infer_body()["inputs"][:2]})
    not_json = httpx.post(
        f"{url}/invocations", content=b"{", headers={"Content-Type": "application/json"}
    )
    raising = httpx.post(f"{url}{INFER}", json=_infer_body("purple"))  # the encoder refuses it
    unknown = httpx.post(f"{url}/v2/models/nope/infer", json=_infer_body())
    no_route = httpx.get(f"{url}/nowhere")
    statuses = [a.status_code for a in (missing, not_json, raising, unknown, no_route)]
    assert statuses == [400, 400, 500, 404, 404]

    scraped = httpx.get(f"{url}/metrics")
    assert scraped.status_code == 200
    assert scraped.headers["content-type"].startswith("text/plain")
    samples = _samples(scraped.text)
    answers = "loopwright_requests_total"
    infer = {"protocol": "oip", "route": "/v2/models/{name}/infer"}
    assert _value(samples, answers, **infer, status="200") == 3
    assert _value(samples, answers, **infer, status="400") == 1
    assert _value(samples, answers, **infer, status="404") == 1
    assert _value(samples, answers, **infer, status="500") == 1
    invocations = {"protocol": "mlflow", "route": "/invocations"}
    assert _value(samples, answers, **invocations, status="200") == 2
    assert _value(samples, answers, **invocations, status="400") == 1
    assert _value(samples, answers, protocol="http", status="404") == 1
    ready = {"protocol": "oip", "route": "/v2/health/ready", "status": "200"}
    assert _value(samples, answers, **ready) == 1  # live() waited for it
    assert _value(samples, answers) == 11  # /metrics itself is not counted

    errors = "loopwright_errors_total"
    assert _value(samples, errors, protocol="oip", status="400", code="BAD_REQUEST") == 1
    assert _value(samples, errors, protocol="mlflow", status="400", code="BAD_REQUEST") == 1
    assert _value(samples, errors, protocol="oip", status="500", code="MODEL_FAILED") == 1
    assert _value(samples, errors, protocol="oip", status="404") == 1
    assert _value(samples, errors, protocol="http", status="404", code="NO_ROUTE") == 1
    assert _value(samples, errors) == 5

    # Every request that reached the model is one observation: 5 answered, the missing column
    # and the raising model (the unparsable body never named a variant, the unknown model none).
    latency = "loopwright_inference_duration_seconds"
    assert _value(samples, f"{latency}_count", **MODEL_LABELS) == 7
    assert _value(samples, f"{latency}_bucket", **MODEL_LABELS, le="+Inf") == 7
    assert 0 < _value(samples, f"{latency}_sum", **MODEL_LABELS) < 7 * 10
    failed = "loopwright_inference_errors_total"
    assert _value(samples, failed, **MODEL_LABELS, status="400") == 1
    assert _value(samples, failed, **MODEL_LABELS, status="500") == 1
    assert _value(samples, failed) == 2

    # Predict calls: the five answered and the raising one; rows as sent.
    by_model = {"model": MODEL, "version": "1"}
    assert _value(samples, "loopwright_batch_rows_count", **by_model) == 6
    assert _value(samples, "loopwright_batch_rows_sum", **by_model) == 1 + 2 + 3 + 1 + 4 + 1
    assert _value(samples, "loopwright_batch_requests_sum", **by_model) == 6
    assert _value(samples, "loopwright_batch_rows_bucket", **by_model, le="1.0") == 3
    assert _value(samples, "loopwright_queue_rows", **by_model) == 0
    assert _value(samples, "loopwright_model_load_seconds", **by_model) > 0
    assert 0 < _value(samples, "loopwright_serving_start_time_seconds") <= time.time()

    # The log's counters are read at scrape time: the five answers reach it after their
    # responses, and its file after the next flush.
    deadline = time.monotonic() + 20
    while True:
        samples = _samples(httpx.get(f"{url}/metrics").text)
        if _value(samples, "loopwright_prediction_log_written_total") == 5:
            break
        assert time.monotonic() < deadline, "the prediction log did not write 5 records"
        time.sleep(0.1)
    assert _value(samples, "loopwright_prediction_log_appended_total") == 5
    assert _value(samples, "loopwright_prediction_log_dropped_total") == 0
    assert _value(samples, "loopwright_prediction_log_queued") == 0
    assert _value(samples, "loopwright_shadow_dropped_total") == 0


def test_grpc_inference_is_counted_in_the_same_series(client: Client, model: Any) -> None:
    grpc = pytest.importorskip("grpc")
    from loopwright.serving._grpc import inference_pb2 as pb
    from loopwright.serving._grpc import inference_pb2_grpc

    source = resolve_source(f"models:/{MODEL}/1", client)
    repository = ModelRepository([source])
    repository.load_all()
    address = f"127.0.0.1:{free_port()}"
    config = ServeConfig(sources=(source,), grpc_address=address)

    def tensor(name: str, datatype: str, **contents: Any) -> Any:
        return pb.ModelInferRequest.InferInputTensor(
            name=name, datatype=datatype, shape=[1], contents=pb.InferTensorContents(**contents)
        )

    a, b = tensor("a", "FP64", fp64_contents=[0.1]), tensor("b", "FP64", fp64_contents=[1.0])
    color = tensor("color", "BYTES", bytes_contents=[b"red"])
    codes = []
    with live(build_app(config, repository)) as url, grpc.insecure_channel(address) as channel:
        stub = inference_pb2_grpc.GRPCInferenceServiceStub(channel)
        for name, inputs in ((MODEL, [a, b, color]), (MODEL, [a, b]), ("nope", [a, b, color])):
            try:
                stub.ModelInfer(pb.ModelInferRequest(model_name=name, inputs=inputs))
                codes.append("OK")
            except grpc.RpcError as exc:
                codes.append(exc.code().name)
        samples = _samples(httpx.get(f"{url}/metrics").text)
    assert codes == ["OK", "INVALID_ARGUMENT", "NOT_FOUND"]
    rpc = {"protocol": "grpc", "route": "ModelInfer"}
    answers = "loopwright_requests_total"
    assert [_value(samples, answers, **rpc, status=s) for s in ("200", "400", "404")] == [1] * 3
    errors = "loopwright_errors_total"
    assert _value(samples, errors, protocol="grpc", status="400", code="INVALID_ARGUMENT") == 1
    assert _value(samples, errors, protocol="grpc", status="404", code="NOT_FOUND") == 1
    # The answered call and the refused input reached the model; the unknown name did not.
    assert _value(samples, "loopwright_inference_duration_seconds_count", **MODEL_LABELS) == 2
    failed = "loopwright_inference_errors_total"
    assert _value(samples, failed, **MODEL_LABELS, status="400") == 1
    assert _value(samples, failed) == 1


def test_log_drops_are_counted_once_however_often_metrics_are_scraped(
    client: Client, model: Any, tmp_path: Path
) -> None:
    from loopwright.serving.app import create_app
    from loopwright.serving.prediction_log import PredictionLog

    repository = ModelRepository([resolve_source(f"models:/{MODEL}/1", client)])
    repository.load_all()
    # Room for two records, which cannot be written (a file stands where the deployment's
    # folder goes): they stay queued, and the other three are dropped.
    root = tmp_path / "predictions"
    root.mkdir()
    (root / f"deployment={MODEL}").write_text("not a folder")
    log = PredictionLog(root, max_queue=2, flush_interval=600)
    with live(create_app(repository, log=log)) as url:
        for _ in range(5):
            assert httpx.post(f"{url}/invocations", json=_records(1)).status_code == 200
        deadline = time.monotonic() + 20
        while log.stats().appended + log.stats().dropped < 5:  # appended after each response
            assert time.monotonic() < deadline, log.stats()
            time.sleep(0.05)
        scrapes = [_samples(httpx.get(f"{url}/metrics").text) for _ in range(3)]
    for samples in scrapes:
        assert _value(samples, "loopwright_prediction_log_appended_total") == 2
        assert _value(samples, "loopwright_prediction_log_dropped_total") == 3
        assert _value(samples, "loopwright_prediction_log_queued") == 2
        assert _value(samples, "loopwright_prediction_log_written_total") == 0


def test_dropped_shadow_copies_are_counted(served_model: ServedModel) -> None:
    import asyncio
    from concurrent.futures import ThreadPoolExecutor
    from datetime import UTC, datetime

    from prometheus_client import generate_latest

    from loopwright.serving.batching import Batcher
    from loopwright.serving.metrics import ServingMetrics
    from loopwright.serving.routing import ModelSlot, Route
    from loopwright.serving.shadow import ShadowCopies

    metrics = ServingMetrics(ModelRepository([]))
    with ThreadPoolExecutor(1) as executor:
        batcher = Batcher(served_model, executor, max_batch_size=1, max_latency_ms=0)
        twin = Route("twin", 1.0, ModelSlot(served_model, batcher))
        shadows = ShadowCopies("churn", None, max_in_flight=0, metrics=metrics)  # drops all

        async def send() -> None:
            shadows.send([twin, twin], None, ("predict",), "r1", datetime.now(UTC))

        asyncio.run(send())
    samples = _samples(generate_latest(metrics.registry).decode())
    assert shadows.stats().dropped == 2
    assert _value(samples, "loopwright_shadow_dropped_total") == 2
    assert _value(samples, "loopwright_inference_duration_seconds_count") == 0


def test_merged_requests_are_one_batch_and_queue_depth_is_read_at_scrape_time(
    client: Client, model: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from loopwright.serving import batching

    # A first request is held on the model thread: the six sent meanwhile wait in the queue.
    monkeypatch.setattr(batching, "INLINE_BELOW_MS", 0.0)
    holding, release = threading.Event(), threading.Event()
    batches: list[tuple[int, int]] = []

    def hold_the_first(served: ServedModel, requests: int, rows: int) -> None:
        batches.append((requests, rows))
        if not holding.is_set():
            holding.set()
            release.wait(30)

    repository = ModelRepository(
        [resolve_source(f"models:/{MODEL}/1", client)],
        max_batch_size=64,
        max_latency_ms=5,
        on_batch=hold_the_first,
    )
    repository.load_all()
    with live(build_app(ServeConfig(sources=()), repository)) as url:
        answers: list[httpx.Response] = []

        def send(rows: int) -> None:
            answers.append(httpx.post(f"{url}/invocations", json=_records(rows), timeout=30))

        first = threading.Thread(target=send, args=(1,))
        first.start()
        assert holding.wait(30)
        senders = [threading.Thread(target=send, args=(2,)) for _ in range(6)]
        for sender in senders:
            sender.start()
        try:
            deadline = time.monotonic() + 10
            while True:
                waiting = _value(
                    _samples(httpx.get(f"{url}/metrics").text),
                    "loopwright_queue_rows",
                    model=MODEL,
                )
                if waiting == 12 or time.monotonic() > deadline:
                    break
                time.sleep(0.02)
        finally:
            release.set()
        for sender in [first, *senders]:
            sender.join()
        samples = _samples(httpx.get(f"{url}/metrics").text)
    assert [a.status_code for a in answers] == [200] * 7
    assert waiting == 12
    assert batches == [(1, 1), (6, 12)]
    assert _value(samples, "loopwright_queue_rows", model=MODEL) == 0
    assert _value(samples, "loopwright_batch_rows_count", model=MODEL) == 2
    assert _value(samples, "loopwright_batch_rows_sum", model=MODEL) == 13
    assert _value(samples, "loopwright_batch_requests_sum", model=MODEL) == 7
    assert _value(samples, "loopwright_inference_duration_seconds_count", model=MODEL) == 7


# --- live_stats -------------------------------------------------------------------------------


def test_quantile_interpolates_inside_the_bucket_like_histogram_quantile() -> None:
    inf = float("inf")
    # 10 observations in (1, 2], 30 in (2, 4]: the median (rank 20) is a third into (2, 4].
    buckets = [(1.0, 0.0), (2.0, 10.0), (4.0, 40.0), (inf, 40.0)]
    assert quantile(0.5, buckets) == pytest.approx(2 + 2 * (10 / 30))
    assert quantile(0.25, buckets) == pytest.approx(2.0)
    assert quantile(0.1, [(1.0, 10.0), (inf, 10.0)]) == pytest.approx(0.1)  # from 0 up
    assert quantile(0.99, [(1.0, 1.0), (inf, 100.0)]) == 1.0  # past the last bound
    assert quantile(0.5, [(1.0, 0.0), (inf, 0.0)]) is None
    assert quantile(0.5, []) is None


@pytest.fixture
def served_model(client: Client, model: Any) -> ServedModel:
    return load_source(resolve_source(f"models:/{MODEL}/1", client))


@pytest.fixture
def instances() -> Iterator[tuple[list[str], list[Any]]]:
    """Two serving apps with no model: their metrics are filled by hand with known values."""
    apps = [build_app(ServeConfig(sources=()), ModelRepository([])) for _ in range(2)]
    with live(apps[0]) as first, live(apps[1]) as second:
        yield [first, second], [app.state.metrics for app in apps]


def test_live_stats_sums_instances_and_estimates_percentiles_from_the_buckets(
    instances: tuple[list[str], list[Any]], served_model: ServedModel
) -> None:
    urls, metrics = instances
    first = metrics[0].meter(served_model, "churn", "primary")
    second = metrics[1].meter(served_model, "churn", "primary")
    canary = metrics[1].meter(served_model, "churn", "canary")
    other = metrics[0].meter(served_model)  # the model served on its own: another deployment
    latencies_ms = np.arange(1, 201, dtype=float)  # 1 .. 200 ms, half on each instance
    for value in latencies_ms:
        meter = first if value <= 100 else second
        if value % 25 == 0:
            meter.failed(500, value / 1000)
        elif value % 40 == 1:
            meter.failed(400, value / 1000)
        else:
            meter.observe(value / 1000)
    for _ in range(3):
        canary.observe(0.004)
        other.observe(9.0)

    stats = live_stats(urls, "churn", interval=0)
    assert stats.unreachable == () and stats.window_seconds == 0
    assert [(s.variant, s.model, s.version, s.instances) for s in stats] == [
        ("canary", MODEL, "1", 1),
        ("primary", MODEL, "1", 2),
    ]
    canary_stats, primary = stats.variants
    assert (primary.requests, primary.errors, primary.client_errors) == (200, 8, 5)
    assert primary.error_rate == pytest.approx(8 / 200)
    assert 0 < primary.requests_per_second <= 200 / 0.01
    # Linear interpolation inside buckets ~1.26x wide: within a quarter of the true value.
    for q, got in ((50, primary.p50_ms), (95, primary.p95_ms), (99, primary.p99_ms)):
        exact = float(np.percentile(latencies_ms, q))
        assert got is not None and abs(got - exact) <= 0.26 * exact, (q, got, exact)
    # Each estimate is the bucket interpolation of the known values, computed here independently.
    bounds = [b * 1000 for b in LATENCY_BUCKETS]
    cumulative = [float((latencies_ms <= b + 1e-9).sum()) for b in bounds]
    lower = max(i for i, count in enumerate([0.0, *cumulative]) if count < 100)
    low, high = ([0.0, *bounds])[lower], bounds[lower]
    below, within = ([0.0, *cumulative])[lower], cumulative[lower]
    assert primary.p50_ms == pytest.approx(low + (high - low) * (100 - below) / (within - below))
    assert canary_stats.requests == 3
    assert canary_stats.p50_ms is not None and 3.2 < canary_stats.p50_ms <= 4.0
    assert canary_stats.error_rate == 0

    alone = live_stats(urls, MODEL, interval=0)
    assert [(s.variant, s.requests) for s in alone] == [("primary", 3)]
    assert alone.variants[0].p99_ms == pytest.approx(8000 + 2000 * 0.99)  # in (8 s, 10 s]


def test_live_stats_measures_requests_per_second_between_two_scrapes(
    instances: tuple[list[str], list[Any]], served_model: ServedModel
) -> None:
    urls, metrics = instances
    meter = metrics[0].meter(served_model, "churn", "primary")
    for _ in range(50):
        meter.observe(0.002)  # before the first scrape: not in the rate

    def later() -> None:
        time.sleep(1.0)
        for _ in range(100):
            meter.observe(0.002)

    thread = threading.Thread(target=later)
    thread.start()
    stats = live_stats(urls, "churn", interval=2.0)
    thread.join()
    (primary,) = stats.variants
    assert stats.window_seconds == 2.0
    assert primary.requests == 150
    # 100 requests in a window of at least 2 s (a little more: the scrapes take time).
    assert 100 / 3.0 < primary.requests_per_second <= 100 / 2.0


def test_live_percentiles_cover_the_window_once_it_holds_enough_requests(
    instances: tuple[list[str], list[Any]], served_model: ServedModel
) -> None:
    """A server slow for its first 1,000 requests and fast now shows fast percentiles."""
    urls, metrics = instances
    meter = metrics[0].meter(served_model, "churn", "primary")
    for _ in range(1000):
        meter.observe(2.0)  # long ago: 2 s each

    def later(count: int) -> threading.Thread:
        def run() -> None:
            time.sleep(0.3)
            for _ in range(count):
                meter.observe(0.003)

        thread = threading.Thread(target=run)
        thread.start()
        return thread

    thread = later(MIN_WINDOW_REQUESTS - 1)  # too few in the window: since start
    few = live_stats(urls, "churn", interval=1.0)
    thread.join()
    (primary,) = few.variants
    assert primary.percentiles_window_seconds == 0
    assert primary.p50_ms is not None and primary.p50_ms > 1000

    thread = later(200)  # enough: the window's own
    recent = live_stats(urls, "churn", interval=1.0)
    thread.join()
    (primary,) = recent.variants
    assert primary.percentiles_window_seconds == 1.0
    assert primary.requests == 1000 + MIN_WINDOW_REQUESTS - 1 + 200
    for got in (primary.p50_ms, primary.p95_ms, primary.p99_ms):
        assert got is not None and 2.0 < got <= 3.2  # the bucket holding 3 ms


def test_an_unreachable_instance_is_reported_not_raised(
    instances: tuple[list[str], list[Any]], served_model: ServedModel
) -> None:
    urls, metrics = instances
    metrics[0].meter(served_model, "churn", "primary").observe(0.01)
    closed = f"http://127.0.0.1:{free_port()}"
    not_metrics = f"{urls[1]}/v2"  # answers 404 at /v2/metrics
    stats = live_stats([urls[0], closed, not_metrics], "churn", timeout=2.0, interval=0)
    assert [(s.variant, s.requests, s.instances) for s in stats] == [("primary", 1, 1)]
    reasons = dict(stats.unreachable)
    assert list(reasons) == [closed, not_metrics]
    assert "ConnectError" in reasons[closed]
    assert "answered 404" in reasons[not_metrics]
    nothing = live_stats([closed], "churn", timeout=1.0, interval=0)
    assert len(nothing) == 0 and [url for url, _ in nothing.unreachable] == [closed]


# --- several worker processes -----------------------------------------------------------------


def test_with_two_workers_every_scrape_sums_both(
    store_settings: dict[str, str], model: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from prometheus_client.multiprocess import MultiProcessCollector
    from test_serve_cli import _serving

    # serve makes its metrics folder under TMPDIR: here, to look inside and see it removed.
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    with _serving(store_settings, f"models:/{MODEL}/1", "--workers", "2", "--no-log") as (
        url,
        _,
    ):
        (folder,) = glob.glob(str(scratch / "loopwright-metrics-*"))
        # Many connections open at once, as in test_serve_cli: both workers accept some.
        clients = [httpx.Client(base_url=url, timeout=30) for _ in range(24)]
        try:
            for http in clients:
                assert http.post("/invocations", json=_records(1)).status_code == 200
        finally:
            for http in clients:
                http.close()
        # Each scrape is a new connection, answered by either worker: each sees all 24.
        for _ in range(8):
            samples = _samples(httpx.get(f"{url}/metrics", timeout=10).text)
            answers = "loopwright_requests_total"
            assert _value(samples, answers, route="/invocations", status="200") == 24
            latency = "loopwright_inference_duration_seconds_count"
            assert _value(samples, latency, **MODEL_LABELS) == 24
        per_worker = {}
        for path in glob.glob(os.path.join(folder, "histogram_*.db")):
            merged = MultiProcessCollector.merge([path])  # type: ignore[no-untyped-call]
            counts = [
                s.value
                for metric in merged
                for s in metric.samples
                if s.name == "loopwright_inference_duration_seconds_count"
            ]
            per_worker[Path(path).stem] = sum(counts)
        assert len(per_worker) == 2, per_worker
        assert all(count > 0 for count in per_worker.values()), per_worker
        assert sum(per_worker.values()) == 24
    assert not glob.glob(str(scratch / "loopwright-metrics-*")), "serve left its metrics folder"
