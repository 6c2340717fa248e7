"""Adaptive batching on a real server: concurrent requests share predict calls, split back right."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import numpy as np
from _served_model import MODEL, live, training_frame

from loopwright.client import Client
from loopwright.serving.model import ServedModel
from loopwright.serving.repository import ModelRepository
from loopwright.serving.server import ServeConfig, build_app
from loopwright.serving.sources import resolve_source


@contextmanager
def _batched(
    client: Client, max_batch_size: int, max_latency_ms: float
) -> Iterator[tuple[str, list[tuple[int, int]]]]:
    """A server batching ``clf``; yields its URL and the (requests, rows) of each predict call."""
    batches: list[tuple[int, int]] = []

    def record(model: ServedModel, requests: int, rows: int) -> None:
        batches.append((requests, rows))

    repository = ModelRepository(
        [resolve_source(f"models:/{MODEL}/1", client)],
        max_batch_size=max_batch_size,
        max_latency_ms=max_latency_ms,
        on_batch=record,
    )
    repository.load_all()
    with live(build_app(ServeConfig(sources=()), repository)) as url:
        yield url, batches


def _rows(start: int, count: int, color: str | None = None) -> dict[str, Any]:
    X, _ = training_frame()
    X = X[start : start + count]
    colors = [color] * count if color else X["color"].tolist()
    return {
        "inputs": [
            {"name": "a", "shape": [count], "datatype": "FP64", "data": X["a"].tolist()},
            {"name": "b", "shape": [count], "datatype": "FP64", "data": X["b"].tolist()},
            {"name": "color", "shape": [count], "datatype": "BYTES", "data": colors},
        ],
        "outputs": [{"name": "predict_proba"}],
    }


def _concurrently(url: str, bodies: list[dict[str, Any]]) -> list[httpx.Response]:
    async def send() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=len(bodies))
        async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as http:
            return await asyncio.gather(
                *(http.post(f"/v2/models/{MODEL}/infer", json=body) for body in bodies)
            )

    return asyncio.run(send())


def test_concurrent_requests_are_merged_and_each_gets_its_own_rows(
    client: Client, model: Any
) -> None:
    X, _ = training_frame()
    with _batched(client, max_batch_size=8, max_latency_ms=2000) as (url, batches):
        answers = _concurrently(url, [_rows(i, 1) for i in range(8)])
    assert [a.status_code for a in answers] == [200] * 8
    assert sum(requests for requests, _ in batches) == 8
    assert max(requests for requests, _ in batches) > 1, batches
    for i, answer in enumerate(answers):
        (proba,) = answer.json()["outputs"]
        np.testing.assert_allclose(proba["data"], model.predict_proba(X[i : i + 1])[0])


def test_a_batch_never_holds_more_rows_than_the_limit(client: Client, model: Any) -> None:
    bodies = [_rows(0, 5)] + [_rows(i, 1) for i in range(6)]
    with _batched(client, max_batch_size=4, max_latency_ms=500) as (url, batches):
        answers = _concurrently(url, bodies)
    assert all(a.status_code == 200 for a in answers)
    assert sum(requests for requests, _ in batches) == 7
    assert sum(rows for _, rows in batches) == 11
    # A request larger than the limit runs alone; no merged batch passes it.
    assert all(rows <= 4 or requests == 1 for requests, rows in batches), batches
    assert [len(a.json()["outputs"][0]["data"]) for a in answers] == [10] + [2] * 6


def test_a_failing_request_in_a_batch_fails_alone(client: Client, model: Any) -> None:
    bodies = [_rows(0, 1), _rows(1, 1, color="purple"), _rows(2, 1), _rows(3, 1)]
    with _batched(client, max_batch_size=4, max_latency_ms=2000) as (url, _):
        answers = _concurrently(url, bodies)
    assert [a.status_code for a in answers] == [200, 500, 200, 200]
    assert "failed while predicting" in answers[1].json()["error"]


def test_batch_size_one_never_merges(client: Client, model: Any) -> None:
    with _batched(client, max_batch_size=1, max_latency_ms=2000) as (url, batches):
        answers = _concurrently(url, [_rows(i, 1) for i in range(6)])
    assert all(a.status_code == 200 for a in answers)
    assert batches == [(1, 1)] * 6


def test_fast_models_run_on_the_loop_and_slow_ones_on_the_model_thread(
    client: Client, model: Any, monkeypatch: Any
) -> None:
    import threading

    from loopwright.serving import batching

    threads: list[str] = []

    def record(served: ServedModel, requests: int, rows: int) -> None:
        threads.append(threading.current_thread().name)

    source = resolve_source(f"models:/{MODEL}/1", client)
    # The test server runs its event loop on a thread named "serving-test-server".
    for threshold, expected in ((float("inf"), "serving-test-server"), (0.0, "predict-clf")):
        monkeypatch.setattr(batching, "INLINE_BELOW_MS", threshold)
        threads.clear()
        repository = ModelRepository([source], on_batch=record)
        repository.load_all()
        served, _ = repository.get(MODEL)
        assert 0 < served.predict_ms < float("inf")  # measured by the warm-up at load
        with live(build_app(ServeConfig(sources=()), repository)) as url:
            _concurrently(url, [_rows(0, 1), _rows(1, 1)])
        # Executor threads are named "<prefix>_<n>".
        assert [name.split("_")[0] for name in threads] == [expected, expected]


def test_a_full_queue_answers_503_with_retry_after(client: Client, model: Any) -> None:
    repository = ModelRepository(
        [resolve_source(f"models:/{MODEL}/1", client)],
        max_batch_size=2,
        max_latency_ms=3000,
        max_queue_rows=1,
    )
    repository.load_all()
    with live(build_app(ServeConfig(sources=()), repository)) as url:

        async def send() -> list[httpx.Response]:
            async with httpx.AsyncClient(base_url=url, timeout=60) as http:
                waiting = asyncio.ensure_future(
                    http.post(f"/v2/models/{MODEL}/infer", json=_rows(0, 1))
                )
                await asyncio.sleep(0.5)  # the first request now waits for a second row
                refused = await http.post(f"/v2/models/{MODEL}/infer", json=_rows(1, 1))
                return [await waiting, refused]

        first, refused = asyncio.run(send())
    assert first.status_code == 200
    assert refused.status_code == 503 and refused.headers["retry-after"] == "1"
    assert "1 rows waiting (limit 1); retry shortly" in refused.json()["error"]


def test_the_default_queue_holds_100_row_requests_from_32_connections(
    client: Client, model: Any
) -> None:
    """Batching off, the default bound: every connection's request may wait at once."""
    import pandas as pd

    repository = ModelRepository([resolve_source(f"models:/{MODEL}/1", client)])
    repository.load_all()
    served, batcher = repository.get(MODEL)
    X, _ = training_frame()
    item = served.prepare(pd.concat([X] * 13, ignore_index=True).iloc[:100])

    async def send() -> list[dict[str, Any]]:
        try:
            # gather starts all 32 before the runner takes the first: all wait in the queue.
            return await asyncio.gather(*(batcher.submit(item, ("predict",)) for _ in range(32)))
        finally:
            await repository.close()

    answers = asyncio.run(send())
    assert [len(answer["predict"]) for answer in answers] == [100] * 32
