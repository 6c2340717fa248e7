"""Request bodies parsed by pydantic-core: the same values as ``json``, and 400 for bad JSON."""

from __future__ import annotations

import json
import random
from typing import Any

import httpx
import pytest
from _served_model import MODEL

from loopwright.serving._json import loads


def test_floats_and_integers_parse_to_the_values_json_gives() -> None:
    rng = random.Random(0)
    values: list[Any] = [rng.uniform(-1e6, 1e6) for _ in range(2000)]
    values += [rng.random() * 10.0 ** rng.randint(-300, 300) for _ in range(2000)]
    values += [2**64 + 1, -(2**63), 0, -0.0, 1e-320, "é\u0000", None, True]
    raw = json.dumps({"inputs": values}).encode()
    assert loads(raw) == json.loads(raw)


def test_nan_infinity_and_a_leading_bom_are_accepted_as_json_accepts_them() -> None:
    parsed = loads(b'\xef\xbb\xbf{"a": NaN, "b": Infinity, "c": -Infinity}')
    assert parsed["a"] != parsed["a"] and parsed["b"] == float("inf") == -parsed["c"]


@pytest.mark.parametrize(
    "raw", [b"", b"[1,]", b'{"a": }', b'"\xff"', b'"\\ud800"', b"[" * 5000 + b"]" * 5000]
)
def test_what_is_not_json_is_a_value_error(raw: bytes) -> None:
    with pytest.raises(ValueError):
        loads(raw)


def test_a_body_nested_too_deep_is_a_400_on_both_protocols(url: str) -> None:
    deep = b"[" * 5000 + b"]" * 5000  # json.loads raised RecursionError here: a 500
    infer = httpx.post(f"{url}/v2/models/{MODEL}/infer", content=deep, timeout=30)
    assert infer.status_code == 400
    assert "not valid JSON" in infer.json()["error"]
    scored = httpx.post(
        f"{url}/invocations", content=deep, headers={"Content-Type": "application/json"}
    )
    assert scored.status_code == 400 and "not valid JSON" in scored.json()["message"]
