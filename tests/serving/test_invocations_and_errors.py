"""MLflow's /invocations in every form, and every client error a 4xx naming the problem."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from _served_model import MODEL, training_frame

import loopwright


def test_invocations_accepts_the_four_json_forms_and_csv(url: str, model: Any) -> None:
    X, _ = training_frame()
    X = X[:4]
    expected = {"predictions": model.predict(X).tolist()}
    records = X.to_dict(orient="records")
    bodies = [
        {"dataframe_split": X.to_dict(orient="split")},
        {"dataframe_split": {"columns": list(X.columns), "data": X.to_numpy().tolist()}},
        {"dataframe_records": records},
        {"instances": records},
        {"instances": X.to_numpy().tolist()},
        {"inputs": {column: X[column].tolist() for column in X.columns}},
        {"inputs": records},
    ]
    for body in bodies:
        answer = httpx.post(f"{url}/invocations", json=body)
        assert answer.status_code == 200, (body, answer.text)
        assert answer.json() == expected, body
        assert answer.headers["x-request-id"]
    csv = httpx.post(
        f"{url}/invocations",
        content=X.to_csv(index=False).encode(),
        headers={"Content-Type": "text/csv; charset=utf-8"},
    )
    assert csv.status_code == 200 and csv.json() == expected


def _infer(**inputs: Any) -> dict[str, Any]:
    return {"inputs": list(inputs.values())}


def _col(name: str, datatype: str, data: list[Any], shape: list[int] | None = None) -> Any:
    return {"name": name, "datatype": datatype, "shape": shape or [len(data)], "data": data}


GOOD_A, GOOD_B, GOOD_COLOR = (
    _col("a", "FP64", [0.1]),
    _col("b", "FP64", [1.0]),
    _col("color", "BYTES", ["red"]),
)

# (path, body, status, fragment of the message)
BAD_OIP: list[tuple[str, Any, int, str]] = [
    (f"/v2/models/{MODEL}/infer", b"{not json", 400, "not valid JSON"),
    (f"/v2/models/{MODEL}/infer", [], 400, 'JSON object with "inputs"'),
    (f"/v2/models/{MODEL}/infer", {"inputs": []}, 400, '"inputs" must be a non-empty list'),
    (f"/v2/models/{MODEL}/infer", {"inputs": [{"name": "a"}]}, 400, "lacks 'shape'"),
    (f"/v2/models/{MODEL}/infer", {"inputs": [GOOD_A], "extra": 1}, 400, "unknown fields"),
    (f"/v2/models/{MODEL}/infer", _infer(a=GOOD_A, b=GOOD_B), 400, "missing column 'color'"),
    (
        f"/v2/models/{MODEL}/infer",
        _infer(a=_col("a", "BYTES", ["x"]), b=GOOD_B, c=GOOD_COLOR),
        400,
        "column 'a' expects double, got string",
    ),
    (
        f"/v2/models/{MODEL}/infer",
        _infer(a=_col("a", "FP64", ["x"]), b=GOOD_B, c=GOOD_COLOR),
        400,
        "input 'a' is declared FP64 but holds 'x'",
    ),
    (
        f"/v2/models/{MODEL}/infer",
        _infer(a=_col("a", "INT8", [1000]), b=GOOD_B, c=GOOD_COLOR),
        400,
        "out of the range of INT8",
    ),
    (
        f"/v2/models/{MODEL}/infer",
        _infer(a=_col("a", "FP64", [0.1, 0.2], [3]), b=GOOD_B, c=GOOD_COLOR),
        400,
        "declares shape [3] (3 values) but has 2 values",
    ),
    (
        f"/v2/models/{MODEL}/infer",
        _infer(a=_col("a", "FP64", [[0.1, 0.2], [0.3]], [2, 2]), b=GOOD_B, c=GOOD_COLOR),
        400,
        "ragged",
    ),
    (
        f"/v2/models/{MODEL}/infer",
        _infer(a=_col("a", "FP64", [0.1, 0.2], [1, 2]), b=GOOD_B, c=GOOD_COLOR),
        400,
        "a column takes shape [N] or [N, 1]",
    ),
    (
        f"/v2/models/{MODEL}/infer",
        _infer(a=_col("a", "FP64", [0.1, 0.2]), b=GOOD_B, c=GOOD_COLOR),
        400,
        "different lengths",
    ),
    (
        f"/v2/models/{MODEL}/infer",
        _infer(a=_col("a", "FP64", [None]), b=GOOD_B, c=GOOD_COLOR),
        400,
        "column 'a' has missing values in rows [0]",
    ),
    (
        f"/v2/models/{MODEL}/infer",
        _infer(a=_col("a", "FP99", [0.1]), b=GOOD_B, c=GOOD_COLOR),
        400,
        "datatype 'FP99'",
    ),
    (
        f"/v2/models/{MODEL}/infer",
        _infer(x=_col("x", "FP64", [0.1, 0.2, 0.3, 0.4], [2, 2])),
        400,
        f"has 2 columns (shape [2, 2]) but model '{MODEL}' version 1 takes 3: a, b, color",
    ),
    (
        f"/v2/models/{MODEL}/infer",
        {"inputs": [GOOD_A, GOOD_B, GOOD_COLOR], "outputs": [{"name": "explain"}]},
        400,
        "has no output 'explain'; outputs: predict, predict_proba",
    ),
    (
        f"/v2/models/{MODEL}/infer",
        _infer(
            a=_col("a", "FP64", [], [0]),
            b=_col("b", "FP64", [], [0]),
            c=_col("color", "BYTES", [], [0]),
        ),
        400,
        "has no rows",
    ),
    (
        "/v2/models/ghost/infer",
        _infer(a=GOOD_A),
        404,
        "model 'ghost' is not served here; models: clf",
    ),
    (
        f"/v2/models/{MODEL}/versions/7/infer",
        _infer(a=GOOD_A),
        404,
        "no version '7' loaded; loaded versions: 1",
    ),
]


@pytest.mark.parametrize(("path", "body", "status", "fragment"), BAD_OIP)
def test_a_bad_oip_request_is_a_4xx_naming_the_problem(
    url: str, path: str, body: Any, status: int, fragment: str
) -> None:
    content = body if isinstance(body, bytes) else httpx.Request("POST", "/", json=body).read()
    answer = httpx.post(f"{url}{path}", content=content, headers={"X-Request-Id": "bad-1"})
    assert answer.status_code == status, answer.text
    assert fragment in answer.json()["error"]
    assert answer.headers["x-request-id"] == "bad-1"


BAD_SCORING: list[tuple[Any, str, int, str]] = [
    (
        {"dataframe_records": [{"a": 0.1, "b": 1.0}]},
        "application/json",
        400,
        "missing column 'color'",
    ),
    (
        {"dataframe_split": {"columns": ["a"], "data": [[1, 2]]}},
        "application/json",
        400,
        "list of 1 values",
    ),
    (
        {"instances": [[0.1, 1.0]]},
        "application/json",
        400,
        "lists of 3 values in the order a, b, color",
    ),
    ({"inputs": [], "instances": []}, "application/json", 400, "exactly one of"),
    (
        {"dataframe_records": [{"a": "x", "b": 1.0, "color": "red"}]},
        "application/json",
        400,
        "column 'a' expects double",
    ),
    (
        {"dataframe_records": [{"a": 0.1, "b": None, "color": "red"}]},
        "application/json",
        400,
        "column 'b' has missing values",
    ),
    (
        {"inputs": [{"a": 1.0}], "params": {"k": 1}},
        "application/json",
        400,
        "params are not supported",
    ),
    (
        "a,b,color\n0.1,1.0,red\n0.2,,blue\n",
        "text/csv",
        400,
        "column 'b' has missing values in rows [1]",
    ),
    ('a,b,color\n0.1,1.0,red\n"0.2,1', "text/csv", 400, "the CSV body cannot be read"),
    ("<xml/>", "application/xml", 415, "application/json or text/csv"),
]


@pytest.mark.parametrize(("body", "content_type", "status", "fragment"), BAD_SCORING)
def test_a_bad_scoring_request_is_a_4xx_in_mlflows_error_format(
    url: str, body: Any, content_type: str, status: int, fragment: str
) -> None:
    import json

    content = body.encode() if isinstance(body, str) else json.dumps(body).encode()
    answer = httpx.post(
        f"{url}/invocations", content=content, headers={"Content-Type": content_type}
    )
    assert answer.status_code == status, answer.text
    assert fragment in answer.json()["message"]
    assert answer.json()["error_code"]


def test_a_model_that_raises_is_a_500_naming_the_request_id(
    url: str, caplog: pytest.LogCaptureFixture
) -> None:
    body = _infer(a=GOOD_A, b=GOOD_B, c=_col("color", "BYTES", ["purple"]))
    answer = httpx.post(
        f"{url}/v2/models/{MODEL}/infer", json=body, headers={"X-Request-Id": "boom-7"}
    )
    assert answer.status_code == 500
    message = answer.json()["error"]
    assert "model 'clf' version 1 failed while predicting: ValueError" in message
    assert "request id boom-7" in message and answer.headers["x-request-id"] == "boom-7"
    assert any("boom-7" in r.getMessage() and r.exc_info for r in caplog.records)
    named = httpx.post(f"{url}/v2/models/{MODEL}/infer", json={**body, "id": "oip-9"})
    assert named.status_code == 500 and named.headers["x-request-id"] == "oip-9"
    assert "request id oip-9" in named.json()["error"]
    refused = httpx.post(f"{url}/v2/models/{MODEL}/infer", json={"id": "oip-10", "inputs": []})
    assert refused.status_code == 400 and refused.headers["x-request-id"] == "oip-10"
    scoring = httpx.post(
        f"{url}/invocations",
        json={"dataframe_records": [{"a": 0.1, "b": 1.0, "color": "purple"}]},
    )
    assert scoring.status_code == 500 and scoring.json()["error_code"] == "MODEL_FAILED"
    assert scoring.headers["x-request-id"] in scoring.json()["message"]


def _binary_request(json_part: dict[str, Any], data: bytes, header: str | None = None) -> Any:
    import json

    head = json.dumps(json_part).encode()
    length = header if header is not None else str(len(head))
    return head + data, {"Inference-Header-Content-Length": length}


_BINARY_A = {"name": "a", "shape": [2], "datatype": "FP64", "parameters": {"binary_data_size": 16}}


@pytest.mark.parametrize(
    ("json_part", "data", "header", "fragment"),
    [
        ({"inputs": [_BINARY_A]}, b"\0" * 8, None, "declares 16 bytes of binary data but only 8"),
        (
            {"inputs": [_BINARY_A]},
            b"\0" * 20,
            None,
            "4 bytes of binary data that no input declares",
        ),
        ({"inputs": [_BINARY_A]}, b"\0" * 16, "99999", "is not a length within the body"),
        (
            {"inputs": [{**_BINARY_A, "datatype": "BYTES", "parameters": {"binary_data_size": 3}}]},
            b"\x09\0\0",
            None,
            "truncated BYTES element length",
        ),
        (
            {"inputs": [{**_BINARY_A, "parameters": {"binary_data_size": 12}}]},
            b"\0" * 12,
            None,
            "not a whole number of FP64 values",
        ),
    ],
)
def test_malformed_binary_tensor_data_is_a_400(
    url: str, json_part: dict[str, Any], data: bytes, header: str | None, fragment: str
) -> None:
    content, headers = _binary_request(json_part, data, header)
    answer = httpx.post(f"{url}/v2/models/{MODEL}/infer", content=content, headers=headers)
    assert answer.status_code == 400, answer.text
    assert fragment in answer.json()["error"]


# Importing MLflow's pyfunc module warns about its own type hints; that is MLflow's business.
@pytest.mark.filterwarnings("ignore:.*Any type hint is inferred as AnyType:UserWarning")
def test_mlflows_own_scoring_client_gets_the_predictions(url: str, model: Any) -> None:
    from mlflow.pyfunc.scoring_server.client import ScoringServerClient

    X, _ = training_frame()
    host, port = url.removeprefix("http://").split(":")
    scoring_client: Any = ScoringServerClient  # MLflow's client is untyped
    mlflow_client = scoring_client(host, int(port))
    mlflow_client.wait_server_ready(timeout=30)
    assert mlflow_client.get_version() == loopwright.__version__
    answer = mlflow_client.invoke(X[:5])
    assert answer.get_predictions().iloc[:, 0].tolist() == model.predict(X[:5]).tolist()
