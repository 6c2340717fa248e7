"""OIP tensor reading: every datatype round-trips, and no JSON value makes it fail other than
with InvalidInput (a 400), whatever the client sends."""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, arrays

from loopwright.errors import InvalidInput
from loopwright.serving._binary import attach_inputs, encode_binary
from loopwright.serving._datatypes import DATATYPES, column_datatype, read_tensor, to_json_data

NUMERIC = {
    "BOOL": "bool",
    "UINT8": "uint8",
    "UINT16": "uint16",
    "UINT32": "uint32",
    "UINT64": "uint64",
    "INT8": "int8",
    "INT16": "int16",
    "INT32": "int32",
    "INT64": "int64",
    "FP16": "float16",
    "FP32": "float32",
    "FP64": "float64",
}


FLOATS: dict[str, Any] = {
    "FP16": st.floats(-1e4, 1e4, width=16),
    "FP32": st.floats(allow_nan=False, allow_infinity=False, width=32),
    "FP64": st.floats(allow_nan=False, allow_infinity=False),
}


@st.composite
def numeric_tensors(draw: Any) -> tuple[str, Any]:
    datatype = draw(st.sampled_from(sorted(NUMERIC)))
    shape = draw(array_shapes(min_dims=1, max_dims=3, max_side=4))
    return datatype, draw(arrays(NUMERIC[datatype], shape, elements=FLOATS.get(datatype)))


@given(numeric_tensors(), st.booleans())
def test_numeric_tensors_round_trip_nested_or_flat(tensor: tuple[str, Any], flat: bool) -> None:
    datatype, array = tensor
    data = array.reshape(-1).tolist() if flat else array.tolist()
    read = read_tensor("x", datatype, list(array.shape), data)
    assert read.dtype == array.dtype and read.shape == array.shape
    np.testing.assert_array_equal(read, array)
    np.testing.assert_array_equal(np.asarray(to_json_data(read)), array.reshape(-1))


@given(st.lists(st.text(max_size=8), min_size=1, max_size=6))
def test_bytes_round_trip_as_text_and_as_binary(values: list[str]) -> None:
    read = read_tensor("s", "BYTES", [len(values)], values)
    assert read.tolist() == values and to_json_data(read) == values
    payload = {"outputs": [{"name": "s", "datatype": "BYTES", "shape": [len(values)], "data": 0}]}
    body, length = encode_binary(payload, {"s": read}, True)
    request = {
        "inputs": [
            {
                "name": "s",
                "datatype": "BYTES",
                "shape": [len(values)],
                "parameters": {"binary_data_size": len(body) - length},
            }
        ]
    }
    attach_inputs(request, body[length:])
    assert request["inputs"][0]["data"] == values


@given(numeric_tensors())
def test_numeric_tensors_round_trip_as_binary(tensor: tuple[str, Any]) -> None:
    datatype, array = tensor
    shape = list(array.shape)
    payload = {"outputs": [{"name": "x", "datatype": datatype, "shape": shape, "data": 0}]}
    body, length = encode_binary(payload, {"x": array}, True)
    assert len(body) - length == array.size * array.dtype.itemsize  # little-endian raw values
    size = len(body) - length
    request = {
        "inputs": [
            {
                "name": "x",
                "datatype": datatype,
                "shape": shape,
                "parameters": {"binary_data_size": size},
            }
        ]
    }
    attach_inputs(request, body[length:])
    read = read_tensor("x", datatype, shape, request["inputs"][0]["data"])
    assert read.dtype == array.dtype
    np.testing.assert_array_equal(read, array)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=4),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=3), children, max_size=3)
    ),
    max_leaves=12,
)


@given(st.sampled_from([*DATATYPES, "FP8", 3, None]), JSON, JSON)
def test_any_json_is_read_or_refused_with_invalid_input(
    datatype: Any, shape: Any, data: Any
) -> None:
    with contextlib.suppress(InvalidInput):
        read_tensor("x", datatype, shape, data)


@pytest.mark.parametrize("datatype", sorted(NUMERIC))
def test_a_value_of_the_wrong_kind_is_named(datatype: str) -> None:
    with pytest.raises(InvalidInput, match=f"declared {datatype} but holds 'seven'"):
        read_tensor("x", datatype, [2], [True if datatype == "BOOL" else 1, "seven"])


def test_the_table_covers_every_datatype() -> None:
    assert set(DATATYPES) == {*NUMERIC, "BYTES"}


@pytest.mark.parametrize(
    ("type_name", "datatype"),
    [
        ("boolean", "BOOL"),
        ("integer", "INT32"),
        ("long", "INT64"),
        ("float", "FP32"),
        ("double", "FP64"),
        ("string", "BYTES"),
        ("binary", "BYTES"),
        ("datetime", "BYTES"),
        ("uint16", "UINT16"),
        ("float16", "FP16"),
        ("str", "BYTES"),
        ("object", "BYTES"),
    ],
)
def test_signature_types_have_their_oip_datatype(type_name: str, datatype: str) -> None:
    assert column_datatype(type_name) == datatype
