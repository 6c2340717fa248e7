"""``model-versions/create`` accepts and refuses sources by MLflow's rules, on a live server
(SQLite and PostgreSQL) whose new experiments keep their artifacts in a local folder; a source
whose MLflow folder is not stored here becomes an external version, pinned later."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import LiveServer, serve
from loopwright.config import resolve_settings

API = "/api/2.0/mlflow"
CREATE = f"{API}/model-versions/create"
ARTIFACTS = "/api/2.0/mlflow-artifacts/artifacts"
LOCAL = "To use a local path as a model version source"
RELATIVE = "If supplying a source as an http, https,"
OWNER = "request parameter must identify the resource that contains the source"


@pytest.fixture
def server(db_uri: str, tmp_path: Path) -> Iterator[LiveServer]:
    # The root is not made in advance: nothing may depend on it existing before a first write.
    settings = resolve_settings(
        home=tmp_path / "server-home",
        db_uri=db_uri,
        user="server-admin",
        default_artifact_root=str(tmp_path / "artifacts"),
    )
    with serve(settings, auth=False) as url:
        yield LiveServer(url, tmp_path / "server-home", db_uri, settings)


@pytest.fixture
def http(server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        assert client.post(f"{API}/registered-models/create", json={"name": "m"}).is_success
        yield client


def _create(http: httpx.Client, source: str, **ids: str) -> httpx.Response:
    return http.post(CREATE, json={"name": "m", "source": source, **ids})


def _ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    return dict(response.json())


def _refused(response: httpx.Response, says: str, status: int = 400) -> None:
    assert response.status_code == status, response.text
    assert says in response.json()["message"]


def _run(http: httpx.Client, experiment: str = "e") -> dict[str, Any]:
    found = http.get(f"{API}/experiments/get-by-name", params={"experiment_name": experiment})
    if found.is_success:
        experiment_id = found.json()["experiment"]["experiment_id"]
    else:
        experiment_id = _ok(http.post(f"{API}/experiments/create", json={"name": experiment}))[
            "experiment_id"
        ]
    created = _ok(http.post(f"{API}/runs/create", json={"experiment_id": experiment_id}))
    return dict(created["run"]["info"])


def test_sources_stored_elsewhere_are_external_versions_with_the_run_id_as_given(
    http: httpx.Client,
) -> None:
    version = _ok(_create(http, "s3://bucket/path/model", run_id="fake_run_id"))["model_version"]
    assert (version["version"], version["source"], version["run_id"]) == (
        "1",
        "s3://bucket/path/model",
        "fake_run_id",
    )
    _ok(_create(http, "runs:/run_id/model", run_id="run_id"))  # MLflow's own registry tests
    _ok(_create(http, "gs://bucket/model"))
    found = _ok(http.get(f"{API}/model-versions/search", params={"filter": "run_id = 'run_id'"}))
    assert [v["version"] for v in found["model_versions"]] == ["2"]
    uri = http.get(f"{API}/model-versions/get-download-uri", params={"name": "m", "version": "1"})
    assert _ok(uri)["artifact_uri"] == "s3://bucket/path/model"  # as MLflow answers
    native = http.get("/api/v1/models/m/versions/1").json()
    assert native["source_kind"] == "external" and native["package_hash"] is None


@pytest.mark.parametrize(
    ("source", "says"),
    [
        ("http://host:9000/models", "'source' cannot use the 'http' scheme"),
        ("ftp://host/models", "'source' cannot use the 'ftp' scheme"),
        ("mlflow-artifacts://host:9000/models", "cannot use the 'mlflow-artifacts' scheme"),
        ("s3a://bucket/models/../../../", RELATIVE),
        ("s3://bucket/models/..%2f..%2fother", RELATIVE),
        ("s3://bucket/models/%252e%252e/x", RELATIVE),
        ("s3://bucket/model%00", RELATIVE),
        ("dbfs:/runs/a%3f/../../../../", "Invalid model version source"),
        ("/tmp", LOCAL),
        ("file:///tmp", LOCAL),
        ("relative/path", LOCAL),
        ("runs:/some_run/model", OWNER),
        ("models:/m-0123456789abcdef0123456789abcdef", OWNER),
        ("models://other-registry/m/1", "Registered model sources must use the active"),
    ],
)
def test_sources_mlflow_refuses_are_refused(http: httpx.Client, source: str, says: str) -> None:
    _refused(_create(http, source), says)


def test_a_file_uri_with_a_host_is_mlflows_internal_error(http: httpx.Client) -> None:
    run = _run(http)
    response = _create(http, "file://123.456.789.123/path/to/source", run_id=run["run_id"])
    _refused(response, "is not a valid remote uri", status=500)


def test_local_paths_are_accepted_only_inside_the_runs_artifact_folder(
    http: httpx.Client, tmp_path: Path
) -> None:
    run = _run(http)
    root = run["artifact_uri"]
    assert root.startswith("file://"), root
    for source in (root, f"{root}/model", f"{root}/.", f"{root}/model/..", root[len("file://") :]):
        version = _ok(_create(http, source, run_id=run["run_id"]))["model_version"]
        assert version["run_id"] == run["run_id"]
    _refused(_create(http, root), LOCAL)  # no run_id
    _refused(_create(http, str(tmp_path), run_id=run["run_id"]), LOCAL)  # outside the folder
    _refused(_create(http, f"{root}/../../..", run_id=run["run_id"]), LOCAL)
    other = _run(http)
    _refused(_create(http, root, run_id=other["run_id"]), LOCAL)  # another run's folder
    _refused(_create(http, root, run_id="no_such_run"), OWNER)


def test_run_and_model_ids_must_own_the_source(http: httpx.Client) -> None:
    run = _run(http)
    _ok(_create(http, f"runs:/{run['run_id']}/model", run_id=run["run_id"]))
    _refused(_create(http, f"runs:/{run['run_id']}/model", run_id="another"), OWNER)
    experiment_id = run["experiment_id"]
    model = _ok(http.post(f"{API}/logged-models", json={"experiment_id": experiment_id}))
    model_id, location = model["model"]["info"]["model_id"], model["model"]["info"]["artifact_uri"]
    _ok(_create(http, f"models:/{model_id}", model_id=model_id))
    _ok(_create(http, location, model_id=model_id))
    _refused(_create(http, f"runs:/{run['run_id']}/model", model_id=model_id), OWNER)
    missing = "m-" + "0" * 32
    _refused(_create(http, f"models:/{missing}", model_id=missing), "not found", status=404)
    _refused(
        _create(http, "mlflow-artifacts:/0/models/elsewhere/artifacts", model_id=model_id), OWNER
    )
    got = _ok(http.get(f"{API}/logged-models/{model_id}"))
    assert [t for t in got["model"]["info"]["tags"] if t["key"] == "mlflow.modelVersions"] == [
        {
            "key": "mlflow.modelVersions",
            "value": '[{"name": "m", "version": 2}, {"name": "m", "version": 3}]',
        }
    ]


def test_a_registered_version_as_source_copies_its_lineage(http: httpx.Client) -> None:
    _ok(_create(http, "s3://bucket/model", run_id="r1"))
    copy = _ok(_create(http, "models:/m/latest"))["model_version"]
    assert (copy["source"], copy["run_id"]) == ("models:/m/1", "r1")
    _refused(_create(http, "models:/m/1", run_id="r2"), "must match the referenced model version")


@pytest.mark.filterwarnings("ignore")  # MLflow warns about the environment it saves
def test_an_external_version_stored_here_later_is_pinned_through_the_native_api(
    http: httpx.Client, tmp_path: Path
) -> None:
    from mlflow import sklearn as mlflow_sklearn
    from sklearn.linear_model import LinearRegression

    experiment_id = _ok(http.post(f"{API}/experiments/create", json={"name": "served"}))
    run = _ok(http.post(f"{API}/runs/create", json=experiment_id))["run"]["info"]
    model = _ok(http.post(f"{API}/logged-models", json=experiment_id))["model"]["info"]
    external = _ok(_create(http, f"models:/{model['model_id']}", model_id=model["model_id"]))
    assert external["model_version"]["version"] == "1"
    pin = "/api/v1/models/m/versions/1/pin"
    response = http.post(pin, json={})
    assert response.status_code == 404 and "holds no files" in response.json()["message"]
    folder = tmp_path / "mlflow-model"
    mlflow_sklearn.save_model(
        LinearRegression().fit([[0.0], [1.0]], [0.0, 1.0]),
        str(folder),
        serialization_format="skops",
    )
    root = f"{model['artifact_uri'].removeprefix('mlflow-artifacts:/')}"
    for file in sorted(p for p in folder.rglob("*") if p.is_file()):
        path = f"{ARTIFACTS}/{root}/{file.relative_to(folder).as_posix()}"
        assert http.put(path, content=file.read_bytes()).is_success
    pinned = http.post(pin, json={})
    assert pinned.status_code == 200, pinned.text
    assert (pinned.json()["source_kind"], pinned.json()["flavor"]) == ("package", "sklearn")
    # MLflow clients download the MLflow folder the version was pinned from.
    where = http.get(f"{API}/model-versions/get-download-uri", params={"name": "m", "version": "1"})
    listed = http.get(ARTIFACTS, params={"path": _ok(where)["artifact_uri"].split(":/", 1)[1]})
    assert "MLmodel" in {f["path"] for f in _ok(listed)["files"]}
    again = http.post(pin, json={})
    assert again.status_code == 409 and "already a verified package" in again.json()["message"]
    # A source the server does not store is never fetched by it.
    _ok(_create(http, "s3://bucket/model", run_id=run["run_id"]))
    refused = http.post("/api/v1/models/m/versions/2/pin", json={})
    assert refused.status_code == 400 and "does not store and will not fetch" in refused.text


@pytest.mark.filterwarnings("ignore")  # MLflow warns about the environment it saves
def test_a_model_in_the_runs_local_folder_is_verified_and_links_are_not_followed(
    http: httpx.Client, tmp_path: Path
) -> None:
    from mlflow import sklearn as mlflow_sklearn
    from sklearn.linear_model import LinearRegression

    run = _run(http)
    root = Path(run["artifact_uri"].removeprefix("file://"))
    mlflow_sklearn.save_model(
        LinearRegression().fit([[0.0], [1.0]], [0.0, 1.0]),
        str(root / "model"),
        serialization_format="skops",
    )
    secret = tmp_path / "secret.txt"
    secret.write_text("not for the registry")
    (root / "model" / "planted.txt").symlink_to(secret)
    created = _ok(_create(http, f"{root.as_uri()}/model", run_id=run["run_id"]))["model_version"]
    native = http.get(f"/api/v1/models/m/versions/{created['version']}").json()
    assert (native["source_kind"], native["flavor"]) == ("package", "sklearn")
    where = http.get(f"{API}/model-versions/get-download-uri", params={"name": "m", "version": "1"})
    listed = http.get(ARTIFACTS, params={"path": _ok(where)["artifact_uri"].split(":/", 1)[1]})
    names = {f["path"] for f in _ok(listed)["files"]}
    assert "MLmodel" in names and "planted.txt" not in names
    # Registered before the files are there: external, then pinned by the server from the folder.
    later = _ok(_create(http, str(root / "later"), run_id=run["run_id"]))["model_version"]
    assert http.get(f"/api/v1/models/m/versions/{later['version']}").json()["source_kind"] == (
        "external"
    )
    pin = f"/api/v1/models/m/versions/{later['version']}/pin"
    missing = http.post(pin, json={})
    assert missing.status_code == 404 and "no files" in missing.json()["message"]
    (root / "later").symlink_to(root / "model")  # a link is never followed
    refused = http.post(pin, json={})
    assert refused.status_code == 400 and "symbolic link" in refused.json()["message"]
    (root / "later").unlink()
    (root / "model").rename(root / "later")
    pinned = http.post(pin, json={})
    assert pinned.status_code == 200 and pinned.json()["source_kind"] == "package", pinned.text
