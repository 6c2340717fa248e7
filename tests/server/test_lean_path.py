"""The lean path (``server/_lean.py``): MLflow's log-metric, runs/create, runs/update and runs/get
answer exactly as FastAPI's own handling of the same routes does, for good and bad requests, with
auth on; ordinary requests skip FastAPI's dependency solving, the rest go through it.

Two real servers share one store: the app as built (lean) and the same app built with no lean
routes (FastAPI's handling). Every request is sent to both, each on its own run, and the answers
must be the same (the run's id and what derives from it set aside).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Annotated, Any

import fastapi.routing
import httpx
import pytest
from fastapi import Depends, FastAPI, Query
from fastapi.testclient import TestClient

import loopwright.server.mlflow as mlflow_routes
from loopwright.server import _lean
from loopwright.server._lean import LeanRoute
from loopwright.server.api._deps import State, Viewer
from loopwright.server.mlflow import _messages as m
from loopwright.server.mlflow._common import LeanMlflowRoute, reply

API = "/api/2.0/mlflow"
R = f"{API}/runs"  # the MLflow run routes
JSON = {"content-type": "application/json"}


@pytest.fixture
def both(
    auth_server: Any,
    serve_app: Callable[..., AbstractContextManager[str]],
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[tuple[str, str]]:
    """The URLs of the lean server and of the same store served without lean routes."""
    with monkeypatch.context() as patch:
        # Every lean route's handler is FastAPI's own: the MLflow routes are made per app;
        # the native routers' handlers per inclusion, on the first request (serving waits for
        # /health), both while this patch holds.
        patch.setattr(_lean, "lean_handler", lambda route, full: full)
        patch.setattr(mlflow_routes, "_LEAN_PATHS", frozenset())
        full = serve_app(auth_server.settings, auth=True)
        url = full.__enter__()
    try:
        yield auth_server.url, url
    finally:
        full.__exit__(None, None, None)


def _client(url: str, token: str | None) -> httpx.Client:
    headers = {} if token is None else {"authorization": f"Bearer {token}"}
    return httpx.Client(base_url=url, headers=headers, timeout=60)


def _new_run(http: httpx.Client, experiment_id: str) -> str:
    answer = http.post(
        f"{R}/create",
        json={"experiment_id": experiment_id, "run_name": "r", "start_time": 5},
    )
    assert answer.status_code == 200, answer.text
    return str(answer.json()["run"]["info"]["run_id"])


# (who, method, path, how to send): the run's id is written ``RUN``, the experiment's ``EXP``.
Case = tuple[str | None, str, str, dict[str, Any]]


def _body(payload: Any, **headers: str) -> dict[str, Any]:
    text = payload if isinstance(payload, str) else json.dumps(payload)
    return {"content": text, "headers": {**JSON, **headers}}


POINT = {"key": "loss", "value": 0.5, "step": 0, "timestamp": 7}
METRIC = {"run_id": "RUN", "key": "loss", "value": 0.5, "timestamp": 7, "step": 1}
CASES: list[Case] = [
    ("ada", "POST", f"{R}/log-metric", _body(METRIC)),
    ("ada", "POST", f"{R}/log-metric", _body({**METRIC, "value": "NaN", "extra": [1]})),
    ("ada", "POST", f"{R}/log-metric", _body({**METRIC, "timestamp": "12", "step": 2.0})),
    ("ada", "POST", f"{R}/log-metric", _body({**METRIC, "run_id": None, "run_uuid": "RUN"})),
    ("ada", "POST", f"{R}/log-metric", _body({**METRIC, "run_id": None})),
    ("ada", "POST", f"{R}/log-metric", _body({k: v for k, v in METRIC.items() if k != "key"})),
    ("ada", "POST", f"{R}/log-metric", _body({**METRIC, "timestamp": 2**63})),
    ("ada", "POST", f"{R}/log-metric", _body({**METRIC, "key": "a\x00b"})),
    ("ada", "POST", f"{R}/log-metric", _body({**METRIC, "value": "high"})),
    ("ada", "POST", f"{R}/log-metric", _body({**METRIC, "run_id": "f" * 32})),
    ("ada", "POST", f"{R}/log-metric", _body({**METRIC, "key": "../x"})),
    ("ada", "POST", f"{R}/log-metric", _body('{"run_id": "RUN", "key": ')),
    ("ada", "POST", f"{R}/log-metric", _body("[]")),
    ("ada", "POST", f"{R}/log-metric", _body("")),
    ("ada", "POST", f"{R}/log-metric", _body(METRIC, **{"content-type": "text/plain"})),
    ("ada", "POST", f"{R}/log-metric", _body(METRIC, **{"content-type": "application/x+json"})),
    ("ada", "POST", f"{R}/log-metric", {"content": b"\xff\xfe", "headers": JSON}),
    ("vic", "POST", f"{R}/log-metric", _body(METRIC)),
    ("vic", "POST", f"{R}/log-metric", _body("{")),
    (None, "POST", f"{R}/log-metric", _body(METRIC)),
    ("ada", "POST", f"{R}/create", _body({"experiment_id": "EXP", "run_name": "n", "start_time": 1,
                                           "tags": [{"key": "k", "value": "v"}]})),
    ("ada", "POST", f"{R}/create", _body({"experiment_id": "EXP", "run_name": "n" * 1000})),
    ("ada", "POST", f"{R}/create", _body({"experiment_id": "424242", "run_name": "n"})),
    ("ada", "POST", f"{R}/create", _body({"experiment_id": "EXP", "run_name": "a",
                                           "tags": [{"key": "mlflow.runName", "value": "b"}]})),
    ("ada", "POST", f"{R}/create", _body({"experiment_id": "EXP", "tags": [{"value": "v"}]})),
    ("ada", "POST", f"{R}/create", _body({"experiment_id": "EXP", "start_time": -(2**64)})),
    ("vic", "POST", f"{R}/create", _body({"experiment_id": "EXP", "run_name": "n"})),
    ("ada", "POST", f"{R}/update", _body({"run_id": "RUN", "status": "BOGUS"})),
    ("ada", "POST", f"{R}/update", _body({"run_id": "RUN", "status": [3]})),
    ("ada", "POST", f"{R}/update", _body({"run_id": "f" * 32, "status": "FINISHED"})),
    ("vic", "POST", f"{R}/update", _body({"run_id": "RUN", "status": "FINISHED"})),
    ("ada", "POST", f"{R}/update", _body({"run_id": "RUN", "status": 3, "end_time": 9})),
    ("ada", "POST", f"{R}/update", _body({"run_id": "RUN", "status": "FAILED", "end_time": 10})),
    ("vic", "GET", f"{R}/get?run_id=RUN", {}),
    ("vic", "GET", f"{R}/get?run_uuid=RUN&other=1", {}),
    ("vic", "GET", f"{R}/get?run_id=RUN&run_id=RUN", {}),
    ("vic", "GET", f"{R}/get?run_id=a%00b", {}),
    ("vic", "GET", f"{R}/get", {}),
    ("vic", "GET", f"{R}/get?run_id={'f' * 32}", {}),
    # The native equivalents.
    ("ada", "POST", "/api/v1/runs", _body({"experiment": "lean", "name": "n", "tags": {"a": "b"}})),
    ("ada", "POST", "/api/v1/runs", _body({"experiment": "lean", "name": 5})),
    ("ada", "POST", "/api/v1/runs", _body({"experiment": "lean", "unknown": 1})),
    ("ada", "POST", "/api/v1/runs", _body({"experiment": ""})),
    ("ada", "POST", "/api/v1/runs", _body({"experiment": "lean", "parent_run_id": "f" * 32})),
    ("vic", "POST", "/api/v1/runs", _body({"experiment": "lean"})),
    ("ada", "POST", "/api/v1/runs/RUN/metrics", _body({"metrics": [POINT, {**POINT, "step": 1}]})),
    ("ada", "POST", "/api/v1/runs/RUN/metrics", _body({"metrics": [{**POINT, "value": "1"}]})),
    ("ada", "POST", "/api/v1/runs/RUN/metrics", _body({"metrics": [{**POINT, "value": 2}]})),
    ("ada", "POST", "/api/v1/runs/RUN/metrics", _body({"metrics": [{**POINT, "key": ""}]})),
    ("ada", "POST", "/api/v1/runs/RUN/metrics", _body({"metrics": []})),
    ("ada", "POST", "/api/v1/runs/RUN/metrics", _body("{]")),
    ("ada", "POST", f"/api/v1/runs/{'f' * 32}/metrics", _body({"metrics": [POINT]})),
    ("vic", "POST", "/api/v1/runs/RUN/metrics", _body({"metrics": [POINT]})),
    ("vic", "GET", "/api/v1/runs/RUN", {}),
    ("vic", "GET", f"/api/v1/runs/{'f' * 32}", {}),
    ("vic", "GET", "/api/v1/runs/a%2Fb", {}),
    (None, "GET", "/api/v1/runs/RUN", {}),
    (None, "GET", f"{R}/get?run_id=RUN", {}),
]  # fmt: skip


def _answer(http: httpx.Client, case: Case, run_id: str, experiment_id: str) -> tuple[int, Any]:
    _, method, path, how = case
    path = path.replace("RUN", run_id)
    sent = dict(how)
    if isinstance(sent.get("content"), str):
        sent["content"] = sent["content"].replace("RUN", run_id).replace("EXP", experiment_id)
    answer = http.request(method, path, **sent)
    text = answer.text.replace(run_id, "<run>")
    text = re.sub(r'"(run_id|run_uuid|id)":"[0-9a-f]{32}"', r'"\1":"<new>"', text)
    text = re.sub(r'"(start_time|created_at|updated_at|heartbeat_at)":[0-9]+', r'"\1":0', text)
    text = re.sub(r'"artifact_uri":"[^"]*"', '"artifact_uri":"<uri>"', text)
    try:
        return answer.status_code, json.loads(text)
    except ValueError:
        return answer.status_code, text


def test_every_request_answers_as_fastapis_own_handling_does(
    both: tuple[str, str], auth_server: Any
) -> None:
    lean_url, full_url = both
    tokens = auth_server.tokens
    with _client(lean_url, tokens["ada"]) as setup:
        answer = setup.post(f"{API}/experiments/create", json={"name": "lean"})
        experiment_id = answer.json()["experiment_id"]
    differ = []
    for case in CASES:
        who = case[0]
        answers = []
        for url in (lean_url, full_url):
            with _client(url, tokens["ada"]) as owner:
                run_id = _new_run(owner, experiment_id)
            with _client(url, None if who is None else tokens[who]) as http:
                answers.append(_answer(http, case, run_id, experiment_id))
        if answers[0] != answers[1]:
            differ.append(
                f"{case[1]} {case[2]} {case[3]}:\n  lean {answers[0]}\n  full {answers[1]}"
            )
    assert not differ, "\n".join(differ)


def test_ordinary_requests_skip_dependency_solving_and_the_others_do_not(
    auth_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    solved: list[str] = []
    solve = fastapi.routing.solve_dependencies  # type: ignore[attr-defined]

    async def counting(*args: Any, **kwargs: Any) -> Any:
        solved.append(kwargs["request"].url.path)
        return await solve(*args, **kwargs)

    monkeypatch.setattr(fastapi.routing, "solve_dependencies", counting)
    with _client(auth_server.url, auth_server.tokens["ada"]) as http:
        run_id = _new_run(http, "0")
        point = {**METRIC, "run_id": run_id}
        assert http.post(f"{R}/log-metric", json=point).status_code == 200
        assert http.get(f"{R}/get", params={"run_id": run_id}).status_code == 200
        native = http.post("/api/v1/runs", json={"experiment": "Default", "name": "n"})
        assert native.status_code == 201
        native_id = native.json()["id"]
        points = {"metrics": [{"key": "m", "value": 1.0, "timestamp": 1}]}
        assert http.post(f"/api/v1/runs/{native_id}/metrics", json=points).status_code == 204
        assert http.get(f"/api/v1/runs/{native_id}").json()["metrics"]["m"]["value"] == 1.0
        ended = http.post(f"{R}/update", json={"run_id": run_id, "status": "FINISHED"})
        assert ended.json()["run_info"]["status"] == "FINISHED"
        assert solved == []
        bad = http.post(f"{R}/log-metric", json={**point, "value": "high"})
        assert bad.status_code == 400 and bad.json()["error_code"] == "INVALID_PARAMETER_VALUE"
        assert solved == [f"{R}/log-metric"]  # FastAPI answered the bad one
    with _client(auth_server.url, auth_server.tokens["vic"]) as viewer:
        refused = viewer.post(f"{R}/log-metric", json=point)
        assert refused.status_code == 403 and refused.json()["error_code"] == "PERMISSION_DENIED"
        assert len(solved) == 1  # refused on the lean path, by the same role check
        got = viewer.get(f"{R}/get", params={"run_id": run_id})
        assert got.json()["run"]["data"]["metrics"] == [
            {"key": "loss", "value": 0.5, "timestamp": 7, "step": 1}
        ]


def test_a_router_included_with_dependencies_is_served_by_fastapi(
    auth_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The lean path knows only the endpoint's own dependencies: an inclusion that adds some
    gets FastAPI's handler, which runs them."""
    router = fastapi.APIRouter(route_class=LeanMlflowRoute)
    seen: list[str] = []

    async def extra(request: fastapi.Request) -> None:
        seen.append(request.url.path)

    @router.get("/lean-get")
    async def lean_get(q: Annotated[m.RunRef, Query()], state: State, _: Viewer) -> Any:
        return reply({"run": q.run})

    from loopwright.server.app import create_app

    app = create_app(auth_server.settings, auth=False)
    app.include_router(router, dependencies=[Depends(extra)])
    plain = FastAPI()
    plain.state.lw = app.state.lw
    plain.include_router(router)
    with TestClient(app) as http:
        assert http.get("/lean-get", params={"run_id": "x"}).json() == {"run": "x"}
    assert seen == ["/lean-get"]
    with TestClient(plain) as http:
        assert http.get("/lean-get", params={"run_id": "y"}).json() == {"run": "y"}
    assert seen == ["/lean-get"]


def test_endpoints_the_lean_path_cannot_serve_exactly_are_refused_when_the_app_is_built() -> None:
    def sync(body: m.RunRef, state: State) -> Any:
        return None

    async def loose(body: m.RunRef, state: State, limit: int = 3) -> Any:
        return None

    async def untyped(body: dict[str, Any], state: State) -> Any:
        return None

    async def repeated(q: Annotated[m.SearchRuns, Query()], state: State) -> Any:
        return None

    async def two(body: m.RunRef, other: m.RunRef) -> Any:
        return None

    async def typed_path(run_id: int, state: State) -> Any:
        return None

    for path, endpoint, words in (
        ("/x", sync, "must be async"),
        ("/x", loose, "limit has a default"),
        ("/x", untyped, "must be a pydantic model"),
        ("/x", repeated, "repeatable fields"),
        ("/x", two, "second message"),
        ("/x/{run_id}", typed_path, "must be a plain str"),
    ):
        with pytest.raises(TypeError, match=words):
            LeanRoute(path, endpoint, methods=["POST"])
    with pytest.raises(TypeError, match="include/exclude"):
        LeanRoute("/x", two_ok, methods=["POST"], response_model_exclude_none=True)


async def two_ok(body: m.RunRef, state: State) -> Any:
    return None
