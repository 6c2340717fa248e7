"""Served predictions reach the prediction log: one row per input row, with the request id."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from _served_model import MODEL, live, training_frame

from loopwright.client import Client
from loopwright.serving.repository import ModelRepository
from loopwright.serving.server import ServeConfig, build_app
from loopwright.serving.sources import resolve_source


def test_each_answered_request_is_logged_after_the_response(
    client: Client, model: Any, tmp_path: Path
) -> None:
    from loopwright.serving.predictions import read_predictions

    X, _ = training_frame()
    root = str(tmp_path / "log")
    source = resolve_source(f"models:/{MODEL}/1", client)
    repository = ModelRepository([source], max_batch_size=4, max_latency_ms=1)
    repository.load_all()
    config = ServeConfig(sources=(source,), log_root=root)
    with live(build_app(config, repository)) as url:
        body = {
            "id": "oip-1",
            "inputs": [
                {"name": "a", "shape": [2], "datatype": "FP64", "data": X["a"][:2].tolist()},
                {"name": "b", "shape": [2], "datatype": "FP64", "data": X["b"][:2].tolist()},
                {"name": "color", "shape": [2], "datatype": "BYTES", "data": ["red", "blue"]},
            ],
            "outputs": [{"name": "predict"}, {"name": "predict_proba"}],
        }
        assert httpx.post(f"{url}/v2/models/{MODEL}/infer", json=body).status_code == 200
        scored = httpx.post(
            f"{url}/invocations",
            json={"dataframe_records": X[2:3].to_dict(orient="records")},
            headers={"X-Request-Id": "mlflow-1"},
        )
        assert scored.status_code == 200
        refused = httpx.post(f"{url}/invocations", json={"dataframe_records": [{"a": 1}]})
        assert refused.status_code == 400
    # Leaving the server ran its shutdown, which closed (flushed) the log.
    logged = read_predictions(root, MODEL).sort_values(["request_id", "input.a"])
    assert logged["request_id"].tolist() == ["mlflow-1", "oip-1", "oip-1"]
    assert set(logged["variant"]) == {"primary"} and set(logged["model_version"]) == {1}
    assert logged["input.a"].tolist() == [X["a"][2], X["a"][0], X["a"][1]]
    assert logged["input.color"].tolist() == ["red", "red", "blue"]
    assert logged["output.predict"].tolist() == model.predict(X.iloc[[2, 0, 1]]).tolist()
    assert (logged["status"] == 200).all() and (logged["latency_ms"] > 0).all()


def test_a_sampled_server_logs_the_requests_the_rate_keeps(
    client: Client, model: Any, tmp_path: Path
) -> None:
    from loopwright.serving.prediction_log import is_sampled
    from loopwright.serving.predictions import read_predictions

    X, _ = training_frame()
    root = str(tmp_path / "log")
    source = resolve_source(f"models:/{MODEL}/1", client)
    repository = ModelRepository([source], max_batch_size=1, max_latency_ms=1)
    repository.load_all()
    ids = [f"req-{i}" for i in range(12)]
    kept = [i for i in ids if is_sampled(i, 0.5)]
    assert 0 < len(kept) < len(ids)  # the ids exercise both answers
    config = ServeConfig(sources=(source,), log_root=root, log_sample_rate=0.5)
    with live(build_app(config, repository)) as url:
        for request_id in ids:
            scored = httpx.post(
                f"{url}/invocations",
                json={"dataframe_records": X[:1].to_dict(orient="records")},
                headers={"X-Request-Id": request_id},
            )
            assert scored.status_code == 200
    logged = read_predictions(root, MODEL)
    assert sorted(logged["request_id"]) == sorted(kept)


def test_the_log_is_written_at_shutdown_even_when_closing_the_models_fails(
    client: Client, model: Any, tmp_path: Path
) -> None:
    from loopwright.serving.predictions import read_predictions

    class FailsToClose(ModelRepository):
        async def close(self) -> None:
            await super().close()
            raise RuntimeError("a model thread would not stop")

    X, _ = training_frame()
    root = str(tmp_path / "log")
    source = resolve_source(f"models:/{MODEL}/1", client)
    repository = FailsToClose([source])
    repository.load_all()
    config = ServeConfig(sources=(source,), log_root=root)
    rows = {"dataframe_records": X[:1].to_dict(orient="records")}
    try:
        with live(build_app(config, repository)) as url:
            answer = httpx.post(f"{url}/invocations", json=rows, headers={"X-Request-Id": "r1"})
            assert answer.status_code == 200
    except RuntimeError:
        pass  # how the failing close surfaces depends on the server; the log must not care
    assert read_predictions(root, MODEL)["request_id"].tolist() == ["r1"]
