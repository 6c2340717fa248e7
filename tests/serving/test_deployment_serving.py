"""A deployment served: traffic split, stickiness, shadows, hot swap under load, the log.

Each test registers ``clf`` versions 1 and 2 (the same model) and 3 (trained without the color
``blue``, so it raises on ``blue`` rows its signature accepts), under the approval policy
``none`` (approvals are the control plane's tests), and serves a deployment in this process:
through an in-process ASGI client where only the answers matter (10,000 requests), or on
uvicorn at 127.0.0.1 where the server's start, background work and clean stop matter.
"""

from __future__ import annotations

import asyncio
import json
import math
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from _served_model import MODEL, live, train, training_frame

from loopwright.cli._serve_deployment import load_deployment
from loopwright.client import Client
from loopwright.config import Settings, resolve_settings
from loopwright.serving.entities import SHADOW, Variant
from loopwright.serving.server import ServeConfig, build_app
from loopwright.serving.watcher import DeploymentWatcher

NAME = "churn"
N = 10_000


@pytest.fixture
def settings(store_settings: dict[str, str]) -> Settings:
    return resolve_settings(
        home=store_settings["home"],
        db_uri=store_settings["db_uri"],
        blob_uri=store_settings["blob_uri"],
        user="ada",
        default_approval_policy="none",
    )


@pytest.fixture
def client(settings: Settings) -> Iterator[Client]:
    with Client(settings) as client:
        yield client


@pytest.fixture
def versions(client: Client) -> dict[int, Any]:
    """``clf`` v1 and v2 (one model), v3 (never saw ``blue``); ``champion`` on v1."""
    pytest.importorskip("sklearn")
    X, y = training_frame()
    fitted = train()
    narrow = train()
    keep = (X["color"] != "blue").to_numpy()
    narrow.fit(X[keep], [label for label, k in zip(y, keep, strict=True) if k])
    models = {1: fitted, 2: fitted, 3: narrow}
    with client.start_run(experiment="deployments") as run:
        for version, model in models.items():
            example = X[keep][:3]  # one the narrow model takes too
            run.log_model(model, f"m{version}", input_example=example, registered_model_name=MODEL)
    client.registry.set_alias(MODEL, "champion", 1)
    return models


def _serve(
    settings: Settings, *, log_root: str | None = None, refresh: float = 0.1
) -> tuple[Any, DeploymentWatcher]:
    config = ServeConfig(
        sources=(),
        deployment=NAME,
        refresh_seconds=refresh,
        log_root=log_root,
        max_batch_size=32,
        max_batch_latency_ms=1,
    )
    repository, watcher = load_deployment(config, settings)
    return build_app(config, repository, watcher), watcher


def _body(i: int, color: str | None = None) -> dict[str, Any]:
    """An OIP request for row ``i`` of the training frame (its color replaced if given)."""
    a, b, own = _ROWS[i % len(_ROWS)]
    return {
        "inputs": [
            {"name": "a", "shape": [1], "datatype": "FP64", "data": [a]},
            {"name": "b", "shape": [1], "datatype": "FP64", "data": [b]},
            {"name": "color", "shape": [1], "datatype": "BYTES", "data": [color or own]},
        ]
    }


_ROWS = [
    (float(a), float(b), str(c))
    for a, b, c in training_frame()[0][["a", "b", "color"]].itertuples(index=False)
]


class _Answer:
    """What an in-process request got: status, headers (lower-case names), JSON body."""

    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status_code, self.headers, self._body = status, headers, body

    def json(self) -> Any:
        return json.loads(self._body)


async def _call(app: Any, path: str, body: bytes, headers: dict[str, str]) -> _Answer:
    """One POST straight into the ASGI app (an HTTP client's own cost per request would be
    most of the test's time at 10,000 requests)."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"content-type", b"application/json")]
        + [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }
    sent = False
    status, chunks = 0, []
    answer_headers: dict[str, str] = {}

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            await asyncio.Event().wait()  # no disconnect while the app answers
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
            answer_headers.update((k.decode(), v.decode()) for k, v in message["headers"])
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    return _Answer(status, answer_headers, b"".join(chunks))


def _send_in_process(app: Any, *batches: list[dict[str, str]]) -> list[list[_Answer]]:
    """One request per header dict of each batch through the app in this process, 64 at a
    time, on one event loop (the models' batchers run on the loop that first used them)."""
    bodies = [json.dumps(_body(i)).encode() for i in range(len(_ROWS))]
    path = f"/v2/models/{NAME}/infer"

    async def run() -> list[list[_Answer]]:
        gate = asyncio.Semaphore(64)

        async def one(i: int, headers: dict[str, str]) -> _Answer:
            async with gate:
                return await _call(app, path, bodies[i % len(bodies)], headers)

        return [
            await asyncio.gather(*(one(i, h) for i, h in enumerate(batch))) for batch in batches
        ]

    return asyncio.run(run())


def _five_sigma(n: int, p: float) -> float:
    return 5 * math.sqrt(n * p * (1 - p))


def test_a_canary_takes_its_share_of_10000_requests(
    client: Client, settings: Settings, versions: dict[int, Any]
) -> None:
    client.deployments.create(NAME, f"models:/{MODEL}@champion")
    client.deployments.set_traffic(
        NAME,
        [
            Variant("primary", f"models:/{MODEL}@champion", 0.8),
            Variant("canary", f"models:/{MODEL}/2", 0.2),
        ],
    )
    app, _ = _serve(settings)
    [answers] = _send_in_process(app, [{}] * N)
    assert {r.status_code for r in answers} == {200}
    variants = Counter(r.headers["x-loopwright-variant"] for r in answers)
    assert set(variants) == {"primary", "canary"}
    assert abs(variants["canary"] - 0.2 * N) < _five_sigma(N, 0.2), variants
    # Each answer names the version of the variant that gave it.
    by_variant = {(r.headers["x-loopwright-variant"], r.json()["model_version"]) for r in answers}
    assert by_variant == {("primary", "1"), ("canary", "2")}


def test_ab_splits_50_30_20_and_keeps_each_user_on_one_variant(
    client: Client, settings: Settings, versions: dict[int, Any]
) -> None:
    client.deployments.create(NAME, f"models:/{MODEL}/1")
    client.deployments.set_traffic(
        NAME,
        [
            Variant("a", f"models:/{MODEL}/1", 0.5),
            Variant("b", f"models:/{MODEL}/2", 0.3),
            Variant("c", f"models:/{MODEL}/1", 0.2),
        ],
        sticky_header="X-User-Id",
    )
    app, _ = _serve(settings)
    users = [f"user-{i % 500}" for i in range(2000)]
    answers, sticky = _send_in_process(app, [{}] * N, [{"X-User-Id": u} for u in users])
    # Without the header each request is placed at random.
    assert {r.status_code for r in answers} == {200}
    variants = Counter(r.headers["x-loopwright-variant"] for r in answers)
    for name, share in {"a": 0.5, "b": 0.3, "c": 0.2}.items():
        assert abs(variants[name] - share * N) < _five_sigma(N, share), variants
    # With it, a user's every request lands on one variant; users split by the weights.
    seen: dict[str, set[str]] = {}
    for user, answer in zip(users, sticky, strict=True):
        seen.setdefault(user, set()).add(answer.headers["x-loopwright-variant"])
    assert all(len(names) == 1 for names in seen.values())
    per_user = Counter(next(iter(names)) for names in seen.values())
    for name, share in {"a": 0.5, "b": 0.3, "c": 0.2}.items():
        assert abs(per_user[name] - share * 500) < _five_sigma(500, share), per_user


def test_shadow_answers_are_logged_never_returned_and_a_failing_shadow_changes_nothing(
    client: Client, settings: Settings, versions: dict[int, Any], tmp_path: Path
) -> None:
    from loopwright.serving.predictions import read_predictions

    client.deployments.create(NAME, f"models:/{MODEL}/1")
    client.deployments.set_traffic(
        NAME,
        [
            Variant("primary", f"models:/{MODEL}/1", 1.0),
            Variant("twin", f"models:/{MODEL}/2", 1.0, SHADOW),
            Variant("narrow", f"models:/{MODEL}/3", 1.0, SHADOW),
        ],
    )
    root = str(tmp_path / "log")
    app, _ = _serve(settings, log_root=root)
    X, _ = training_frame()
    colors = ["blue" if i % 3 == 0 else "red" for i in range(60)]
    expected = (
        versions[1].predict(X.iloc[[i % len(X) for i in range(60)]].assign(color=colors)).tolist()
    )
    narrow = versions[3].predict(X.iloc[[1]].assign(color="red")).tolist()
    with live(app) as url, httpx.Client(base_url=url) as http:
        for i, color in enumerate(colors):
            answer = http.post(
                f"/v2/models/{NAME}/infer", json=_body(i, color), headers={"X-Request-Id": f"r{i}"}
            )
            assert answer.status_code == 200, answer.text
            assert answer.headers["x-loopwright-variant"] == "primary"
            body = answer.json()
            assert (body["model_version"], body["outputs"][0]["data"]) == ("1", [expected[i]])
        shadows = app.state.shadows
        deadline = time.monotonic() + 30
        while shadows.stats().in_flight and time.monotonic() < deadline:
            time.sleep(0.05)
        stats = shadows.stats()
    assert (stats.sent, stats.dropped, stats.answered, stats.failed) == (120, 0, 100, 20)
    logged = read_predictions(root, NAME)
    ids = {variant: set(rows["request_id"]) for variant, rows in logged.groupby("variant")}
    every = {f"r{i}" for i in range(60)}
    assert ids == {
        "primary": every,
        "twin": every,
        "narrow": {f"r{i}" for i in range(60) if colors[i] == "red"},
    }
    assert set(logged["deployment"]) == {NAME}
    assert dict(zip(logged["variant"], logged["model_version"], strict=True)) == {
        "primary": 1,
        "twin": 2,
        "narrow": 3,
    }
    # The shadow's own answers are in the log (the narrow model's, not the primary's).
    narrow_rows = logged[(logged["variant"] == "narrow") & (logged["request_id"] == "r1")]
    assert narrow_rows["output.predict"].tolist() == narrow


class _Load:
    """Requests sent without pause from ``threads`` threads until stopped; every answer kept."""

    def __init__(self, url: str, threads: int = 4) -> None:
        self.url = url
        self.answers: list[tuple[float, str, int, str, str]] = []  # time, id, status, ...
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._pool = ThreadPoolExecutor(threads)
        self._jobs = [self._pool.submit(self._run, t) for t in range(threads)]

    def _run(self, thread: int) -> None:
        with httpx.Client(base_url=self.url, timeout=30) as http:
            i = 0
            while not self._stop.is_set():
                request_id = f"t{thread}-{i}"
                try:
                    answer = http.post(
                        f"/v2/models/{NAME}/infer",
                        json=_body(i, "red"),  # one version 3 takes too
                        headers={"X-Request-Id": request_id},
                    )
                except httpx.HTTPError as exc:
                    self.errors.append(f"{request_id}: {exc!r}")
                else:
                    version = answer.json().get("model_version", "") if answer.is_success else ""
                    variant = answer.headers.get("x-loopwright-variant", "")
                    self.answers.append(
                        (time.monotonic(), request_id, answer.status_code, variant, version)
                    )
                i += 1

    def wait_for(self, what: str, check: Any, timeout: float = 15.0) -> float:
        """When an answer first satisfied ``check`` (waiting up to ``timeout`` seconds)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            hits = [a[0] for a in list(self.answers) if check(a)]
            if hits:
                return hits[0]
            time.sleep(0.05)
        raise AssertionError(f"no answer {what} within {timeout} s")

    def stop(self) -> None:
        self._stop.set()
        for job in self._jobs:
            job.result()
        self._pool.shutdown()


def test_hot_swap_under_load_loses_no_request_and_the_log_holds_every_answer(
    client: Client, settings: Settings, versions: dict[int, Any], blob_uri: str
) -> None:
    from loopwright.serving.prediction_log import log_uri
    from loopwright.serving.predictions import read_predictions

    client.deployments.create(NAME, f"models:/{MODEL}@champion")
    root = log_uri(blob_uri)  # on a local folder and on S3
    app, watcher = _serve(settings, log_root=root, refresh=0.1)
    with live(app) as url:
        load = _Load(url)
        try:
            load.wait_for("at all", lambda a: True)
            moved = time.monotonic()
            client.registry.set_alias(MODEL, "champion", 2)  # what an approved move does
            switched = load.wait_for("from version 2", lambda a: a[4] == "2")
            assert switched - moved < 10
            time.sleep(0.5)
            late = [a for a in load.answers if a[0] > switched + 0.3]
            assert late and {a[4] for a in late} == {"2"}
            changed = time.monotonic()
            client.deployments.set_traffic(
                NAME,
                [
                    Variant("primary", f"models:/{MODEL}@champion", 0.5),
                    Variant("canary", f"models:/{MODEL}/3", 0.5),
                ],
            )
            load.wait_for("from the canary", lambda a: a[3] == "canary" and a[4] == "3")
            assert time.monotonic() - changed < 10
            time.sleep(0.3)
        finally:
            load.stop()
        index = httpx.post(f"{url}/v2/repository/index", json={}).json()
    assert not load.errors
    assert len(load.answers) > 100 and {a[2] for a in load.answers} == {200}
    assert watcher.swaps == 2
    # Version 1 was retired once no request held it; the index lists what the policy uses.
    assert sorted((row["name"], row["version"]) for row in index) == [(MODEL, "2"), (MODEL, "3")]
    # Leaving the server was a clean stop: every acknowledged request is in the log.
    logged = read_predictions(root, NAME)
    assert set(logged["request_id"]) == {a[1] for a in load.answers}
    assert len(logged) == len(load.answers)
    answered = {a[1]: (a[3], int(a[4])) for a in load.answers}
    rows = zip(logged["request_id"], logged["variant"], logged["model_version"], strict=True)
    assert all(answered[i] == (variant, version) for i, variant, version in rows)


def test_a_swap_whose_model_fails_to_load_keeps_the_current_router(
    client: Client, settings: Settings, versions: dict[int, Any], caplog: Any
) -> None:
    from loopwright.registry.loading import ModelUri, fetch_package

    client.deployments.create(NAME, f"models:/{MODEL}/1")
    app, watcher = _serve(settings, refresh=0.1)
    watcher.retry_seconds = 0.3
    folder, _ = fetch_package(client, ModelUri("models", name=MODEL, ref="3"))
    damaged = next(p for p in Path(folder).rglob("*") if p.is_file() and p.suffix != ".json")
    damaged.write_bytes(damaged.read_bytes() + b"\0")
    with live(app) as url, httpx.Client(base_url=url) as http:
        client.deployments.set_traffic(NAME, [Variant("primary", f"models:/{MODEL}/3", 1.0)])
        deadline = time.monotonic() + 10
        while "not applied" not in caplog.text and time.monotonic() < deadline:
            answer = http.post(f"/v2/models/{NAME}/infer", json=_body(0))
            assert (answer.status_code, answer.json()["model_version"]) == (200, "1")
            time.sleep(0.05)
        assert f"deployment {NAME!r}: revision 2 not applied, still serving revision 1" in (
            caplog.text
        )
        assert watcher.router.revision == 1
        # Once the package is whole again, a later round loads it.
        import shutil

        shutil.rmtree(folder)
        deadline = time.monotonic() + 10
        while watcher.router.revision != 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        answer = http.post(f"/v2/models/{NAME}/infer", json=_body(0))
        assert (answer.status_code, answer.json()["model_version"]) == (200, "3")


def test_the_deployment_is_a_model_name_and_its_versions_stay_addressable(
    client: Client, settings: Settings, versions: dict[int, Any], caplog: Any
) -> None:
    client.deployments.create(NAME, f"models:/{MODEL}/1")
    client.deployments.set_traffic(
        NAME,
        [Variant("a", f"models:/{MODEL}/1", 0.5), Variant("b", f"models:/{MODEL}/3", 0.5)],
    )
    app, _ = _serve(settings, refresh=0.1)
    X, _ = training_frame()
    red = X[X["color"] == "red"][:2]
    with live(app) as url, httpx.Client(base_url=url) as http:
        metadata = http.get(f"/v2/models/{NAME}").json()
        assert (metadata["name"], metadata["versions"]) == (NAME, ["1", "3"])
        assert [i["name"] for i in metadata["inputs"]] == ["a", "b", "color"]
        assert http.get(f"/v2/models/{NAME}/ready").status_code == 200
        # /invocations goes through the router too, with its variant named.
        scored = http.post("/invocations", json={"dataframe_records": red.to_dict("records")})
        assert scored.status_code == 200 and scored.headers["x-loopwright-variant"] in "ab"
        # Each variant's model answers by its own name and version, outside the policy.
        for version in (1, 3):
            direct = http.post(f"/v2/models/{MODEL}/versions/{version}/infer", json=_body(0))
            assert direct.json()["model_version"] == str(version)
            assert "x-loopwright-variant" not in direct.headers
        unknown = http.post(f"/v2/models/{NAME}/versions/1/infer", json=_body(0))
        assert unknown.status_code == 404  # a deployment has no versions of its own
        # A deleted deployment leaves the last policy serving, and says so once.
        client.deployments.delete(NAME)
        deadline = time.monotonic() + 10
        while "could not be read" not in caplog.text and time.monotonic() < deadline:
            time.sleep(0.05)
        assert f"deployment {NAME!r} could not be read, still serving revision 2" in caplog.text
        assert http.post(f"/v2/models/{NAME}/infer", json=_body(0)).status_code == 200
        time.sleep(0.3)
    assert caplog.text.count("could not be read") == 1


def test_a_retired_version_waits_for_the_requests_holding_it(
    client: Client, settings: Settings, versions: dict[int, Any]
) -> None:
    client.deployments.create(NAME, f"models:/{MODEL}@champion")
    _, watcher = _serve(settings)

    def loaded() -> list[str]:
        return [row["version"] for row in watcher.repository.index()]

    async def run() -> None:
        old = watcher.router.live[0].slot
        old.in_flight += 1  # a request that chose version 1 and has not been answered yet
        client.registry.set_alias(MODEL, "champion", 2)
        assert await watcher.refresh()
        assert watcher.router.resolved == {"primary": (MODEL, 2)}
        await asyncio.sleep(0.2)
        assert loaded() == ["1", "2"]  # still held
        old.in_flight -= 1
        await asyncio.sleep(0.2)
        assert loaded() == ["2"]
        assert not await watcher.refresh()  # nothing changed since
        await watcher.close()

    asyncio.run(run())


def test_shadow_copies_past_the_bound_are_dropped_and_counted(
    client: Client, settings: Settings, versions: dict[int, Any]
) -> None:
    from datetime import UTC, datetime

    from loopwright.serving.shadow import ShadowCopies

    client.deployments.create(NAME, f"models:/{MODEL}/1")
    _, watcher = _serve(settings)
    route = watcher.router.live[0]
    X, _ = training_frame()
    copies = ShadowCopies(NAME, None, max_in_flight=2)

    async def run() -> None:
        for i in range(5):
            copies.send([route], X[:1], ("predict",), f"r{i}", datetime.now(UTC))
        assert route.slot.in_flight == 2
        await copies.close()
        # Copies cancelled before they ran (a stop that cannot wait) release the slot too.
        copies.send([route], X[:1], ("predict",), "late", datetime.now(UTC))
        await copies.close(timeout=0)
        await watcher.close()

    asyncio.run(run())
    stats = copies.stats()
    assert (stats.sent, stats.dropped, stats.answered, stats.failed) == (3, 3, 2, 0)
    assert stats.in_flight == 0 and route.slot.in_flight == 0


def test_a_retired_model_finishes_the_batch_it_is_running(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch on the model thread when its batcher stops is answered, not abandoned."""
    import importlib

    import pandas as pd

    from loopwright.registry.packaging.package import save_model
    from loopwright.serving.repository import ModelRepository
    from loopwright.serving.sources import ModelSource

    code = tmp_path / "code"
    code.mkdir()
    (code / "sleepy_model.py").write_text(
        "import time\n"
        "class Sleepy:\n"
        "    def predict(self, frame):\n"
        "        time.sleep(0.3)\n"
        "        return frame['a'].to_numpy() * 2\n"
    )
    monkeypatch.syspath_prepend(str(code))
    sleepy = importlib.import_module("sleepy_model").Sleepy()
    example = pd.DataFrame({"a": [1.0]})
    save_model(sleepy, tmp_path / "pkg", input_example=example)
    source = ModelSource("sleepy", "sleepy", None, str(tmp_path / "pkg"), trusted=True)
    repository = ModelRepository([])
    entry = repository.load_detached(source)  # warm-up measures 300 ms: the model thread
    repository.add(entry)
    model, batcher = repository.get("sleepy")
    assert model.predict_ms > 100

    async def run() -> dict[str, Any]:
        answer = asyncio.ensure_future(batcher.submit(model.prepare(example), ("predict",)))
        await asyncio.sleep(0.1)  # the batch is on the model thread now
        await repository.remove(entry)
        return await asyncio.wait_for(answer, 5)

    assert asyncio.run(run())["predict"].tolist() == [2.0]


def test_a_request_whose_body_arrives_across_a_swap_is_answered_by_the_new_policy(
    client: Client, settings: Settings, versions: dict[int, Any]
) -> None:
    """The app reads the router before it awaits the body; the swap and the old version's
    retirement may happen while the body is on its way. The choice then follows the new policy
    (the retired version's batcher would otherwise be restarted, or hang on a slow model)."""
    client.deployments.create(NAME, f"models:/{MODEL}@champion")
    app, watcher = _serve(settings)
    path = f"/v2/models/{NAME}/infer"
    body = json.dumps(_body(0)).encode()

    async def run() -> tuple[_Answer, Any]:
        body_sent = asyncio.Event()
        old = watcher.router.live[0].slot
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": [(b"content-type", b"application/json")],
            "client": ("127.0.0.1", 1),
            "server": ("127.0.0.1", 80),
        }
        parts = iter([body[:10], body[10:]])
        status, chunks = 0, []
        headers: dict[str, str] = {}

        async def receive() -> dict[str, Any]:
            part = next(parts, None)
            if part is None:
                await asyncio.Event().wait()
            if part == body[10:]:
                await body_sent.wait()  # the rest of the body comes after the swap
            return {"type": "http.request", "body": part, "more_body": part == body[:10]}

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers.update((k.decode(), v.decode()) for k, v in message["headers"])
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        request = asyncio.ensure_future(app(scope, receive, send))
        await asyncio.sleep(0.05)  # the app holds the router and waits for the body
        client.registry.set_alias(MODEL, "champion", 2)
        assert await watcher.refresh()
        deadline = time.monotonic() + 5
        while any(r["version"] == "1" for r in watcher.repository.index()):
            assert time.monotonic() < deadline, "version 1 was never retired"
            await asyncio.sleep(0.01)
        body_sent.set()
        await asyncio.wait_for(request, 5)
        await watcher.close()
        return _Answer(status, headers, b"".join(chunks)), old

    answer, old = asyncio.run(run())
    assert answer.status_code == 200, answer.json()
    assert answer.json()["model_version"] == "2"
    assert old.in_flight == 0
    assert old.batcher._task is None  # the retired version's runner was not started again
