"""The real Triton HTTP client (``tritonclient.http``) against a Loopwright server."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from _served_model import MODEL, live, training_frame

from loopwright.client import Client
from loopwright.serving.repository import ModelRepository
from loopwright.serving.server import ServeConfig, build_app
from loopwright.serving.sources import resolve_source

triton = pytest.importorskip("tritonclient.http")


@pytest.fixture
def triton_client(client: Client, model: Any) -> Iterator[Any]:
    repository = ModelRepository([resolve_source(f"models:/{MODEL}/1", client)])
    repository.load_all()
    with live(build_app(ServeConfig(sources=()), repository)) as url:
        http = triton.InferenceServerClient(url.removeprefix("http://"))
        try:
            yield http
        finally:
            http.close()


def test_triton_client_reads_metadata_and_infers_with_bytes(triton_client: Any, model: Any) -> None:
    from tritonclient.utils import InferenceServerException

    X, _ = training_frame()
    assert triton_client.is_server_live() and triton_client.is_server_ready()
    assert triton_client.is_model_ready(MODEL) and triton_client.is_model_ready(MODEL, "1")
    assert not triton_client.is_model_ready(MODEL, "2")
    meta = triton_client.get_model_metadata(MODEL)
    assert [i["name"] for i in meta["inputs"]] == ["a", "b", "color"]
    assert triton_client.get_server_metadata()["name"] == "loopwright"

    a = triton.InferInput("a", [3], "FP64")
    a.set_data_from_numpy(X["a"][:3].to_numpy(), binary_data=False)
    b = triton.InferInput("b", [3, 1], "FP64")
    b.set_data_from_numpy(X[["b"]][:3].to_numpy(), binary_data=False)
    color = triton.InferInput("color", [3], "BYTES")
    color.set_data_from_numpy(X["color"][:3].to_numpy(dtype=object), binary_data=False)
    wanted = [triton.InferRequestedOutput("predict_proba", binary_data=False)]
    result = triton_client.infer(MODEL, [a, b, color], outputs=wanted, request_id="t-1")
    assert result.get_response()["id"] == "t-1"
    np.testing.assert_allclose(result.as_numpy("predict_proba"), model.predict_proba(X[:3]))

    wrong = triton.InferInput("a", [3], "FP64")
    wrong.set_data_from_numpy(X["a"][:3].to_numpy(), binary_data=False)
    with pytest.raises(InferenceServerException, match="missing column 'b'"):
        triton_client.infer(MODEL, [wrong, color])


def test_triton_client_defaults_send_and_receive_binary_tensors(
    triton_client: Any, model: Any
) -> None:
    X, _ = training_frame()
    a = triton.InferInput("a", [4], "FP64")
    a.set_data_from_numpy(X["a"][:4].to_numpy())  # binary_data=True is the default
    b = triton.InferInput("b", [4], "FP32")  # widened to the signature's double
    b.set_data_from_numpy(X["b"][:4].to_numpy(dtype="float32"))
    color = triton.InferInput("color", [4], "BYTES")
    color.set_data_from_numpy(X["color"][:4].to_numpy(dtype=object))
    wanted = [
        triton.InferRequestedOutput("predict_proba"),
        triton.InferRequestedOutput("predict", binary_data=False),
    ]
    result = triton_client.infer(MODEL, [a, b, color], outputs=wanted)
    np.testing.assert_allclose(result.as_numpy("predict_proba"), model.predict_proba(X[:4]))
    assert result.as_numpy("predict").tolist() == model.predict(X[:4]).tolist()
    sizes = {o["name"]: o.get("parameters", {}) for o in result.get_response()["outputs"]}
    assert sizes["predict_proba"] == {"binary_data_size": 4 * 2 * 8}
    assert "binary_data_size" not in sizes["predict"]
