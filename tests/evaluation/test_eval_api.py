"""``/api/v1/evaluation`` and MLflow's dataset routes over raw HTTP: malformed and oversized
bodies, wrong types, unknown names, a name that tries to leave its folder."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from _judge_stub import serve_in_thread

from loopwright.config import resolve_settings

API = "/api/v1/evaluation"


@pytest.fixture(scope="module")
def http(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    from loopwright.server.app import create_app

    root = tmp_path_factory.mktemp("eval-api")
    settings = resolve_settings(
        home=root / "home", db_uri=f"sqlite:///{root / 'db'}", user="ada", max_request_bytes=4096
    )
    with (
        serve_in_thread(create_app(settings, auth=False)) as url,
        httpx.Client(base_url=url, timeout=30) as client,
    ):
        assert client.post(f"{API}/datasets", json={"name": "qa"}).status_code == 201
        yield client


@pytest.mark.parametrize(
    ("path", "body", "status", "fragment"),
    [
        (f"{API}/datasets", b"{not json", 400, ""),
        (f"{API}/datasets", {"name": 5}, 400, "name"),
        (f"{API}/datasets", {"name": "x", "surprise": 1}, 400, "surprise"),
        (f"{API}/datasets", {"name": "../../etc"}, 400, "dataset name"),
        (f"{API}/datasets/qa/records", {"records": "not a list"}, 400, "records"),
        (f"{API}/datasets/qa/records", {"records": [{"inputs": []}]}, 400, "inputs must be"),
        (f"{API}/datasets/nope/records", {"records": [{"inputs": {"q": 1}}]}, 404, "not found"),
        (f"{API}/scorers", {"name": "s", "kind": "code"}, 400, "reference"),
        (f"{API}/scorers/ghost/versions/1/approve", None, 404, "not registered"),
        (
            f"{API}/runs",
            {
                "run_id": "r",
                "name": "n",
                "target": "t",
                "scorers": {},
                "aggregates": {"a": "x"},
                "rows": 1,
                "failed_rows": 0,
            },
            400,
            "aggregates",
        ),
    ],
)
def test_bad_requests_are_refused_naming_the_problem(
    http: httpx.Client, path: str, body: object, status: int, fragment: str
) -> None:
    if isinstance(body, bytes):
        answer = http.post(path, content=body, headers={"Content-Type": "application/json"})
    else:
        answer = http.post(path, json=body)
    assert answer.status_code == status, answer.text
    assert fragment in answer.text


def test_oversized_bodies_and_traversal_in_paths(http: httpx.Client) -> None:
    big = {"records": [{"inputs": {"q": "x" * 5000}}]}
    answer = http.post(f"{API}/datasets/qa/records", json=big)
    assert answer.status_code == 413 and "max_request_bytes" in answer.text
    mlflow = http.post(
        "/api/3.0/mlflow/datasets/d-qa/records", json={"records": "[" + "1," * 3000 + "1]"}
    )
    assert mlflow.status_code == 413
    assert http.get(f"{API}/datasets/..%2F..%2Fetc").status_code == 404
    assert http.get(f"{API}/datasets/qa").json()["digest"] is None  # nothing was stored
