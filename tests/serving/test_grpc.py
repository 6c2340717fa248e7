"""OIP v2 over gRPC: the real ``tritonclient.grpc`` client and our own generated stubs."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from _served_model import MODEL, free_port, live, training_frame

from loopwright.client import Client
from loopwright.serving.repository import ModelRepository
from loopwright.serving.server import ServeConfig, build_app
from loopwright.serving.sources import resolve_source

grpc = pytest.importorskip("grpc")
triton = pytest.importorskip("tritonclient.grpc")

from loopwright.serving._grpc import inference_pb2 as pb  # noqa: E402
from loopwright.serving._grpc import inference_pb2_grpc  # noqa: E402

INTS = "ints"  # a model over an int64 tensor [N, 2]


@pytest.fixture
def ints_model(client: Client, model: Any) -> Any:
    """A regression over an int64 matrix, registered as ``ints`` version 1 (beside ``clf``)."""
    from sklearn.linear_model import LinearRegression

    X = np.array([[1, 2], [3, 4], [5, 7], [8, 1]], dtype=np.int64)
    fitted = LinearRegression().fit(X, [1.0, 2.0, 3.5, 4.0])
    with client.start_run(experiment="serving") as run:
        run.log_model(fitted, "ints", input_example=X[:2], registered_model_name=INTS)
    return fitted


def _serve(client: Client, log_root: str | None = None) -> Iterator[str]:
    sources = [resolve_source(f"models:/{name}/1", client) for name in (MODEL, INTS)]
    repository = ModelRepository(sources)
    repository.load_all()
    address = f"127.0.0.1:{free_port()}"
    config = ServeConfig(sources=tuple(sources), log_root=log_root, grpc_address=address)
    with live(build_app(config, repository)):
        yield address


@pytest.fixture
def address(client: Client, model: Any, ints_model: Any) -> Iterator[str]:
    yield from _serve(client)


@pytest.fixture
def triton_client(address: str) -> Iterator[Any]:
    connection = triton.InferenceServerClient(address)
    try:
        yield connection
    finally:
        connection.close()


@pytest.fixture
def stub(address: str) -> Iterator[Any]:
    with grpc.insecure_channel(address) as channel:
        yield inference_pb2_grpc.GRPCInferenceServiceStub(channel)


def _inputs(rows: int, b_type: str = "FP64") -> list[Any]:
    X, _ = training_frame()
    a = triton.InferInput("a", [rows], "FP64")
    a.set_data_from_numpy(X["a"][:rows].to_numpy())
    b = triton.InferInput("b", [rows, 1], b_type)
    b.set_data_from_numpy(X[["b"]][:rows].to_numpy(dtype=b_type.replace("FP", "float").lower()))
    color = triton.InferInput("color", [rows], "BYTES")
    color.set_data_from_numpy(X["color"][:rows].to_numpy(dtype=object))
    return [a, b, color]


def test_tritonclient_reads_health_and_metadata(triton_client: Any) -> None:
    import loopwright

    assert triton_client.is_server_live() and triton_client.is_server_ready()
    assert triton_client.is_model_ready(MODEL) and triton_client.is_model_ready(MODEL, "1")
    assert not triton_client.is_model_ready(MODEL, "2")
    assert not triton_client.is_model_ready("ghost")
    server = triton_client.get_server_metadata()
    assert (server.name, server.version) == ("loopwright", loopwright.__version__)
    assert list(server.extensions) == ["model_repository"]
    meta = triton_client.get_model_metadata(MODEL, as_json=True)
    assert meta["name"] == MODEL and meta["versions"] == ["1"]
    assert [(i["name"], i["datatype"]) for i in meta["inputs"]] == [
        ("a", "FP64"),
        ("b", "FP64"),
        ("color", "BYTES"),
    ]
    assert [o["name"] for o in meta["outputs"]] == ["predict", "predict_proba"]
    ints = triton_client.get_model_metadata(INTS)
    assert [(i.datatype, list(i.shape)) for i in ints.inputs] == [("INT64", [-1, 2])]
    with pytest.raises(triton.InferenceServerException) as missing:
        triton_client.get_model_metadata("ghost")
    assert missing.value.status() == "StatusCode.NOT_FOUND"
    assert "model 'ghost' is not served here; models: clf, ints" in missing.value.message()


def test_tritonclient_infers_with_raw_contents_fp32_fp64_bytes(
    triton_client: Any, model: Any
) -> None:
    X, _ = training_frame()
    wanted = [triton.InferRequestedOutput("predict_proba"), triton.InferRequestedOutput("predict")]
    result = triton_client.infer(MODEL, _inputs(4, b_type="FP32"), outputs=wanted, request_id="g-1")
    response = result.get_response()
    assert (response.id, response.model_name, response.model_version) == ("g-1", MODEL, "1")
    assert len(response.raw_output_contents) == 2  # raw in, raw out
    np.testing.assert_allclose(result.as_numpy("predict_proba"), model.predict_proba(X[:4]))
    assert result.as_numpy("predict").tolist() == model.predict(X[:4]).tolist()
    only_predict = triton_client.infer(MODEL, _inputs(2))
    assert [o.name for o in only_predict.get_response().outputs] == ["predict"]


def test_tritonclient_infers_on_an_int64_tensor(triton_client: Any, ints_model: Any) -> None:
    X = np.array([[2, 3], [9, 9], [0, 1]], dtype=np.int64)
    tensor = triton.InferInput("x", [3, 2], "INT64")
    tensor.set_data_from_numpy(X)
    result = triton_client.infer(INTS, [tensor])
    np.testing.assert_allclose(result.as_numpy("predict"), ints_model.predict(X))
    assert result.get_output("predict").datatype == "FP64"


def _tensor(name: str, datatype: str, shape: list[int], **contents: Any) -> Any:
    return pb.ModelInferRequest.InferInputTensor(
        name=name, datatype=datatype, shape=shape, contents=pb.InferTensorContents(**contents)
    )


def _good(rows: int = 1) -> list[Any]:
    X, _ = training_frame()
    return [
        _tensor("a", "FP64", [rows], fp64_contents=X["a"][:rows].tolist()),
        _tensor("b", "FP64", [rows], fp64_contents=X["b"][:rows].tolist()),
        _tensor("color", "BYTES", [rows], bytes_contents=[c.encode() for c in X["color"][:rows]]),
    ]


def test_our_stubs_infer_with_typed_contents_and_get_typed_outputs(
    stub: Any, model: Any, ints_model: Any
) -> None:
    X, _ = training_frame()
    request = pb.ModelInferRequest(
        model_name=MODEL,
        model_version="1",
        id="typed-1",
        inputs=_good(3),
        outputs=[pb.ModelInferRequest.InferRequestedOutputTensor(name="predict_proba")],
    )
    response, call = stub.ModelInfer.with_call(request)
    assert response.id == "typed-1" and not response.raw_output_contents
    (proba,) = response.outputs
    assert (proba.name, proba.datatype, list(proba.shape)) == ("predict_proba", "FP64", [3, 2])
    np.testing.assert_allclose(
        np.reshape(proba.contents.fp64_contents, (3, 2)), model.predict_proba(X[:3])
    )
    assert ("x-request-id", "typed-1") in call.trailing_metadata()

    ints = np.array([[1, 1], [4, 2]], dtype=np.int64)
    typed = stub.ModelInfer(
        pb.ModelInferRequest(
            model_name=INTS,
            inputs=[_tensor("x", "INT64", [2, 2], int64_contents=ints.reshape(-1).tolist())],
        )
    )
    np.testing.assert_allclose(typed.outputs[0].contents.fp64_contents, ints_model.predict(ints))

    # The same request as raw contents: every input raw, the answer raw.
    raw = pb.ModelInferRequest(
        model_name=INTS,
        inputs=[pb.ModelInferRequest.InferInputTensor(name="x", datatype="INT64", shape=[2, 2])],
        raw_input_contents=[ints.astype("<i8").tobytes()],
    )
    answer = stub.ModelInfer(raw)
    assert not answer.outputs[0].contents.ByteSize()
    np.testing.assert_allclose(
        np.frombuffer(answer.raw_output_contents[0], "<f8"), ints_model.predict(ints)
    )
    assert stub.ServerLive(pb.ServerLiveRequest()).live
    assert stub.ModelReady(pb.ModelReadyRequest(name=INTS, version="1")).ready
