"""OIP v2 REST on a real server: metadata from the signature, inference, outputs, repository."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest
from _served_model import MODEL, live, training_frame

from loopwright.client import Client
from loopwright.serving.repository import ModelRepository
from loopwright.serving.server import ServeConfig, build_app
from loopwright.serving.sources import resolve_source


@pytest.fixture
def url(client: Client, model: Any) -> Iterator[str]:
    """``clf`` served by alias: the alias is resolved (pinned) to version 1 at start."""
    client.registry.set_alias(MODEL, "blue", 1)
    source = resolve_source(f"models:/{MODEL}@blue", client)
    assert (source.name, source.version) == (MODEL, 1)
    yield from _serve(ModelRepository([source]))


def _serve(repository: ModelRepository) -> Iterator[str]:
    repository.load_all()
    with live(build_app(ServeConfig(sources=()), repository)) as url:
        yield url


def _columns(rows: int = 2, **overrides: Any) -> dict[str, Any]:
    X, _ = training_frame()
    X = X[:rows]
    inputs = [
        {"name": "a", "shape": [rows], "datatype": "FP64", "data": X["a"].tolist()},
        {"name": "b", "shape": [rows, 1], "datatype": "FP64", "data": [[v] for v in X["b"]]},
        {"name": "color", "shape": [rows], "datatype": "BYTES", "data": X["color"].tolist()},
    ]
    return {"inputs": inputs, **overrides}


def test_server_and_model_metadata_come_from_the_signature(url: str) -> None:
    assert httpx.get(f"{url}/v2/health/live").status_code == 200
    assert httpx.get(f"{url}/v2/health/ready").status_code == 200
    server = httpx.get(f"{url}/v2").json()
    assert server["name"] == "loopwright" and "model_repository" in server["extensions"]
    from loopwright import __version__

    assert server["version"] == __version__ == httpx.get(f"{url}/version").text
    meta = httpx.get(f"{url}/v2/models/{MODEL}").json()
    assert meta["name"] == MODEL and meta["versions"] == ["1"]
    assert meta["platform"] == "loopwright_sklearn"
    assert meta["inputs"] == [
        {"name": "a", "datatype": "FP64", "shape": [-1]},
        {"name": "b", "datatype": "FP64", "shape": [-1]},
        {"name": "color", "datatype": "BYTES", "shape": [-1]},
    ]
    assert [o["name"] for o in meta["outputs"]] == ["predict", "predict_proba"]
    assert httpx.get(f"{url}/v2/models/{MODEL}/versions/1").json() == meta
    assert httpx.get(f"{url}/v2/models/{MODEL}/ready").status_code == 200
    assert httpx.get(f"{url}/v2/models/{MODEL}/versions/1/ready").status_code == 200
    assert httpx.get(f"{url}/v2/models/{MODEL}/versions/2/ready").status_code == 400


def test_infer_with_bytes_columns_selected_outputs_and_echoed_id(url: str, model: Any) -> None:
    X, _ = training_frame()
    body = _columns(3, id="req-42", outputs=[{"name": "predict_proba"}, {"name": "predict"}])
    answer = httpx.post(f"{url}/v2/models/{MODEL}/versions/1/infer", json=body)
    assert answer.status_code == 200, answer.text
    assert answer.headers["x-request-id"] == "req-42"
    out = answer.json()
    assert (out["model_name"], out["model_version"], out["id"]) == (MODEL, "1", "req-42")
    proba, predict = out["outputs"]
    assert proba["name"] == "predict_proba" and proba["datatype"] == "FP64"
    assert proba["shape"] == [3, 2]
    np.testing.assert_allclose(np.reshape(proba["data"], (3, 2)), model.predict_proba(X[:3]))
    assert predict["name"] == "predict" and predict["shape"] == [3]
    assert predict["data"] == model.predict(X[:3]).tolist()


def test_the_default_output_is_predict_and_a_request_id_is_always_returned(url: str) -> None:
    answer = httpx.post(f"{url}/v2/models/{MODEL}/infer", json=_columns(2))
    assert answer.status_code == 200
    assert [o["name"] for o in answer.json()["outputs"]] == ["predict"]
    assert "id" not in answer.json()
    assert len(answer.headers["x-request-id"]) == 32
    given = httpx.post(
        f"{url}/v2/models/{MODEL}/infer", json=_columns(1), headers={"X-Request-Id": "mine"}
    )
    assert given.headers["x-request-id"] == "mine"


def test_a_tensor_model_takes_one_matrix_input_nested_or_flat(
    client: Client, tmp_path: Any
) -> None:
    from sklearn.linear_model import LinearRegression

    from loopwright.registry.packaging.package import save_model

    X = np.arange(12, dtype="float32").reshape(4, 3)
    save_model(LinearRegression().fit(X, [1.0, 2.0, 3.0, 4.0]), tmp_path / "reg", input_example=X)
    for url in _serve(ModelRepository([resolve_source(f"reg={tmp_path / 'reg'}", None)])):
        nested = {
            "inputs": [{"name": "x", "shape": [2, 3], "datatype": "FP32", "data": X[:2].tolist()}]
        }
        flat = {
            "inputs": [
                {
                    "name": "x",
                    "shape": [2, 3],
                    "datatype": "FP32",
                    "data": X[:2].reshape(-1).tolist(),
                }
            ]
        }
        first = httpx.post(f"{url}/v2/models/reg/infer", json=nested).json()
        second = httpx.post(f"{url}/v2/models/reg/infer", json=flat).json()
        assert first["outputs"] == second["outputs"]
        np.testing.assert_allclose(first["outputs"][0]["data"], [1.0, 2.0], rtol=1e-5)
        wide = {
            "inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}]
        }
        refused = httpx.post(f"{url}/v2/models/reg/infer", json=wide)
        assert refused.status_code == 400
        assert (
            "the input tensor expects float32 (-1, 3), got float32 (1, 4)"
            in (refused.json()["error"])
        )
        meta = httpx.get(f"{url}/v2/models/reg").json()
        assert meta["inputs"] == [{"name": "input-0", "datatype": "FP32", "shape": [-1, 3]}]
        assert meta["versions"] == [first["model_version"]]


def test_one_matrix_input_fills_the_columns_in_signature_order(url: str, model: Any) -> None:
    X, _ = training_frame()
    rows = [[str(value) for value in row] for row in X[:2].to_numpy().tolist()]
    body = {"inputs": [{"name": "x", "shape": [2, 3], "datatype": "BYTES", "data": rows}]}
    answer = httpx.post(f"{url}/v2/models/{MODEL}/infer", json=body)
    # BYTES cannot fill the double columns a and b: the signature names both.
    assert answer.status_code == 400
    assert "column 'a' expects double" in answer.json()["error"]
    assert "column 'b' expects double" in answer.json()["error"]


def test_repository_index_unload_and_load(url: str) -> None:
    index = httpx.post(f"{url}/v2/repository/index").json()
    assert index == [{"name": MODEL, "version": "1", "state": "READY", "reason": ""}]
    assert httpx.post(f"{url}/v2/repository/models/{MODEL}/unload").status_code == 200
    gone = httpx.post(f"{url}/v2/models/{MODEL}/infer", json=_columns(1))
    assert gone.status_code == 404 and "not loaded" in gone.json()["error"]
    assert httpx.get(f"{url}/v2/models/{MODEL}/ready").status_code == 400
    index = httpx.post(f"{url}/v2/repository/index", json={"ready": True}).json()
    assert index == []
    assert httpx.post(f"{url}/v2/repository/models/{MODEL}/load").status_code == 200
    assert httpx.post(f"{url}/v2/models/{MODEL}/infer", json=_columns(1)).status_code == 200
    unknown = httpx.post(f"{url}/v2/repository/models/nope/load")
    assert unknown.status_code == 404 and "nope" in unknown.json()["error"]


def test_load_resolves_a_new_name_through_the_registry(client: Client, model: Any) -> None:
    def resolve(name: str) -> Any:
        return resolve_source(f"models:/{name}/latest", client)

    repository = ModelRepository([], resolve=resolve)
    for url in _serve(repository):
        assert httpx.post(f"{url}/v2/repository/models/{MODEL}/load").status_code == 200
        answer = httpx.post(f"{url}/v2/models/{MODEL}/infer", json=_columns(2))
        assert answer.status_code == 200 and answer.json()["model_version"] == "1"
        missing = httpx.post(f"{url}/v2/repository/models/ghost/load")
        assert missing.status_code == 404 and "ghost" in missing.json()["error"]


def test_a_body_past_the_cap_is_a_413(client: Client, model: Any) -> None:
    from loopwright.serving.app import create_app

    repository = ModelRepository([resolve_source(f"models:/{MODEL}/1", client)])
    repository.load_all()
    with live(create_app(repository, max_body_bytes=200)) as url:
        answer = httpx.post(f"{url}/v2/models/{MODEL}/infer", json=_columns(8))
        assert answer.status_code == 413
        assert "larger than 200 bytes" in answer.json()["error"]
        small = httpx.post(f"{url}/v2/models/{MODEL}/infer", content=b'{"inputs": []}')
        assert small.status_code == 400


def test_several_models_and_versions_in_one_process(client: Client, model: Any) -> None:
    X, _ = training_frame()
    with client.start_run(experiment="serving") as run:
        run.log_model(model, "model", input_example=X[:3], registered_model_name=MODEL)
    sources = [
        resolve_source(f"models:/{MODEL}/1", client),
        resolve_source(f"models:/{MODEL}/2", client),
        resolve_source(f"other=models:/{MODEL}/1", client),
    ]
    for url in _serve(ModelRepository(sources)):
        meta = httpx.get(f"{url}/v2/models/{MODEL}").json()
        assert meta["versions"] == ["1", "2"]
        newest = httpx.post(f"{url}/v2/models/{MODEL}/infer", json=_columns(1)).json()
        assert newest["model_version"] == "2"
        pinned = httpx.post(f"{url}/v2/models/{MODEL}/versions/1/infer", json=_columns(1))
        assert pinned.json()["model_version"] == "1"
        other = httpx.post(f"{url}/v2/models/other/infer", json=_columns(1)).json()
        assert (other["model_name"], other["model_version"]) == ("other", "1")
        records = {"dataframe_records": X[:1].to_dict(orient="records")}
        ambiguous = httpx.post(f"{url}/invocations", json=records)
        assert ambiguous.status_code == 400
        assert "/invocations?model=NAME" in ambiguous.json()["message"]
        chosen = httpx.post(f"{url}/invocations?model=other", json=records)
        assert chosen.status_code == 200
        index = httpx.post(f"{url}/v2/repository/index").json()
        assert [(row["name"], row["version"]) for row in index] == [
            (MODEL, "1"),
            (MODEL, "2"),
            ("other", "1"),
        ]


def test_unknown_routes_and_methods_answer_in_oips_error_format(url: str) -> None:
    missing = httpx.get(f"{url}/v2/modelz", headers={"X-Request-Id": "r-404"})
    assert missing.status_code == 404 and missing.headers["x-request-id"] == "r-404"
    assert "has no route /v2/modelz" in missing.json()["error"]
    wrong = httpx.get(f"{url}/v2/models/{MODEL}/infer")
    assert wrong.status_code == 405
    assert "does not allow GET on /v2/models/clf/infer" in wrong.json()["error"]
