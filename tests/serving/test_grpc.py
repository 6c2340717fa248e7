"""OIP v2 over gRPC: the real ``tritonclient.grpc`` client and our own generated stubs."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _served_model import MODEL, free_port, live, running, serve_command, train, training_frame

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

    # FP32 values (fp32_contents) for a double column are widened, as on REST.
    a, _, color = _good(3)
    b = _tensor("b", "FP32", [3], fp32_contents=X["b"][:3].tolist())
    widened = stub.ModelInfer(pb.ModelInferRequest(model_name=MODEL, inputs=[a, b, color]))
    assert list(widened.outputs[0].contents.int64_contents) == model.predict(X[:3]).tolist()

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


def _col(name: str, datatype: str, values: list[Any], shape: list[int] | None = None) -> Any:
    field = {"FP64": "fp64_contents", "BYTES": "bytes_contents", "INT8": "int_contents"}
    if datatype == "BYTES":
        values = [v.encode() for v in values]
    contents = {field[datatype]: values} if datatype in field else {}
    return _tensor(name, datatype, shape or [len(values)], **contents)


GOOD_A, GOOD_B, GOOD_COLOR = _good()
_OUTPUT = pb.ModelInferRequest.InferRequestedOutputTensor
_RAW_A = pb.ModelInferRequest.InferInputTensor(name="a", datatype="FP64", shape=[2])
_RAW_C = pb.ModelInferRequest.InferInputTensor(name="c", datatype="BYTES", shape=[1])
_TOP_2 = {"classification": pb.InferParameter(int64_param=2)}

# (request fields, status, fragment of the message): the REST table's cases that protobuf can
# carry (JSON syntax, unknown fields and ragged nesting cannot be sent), then gRPC's own.
BAD_GRPC: list[tuple[dict[str, Any], str, str]] = [
    ({"inputs": []}, "INVALID_ARGUMENT", '"inputs" must be a non-empty list'),
    ({"inputs": [_tensor("a", "FP64", [])]}, "INVALID_ARGUMENT", "has shape []; give a non-empty"),
    ({"inputs": [GOOD_A, GOOD_B]}, "INVALID_ARGUMENT", "missing column 'color'"),
    (
        {"inputs": [_col("a", "BYTES", ["x"]), GOOD_B, GOOD_COLOR]},
        "INVALID_ARGUMENT",
        "column 'a' expects double, got string",
    ),
    (
        {"inputs": [_tensor("a", "FP64", [1], bytes_contents=[b"x"]), GOOD_B, GOOD_COLOR]},
        "INVALID_ARGUMENT",
        "input 'a' is declared FP64 but its values are in contents.bytes_contents",
    ),
    (
        {"inputs": [_col("a", "INT8", [1000]), GOOD_B, GOOD_COLOR]},
        "INVALID_ARGUMENT",
        "out of the range of INT8",
    ),
    (
        {"inputs": [_col("a", "FP64", [0.1, 0.2], [3]), GOOD_B, GOOD_COLOR]},
        "INVALID_ARGUMENT",
        "declares shape [3] (3 values) but has 2 values",
    ),
    (
        {"inputs": [_col("a", "FP64", [0.1, 0.2], [1, 2]), GOOD_B, GOOD_COLOR]},
        "INVALID_ARGUMENT",
        "a column takes shape [N] or [N, 1]",
    ),
    (
        {"inputs": [_col("a", "FP64", [0.1, 0.2]), GOOD_B, GOOD_COLOR]},
        "INVALID_ARGUMENT",
        "different lengths",
    ),
    (
        {"inputs": [_col("a", "FP64", [float("nan")]), GOOD_B, GOOD_COLOR]},
        "INVALID_ARGUMENT",
        "column 'a' has missing values in rows [0]",
    ),
    (
        {"inputs": [_col("a", "FP99", []), GOOD_B, GOOD_COLOR]},
        "INVALID_ARGUMENT",
        "datatype 'FP99'",
    ),
    (
        {"inputs": [_col("x", "FP64", [0.1, 0.2, 0.3, 0.4], [2, 2])]},
        "INVALID_ARGUMENT",
        f"has 2 columns (shape [2, 2]) but model '{MODEL}' version 1 takes 3: a, b, color",
    ),
    (
        {"inputs": [GOOD_A, GOOD_B, GOOD_COLOR], "outputs": [_OUTPUT(name="explain")]},
        "INVALID_ARGUMENT",
        "has no output 'explain'; outputs: predict, predict_proba",
    ),
    (
        {
            "inputs": [
                _col("a", "FP64", [], [0]),
                _col("b", "FP64", [], [0]),
                _col("color", "BYTES", [], [0]),
            ]
        },
        "INVALID_ARGUMENT",
        "has no rows",
    ),
    ({"model_name": "ghost"}, "NOT_FOUND", "model 'ghost' is not served here; models: clf, ints"),
    ({"model_version": "7"}, "NOT_FOUND", "no version '7' loaded; loaded versions: 1"),
    ({"model_name": ""}, "INVALID_ARGUMENT", "model_name is empty; name one of"),
    # gRPC's own: raw contents, typed fields, output parameters.
    (
        {"inputs": [_RAW_A], "raw_input_contents": [b"\0" * 16, b"\0" * 8]},
        "INVALID_ARGUMENT",
        "raw_input_contents has 2 entries but the request has 1 inputs",
    ),
    (
        {"inputs": [GOOD_A, GOOD_B], "raw_input_contents": [b"\0" * 8, b"\0" * 8]},
        "INVALID_ARGUMENT",
        "input 'a' has contents although the request sends raw_input_contents",
    ),
    (
        {"inputs": [_RAW_A], "raw_input_contents": [b"\0" * 12]},
        "INVALID_ARGUMENT",
        "has 12 bytes, not a whole number of FP64 values",
    ),
    (
        {
            "inputs": [_RAW_C],
            "raw_input_contents": [b"\x09\0\0"],
        },
        "INVALID_ARGUMENT",
        "truncated BYTES element length",
    ),
    (
        {
            "inputs": [_RAW_C],
            "raw_input_contents": [b"\x02\0\0\0\xff\xfe"],
        },
        "INVALID_ARGUMENT",
        "BYTES element that is not UTF-8",
    ),
    (
        {"inputs": [_tensor("a", "FP16", [1], fp32_contents=[1.0])]},
        "INVALID_ARGUMENT",
        "input 'a' is FP16, which has no typed contents field; send its values in raw",
    ),
    (
        {
            "inputs": [GOOD_A, GOOD_B, GOOD_COLOR],
            "outputs": [_OUTPUT(name="predict", parameters=_TOP_2)],
        },
        "INVALID_ARGUMENT",
        "output 'predict' asks for 'classification'",
    ),
]


@pytest.mark.parametrize(("fields", "status", "fragment"), BAD_GRPC)
def test_a_bad_request_gets_the_status_of_its_rest_4xx_naming_the_problem(
    stub: Any, fields: dict[str, Any], status: str, fragment: str
) -> None:
    request = pb.ModelInferRequest(**{"model_name": MODEL, **fields})
    with pytest.raises(grpc.RpcError) as refused:
        stub.ModelInfer(request, metadata=(("x-request-id", "bad-1"),))
    error = refused.value
    assert error.code() == getattr(grpc.StatusCode, status), error.details()
    assert fragment in error.details()
    assert ("x-request-id", "bad-1") in error.trailing_metadata()


def test_a_model_that_raises_is_internal_naming_the_request_id(
    stub: Any, triton_client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    purple = _col("color", "BYTES", ["purple"])
    request = pb.ModelInferRequest(model_name=MODEL, inputs=[GOOD_A, GOOD_B, purple])
    with pytest.raises(grpc.RpcError) as failed:
        stub.ModelInfer(request, metadata=(("x-request-id", "boom-7"),))
    assert failed.value.code() == grpc.StatusCode.INTERNAL
    details = failed.value.details()
    assert "model 'clf' version 1 failed while predicting: ValueError" in details
    assert "request id boom-7" in details
    assert any("boom-7" in r.getMessage() and r.exc_info for r in caplog.records)
    # Without the metadata, the request's id names it; without either, a new one.
    request.id = "oip-9"
    with pytest.raises(grpc.RpcError) as named:
        stub.ModelInfer(request)
    assert "request id oip-9" in named.value.details()
    request.id = ""
    with pytest.raises(grpc.RpcError) as anonymous:
        stub.ModelInfer(request)
    (generated,) = [v for k, v in anonymous.value.trailing_metadata() if k == "x-request-id"]
    assert len(generated) == 32 and f"request id {generated}" in anonymous.value.details()
    # tritonclient shows the same status and message.
    color = triton.InferInput("color", [1], "BYTES")
    color.set_data_from_numpy(np.array(["purple"], dtype=object))
    with pytest.raises(triton.InferenceServerException) as through_triton:
        triton_client.infer(MODEL, [*_inputs(1)[:2], color], request_id="t-9")
    assert through_triton.value.status() == "StatusCode.INTERNAL"
    assert "request id t-9" in through_triton.value.message()


def test_the_repository_extension_lists_unloads_and_loads(triton_client: Any) -> None:
    index = triton_client.get_model_repository_index(as_json=True)["models"]
    assert [(m["name"], m["version"], m["state"]) for m in index] == [
        (MODEL, "1", "READY"),
        (INTS, "1", "READY"),
    ]
    triton_client.unload_model(MODEL)
    assert not triton_client.is_model_ready(MODEL)
    ready = triton_client.get_model_repository_index(as_json=True)["models"]
    assert [m["name"] for m in ready] == [MODEL, INTS]
    with pytest.raises(triton.InferenceServerException) as unloaded:
        triton_client.infer(MODEL, _inputs(1))
    assert unloaded.value.status() == "StatusCode.NOT_FOUND"
    assert "model 'clf' is not loaded" in unloaded.value.message()
    triton_client.load_model(MODEL)
    assert triton_client.is_model_ready(MODEL, "1")
    assert triton_client.infer(MODEL, _inputs(2)).as_numpy("predict").shape == (2,)
    with pytest.raises(triton.InferenceServerException) as configured:
        triton_client.load_model(MODEL, config='{"backend": "python"}')
    assert configured.value.status() == "StatusCode.INVALID_ARGUMENT"
    assert "load parameters ['config'] are not supported" in configured.value.message()
    with pytest.raises(triton.InferenceServerException) as ghost:
        triton_client.unload_model("ghost")
    assert ghost.value.status() == "StatusCode.NOT_FOUND"


def test_rpcs_this_server_lacks_are_unimplemented_naming_what_it_has(
    triton_client: Any, address: str
) -> None:
    for call in (triton_client.get_model_config, triton_client.get_inference_statistics):
        with pytest.raises(triton.InferenceServerException) as missing:
            call(MODEL)
        assert missing.value.status() == "StatusCode.UNIMPLEMENTED"
        assert "inference.GRPCInferenceService offers ServerLive" in missing.value.message()
    with grpc.insecure_channel(address) as channel:
        other = channel.unary_unary("/other.Service/Call")
        with pytest.raises(grpc.RpcError) as elsewhere:
            other(b"")
    assert elsewhere.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert "this server offers inference.GRPCInferenceService" in elsewhere.value.details()


def test_a_message_that_does_not_parse_is_invalid_argument(address: str) -> None:
    with grpc.insecure_channel(address) as channel:
        infer = channel.unary_unary("/inference.GRPCInferenceService/ModelInfer")
        with pytest.raises(grpc.RpcError) as refused:
            infer(b"\x0a\x05ab")  # field 1 claims 5 bytes, 2 follow
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "not a valid inference.ModelInferRequest message" in refused.value.details()


def test_a_message_past_the_size_cap_is_resource_exhausted(client: Client, model: Any) -> None:
    from loopwright.serving.app import create_app
    from loopwright.serving.grpc_server import attach_grpc

    repository = ModelRepository([resolve_source(f"models:/{MODEL}/1", client)])
    repository.load_all()
    app = create_app(repository)
    address = f"127.0.0.1:{free_port()}"
    attach_grpc(app, repository, None, address, max_message_bytes=4096)
    big = _tensor("a", "FP64", [1000], fp64_contents=[0.5] * 1000)
    with live(app), grpc.insecure_channel(address) as channel:
        stub = inference_pb2_grpc.GRPCInferenceServiceStub(channel)
        with pytest.raises(grpc.RpcError) as refused:
            stub.ModelInfer(pb.ModelInferRequest(model_name=MODEL, inputs=[big]))
        assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert stub.ModelInfer(pb.ModelInferRequest(model_name=MODEL, inputs=_good(2))).outputs


def test_a_full_queue_is_unavailable(
    client: Client, model: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    from loopwright.serving import batching

    # The first request is held on the model thread; the second waits in the queue (one row).
    monkeypatch.setattr(batching, "INLINE_BELOW_MS", 0.0)
    holding, release = threading.Event(), threading.Event()

    def hold_the_first(served: Any, requests: int, rows: int) -> None:
        if not holding.is_set():
            holding.set()
            release.wait(30)

    repository = ModelRepository(
        [resolve_source(f"models:/{MODEL}/1", client)],
        max_batch_size=2,
        max_latency_ms=5,
        max_queue_rows=1,
        on_batch=hold_the_first,
    )
    repository.load_all()
    _, batcher = repository.get(MODEL)
    address = f"127.0.0.1:{free_port()}"
    app = build_app(ServeConfig(sources=(), grpc_address=address), repository)
    with live(app), grpc.insecure_channel(address) as channel:
        stub = inference_pb2_grpc.GRPCInferenceServiceStub(channel)
        request = pb.ModelInferRequest(model_name=MODEL, inputs=_good(1))
        try:
            held = stub.ModelInfer.future(request)
            assert holding.wait(30)
            waiting = stub.ModelInfer.future(request)
            deadline = time.monotonic() + 30
            while batcher.queued_rows < 1 and time.monotonic() < deadline:
                time.sleep(0.005)
            with pytest.raises(grpc.RpcError) as refused:
                stub.ModelInfer(request)
        finally:
            release.set()
        assert held.result(timeout=30).outputs[0].name == "predict"
        assert waiting.result(timeout=30).outputs[0].name == "predict"
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "1 rows waiting (limit 1); retry shortly" in refused.value.details()


def test_answered_requests_reach_the_prediction_log(
    client: Client, model: Any, ints_model: Any, tmp_path: Path
) -> None:
    from loopwright.serving.predictions import read_predictions

    X, _ = training_frame()
    root = str(tmp_path / "log")
    for address in _serve(client, log_root=root):
        connection = triton.InferenceServerClient(address)
        connection.infer(MODEL, _inputs(2), request_id="g-log-1")
        with grpc.insecure_channel(address) as channel:
            stub = inference_pb2_grpc.GRPCInferenceServiceStub(channel)
            request = pb.ModelInferRequest(model_name=MODEL, inputs=_good(1))
            stub.ModelInfer(request, metadata=(("x-request-id", "g-log-2"),))
            with pytest.raises(grpc.RpcError):
                stub.ModelInfer(pb.ModelInferRequest(model_name=MODEL, id="refused"))
        connection.close()
    # Leaving the server stopped gRPC, then closed (flushed) the log.
    logged = read_predictions(root, MODEL).sort_values(["request_id", "input.a"])
    assert logged["request_id"].tolist() == ["g-log-1", "g-log-1", "g-log-2"]
    assert logged["input.a"].tolist() == [X["a"][0], X["a"][1], X["a"][0]]
    assert logged["output.predict"].tolist() == model.predict(X.iloc[[0, 1, 0]]).tolist()
    assert set(logged["model_version"]) == {1} and (logged["status"] == 200).all()


def test_the_committed_stubs_are_what_the_proto_generates(tmp_path: Path) -> None:
    """Regenerating gives the same messages and service (a changed proto without regenerated
    stubs fails here), in a descriptor pool of their own (no clash with tritonclient's)."""
    pytest.importorskip("grpc_tools")
    from google.protobuf import descriptor_pb2, descriptor_pool

    from loopwright.serving._grpc import generate

    generate.main(["--out", str(tmp_path)])
    folder = tmp_path / "loopwright" / "serving" / "_grpc"
    namespace: dict[str, Any] = {}
    exec(compile((folder / "inference_pb2.py").read_text(), "generated", "exec"), namespace)
    fresh = descriptor_pb2.FileDescriptorProto.FromString(namespace["DESCRIPTOR"].serialized_pb)
    committed = descriptor_pb2.FileDescriptorProto.FromString(pb.DESCRIPTOR.serialized_pb)
    assert fresh == committed
    assert pb.DESCRIPTOR.pool is not descriptor_pool.Default()
    fresh_stubs = (folder / "inference_pb2_grpc.py").read_text()
    committed_stubs = Path(inference_pb2_grpc.__file__).read_text()
    for method in committed.service[0].method:
        path = f"'/inference.GRPCInferenceService/{method.name}'"
        assert path in fresh_stubs and path in committed_stubs


def test_any_infer_message_is_answered_or_refused_as_a_client_error(tmp_path: Path) -> None:
    """Whatever a ModelInferRequest holds, the codec, the OIP decoding and the signature check
    either give the model an input or raise a LoopwrightError (a named status); an answer
    encodes both ways. Any other exception would be an unplanned INTERNAL."""
    import contextlib
    import functools

    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from loopwright.errors import LoopwrightError, ModelFailed
    from loopwright.registry.packaging.package import save_model
    from loopwright.serving._datatypes import DATATYPES, NUMPY_DTYPES
    from loopwright.serving._grpc.codec import CONTENTS_FIELDS, infer_response, request_body
    from loopwright.serving.oip import decode_request
    from loopwright.serving.sources import load_source

    X, _ = training_frame()
    save_model(train(), tmp_path / "pkg", input_example=X[:3])
    served = load_source(resolve_source(f"clf={tmp_path / 'pkg'}", None))
    values = {
        "bool_contents": st.booleans(),
        "int_contents": st.integers(-(2**31), 2**31 - 1),
        "int64_contents": st.integers(-(2**63), 2**63 - 1),
        "uint_contents": st.integers(0, 2**32 - 1),
        "uint64_contents": st.integers(0, 2**64 - 1),
        "fp32_contents": st.floats(width=32),
        "fp64_contents": st.floats(),
        "bytes_contents": st.sampled_from([b"red", b"blue", b"", b"\xff", b"purple"]),
    }

    def in_field(field: str, items: list[Any]) -> dict[str, Any]:
        return {field: items}

    contents = st.one_of(
        st.just({}),
        *(st.lists(v, max_size=4).map(functools.partial(in_field, f)) for f, v in values.items()),
    )
    tensor = st.builds(
        lambda name, datatype, shape, given: _tensor(name, datatype, shape, **given),
        st.sampled_from(["a", "b", "color", "x", ""]),
        st.sampled_from([*DATATYPES, "X", ""]),
        st.lists(st.integers(-1, 3), max_size=3),
        contents,
    )
    raw: Any = st.lists(st.binary(max_size=24), max_size=4) | st.just([])
    requests = st.builds(
        lambda inputs, raw, outputs, id_: pb.ModelInferRequest(
            model_name=MODEL,
            id=id_,
            inputs=inputs,
            raw_input_contents=raw,
            outputs=[_OUTPUT(name=o) for o in outputs],
        ),
        st.lists(tensor, max_size=4),
        raw,
        st.lists(st.sampled_from(["predict", "predict_proba", "x"]), max_size=2),
        st.text(max_size=3),
    )

    @st.composite
    def near_valid(draw: st.DrawFn) -> Any:
        """The model's columns (some), plausible datatypes, values in the right field or raw."""
        rows = draw(st.integers(0, 3))
        names = draw(st.permutations(["a", "b", "color"]))[: draw(st.integers(2, 3))]
        numeric = ["FP64", "FP32", "FP16", "INT64", "INT8", "UINT64", "BOOL"]
        request = pb.ModelInferRequest(
            model_name=MODEL,
            outputs=[_OUTPUT(name=o) for o in draw(st.lists(st.sampled_from(["predict_proba"])))],
        )
        as_raw = draw(st.booleans())
        for name in names:
            datatype = draw(st.sampled_from([*numeric, "BYTES"] if name != "color" else ["BYTES"]))
            field = CONTENTS_FIELDS.get(datatype, "fp32_contents")
            items: list[Any] = draw(st.lists(values[field], min_size=rows, max_size=rows))
            tensor = request.inputs.add(name=name, datatype=datatype, shape=[rows])
            if not as_raw:
                getattr(tensor.contents, field).extend(items)
            elif datatype == "BYTES":
                request.raw_input_contents.append(
                    b"".join(len(v).to_bytes(4, "little") + v for v in items)
                )
            else:
                dtype = np.dtype(NUMPY_DTYPES[datatype]).newbyteorder("<")
                with np.errstate(over="ignore", invalid="ignore"):
                    request.raw_input_contents.append(np.array(items).astype(dtype).tobytes())
        return request

    @settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
    @given(requests | near_valid())
    def check(request: Any) -> None:
        try:
            data, outputs, _ = decode_request(request_body(request), served)
            item = served.prepare(data)
        except LoopwrightError:
            return  # INVALID_ARGUMENT / NOT_FOUND naming the problem
        with contextlib.suppress(ModelFailed):  # INTERNAL naming the request id
            result = served.run(item.data, outputs)
            for as_raw in (True, False):
                infer_response(served, request.id, result, raw=as_raw).SerializeToString()

    check()


def test_a_taken_port_is_an_error_naming_it_not_a_shared_port(client: Client, model: Any) -> None:
    """One process binds without SO_REUSEPORT: a port another server holds is refused."""
    import asyncio

    from loopwright.errors import ConfigError
    from loopwright.serving._grpc.service import InferenceService
    from loopwright.serving.grpc_server import start_grpc

    repository = ModelRepository([resolve_source(f"models:/{MODEL}/1", client)])
    service = InferenceService(repository, None, "0")

    async def start_twice(address: str) -> None:
        first = await start_grpc(service, address)
        try:
            await start_grpc(service, address)
        finally:
            await first.stop(None)

    address = f"127.0.0.1:{free_port()}"
    with pytest.raises(ConfigError, match=f"cannot listen for gRPC on {address}"):
        asyncio.run(start_twice(address))


def test_a_deployment_is_routed_sticky_logged_and_shadowed_over_grpc(
    store_settings: dict[str, str], tmp_path: Path
) -> None:
    """The deployment's name is a model name over gRPC too: its policy picks the variant (an
    a/b sticky header is read from the call's metadata), the variant comes back as
    ``x-loopwright-variant``, the log records deployment and variant, shadows get copies."""
    from loopwright.cli._serve_deployment import load_deployment
    from loopwright.config import resolve_settings
    from loopwright.serving.entities import SHADOW, Variant
    from loopwright.serving.predictions import read_predictions

    name = "churn"
    settings = resolve_settings(
        home=store_settings["home"],
        db_uri=store_settings["db_uri"],
        blob_uri=store_settings["blob_uri"],
        user="ada",
        default_approval_policy="none",  # approvals are the control plane's tests
    )
    X, _ = training_frame()
    fitted = train()
    with Client(settings) as client:
        with client.start_run(experiment="deployments") as run:
            for version in (1, 2):
                run.log_model(
                    fitted, f"m{version}", input_example=X[:3], registered_model_name=MODEL
                )
        client.deployments.create(name, f"models:/{MODEL}/1")
        client.deployments.set_traffic(
            name,
            [
                Variant("a", f"models:/{MODEL}/1", 0.5),
                Variant("b", f"models:/{MODEL}/2", 0.5),
                Variant("twin", f"models:/{MODEL}/2", 1.0, SHADOW),
            ],
            sticky_header="X-User-Id",
        )
    root = str(tmp_path / "log")
    address = f"127.0.0.1:{free_port()}"
    config = ServeConfig(sources=(), deployment=name, log_root=root, grpc_address=address)
    repository, watcher = load_deployment(config, settings)
    app = build_app(config, repository, watcher)
    seen: dict[str, set[str]] = {}
    with live(app), grpc.insecure_channel(address) as channel:
        stub = inference_pb2_grpc.GRPCInferenceServiceStub(channel)
        assert stub.ModelReady(pb.ModelReadyRequest(name=name)).ready
        meta = stub.ModelMetadata(pb.ModelMetadataRequest(name=name))
        assert (meta.name, sorted(meta.versions)) == (name, ["1", "2"])
        for i in range(60):
            user = f"user-{i % 30}"
            request = pb.ModelInferRequest(model_name=name, id=f"g{i}", inputs=_good(1))
            answer, call = stub.ModelInfer.with_call(request, metadata=(("x-user-id", user),))
            variant = dict(call.trailing_metadata())["x-loopwright-variant"]
            assert answer.model_version == {"a": "1", "b": "2"}[variant]
            assert list(answer.outputs[0].contents.int64_contents) == fitted.predict(X[:1]).tolist()
            seen.setdefault(user, set()).add(variant)
        # The variants' models stay addressable by their own name and version.
        own = pb.ModelInferRequest(model_name=MODEL, model_version="2", inputs=_good(1))
        own_answer, own_call = stub.ModelInfer.with_call(own)
        assert own_answer.model_version == "2"
        assert "x-loopwright-variant" not in dict(own_call.trailing_metadata())
        shadows = app.state.shadows
        deadline = time.monotonic() + 30
        while shadows.stats().in_flight and time.monotonic() < deadline:
            time.sleep(0.05)
    assert all(len(variants) == 1 for variants in seen.values()), seen
    assert set().union(*seen.values()) == {"a", "b"}  # 30 users at 50/50: both get some
    logged = read_predictions(root, name)
    ids = {variant: set(rows["request_id"]) for variant, rows in logged.groupby("variant")}
    assert ids["twin"] == {f"g{i}" for i in range(60)} == ids["a"] | ids["b"]
    assert not ids["a"] & ids["b"] and set(logged["deployment"]) == {name}


# --- `loopwright serve --grpc-port` as users run it -------------------------------------------


@contextmanager
def _serving(store: dict[str, str], *args: str) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """``loopwright serve models:/clf/1 --grpc-port <free> ARGS`` until the block ends, ready."""
    grpc_port = free_port()
    command = serve_command(
        store,
        f"models:/{MODEL}/1",
        "--port",
        str(free_port()),
        "--grpc-port",
        str(grpc_port),
        "--no-log",
        *args,
    )
    address = f"127.0.0.1:{grpc_port}"
    with grpc.insecure_channel(address) as channel:
        ready = channel.unary_unary(
            "/inference.GRPCInferenceService/ServerReady",
            request_serializer=pb.ServerReadyRequest.SerializeToString,
            response_deserializer=pb.ServerReadyResponse.FromString,
        )

        def answers() -> bool:
            return bool(ready(pb.ServerReadyRequest(), timeout=2).ready)

        with running(command, answers) as process:
            channel.close()  # the tests open their own
            yield address, process


def test_serve_grpc_port_answers_until_sigterm(store_settings: dict[str, str], model: Any) -> None:
    X, _ = training_frame()
    with _serving(store_settings) as (address, process):
        connection = triton.InferenceServerClient(address)
        result = connection.infer(MODEL, _inputs(3))
        connection.close()
        assert result.as_numpy("predict").tolist() == model.predict(X[:3]).tolist()
        os.killpg(process.pid, signal.SIGTERM)
        status = process.wait(timeout=30)
        _, banner = process.communicate()
    # uvicorn shuts down gracefully (gRPC stops first), then re-raises the signal it caught.
    assert status in (0, -signal.SIGTERM), banner
    assert f"OIP v2 over gRPC on {address}" in banner and "every worker" not in banner


def test_with_two_workers_each_serves_grpc_on_the_shared_port(
    store_settings: dict[str, str], model: Any
) -> None:
    """Each worker listens (SO_REUSEPORT); the kernel spreads connections over both, and a
    repository change acts on the worker the connection reached."""
    psutil = pytest.importorskip("psutil")
    with _serving(store_settings, "--workers", "2") as (address, process):
        port = int(address.rsplit(":", 1)[1])
        deadline = time.monotonic() + 60
        while True:
            listening = [
                child
                for child in psutil.Process(process.pid).children(recursive=True)
                if any(
                    c.laddr.port == port and c.status == psutil.CONN_LISTEN
                    for c in child.net_connections("tcp")
                )
            ]
            if len(listening) == 2 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert len(listening) == 2, "not every worker listens for gRPC"
        # A channel of its own per connection (grpc shares subchannels across channels).
        options = [("grpc.use_local_subchannel_pool", 1)]
        with grpc.insecure_channel(address, options=options) as first:
            stub = inference_pb2_grpc.GRPCInferenceServiceStub(first)
            stub.RepositoryModelUnload(pb.RepositoryModelUnloadRequest(model_name=MODEL))
            assert not stub.ModelReady(pb.ModelReadyRequest(name=MODEL)).ready
            seen = []
            for _ in range(24):
                with grpc.insecure_channel(address, options=options) as channel:
                    other = inference_pb2_grpc.GRPCInferenceServiceStub(channel)
                    seen.append(other.ModelReady(pb.ModelReadyRequest(name=MODEL)).ready)
    # The worker that unloaded answers "not ready"; the other one still serves the model.
    assert set(seen) == {True, False}, seen


def test_a_grpc_port_in_use_stops_serve_before_loading(
    store_settings: dict[str, str], model: Any
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            serve_command(
                store_settings, f"models:/{MODEL}/1", "--grpc-port", str(port), "--workers", "2"
            ),
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "COLUMNS": "300"},
        )
    assert result.returncode != 0
    assert f"cannot listen for gRPC on 127.0.0.1:{port}" in result.stderr
    assert "choose another --grpc-port" in result.stderr
