"""``POST /api/v1/evaluation/runs`` takes no figures from the caller (reviewer R1's forged gate
input): the server computes the summary from the rows the run logged, which must cover the
dataset version's records, with registered scorers as registered; SQLite and PostgreSQL."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
from _judge_stub import serve_in_thread

from loopwright.client import Client
from loopwright.config import resolve_settings

API = "/api/v1/evaluation"


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def server(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    pg_database: Callable[[], AbstractContextManager[str]],
) -> Iterator[tuple[Client, httpx.Client]]:
    from loopwright.server.app import create_app

    root = tmp_path_factory.mktemp(f"recorded-{request.param}")
    with ExitStack() as stack:
        db_uri = (
            f"sqlite:///{root / 'db'}"
            if request.param == "sqlite"
            else stack.enter_context(pg_database())
        )
        settings = resolve_settings(home=root / "home", db_uri=db_uri, user="ada")
        url = stack.enter_context(serve_in_thread(create_app(settings, auth=False)))
        remote = resolve_settings(home=root / "client", server_uri=url, user="ada")
        client = stack.enter_context(Client(remote))
        yield client, stack.enter_context(httpx.Client(base_url=url, timeout=30))


def _setup(
    client: Client, http: httpx.Client, tmp_path: Path, rows: list[dict[str, Any]] | None
) -> tuple[str, str]:
    name = f"qa{uuid.uuid4().hex[:8]}"
    assert http.post(f"{API}/datasets", json={"name": name}).status_code == 201
    records = [{"inputs": {"q": "2+2"}, "expectations": {"expected_response": "4"}}]
    assert http.post(f"{API}/datasets/{name}/records", json={"records": records}).status_code == 200
    dataset = http.get(f"{API}/datasets/{name}").json()
    stored = http.get(f"{API}/datasets/{name}/records").json()
    run = client.tracking.create_run(experiment="evaluations", name="totally real")
    if rows is not None:
        path = tmp_path / "eval_results.jsonl"
        filled = [
            {**row, "record_id": row.get("record_id", stored[0]["record_id"])} for row in rows
        ]
        path.write_text("".join(json.dumps(r) + "\n" for r in filled))
        client.tracking.log_artifact(run.id, path)
    return str(run.id), dataset["version_id"]


def _summary(run_id: str, version_id: str, scorers: dict[str, str]) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "name": "totally real",
        "target": "prompts:/support/2",
        "dataset_version_id": version_id,
        "scorers": scorers,
        "aggregates": {"correct/mean": 1.0, "failed_rows": 0},
        "rows": 1000,
        "failed_rows": 0,
    }


_CODE = {"correct": "tests:correct code 000000000000"}


def _scored(value: Any) -> dict[str, Any]:
    return {"scores": {"correct": {"value": value, "rationale": "", "error": None}}}


def test_made_up_figures_without_logged_rows_are_refused(
    server: tuple[Client, httpx.Client], tmp_path: Path
) -> None:
    client, http = server
    run_id, version_id = _setup(client, http, tmp_path, rows=None)
    answer = http.post(f"{API}/runs", json=_summary(run_id, version_id, _CODE))
    assert answer.status_code == 400 and "eval_results.jsonl" in answer.text, answer.text
    assert http.get(f"{API}/runs/{run_id}").status_code == 404


@pytest.mark.parametrize(
    ("rows", "fragment"),
    [
        ([_scored(1.0)] * 3, "not the 1 records"),
        ([{**_scored(1.0), "record_id": "someone-else"}], "not the 1 records"),
        ([{"scores": {"other": {"value": 1}}}], "scored by"),
        ([{"scores": "high"}], "scores must map"),
    ],
)
def test_rows_that_do_not_cover_the_dataset_version_are_refused(
    server: tuple[Client, httpx.Client], tmp_path: Path, rows: list[dict[str, Any]], fragment: str
) -> None:
    client, http = server
    run_id, version_id = _setup(client, http, tmp_path, rows)
    answer = http.post(f"{API}/runs", json=_summary(run_id, version_id, _CODE))
    assert answer.status_code == 400 and fragment in answer.text, answer.text


def test_a_scorer_claimed_as_registered_must_be_that_version(
    server: tuple[Client, httpx.Client], tmp_path: Path
) -> None:
    client, http = server
    run_id, version_id = _setup(client, http, tmp_path, [_scored(1.0)])
    for described, fragment in (
        ("correct/1 code 000000000000", "not registered"),
        ("other/1 code 000000000000", "cannot be recorded as version"),
        ("correct/1 code short", "12 hex digits"),
    ):
        answer = http.post(f"{API}/runs", json=_summary(run_id, version_id, {"correct": described}))
        assert answer.status_code == 400 and fragment in answer.text, answer.text
    registered = http.post(
        f"{API}/scorers",
        json={
            "name": "correct",
            "kind": "builtin",
            "reference": "builtin:json_valid",
            "digest": "x",
        },
    ).json()
    forged = {"correct": f"correct/{registered['version']} builtin 000000000000"}
    answer = http.post(f"{API}/runs", json=_summary(run_id, version_id, forged))
    assert answer.status_code == 400 and "is registered as builtin" in answer.text, answer.text


def test_the_stored_figures_are_the_servers_not_the_callers(
    server: tuple[Client, httpx.Client], tmp_path: Path
) -> None:
    client, http = server
    run_id, version_id = _setup(client, http, tmp_path, [_scored(0.0)])
    answer = http.post(f"{API}/runs", json=_summary(run_id, version_id, _CODE))
    assert answer.status_code == 201, answer.text
    stored = http.get(f"{API}/runs/{run_id}").json()
    assert stored["aggregates"]["correct/mean"] == 0.0
    assert stored["rows"] == 1 and stored["failed_rows"] == 0
