"""runs/log-batch's body read straight into rows (server/mlflow/_batch.py) accepts, stores and
refuses exactly what the ``LogBatch`` model and ``metric_point`` did."""

from __future__ import annotations

import math
from typing import Any

import httpx
import pytest
from fastapi.exceptions import RequestValidationError
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from loopwright.errors import InvalidInput
from loopwright.server.mlflow import _messages as m
from loopwright.server.mlflow._batch import _plain_rows, read_batch
from loopwright.server.mlflow.errors import validation_message
from loopwright.tracking._validate import metric_point

API = "/api/2.0/mlflow"
RUN = "a" * 32


def _by_the_model(body: Any) -> tuple[str, list[Any]] | str:
    """What the route did before: the model, then each point's row; or the error's words."""
    try:
        message = m.LogBatch.model_validate(body)
        run_id = message.run
        rows = [metric_point(run_id, p.key, p.value, p.step, p.timestamp) for p in message.metrics]
    except ValidationError as exc:
        errors = [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
        return validation_message(errors, body)
    except InvalidInput as exc:
        return str(exc)
    return run_id, rows


def _by_read_batch(body: Any) -> tuple[str, list[Any]] | str:
    try:
        batch = read_batch(body)
    except RequestValidationError as exc:
        return validation_message(exc.errors(), exc.body)
    except InvalidInput as exc:
        return str(exc)
    return batch.run_id, batch.rows


def _same(rows: Any, expected: Any) -> bool:
    """Equal rows, NaN equal to NaN (stored as 0 with is_nan, but be safe)."""
    if isinstance(rows, str) or isinstance(expected, str):
        return bool(rows == expected)
    if rows[0] != expected[0] or len(rows[1]) != len(expected[1]):
        return False
    for got, want in zip(rows[1], expected[1], strict=True):
        if got[:4] != want[:4] or got[5] != want[5] or type(got[4]) is not type(want[4]):
            return False
        if not (got[4] == want[4] or (math.isnan(got[4]) and math.isnan(want[4]))):
            return False
    return True


_values: st.SearchStrategy[Any] = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from(["NaN", "Infinity", "-Infinity", "1.5", "x", "", True, None, [], {}]),
)
_ints = st.one_of(
    st.integers(min_value=-(2**64), max_value=2**64),
    st.sampled_from(["12", "x", 1.0, 1.5, None, True]),
)
_keys = st.one_of(st.text(max_size=6), st.sampled_from(["m", "a\x00b", "/x", "../y", 3, None]))
_point = st.fixed_dictionaries(
    {"key": _keys, "value": _values, "timestamp": _ints},
    optional={
        "step": _ints,
        "model_id": st.sampled_from([None, "", "m-1"]),
        "dataset_name": st.sampled_from([None, "d"]),
        "extra": st.just(1),
    },
)
_bodies = st.one_of(
    st.fixed_dictionaries(
        {"metrics": st.lists(_point, max_size=5)},
        optional={
            "run_id": st.sampled_from([RUN, "", None, 7]),
            "run_uuid": st.sampled_from([RUN, None]),
            "params": st.sampled_from([[], [{"key": "p", "value": "1"}], "foo", [{"k": 1}]]),
        },
    ),
    st.sampled_from([None, [], "x", {"run_id": RUN, "metrics": "foo"}, {"run_id": RUN}]),
)


@settings(max_examples=600, deadline=None)
@given(_bodies)
def test_read_batch_agrees_with_the_model_on_any_body(body: Any) -> None:
    assert _same(_by_read_batch(body), _by_the_model(body))


def test_plain_points_take_the_fast_path_and_others_the_model() -> None:
    plain = [
        {"key": "m", "value": 0.5, "timestamp": 2, "step": 1},
        {"key": "m", "value": 3, "timestamp": 2},  # an int value; step defaults to 0
        {"key": "n", "value": math.nan, "timestamp": 2, "step": 2},
        {"key": "n", "value": -math.inf, "timestamp": 2, "step": 3},
    ]
    assert _plain_rows(RUN, plain) == [
        (RUN, "m", 1, 2, 0.5, False),
        (RUN, "m", 0, 2, 3.0, False),
        (RUN, "n", 2, 2, 0.0, True),
        (RUN, "n", 3, 2, -math.inf, False),
    ]
    for odd in (
        {"key": "m", "value": "NaN", "timestamp": 2},  # the model reads the string
        {"key": "m", "value": 0.5, "timestamp": "2"},
        {"key": "m", "value": 0.5, "timestamp": 2, "model_id": "m-1"},
        {"key": "m", "value": 0.5, "timestamp": 2, "unknown": 1},  # ignored by the model
        {"key": "m", "value": 0.5, "timestamp": 2**63},
        {"key": "m", "value": True, "timestamp": 2},
        {"key": "m", "value": 0.5},
    ):
        assert _plain_rows(RUN, [odd]) is None, odd
    fast = read_batch({"run_id": RUN, "metrics": plain})
    assert fast.message.metrics == [] and fast.rows == _plain_rows(RUN, plain)
    batch = read_batch({"run_id": RUN, "metrics": [{"key": "m", "value": "NaN", "timestamp": 2}]})
    assert batch.rows == [(RUN, "m", 0, 2, 0.0, True)]
    assert batch.message.metrics and not batch.linked
    linked = {"key": "m", "value": 1.0, "timestamp": 2, "dataset_name": "d"}
    assert read_batch({"run_id": RUN, "metrics": [linked]}).linked


def _ok(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    return response.json()


def _invalid(response: httpx.Response) -> str:
    assert response.status_code == 400, response.text
    assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    return str(response.json()["message"])


@pytest.fixture
def run_id(http: httpx.Client) -> str:
    experiment = _ok(http.post(f"{API}/experiments/create", json={"name": "batch"}))
    created = _ok(
        http.post(f"{API}/runs/create", json={"experiment_id": experiment["experiment_id"]})
    )
    return str(created["run"]["info"]["run_id"])


def _history(http: httpx.Client, run_id: str, key: str) -> list[tuple[int, Any]]:
    query = {"run_id": run_id, "metric_key": key}
    found = _ok(http.get(f"{API}/metrics/get-history", params=query))["metrics"]
    return [(p["step"], p["value"]) for p in found]


def test_a_batch_stores_plain_and_odd_points_alike(http: httpx.Client, run_id: str) -> None:
    plain = [{"key": "m", "value": i / 4, "timestamp": 5, "step": i} for i in range(3)]
    _ok(http.post(f"{API}/runs/log-batch", json={"run_id": run_id, "metrics": plain}))
    odd = [{"key": "m", "value": "NaN", "timestamp": "5", "step": "3"}]
    params = [{"key": "p", "value": "1"}]
    tags = [{"key": "t", "value": "x"}]
    batch = {"run_uuid": run_id, "metrics": odd, "params": params, "tags": tags}
    _ok(http.post(f"{API}/runs/log-batch", json=batch))
    assert _history(http, run_id, "m") == [(0, 0.0), (1, 0.25), (2, 0.5), (3, "NaN")]
    run = _ok(http.get(f"{API}/runs/get", params={"run_id": run_id}))["run"]
    assert {"key": "p", "value": "1"} in run["data"]["params"]
    assert {"key": "t", "value": "x"} in run["data"]["tags"]
    latest = {x["key"]: (x["step"], x["value"]) for x in run["data"]["metrics"]}
    assert latest["m"] == (3, "NaN")


def test_a_refused_batch_leaves_nothing_behind(http: httpx.Client, run_id: str) -> None:
    good = {"key": "m", "value": 1.0, "timestamp": 5, "step": 0}
    for bad, words in (
        ({"key": "a\x00b", "value": 1.0, "timestamp": 5}, "a NUL character"),
        ({"key": "../x", "value": 1.0, "timestamp": 5}, "'..'"),
        ({"key": "m", "value": 1.0, "timestamp": 2**63}, "metrics[1].timestamp"),
        ({"key": "m", "value": "x", "timestamp": 5}, "metrics[1].value"),
        ({"key": "m", "value": 1.0}, "metrics[1].timestamp"),
    ):
        body = {"run_id": run_id, "metrics": [good, bad], "params": [{"key": "p", "value": "1"}]}
        assert words in _invalid(http.post(f"{API}/runs/log-batch", json=body)), bad
    assert _history(http, run_id, "m") == []
    run = _ok(http.get(f"{API}/runs/get", params={"run_id": run_id}))["run"]
    assert run["data"]["params"] == []
    not_json = http.post(
        f"{API}/runs/log-batch", content=b"{", headers={"content-type": "application/json"}
    )
    assert "not valid JSON" in _invalid(not_json)
    missing_run = {"metrics": [good]}
    assert "'run_id'" in _invalid(http.post(f"{API}/runs/log-batch", json=missing_run))
