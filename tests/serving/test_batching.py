"""Adaptive batching on a real server: concurrent requests share predict calls, split back right.

Merging is made certain, not left to timing: a gate holds the first predict call on the model
thread while the requests under test arrive, so they wait in the queue together, as they do
behind a busy model. The linger rule itself (a batch closes once the queue stops growing) is
tested on a :class:`Batcher` directly, where the turns of the event loop are the test's.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import httpx
import numpy as np
import pytest
from _served_model import MODEL, live, training_frame

from loopwright.client import Client
from loopwright.serving import batching
from loopwright.serving.batching import Batcher
from loopwright.serving.model import ServedModel
from loopwright.serving.repository import ModelRepository
from loopwright.serving.server import ServeConfig, build_app
from loopwright.serving.sources import load_source, resolve_source


class _Gate:
    """An ``on_batch`` hook that holds the first predict call until :meth:`open`, and records
    the (requests, rows) of every call."""

    def __init__(self) -> None:
        self.batches: list[tuple[int, int]] = []
        self.holding = threading.Event()
        self._open = threading.Event()

    def __call__(self, model: ServedModel, requests: int, rows: int) -> None:
        self.batches.append((requests, rows))
        if len(self.batches) == 1:
            self.holding.set()
            assert self._open.wait(30), "the gate was never opened"

    def open(self) -> None:
        self._open.set()


@contextmanager
def _batched(
    client: Client, max_batch_size: int, max_latency_ms: float, **options: Any
) -> Iterator[tuple[str, Batcher, _Gate]]:
    """A server batching ``clf`` on its model thread; yields its URL, batcher and gate."""
    gate = _Gate()
    repository = ModelRepository(
        [resolve_source(f"models:/{MODEL}/1", client)],
        max_batch_size=max_batch_size,
        max_latency_ms=max_latency_ms,
        on_batch=gate,
        **options,
    )
    repository.load_all()
    _, batcher = repository.get(MODEL)
    try:
        with live(build_app(ServeConfig(sources=()), repository)) as url:
            yield url, batcher, gate
    finally:
        gate.open()  # a failed test must not leave the model thread held


@pytest.fixture(autouse=True)
def _model_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    """Predict on the model thread (as a model slower than INLINE_BELOW_MS does), where the
    gate can hold it without stopping the event loop."""
    monkeypatch.setattr(batching, "INLINE_BELOW_MS", 0.0)


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


async def _until(condition: Any, what: str) -> None:
    deadline = time.monotonic() + 30
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        await asyncio.sleep(0.005)


def _behind_a_busy_model(
    url: str, batcher: Batcher, gate: _Gate, bodies: list[dict[str, Any]]
) -> list[httpx.Response]:
    """Sends one request the gate holds, then ``bodies`` concurrently; opens the gate once all
    of them wait in the queue. Returns the answers to ``bodies``."""

    async def send() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=len(bodies) + 1)
        async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as http:

            def post(body: dict[str, Any]) -> asyncio.Future[httpx.Response]:
                return asyncio.ensure_future(http.post(f"/v2/models/{MODEL}/infer", json=body))

            held = post(_rows(7, 1))
            await _until(gate.holding.is_set, "the first predict call is on the model thread")
            answers = [post(body) for body in bodies]
            await _until(lambda: batcher.queued_requests == len(bodies), "all requests queued")
            gate.open()
            assert (await held).status_code == 200
            return list(await asyncio.gather(*answers))

    return asyncio.run(send())


def _concurrently(url: str, bodies: list[dict[str, Any]]) -> list[httpx.Response]:
    async def send() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=len(bodies))
        async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as http:
            return await asyncio.gather(
                *(http.post(f"/v2/models/{MODEL}/infer", json=body) for body in bodies)
            )

    return asyncio.run(send())


def test_requests_waiting_together_are_merged_and_each_gets_its_own_rows(
    client: Client, model: Any
) -> None:
    X, _ = training_frame()
    with _batched(client, max_batch_size=8, max_latency_ms=2000) as (url, batcher, gate):
        answers = _behind_a_busy_model(url, batcher, gate, [_rows(i, 1) for i in range(8)])
    assert [a.status_code for a in answers] == [200] * 8
    assert gate.batches == [(1, 1), (8, 8)]
    for i, answer in enumerate(answers):
        (proba,) = answer.json()["outputs"]
        np.testing.assert_allclose(proba["data"], model.predict_proba(X[i : i + 1])[0])


def test_a_batch_never_holds_more_rows_than_the_limit(client: Client, model: Any) -> None:
    bodies = [_rows(0, 5)] + [_rows(i, 1) for i in range(6)]
    with _batched(client, max_batch_size=4, max_latency_ms=500) as (url, batcher, gate):
        answers = _behind_a_busy_model(url, batcher, gate, bodies)
    assert all(a.status_code == 200 for a in answers)
    held, *batches = gate.batches
    assert held == (1, 1)
    assert sum(requests for requests, _ in batches) == 7
    assert sum(rows for _, rows in batches) == 11
    # A request larger than the limit runs alone; the rest fill batches up to the limit (the
    # queue holds them in the order they reached the server).
    assert (1, 5) in batches and max(requests for requests, _ in batches) > 1, batches
    assert all(rows <= 4 or requests == 1 for requests, rows in batches), batches
    assert [len(a.json()["outputs"][0]["data"]) for a in answers] == [10] + [2] * 6


def test_a_failing_request_in_a_batch_fails_alone(client: Client, model: Any) -> None:
    bodies = [_rows(0, 1), _rows(1, 1, color="purple"), _rows(2, 1), _rows(3, 1)]
    with _batched(client, max_batch_size=4, max_latency_ms=2000) as (url, batcher, gate):
        answers = _behind_a_busy_model(url, batcher, gate, bodies)
    assert gate.batches == [(1, 1), (4, 4)]  # merged, then run again one by one
    assert [a.status_code for a in answers] == [200, 500, 200, 200]
    assert "failed while predicting" in answers[1].json()["error"]


def test_batch_size_one_never_merges(client: Client, model: Any) -> None:
    with _batched(client, max_batch_size=1, max_latency_ms=2000) as (url, batcher, gate):
        answers = _behind_a_busy_model(url, batcher, gate, [_rows(i, 1) for i in range(6)])
    assert all(a.status_code == 200 for a in answers)
    assert gate.batches == [(1, 1)] * 7


def test_a_lone_request_is_not_held_for_max_latency(client: Client, model: Any) -> None:
    """Over HTTP: with nothing else arriving, a request is answered at once, not after the
    60 s a batch may linger while requests keep coming."""
    with _batched(client, max_batch_size=32, max_latency_ms=60_000) as (url, _, gate):
        gate.open()
        for i in range(3):
            start = time.monotonic()
            answer = httpx.post(f"{url}/v2/models/{MODEL}/infer", json=_rows(i, 1), timeout=60)
            assert answer.status_code == 200
            assert time.monotonic() - start < 5
    assert gate.batches == [(1, 1)] * 3


# --- the linger rule, on a Batcher --------------------------------------------------------------


@pytest.fixture
def served(client: Client, model: Any) -> ServedModel:
    return load_source(resolve_source(f"models:/{MODEL}/1", client))


def _arrivals(
    served: ServedModel, *, max_latency_ms: float, gaps: list[int], max_batch_size: int = 64
) -> tuple[list[tuple[int, int]], float]:
    """Submits one single-row request, then one more after each of ``gaps`` event-loop turns;
    returns the (requests, rows) of each predict call and the seconds until all were answered.
    """
    X, _ = training_frame()
    item = served.prepare(X[:1])
    batches: list[tuple[int, int]] = []

    async def run() -> float:
        with ThreadPoolExecutor(1) as executor:
            batcher = Batcher(
                served,
                executor,
                max_batch_size=max_batch_size,
                max_latency_ms=max_latency_ms,
                on_batch=lambda requests, rows: batches.append((requests, rows)),
            )
            start = time.monotonic()
            answers = [asyncio.ensure_future(batcher.submit(item, ("predict",)))]
            for gap in gaps:
                for _ in range(gap):
                    await asyncio.sleep(0)
                answers.append(asyncio.ensure_future(batcher.submit(item, ("predict",))))
            results = await asyncio.gather(*answers)
            seconds = time.monotonic() - start
            await batcher.stop()
        assert [r["predict"].tolist() for r in results] == [[0]] * len(answers)
        return seconds

    seconds = asyncio.run(run())
    return batches, seconds


def test_a_lone_request_does_not_wait_for_max_latency(served: ServedModel) -> None:
    batches, seconds = _arrivals(served, max_latency_ms=60_000, gaps=[])
    assert batches == [(1, 1)]
    assert seconds < 5


def test_a_burst_arriving_turn_after_turn_is_merged(served: ServedModel) -> None:
    """Requests arriving one per event-loop turn keep the batch open: one predict call."""
    batches, seconds = _arrivals(served, max_latency_ms=60_000, gaps=[1] * 15)
    assert batches == [(16, 16)]
    assert seconds < 5  # closed once the burst ended, not at max latency


def test_a_batch_closes_once_the_queue_stops_growing(served: ServedModel) -> None:
    """A request arriving after the queue settled goes into the next batch, whatever the
    max latency."""
    quiet = batching.SETTLE_TURNS + 20
    batches, seconds = _arrivals(served, max_latency_ms=60_000, gaps=[1, 1, quiet, 1])
    assert batches == [(3, 3), (2, 2)]
    assert seconds < 5


def test_a_full_batch_closes_at_once(served: ServedModel) -> None:
    batches, _ = _arrivals(served, max_latency_ms=60_000, gaps=[1] * 9, max_batch_size=4)
    assert batches == [(4, 4), (4, 4), (2, 2)]


def test_zero_latency_merges_only_what_already_waits(
    served: ServedModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``max_latency_ms=0``: no lingering; the burst merged above runs in several calls."""
    monkeypatch.setattr(batching, "INLINE_BELOW_MS", float("inf"))  # nothing queues meanwhile
    batches, _ = _arrivals(served, max_latency_ms=0, gaps=[1] * 15)
    assert sum(requests for requests, _ in batches) == 16
    assert len(batches) > 1, batches


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
    with _batched(client, max_batch_size=2, max_latency_ms=5, max_queue_rows=1) as (
        url,
        batcher,
        gate,
    ):

        async def send() -> list[httpx.Response]:
            async with httpx.AsyncClient(base_url=url, timeout=60) as http:

                def post(start: int) -> asyncio.Future[httpx.Response]:
                    body = _rows(start, 1)
                    return asyncio.ensure_future(http.post(f"/v2/models/{MODEL}/infer", json=body))

                held = post(0)
                await _until(gate.holding.is_set, "the first request is on the model thread")
                waiting = post(1)
                await _until(lambda: batcher.queued_rows == 1, "the second request queued")
                refused = await post(2)
                gate.open()
                return [await held, await waiting, refused]

        held, waiting, refused = asyncio.run(send())
    assert held.status_code == 200 and waiting.status_code == 200
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
