"""Experiments' artifact locations and the Default experiment through MLflow's REST API, on a
live server (SQLite and PostgreSQL) whose settings allow one local artifact root."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import loopwright as lw
from conftest import LiveServer, serve
from loopwright.config import resolve_settings
from loopwright.errors import InvalidInput

API = "/api/2.0/mlflow"


@pytest.fixture
def roots(tmp_path: Path) -> dict[str, Path]:
    found = {name: tmp_path / name for name in ("default", "shared", "outside")}
    for folder in found.values():
        folder.mkdir()
    return found


@pytest.fixture
def folder_server(db_uri: str, tmp_path: Path, roots: dict[str, Path]) -> Iterator[LiveServer]:
    """New experiments under ``roots['default']``; ``roots['shared']`` may be named too."""
    home = tmp_path / "server-home"
    settings = resolve_settings(
        home=home,
        db_uri=db_uri,
        user="server-admin",
        default_artifact_root=str(roots["default"]),
        artifact_roots=str(roots["shared"]),
    )
    with serve(settings, auth=False) as url:
        yield LiveServer(url, home, db_uri, settings)


@pytest.fixture
def http(folder_server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=folder_server.url, timeout=30) as client:
        yield client


def _ok(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    return response.json()


def _refused(response: httpx.Response) -> str:
    assert response.status_code == 400, response.text
    assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    return str(response.json()["message"])


def _create(http: httpx.Client, name: str, location: str | None = None) -> httpx.Response:
    body = {"name": name} if location is None else {"name": name, "artifact_location": location}
    return http.post(f"{API}/experiments/create", json=body)


def _experiment(http: httpx.Client, experiment_id: str) -> dict[str, Any]:
    found = http.get(f"{API}/experiments/get", params={"experiment_id": experiment_id})
    return dict(_ok(found)["experiment"])


def test_a_fresh_server_lists_the_default_experiment_as_0(live_server: LiveServer) -> None:
    with httpx.Client(base_url=live_server.url, timeout=30) as http:
        found = _ok(http.post(f"{API}/experiments/search", json={}))["experiments"]
        assert [(e["experiment_id"], e["name"]) for e in found] == [("0", "Default")]
        assert found[0]["artifact_location"] == "mlflow-artifacts:/0"
        by_name = http.get(f"{API}/experiments/get-by-name", params={"experiment_name": "Default"})
        assert _ok(by_name)["experiment"]["experiment_id"] == "0"
        run = _ok(http.post(f"{API}/runs/create", json={"experiment_id": "0"}))["run"]["info"]
        assert run["experiment_id"] == "0"
        assert run["artifact_uri"] == f"mlflow-artifacts:/0/{run['run_id']}/artifacts"
    with lw.connect(live_server.db_uri, home=live_server.home) as native:
        assert native.tracking.get_experiment_by_name("Default").id == "0"


def test_new_experiments_and_their_runs_live_under_the_default_root(
    http: httpx.Client, roots: dict[str, Path]
) -> None:
    experiment_id = _ok(_create(http, "under-default"))["experiment_id"]
    location = (roots["default"] / experiment_id).as_uri()
    assert _experiment(http, experiment_id)["artifact_location"] == location
    assert _experiment(http, "0")["artifact_location"] == (roots["default"] / "0").as_uri()
    run = _ok(http.post(f"{API}/runs/create", json={"experiment_id": experiment_id}))["run"]
    run_id = run["info"]["run_id"]
    assert run["info"]["artifact_uri"] == f"{location}/{run_id}/artifacts"
    got = _ok(http.get(f"{API}/runs/get", params={"run_id": run_id}))["run"]["info"]
    assert got["artifact_uri"] == run["info"]["artifact_uri"]
    searched = _ok(http.post(f"{API}/runs/search", json={"experiment_ids": [experiment_id]}))
    assert searched["runs"][0]["info"]["artifact_uri"] == run["info"]["artifact_uri"]
    updated = http.post(f"{API}/runs/update", json={"run_id": run_id, "status": "FINISHED"})
    assert _ok(updated)["run_info"]["artifact_uri"] == run["info"]["artifact_uri"]


def test_a_chosen_folder_inside_an_allowed_root_holds_the_artifacts(
    http: httpx.Client,
    folder_server: LiveServer,
    roots: dict[str, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    chosen = roots["shared"] / "team-a"
    experiment_id = _ok(_create(http, "chosen", chosen.as_uri()))["experiment_id"]
    assert _experiment(http, experiment_id)["artifact_location"] == chosen.as_uri()
    plain_id = _ok(_create(http, "plain-path", str(roots["shared"] / "b")))["experiment_id"]
    assert _experiment(http, plain_id)["artifact_location"] == str(roots["shared"] / "b")

    # Loopwright's own API logs a file: it lands in the folder MLflow clients read. Only where
    # the folder is allowed by this process's settings too.
    source = tmp_path / "weights.bin"
    source.write_bytes(b"\x00\x01")
    with lw.connect(folder_server.db_uri, home=folder_server.home) as native:
        elsewhere = native.tracking.create_run(experiment="chosen")
        with pytest.raises(InvalidInput, match="LOOPWRIGHT_ARTIFACT_ROOTS"):
            native.tracking.log_artifact(elsewhere.id, source)
        assert native.tracking.list_artifacts(elsewhere.id) == []
    monkeypatch.setenv("LOOPWRIGHT_ARTIFACT_ROOTS", str(roots["shared"]))
    with lw.connect(folder_server.db_uri, home=folder_server.home) as native:
        run = native.tracking.create_run(experiment="chosen")
        native.tracking.log_artifact(run.id, source, "model")
    on_disk = chosen / run.id / "artifacts" / "model" / "weights.bin"
    assert on_disk.read_bytes() == b"\x00\x01"

    # A file an MLflow client wrote there itself is listed by the server too.
    (on_disk.parent / "MLmodel").write_text("flavors: {}\n")
    listed = _ok(http.get(f"{API}/artifacts/list", params={"run_id": run.id, "path": "model"}))
    assert listed["root_uri"] == f"{chosen.as_uri()}/{run.id}/artifacts"
    assert {(f["path"], f["is_dir"]) for f in listed["files"]} == {
        ("model/MLmodel", False),
        ("model/weights.bin", False),
    }


def test_the_mlflow_client_writes_and_reads_a_local_location(
    folder_server: LiveServer,
    roots: dict[str, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pytest.importorskip("mlflow")
    from mlflow import MlflowClient

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    client = MlflowClient(folder_server.url)
    experiment_id = client.create_experiment("mlflow-side")
    run = client.create_run(experiment_id)
    source = tmp_path / "notes.txt"
    source.write_text("hello")
    client.log_artifact(run.info.run_id, str(source), "docs")
    folder = roots["default"] / experiment_id / run.info.run_id / "artifacts"
    assert (folder / "docs" / "notes.txt").read_text() == "hello"
    assert [f.path for f in client.list_artifacts(run.info.run_id, "docs")] == ["docs/notes.txt"]


@pytest.mark.parametrize(
    ("location", "says"),
    [
        ("{outside}/x", "not inside a folder this server allows"),
        ("file://{outside}", "not inside a folder this server allows"),
        ("{shared}/../outside", "'..'"),
        ("file://{shared}/a/%2e%2e/%2e%2e/outside", "'..'"),
        ("s3://bucket/prefix", "not supported"),
        ("mlflow-artifacts:/elsewhere", "not supported"),
        ("runs:/0123/artifacts", "not supported"),
        ("file://otherhost{shared}/x", "not a local folder"),
    ],
)
def test_a_location_the_server_does_not_allow_is_refused(
    http: httpx.Client,
    folder_server: LiveServer,
    roots: dict[str, Path],
    location: str,
    says: str,
) -> None:
    given = location.format(outside=roots["outside"], shared=roots["shared"])
    message = _refused(_create(http, "refused", given))
    assert says in message
    assert "artifact_location" in message
    found = _ok(http.post(f"{API}/experiments/search", json={"filter": "name = 'refused'"}))
    assert found.get("experiments", []) == []


def test_a_symlink_out_of_an_allowed_root_is_refused(
    http: httpx.Client, roots: dict[str, Path]
) -> None:
    (roots["shared"] / "escape").symlink_to(roots["outside"])
    message = _refused(_create(http, "linked", str(roots["shared"] / "escape" / "x")))
    assert "symbolic link" in message
    assert str(roots["outside"]) not in message  # the real target is not disclosed


def test_without_allowed_roots_a_client_cannot_choose_a_folder(
    live_server: LiveServer, tmp_path: Path
) -> None:
    with httpx.Client(base_url=live_server.url, timeout=30) as http:
        message = _refused(_create(http, "mine", str(tmp_path / "anywhere")))
        assert "LOOPWRIGHT_ARTIFACT_ROOTS" in message
        experiment_id = _ok(_create(http, "served"))["experiment_id"]
        assert _experiment(http, experiment_id)["artifact_location"] == (
            f"mlflow-artifacts:/{experiment_id}"
        )
