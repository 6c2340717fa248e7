"""MLflow's wording on MLflow's routes, Loopwright's on the native ones, against a live server.

MLflow's clients, its own tests and users' scripts match some messages (``Invalid value 31 for
parameter 'run_id' supplied``, ``Run with id=… not found``); those must read as MLflow's server
writes them. Also here: what MLflow stores although it names a run that does not exist (a
parent-run tag, a logged model's source run) and the logged-model search on datasets.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

LiveServer = Any  # tests/server/conftest.py: .url, .home, .db_uri, .settings, .tokens
API = "/api/2.0/mlflow"
ARTIFACTS = "/api/2.0/mlflow-artifacts/artifacts"
NATIVE = "/api/v1"
DOCS = " See the API docs for more information about request parameters."


def _ok(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    return response.json()


def _message(response: httpx.Response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error_code"] == code, body
    return str(body["message"])


def _invalid(response: httpx.Response) -> str:
    return _message(response, 400, "INVALID_PARAMETER_VALUE")


@pytest.fixture
def run(http: httpx.Client) -> dict[str, str]:
    experiment = _ok(http.post(f"{API}/experiments/create", json={"name": "wording"}))
    created = _ok(
        http.post(f"{API}/runs/create", json={"experiment_id": experiment["experiment_id"]})
    )
    info = created["run"]["info"]
    return {"run_id": info["run_id"], "experiment_id": info["experiment_id"]}


def test_invalid_requests_read_as_mlflows(http: httpx.Client, run: dict[str, str]) -> None:
    run_id = run["run_id"]
    point = {"run_id": run_id, "key": "m", "value": 1.0, "timestamp": 5, "step": 0}

    def log_metric(**change: Any) -> str:
        body = {k: v for k, v in {**point, **change}.items() if v is not ...}
        return _invalid(http.post(f"{API}/runs/log-metric", json=body))

    assert log_metric(run_id=31) == (
        "Invalid value 31 for parameter 'run_id' supplied:  Hint: Value was of type 'int'." + DOCS
    )
    assert log_metric(step="foo") == (
        "Invalid value \"foo\" for parameter 'step' supplied:  Hint: Value was of type 'str'."
        + DOCS
    )
    assert log_metric(key=None) == "Missing value for required parameter 'key'." + DOCS
    assert log_metric(key=...) == "Missing value for required parameter 'key'." + DOCS
    assert log_metric(timestamp=...) == (
        "Missing value for required parameter 'timestamp'." + DOCS  # MLflow requires it
    )
    assert log_metric(run_id=None) == "Missing value for required parameter 'run_id'." + DOCS

    batch = f"{API}/runs/log-batch"
    for part in ("metrics", "params", "tags"):
        refused = _invalid(http.post(batch, json={"run_id": run_id, part: "foo"}))
        assert refused.startswith(f"Invalid value \"foo\" for parameter '{part}' supplied")
    untimed = {"run_id": run_id, "metrics": [{"key": "mae", "value": 2.5}]}
    assert _invalid(http.post(batch, json=untimed)) == (
        "Missing value for required parameter 'metrics[0].timestamp'." + DOCS
    )
    listed = {"experiment_ids": [run["experiment_id"]], "run_view_type": {"no": 1}}
    union = _invalid(http.post(f"{API}/runs/search", json=listed))
    assert union.startswith("Invalid value {\"no\":1} for parameter 'run_view_type' supplied")
    too_many = {"experiment_ids": [run["experiment_id"]], "max_results": 123456789}
    assert _invalid(http.post(f"{API}/runs/search", json=too_many)).startswith(
        "Invalid value 123456789 for parameter 'max_results' supplied"
    )
    query = {"run_id": run_id, "metric_key": "m", "max_results": "abc"}
    assert _invalid(http.get(f"{API}/metrics/get-history", params=query)) == (
        "Invalid value \"abc\" for parameter 'max_results' supplied:  Hint: Value was of type "
        "'str'." + DOCS
    )
    # A NUL cannot be stored: refused, in MLflow's frame, saying why.
    nul = _invalid(http.post(f"{API}/runs/set-tag", json={"run_id": run_id, "key": "a\x00b"}))
    assert nul.startswith("Invalid value \"a\\u0000b\" for parameter 'key' supplied:  Hint: a NUL")

    broken = http.post(
        f"{API}/runs/log-metric",
        content=b'{"run_id": ',
        headers={"content-type": "application/json"},
    )
    assert _invalid(broken).startswith("Invalid request: the body is not valid JSON")
    assert _invalid(http.post(f"{API}/runs/log-metric", json=[1])).startswith("Invalid request:")

    # The native API keeps Loopwright's wording for the same mistake.
    native = http.post(f"{NATIVE}/runs/{run_id}/metrics", json={"metrics": "foo"})
    assert native.status_code == 400
    assert native.json()["code"] == "INVALID_PARAMETER_VALUE"
    assert "Invalid value" not in native.json()["message"]
    assert "metrics" in native.json()["message"]


def test_bulk_interval_checks_in_mlflows_order_and_words(
    http: httpx.Client, run: dict[str, str]
) -> None:
    url = f"{API}/metrics/get-history-bulk-interval"
    one = {"run_ids": [run["run_id"]], "metric_key": "m"}
    cases: list[tuple[dict[str, Any], str]] = [
        ({"metric_key": "m"}, "Missing value for required parameter 'run_ids'." + DOCS),
        (
            {"run_ids": [f"r{i}" for i in range(101)], "metric_key": "m"},
            "GetMetricHistoryBulkInterval request must specify at most 100 run_ids. "
            "Received 101 run_ids.",
        ),
        ({**one, "metric_key": ""}, "Missing value for required parameter 'metric_key'." + DOCS),
        ({"run_ids": [run["run_id"]]}, "Missing value for required parameter 'metric_key'." + DOCS),
        ({**one, "max_results": 0}, "max_results must be between 1 and 2500."),
        ({**one, "max_results": 2501}, "max_results must be between 1 and 2500."),
        (
            {**one, "start_step": 1},
            "If either start step or end step are specified, both must be specified.",
        ),
        (
            {**one, "start_step": 2, "end_step": 1},
            "end_step must be greater than start_step. Found start_step=2 and end_step=1.",
        ),
    ]
    for params, expected in cases:
        assert _invalid(http.get(url, params=params)) == expected, params
    assert _ok(http.get(url, params={**one, "start_step": 0, "end_step": 9})) == {"metrics": []}


def test_missing_and_deleted_things_read_as_mlflows(
    http: httpx.Client, run: dict[str, str]
) -> None:
    run_id = run["run_id"]
    missing = _message(
        http.get(f"{API}/runs/get", params={"run_id": "fake"}), 404, "RESOURCE_DOES_NOT_EXIST"
    )
    assert missing == "Run with id=fake not found"
    native = http.get(f"{NATIVE}/runs/fake")
    assert native.status_code == 404 and "does not exist" in native.json()["message"]

    untagged = http.post(f"{API}/runs/delete-tag", json={"run_id": run_id, "key": "nope"})
    assert _message(untagged, 404, "RESOURCE_DOES_NOT_EXIST") == (
        f"No tag with name: nope in run with id {run_id}"
    )
    _ok(http.post(f"{API}/runs/delete", json={"run_id": run_id}))
    deleted = http.post(f"{API}/runs/set-tag", json={"run_id": run_id, "key": "k", "value": "v"})
    assert _message(deleted, 400, "INVALID_STATE") == (
        f"The run {run_id} must be in the 'active' state. Current state is deleted."
    )

    absent = "m-" + "0" * 32
    gone = http.get(f"{API}/logged-models/{absent}")
    assert _message(gone, 404, "RESOURCE_DOES_NOT_EXIST") == (
        f"Logged model with ID '{absent}' not found."
    )
    malformed = http.get(f"{API}/logged-models/m-123")
    assert _message(malformed, 404, "RESOURCE_DOES_NOT_EXIST") == (
        "Logged model with ID 'm-123' not found."
    )
    model = _ok(http.post(f"{API}/logged-models", json={"experiment_id": run["experiment_id"]}))[
        "model"
    ]["info"]["model_id"]
    untagged_model = http.delete(f"{API}/logged-models/{model}/tags/k")
    assert _message(untagged_model, 404, "RESOURCE_DOES_NOT_EXIST") == (
        f"No tag with key 'k' found for model with ID '{model}'."
    )


def test_unsafe_paths_are_mlflows_invalid_path(http: httpx.Client, run: dict[str, str]) -> None:
    run_id = run["run_id"]
    root = f"{run['experiment_id']}/{run_id}/artifacts"
    _ok(http.put(f"{ARTIFACTS}/{root}/a.txt", content=b"hello"))
    for response in (
        http.get(f"{API}/artifacts/list", params={"run_id": run_id, "path": "../path"}),
        http.get("/get-artifact", params={"run_id": run_id, "path": "../path"}),
        http.get("/get-artifact", params={"run_id": run_id, "path": "/etc/passwd"}),
        http.get("/model-versions/get-artifact", params={"name": "m", "version": 1, "path": ".."}),
        http.get(f"{ARTIFACTS}", params={"path": f"{root}/../../x"}),
    ):
        assert _invalid(response) == "Invalid path"
    got = http.get("/get-artifact", params={"run_id": run_id, "path": "a.txt"})
    assert got.status_code == 200 and got.content == b"hello"
    absent = http.get("/get-artifact", params={"run_id": run_id, "path": "b.txt"})
    _message(absent, 404, "RESOURCE_DOES_NOT_EXIST")
    unknown = http.get("/get-artifact", params={"run_id": "fake", "path": "a.txt"})
    assert _message(unknown, 404, "RESOURCE_DOES_NOT_EXIST") == "Run with id=fake not found"
    # The native API still explains an unsafe path in its own words.
    native = http.get(f"{NATIVE}/runs/{run_id}/artifacts", params={"path": "../x"})
    assert native.status_code == 400 and native.json()["code"] == "UNSAFE_PATH"
    assert "'..' segments are not allowed" in native.json()["message"]


def test_a_parent_run_tag_may_name_a_run_this_server_lacks(
    http: httpx.Client, run: dict[str, str]
) -> None:
    def create(parent: str) -> dict[str, Any]:
        tags = [{"key": "mlflow.parentRunId", "value": parent}]
        body = {"experiment_id": run["experiment_id"], "tags": tags}
        run_id = _ok(http.post(f"{API}/runs/create", json=body))["run"]["info"]["run_id"]
        got: dict[str, Any] = _ok(http.get(f"{API}/runs/get", params={"run_id": run_id}))["run"]
        return got

    orphan = create("7")
    assert {"key": "mlflow.parentRunId", "value": "7"} in orphan["data"]["tags"]
    native = _ok(http.get(f"{NATIVE}/runs/{orphan['info']['run_id']}"))
    assert native["parent_run_id"] is None  # the tag only: no link to a run that is not here

    child = create(run["run_id"])
    native = _ok(http.get(f"{NATIVE}/runs/{child['info']['run_id']}"))
    assert native["parent_run_id"] == run["run_id"]  # an existing parent is linked

    deleted_experiment = {"experiment_id": "f" * 32, "tags": [{"key": "mlflow.parentRunId"}]}
    refused = http.post(f"{API}/runs/create", json=deleted_experiment)
    assert refused.status_code == 404  # the retry without the link still needs the experiment


def test_logged_models_keep_a_source_run_and_search_on_datasets(
    http: httpx.Client, run: dict[str, str]
) -> None:
    experiment_id = run["experiment_id"]

    def create(**fields: Any) -> str:
        body = {"experiment_id": experiment_id, **fields}
        return str(_ok(http.post(f"{API}/logged-models", json=body))["model"]["info"]["model_id"])

    elsewhere = create(source_run_id="123", tags=[{"key": "team", "value": "risk"}])
    here = create(source_run_id=run["run_id"])
    info = _ok(http.get(f"{API}/logged-models/{elsewhere}"))["model"]["info"]
    assert info["source_run_id"] == "123"
    assert info["tags"] == [{"key": "team", "value": "risk"}]
    search = f"{API}/logged-models/search"
    by_source = {"experiment_ids": [experiment_id], "filter": "source_run_id = '123'"}
    assert [m["info"]["model_id"] for m in _ok(http.post(search, json=by_source))["models"]] == [
        elsewhere
    ]

    point = {"run_id": run["run_id"], "key": "acc", "value": 0.9, "timestamp": 1, "step": 0}
    on_eval = {**point, "model_id": here, "dataset_name": "eval", "dataset_digest": "d1"}
    _ok(http.post(f"{API}/runs/log-metric", json=on_eval))

    def found(datasets: list[dict[str, str]]) -> list[str]:
        body = {"experiment_ids": [experiment_id], "datasets": datasets}
        return [m["info"]["model_id"] for m in _ok(http.post(search, json=body))["models"]]

    assert found([{"dataset_name": "eval"}]) == [here]
    assert found([{"dataset_name": "eval", "dataset_digest": "d1"}]) == [here]
    assert found([{"dataset_name": "eval", "dataset_digest": "other"}]) == []
    assert sorted(found([])) == sorted([elsewhere, here])
    unnamed = {"experiment_ids": [experiment_id], "datasets": [{"dataset_digest": "d1"}]}
    assert _invalid(http.post(search, json=unnamed)) == (
        "`dataset_name` in the `datasets` clause must be specified."
    )
