"""MLflow's REST API at the HTTP level against a live server: error codes and statuses, MLflow's
batch limits, query-string messages, repeated points, path traversal, route rules."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

LiveServer = Any  # tests/server/conftest.py: .url, .home, .db_uri, .settings, .tokens
API = "/api/2.0/mlflow"
ARTIFACTS = "/api/2.0/mlflow-artifacts/artifacts"


def _ok(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    return response.json()


def _error(response: httpx.Response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error_code"] == code
    return str(body["message"])


@pytest.fixture
def run(http: httpx.Client) -> dict[str, str]:
    experiment = _ok(http.post(f"{API}/experiments/create", json={"name": "rest"}))
    created = _ok(
        http.post(
            f"{API}/runs/create",
            json={"experiment_id": experiment["experiment_id"], "start_time": 1_000},
        )
    )
    info = created["run"]["info"]
    return {"run_id": info["run_id"], "experiment_id": info["experiment_id"]}


def test_missing_things_are_404_resource_does_not_exist(http: httpx.Client) -> None:
    _error(http.get(f"{API}/runs/get", params={"run_id": "0" * 32}), 404, "RESOURCE_DOES_NOT_EXIST")
    _error(
        http.get(f"{API}/experiments/get-by-name", params={"experiment_name": "nope"}),
        404,
        "RESOURCE_DOES_NOT_EXIST",
    )
    _error(
        http.get(f"{API}/registered-models/get", params={"name": "nope"}),
        404,
        "RESOURCE_DOES_NOT_EXIST",
    )
    _error(http.get(f"{API}/logged-models/m-123"), 404, "RESOURCE_DOES_NOT_EXIST")
    _error(http.get(f"{API}/no-such-endpoint"), 404, "ENDPOINT_NOT_FOUND")


def test_bad_requests_are_400_invalid_parameter_value(
    http: httpx.Client, run: dict[str, str]
) -> None:
    missing_value = {"run_id": run["run_id"], "key": "x"}
    _error(http.post(f"{API}/runs/log-metric", json=missing_value), 400, "INVALID_PARAMETER_VALUE")
    _error(
        http.post(f"{API}/runs/log-metric", json={**run, "key": "x", "value": "not a number"}),
        400,
        "INVALID_PARAMETER_VALUE",
    )
    _error(
        http.post(
            f"{API}/runs/search",
            json={"experiment_ids": [run["experiment_id"]], "filter": "metrics.auc >> 1"},
        ),
        400,
        "INVALID_PARAMETER_VALUE",
    )
    _ok(http.post(f"{API}/runs/log-parameter", json={**run, "key": "lr", "value": "0.1"}))
    message = _error(
        http.post(f"{API}/runs/log-parameter", json={**run, "key": "lr", "value": "0.2"}),
        400,
        "INVALID_PARAMETER_VALUE",
    )
    assert "immutable" in message
    _error(
        http.post(f"{API}/experiments/create", json={"name": "rest"}),
        400,
        "RESOURCE_ALREADY_EXISTS",
    )
    # What the databases cannot store is refused up front (PostgreSQL: NUL, > BIGINT).
    nul = {**run, "key": "t", "value": "a\x00b"}
    _error(http.post(f"{API}/runs/set-tag", json=nul), 400, "INVALID_PARAMETER_VALUE")
    huge = {**run, "key": "m", "value": 1.0, "timestamp": 1, "step": 2**64}
    _error(http.post(f"{API}/runs/log-metric", json=huge), 400, "INVALID_PARAMETER_VALUE")
    long_name = {"experiment_id": run["experiment_id"], "name": "n" * 251}
    _error(http.post(f"{API}/logged-models", json=long_name), 400, "INVALID_PARAMETER_VALUE")
    version = http.get(f"{API}/model-versions/get", params={"name": "x", "version": "1" * 30})
    _error(version, 400, "INVALID_PARAMETER_VALUE")


def test_log_batch_enforces_mlflows_limits(http: httpx.Client, run: dict[str, str]) -> None:
    def batch(**parts: Any) -> httpx.Response:
        return http.post(f"{API}/runs/log-batch", json={"run_id": run["run_id"], **parts})

    metric = {"key": "m", "value": 1.0, "timestamp": 1, "step": 0}
    assert "1000 metrics" in _error(batch(metrics=[metric] * 1001), 400, "INVALID_PARAMETER_VALUE")
    params = [{"key": f"p{i}", "value": "v"} for i in range(101)]
    assert "100 params" in _error(batch(params=params), 400, "INVALID_PARAMETER_VALUE")
    tags = [{"key": f"t{i}", "value": "v"} for i in range(101)]
    assert "100 tags" in _error(batch(tags=tags), 400, "INVALID_PARAMETER_VALUE")
    too_many = {"metrics": [metric] * 950, "params": params[:60]}
    assert "in total" in _error(batch(**too_many), 400, "INVALID_PARAMETER_VALUE")
    long_value = [{"key": "p", "value": "x" * 6001}]
    assert "6000" in _error(batch(params=long_value), 400, "INVALID_PARAMETER_VALUE")
    twice = [{"key": "p", "value": "1"}, {"key": "p", "value": "2"}]
    assert "twice" in _error(batch(params=twice), 400, "INVALID_PARAMETER_VALUE")

    # At the limits it works; a refused batch left nothing behind.
    _ok(batch(metrics=[{**metric, "step": i} for i in range(1000)]))
    _ok(batch(params=params[:100]))
    got = _ok(http.get(f"{API}/runs/get", params={"run_id": run["run_id"]}))["run"]
    assert len(got["data"]["params"]) == 100
    history = _ok(
        http.get(f"{API}/metrics/get-history", params={"run_id": run["run_id"], "metric_key": "m"})
    )
    assert len(history["metrics"]) == 1000


def test_repeated_points_are_ignored_and_nan_round_trips(
    http: httpx.Client, run: dict[str, str]
) -> None:
    point = {**run, "key": "loss", "value": 0.5, "timestamp": 10, "step": 3}
    nan = {"value": "NaN", "step": 4}
    for _ in range(3):
        _ok(http.post(f"{API}/runs/log-metric", json=point))
    _ok(
        http.post(
            f"{API}/runs/log-batch",
            json={"run_id": run["run_id"], "metrics": [point, point, {**point, **nan}]},
        )
    )
    history = _ok(
        http.get(
            f"{API}/metrics/get-history", params={"run_uuid": run["run_id"], "metric_key": "loss"}
        )
    )["metrics"]
    assert [(m["step"], m["value"]) for m in history] == [(3, 0.5), (4, "NaN")]


def test_get_requests_read_their_message_from_the_query_string(
    http: httpx.Client, run: dict[str, str]
) -> None:
    experiment = _ok(
        http.get(f"{API}/experiments/get-by-name", params={"experiment_name": "rest"})
    )["experiment"]
    assert experiment["experiment_id"] == run["experiment_id"]
    assert experiment["artifact_location"] == f"mlflow-artifacts:/{run['experiment_id']}"
    searched = _ok(
        http.get(
            f"{API}/experiments/search",
            params={"filter": "name LIKE 're%'", "max_results": 5, "view_type": "ALL"},
        )
    )
    assert [e["name"] for e in searched["experiments"]] == ["rest"]
    for name in ("b-model", "a-model"):
        _ok(http.post(f"{API}/registered-models/create", json={"name": name}))
    models = _ok(
        http.get(
            f"{API}/registered-models/search",
            params={"filter": "name LIKE '%-model'", "order_by": ["name DESC"], "max_results": 1},
        )
    )
    assert [m["name"] for m in models["registered_models"]] == ["b-model"]
    rest = _ok(
        http.get(
            f"{API}/registered-models/search",
            params={
                "filter": "name LIKE '%-model'",
                "order_by": ["name DESC"],
                "max_results": 1,
                "page_token": models["next_page_token"],
            },
        )
    )
    assert [m["name"] for m in rest["registered_models"]] == ["a-model"]
    assert "next_page_token" not in rest
    info = _ok(http.get(f"{API}/runs/get", params={"run_uuid": run["run_id"]}))["run"]["info"]
    assert info["start_time"] == 1_000
    assert info["run_name"].startswith("run-")
    # The UI's prefix answers too.
    assert _ok(http.get("/ajax-api/2.0/mlflow/runs/get", params=run))["run"]["info"] == info


def test_experiment_zero_is_the_default_experiment(http: httpx.Client) -> None:
    created = _ok(http.post(f"{API}/runs/create", json={"experiment_id": "0"}))["run"]["info"]
    default = _ok(http.get(f"{API}/experiments/get", params={"experiment_id": "0"}))["experiment"]
    assert default["name"] == "Default"
    assert created["experiment_id"] == default["experiment_id"]
    assert created["artifact_uri"].startswith(f"mlflow-artifacts:/{default['experiment_id']}/")


def test_artifact_paths_are_checked_and_stream_both_ways(
    http: httpx.Client, run: dict[str, str]
) -> None:
    root = f"{run['experiment_id']}/{run['run_id']}/artifacts"
    body = bytes(range(256)) * 8192  # 2 MiB
    _ok(http.put(f"{ARTIFACTS}/{root}/data/blob.bin", content=iter([body[:5], body[5:]])))
    got = http.get(f"{ARTIFACTS}/{root}/data/blob.bin")
    assert got.status_code == 200 and got.content == body
    assert got.headers["content-length"] == str(len(body))
    listed = _ok(http.get(ARTIFACTS, params={"path": f"{root}/data"}))
    assert listed == {"files": [{"path": "blob.bin", "is_dir": False, "file_size": len(body)}]}
    assert _ok(http.get(ARTIFACTS, params={"path": f"{root}/nothing-here"})) == {"files": []}
    runs_list = _ok(http.get(f"{API}/artifacts/list", params={"run_id": run["run_id"]}))
    assert runs_list["files"] == [{"path": "data", "is_dir": True}]

    for bad in ("%2E%2E/%2E%2E/etc/passwd", "a/%2e%2e/b", "..%2Fx", "a%5Cb"):
        put = http.put(f"{ARTIFACTS}/{root}/{bad}", content=b"x")
        assert _error(put, 400, "INVALID_PARAMETER_VALUE") == "Invalid path"  # MLflow's words
        _error(http.get(f"{ARTIFACTS}/{root}/{bad}"), 400, "INVALID_PARAMETER_VALUE")
    listing = http.get(ARTIFACTS, params={"path": f"{root}/../../x"})
    assert _error(listing, 400, "INVALID_PARAMETER_VALUE") == "Invalid path"
    _error(
        http.put(f"{ARTIFACTS}/{run['experiment_id']}/{'f' * 32}/artifacts/x", content=b"x"),
        404,
        "RESOURCE_DOES_NOT_EXIST",
    )
    _error(http.get(f"{ARTIFACTS}/{root}/data"), 404, "RESOURCE_DOES_NOT_EXIST")  # a folder

    _ok(http.delete(f"{ARTIFACTS}/{root}/data"))
    assert _ok(http.get(ARTIFACTS, params={"path": root})) == {"files": []}


def _upload_mlflow_model(http: httpx.Client, run: dict[str, str], folder: Any, at: str) -> str:
    """Save a small scikit-learn model with MLflow and upload it among the run's artifacts."""
    from mlflow import sklearn as mlflow_sklearn
    from sklearn.linear_model import LinearRegression

    mlflow_sklearn.save_model(
        LinearRegression().fit([[0.0], [1.0]], [0.0, 1.0]),
        str(folder),
        serialization_format="skops",
    )
    root = f"{run['experiment_id']}/{run['run_id']}/artifacts"
    for file in sorted(p for p in folder.rglob("*") if p.is_file()):
        _ok(
            http.put(
                f"{ARTIFACTS}/{root}/{at}/{file.relative_to(folder)}", content=file.read_bytes()
            )
        )
    return f"runs:/{run['run_id']}/{at}"


@pytest.mark.filterwarnings("ignore")  # MLflow warns about the missing signature, git, ...
def test_a_registered_versions_files_are_read_only(
    http: httpx.Client, run: dict[str, str], tmp_path: Any
) -> None:
    """A model version registered by ``runs:/`` URI keeps its MLflow folder, served read-only."""
    folder = tmp_path / "model"
    source = _upload_mlflow_model(http, run, folder, "m")
    _ok(http.post(f"{API}/registered-models/create", json={"name": "lin"}))
    version = _ok(
        http.post(
            f"{API}/model-versions/create",
            json={"name": "lin", "source": source, "run_id": run["run_id"]},
        )
    )["model_version"]
    assert (version["version"], version["run_id"], version["status"]) == (
        "1",
        run["run_id"],
        "READY",
    )
    uri = _ok(
        http.get(f"{API}/model-versions/get-download-uri", params={"name": "lin", "version": "1"})
    )["artifact_uri"]
    path = uri.removeprefix("mlflow-artifacts:/")
    files = _ok(http.get(ARTIFACTS, params={"path": path}))["files"]
    assert {
        "path": "MLmodel",
        "is_dir": False,
        "file_size": (folder / "MLmodel").stat().st_size,
    } in files
    assert http.get(f"{ARTIFACTS}/{path}/MLmodel").content == (folder / "MLmodel").read_bytes()
    _error(http.put(f"{ARTIFACTS}/{path}/MLmodel", content=b"x"), 403, "PERMISSION_DENIED")

    # A runs:/ source without its run_id is refused, as MLflow does; files stored elsewhere
    # (or not yet) make an external version, marked and not loadable (tests/registry covers it).
    _error(
        http.post(
            f"{API}/model-versions/create",
            json={"name": "lin", "source": f"runs:/{run['run_id']}/nothing"},
        ),
        400,
        "INVALID_PARAMETER_VALUE",
    )
    external = _ok(
        http.post(f"{API}/model-versions/create", json={"name": "lin", "source": "s3://b/m"})
    )["model_version"]
    assert (external["version"], external["source"]) == ("2", "s3://b/m")
    _error(
        http.post(f"{API}/model-versions/create", json={"name": "nope", "source": uri}),
        404,
        "RESOURCE_DOES_NOT_EXIST",
    )
    _ok(
        http.request("DELETE", f"{API}/model-versions/delete", json={"name": "lin", "version": "1"})
    )
    _error(
        http.get(f"{API}/model-versions/get", params={"name": "lin", "version": "1"}),
        404,
        "RESOURCE_DOES_NOT_EXIST",
    )


@pytest.mark.filterwarnings("ignore")  # MLflow warns about the missing signature, git, ...
def test_registry_round_trip(http: httpx.Client, run: dict[str, str], tmp_path: Any) -> None:
    source = _upload_mlflow_model(http, run, tmp_path / "model", "m")
    model = _ok(
        http.post(
            f"{API}/registered-models/create",
            json={"name": "reg", "description": "first", "tags": [{"key": "team", "value": "a"}]},
        )
    )["registered_model"]
    assert (model["name"], model["description"]) == ("reg", "first")
    for _ in range(2):
        _ok(
            http.post(
                f"{API}/model-versions/create",
                json={"name": "reg", "source": source, "run_id": run["run_id"]},
            )
        )
    _ok(http.patch(f"{API}/registered-models/update", json={"name": "reg", "description": "2"}))
    _ok(
        http.post(
            f"{API}/registered-models/set-tag", json={"name": "reg", "key": "k", "value": "v"}
        )
    )
    _ok(
        http.request(
            "DELETE", f"{API}/registered-models/delete-tag", json={"name": "reg", "key": "team"}
        )
    )
    described = {"name": "reg", "version": "2", "description": "better"}
    assert (
        _ok(http.patch(f"{API}/model-versions/update", json=described))["model_version"][
            "description"
        ]
        == "better"
    )
    staged = {"name": "reg", "version": "1", "stage": "Staging"}
    moved = _ok(http.post(f"{API}/model-versions/transition-stage", json=staged))
    assert moved["model_version"]["current_stage"] == "Staging"
    _ok(
        http.post(
            f"{API}/registered-models/alias", json={"name": "reg", "alias": "best", "version": "2"}
        )
    )
    by_alias = _ok(
        http.get(f"{API}/registered-models/alias", params={"name": "reg", "alias": "best"})
    )["model_version"]
    assert (by_alias["version"], by_alias["aliases"]) == ("2", ["best"])

    got = _ok(http.get(f"{API}/registered-models/get", params={"name": "reg"}))["registered_model"]
    assert got["description"] == "2"
    assert got["tags"] == [{"key": "k", "value": "v"}]
    assert got["aliases"] == [{"alias": "best", "version": "2"}]
    assert {(v["version"], v["current_stage"]) for v in got["latest_versions"]} == {
        ("1", "Staging"),
        ("2", "None"),
    }
    staging = {"name": "reg", "stages": ["Staging"]}
    latest = _ok(http.post(f"{API}/registered-models/get-latest-versions", json=staging))
    assert [v["version"] for v in latest["model_versions"]] == ["1"]
    latest = _ok(http.get(f"{API}/registered-models/get-latest-versions", params={"name": "reg"}))
    assert [v["version"] for v in latest["model_versions"]] == ["1", "2"]
    versions = _ok(
        http.get(
            f"{API}/model-versions/search",
            params={"filter": "name = 'reg'", "order_by": ["version_number DESC"]},
        )
    )["model_versions"]
    assert [v["version"] for v in versions] == ["2", "1"]
    _ok(http.post(f"{API}/model-versions/set-tag", json={**described, "key": "q", "value": "1"}))
    _ok(http.request("DELETE", f"{API}/model-versions/delete-tag", json={**described, "key": "q"}))

    refused = http.request("DELETE", f"{API}/registered-models/delete", json={"name": "reg"})
    _error(refused, 400, "INVALID_STATE")  # an alias still points at version 2
    _ok(
        http.request(
            "DELETE", f"{API}/registered-models/alias", json={"name": "reg", "alias": "best"}
        )
    )
    _ok(http.request("DELETE", f"{API}/registered-models/delete", json={"name": "reg"}))
    gone = http.get(f"{API}/registered-models/get", params={"name": "reg"})
    _error(gone, 404, "RESOURCE_DOES_NOT_EXIST")


def test_logged_models_over_rest(http: httpx.Client, run: dict[str, str]) -> None:
    created = _ok(
        http.post(
            f"{API}/logged-models",
            json={
                "experiment_id": run["experiment_id"],
                "name": "net",
                "source_run_id": run["run_id"],
                "params": [{"key": "layers", "value": "3"}],
            },
        )
    )["model"]
    model_id = created["info"]["model_id"]
    assert model_id.startswith("m-")
    assert created["info"]["status"] == "LOGGED_MODEL_PENDING"
    assert created["info"]["artifact_uri"] == (
        f"mlflow-artifacts:/{run['experiment_id']}/models/{model_id}/artifacts"
    )
    files = f"{ARTIFACTS}/{run['experiment_id']}/models/{model_id}/artifacts"
    _ok(http.put(f"{files}/w.bin", content=b"weights"))
    dirs = _ok(http.get(f"{API}/logged-models/{model_id}/artifacts/directories"))
    assert dirs["files"] == [{"path": "w.bin", "is_dir": False, "file_size": 7}]
    done = _ok(http.patch(f"{API}/logged-models/{model_id}", json={"status": 2}))["model"]
    assert done["info"]["status"] == "LOGGED_MODEL_READY"
    outputs = {"run_id": run["run_id"], "models": [{"model_id": model_id, "step": 7}]}
    _ok(http.post(f"{API}/runs/outputs", json=outputs))
    got = _ok(http.get(f"{API}/runs/get", params=run))["run"]
    assert got["outputs"]["model_outputs"] == [{"model_id": model_id, "step": 7}]
    found = _ok(
        http.post(
            f"{API}/logged-models/search",
            json={
                "experiment_ids": [run["experiment_id"]],
                "filter": "params.layers = '3' AND status = 'READY'",
                "order_by": [{"field_name": "creation_timestamp", "ascending": False}],
            },
        )
    )
    assert [m["info"]["model_id"] for m in found["models"]] == [model_id]
    bad_status = http.patch(f"{API}/logged-models/{model_id}", json={"status": "DONE"})
    _error(bad_status, 400, "INVALID_PARAMETER_VALUE")


def test_log_inputs_keep_datasets_and_link_loopwright_versions(
    http: httpx.Client, run: dict[str, str], live_server: LiveServer, tmp_path: Any
) -> None:
    import loopwright as lw

    data = tmp_path / "people.csv"
    data.write_text("id,age\n1,30\n")
    with lw.connect(live_server.db_uri, home=live_server.home) as native:
        version = native.datasets.add("people", data)
    datasets = [
        {
            "tags": [{"key": "mlflow.data.context", "value": "train"}],
            "dataset": {
                "name": "frame",
                "digest": "abc123",
                "source_type": "code",
                "source": "{}",
                "schema": '{"mlflow_colspec": []}',
            },
        },
        {
            "tags": [{"key": "mlflow.data.context", "value": "eval"}],
            "dataset": {
                "name": "people",
                "digest": version.content_hash[:8],
                "source_type": "loopwright",
                "source": '{"uri": "loopwright:/people@v1"}',
            },
        },
    ]
    _ok(http.post(f"{API}/runs/log-inputs", json={"run_id": run["run_id"], "datasets": datasets}))
    inputs = _ok(http.get(f"{API}/runs/get", params=run))["run"]["inputs"]["dataset_inputs"]
    assert [(d["dataset"]["name"], d["tags"][0]["value"]) for d in inputs] == [
        ("frame", "train"),
        ("people", "eval"),
    ]
    with lw.connect(live_server.db_uri, home=live_server.home) as native:
        assert native.datasets.runs_using(version) == [run["run_id"]]


def test_a_viewer_reads_but_cannot_write(auth_server: LiveServer) -> None:
    def as_user(name: str) -> httpx.Client:
        token = auth_server.tokens[name]
        return httpx.Client(
            base_url=auth_server.url, headers={"Authorization": f"Bearer {token}"}, timeout=30
        )

    with (
        as_user("ada") as ada,
        as_user("vic") as vic,
        httpx.Client(base_url=auth_server.url) as anon,
    ):
        _error(anon.post(f"{API}/experiments/create", json={"name": "x"}), 401, "UNAUTHENTICATED")
        experiment_id = _ok(ada.post(f"{API}/experiments/create", json={"name": "x"}))[
            "experiment_id"
        ]
        claim = {"experiment_id": experiment_id, "user_id": "mallory"}
        run = _ok(ada.post(f"{API}/runs/create", json=claim))
        assert run["run"]["info"]["user_id"] == "ada"  # the token decides, not the claim
        run_id = run["run"]["info"]["run_id"]
        _ok(vic.get(f"{API}/runs/get", params={"run_id": run_id}))
        _ok(vic.post(f"{API}/runs/search", json={"experiment_ids": [experiment_id]}))
        _error(
            vic.post(f"{API}/runs/log-metric", json={"run_id": run_id, "key": "k", "value": 1}),
            403,
            "PERMISSION_DENIED",
        )


def test_the_fast_run_messages_equal_the_entity_conversion(
    http: httpx.Client, run: dict[str, str], live_server: LiveServer
) -> None:
    """``runs/get`` and ``runs/search`` build messages from rows; the same as from entities."""
    import loopwright as lw
    from loopwright.server.mlflow._convert import run_json
    from loopwright.tracking.run_links import load_links

    metrics = [
        {"key": "nan", "value": "NaN", "timestamp": 5, "step": 1},
        {"key": "inf", "value": "-Infinity", "timestamp": 5, "step": 1},
        {"key": "auc", "value": 0.75, "timestamp": 6, "step": 2},
    ]
    batch = {
        "run_id": run["run_id"],
        "metrics": metrics,
        "params": [{"key": "p", "value": "1"}],
        "tags": [{"key": "t", "value": "x"}],
    }
    _ok(http.post(f"{API}/runs/log-batch", json=batch))
    dataset = {"name": "d", "digest": "1234", "source_type": "code", "source": "{}"}
    inputs = {"run_id": run["run_id"], "datasets": [{"tags": [], "dataset": dataset}]}
    _ok(http.post(f"{API}/runs/log-inputs", json=inputs))
    _ok(http.post(f"{API}/runs/update", json={"run_id": run["run_id"], "status": "FINISHED"}))
    with lw.connect(live_server.db_uri, home=live_server.home) as native:
        native.tracking.set_tags(run["run_id"], {"native": "yes"})
        entity = native.get_run(run["run_id"])
        expected = run_json(entity, load_links(native.store.db, [entity.id]).get(entity.id))
        bare = native.tracking.create_run(experiment="native-only", name="plain")

    def normal(message: dict[str, Any]) -> dict[str, Any]:
        data = message["data"]
        return {
            **message,
            "data": {part: sorted(data[part], key=lambda x: x["key"]) for part in data},
        }

    got = _ok(http.get(f"{API}/runs/get", params={"run_id": run["run_id"]}))["run"]
    assert normal(got) == normal(expected)
    found = _ok(http.post(f"{API}/runs/search", json={"experiment_ids": [run["experiment_id"]]}))
    assert [normal(r) for r in found["runs"]] == [normal(expected)]
    plain = _ok(http.get(f"{API}/runs/get", params={"run_id": bare.id}))["run"]
    assert {"key": "mlflow.runName", "value": "plain"} in plain["data"]["tags"]
    assert plain["info"]["artifact_uri"].endswith(f"/{bare.id}/artifacts")
