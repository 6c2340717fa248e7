"""Signatures: inference from data, validation of inputs, and the MLflow and manifest formats."""

from __future__ import annotations

import json
import string
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loopwright.errors import InvalidInput, RegistryError
from loopwright.registry.packaging.signature import (
    ColumnSpec,
    Signature,
    SignatureError,
    infer_signature,
)

FRAME = pd.DataFrame(
    {
        "flag": [True, False],
        "small": np.array([1, 2], dtype="int32"),
        "count": np.array([1, 2], dtype="int64"),
        "ratio": np.array([0.5, 1.5], dtype="float32"),
        "amount": [0.25, 2.5],
        "name": pd.Series(["a", "b"], dtype=object),
        "blob": [b"x", b"y"],
        "when": pd.to_datetime(["2024-01-01", "2024-06-30"]),
    }
)
CHURN = Signature((ColumnSpec("age", "long"), ColumnSpec("income", "double")))


def test_a_dataframe_gives_typed_columns_in_order() -> None:
    signature = infer_signature(FRAME)
    assert [(spec.name, spec.type) for spec in signature.inputs] == [
        ("flag", "boolean"),
        ("small", "integer"),
        ("count", "long"),
        ("ratio", "float"),
        ("amount", "double"),
        ("name", "string"),
        ("blob", "binary"),
        ("when", "datetime"),
    ]
    assert signature.outputs is None
    assert not signature.is_tensor_based


def test_pandas_string_categorical_and_nullable_dtypes_map_to_column_types() -> None:
    frame = pd.DataFrame(
        {
            "s": pd.Series(["a", None], dtype="string"),
            "cat": pd.Categorical(["x", "y"]),
            "n": pd.array([1, None], dtype="Int64"),
            "tz": pd.to_datetime(["2024-01-01", "2024-01-02"]).tz_localize("UTC"),
        }
    )
    assert [spec.type for spec in infer_signature(frame).inputs] == [
        "string",
        "string",
        "long",
        "datetime",
    ]


def test_arrays_dicts_and_lists_give_tensors_with_a_free_batch_dimension() -> None:
    assert infer_signature(np.zeros((4, 3), dtype="float32")).inputs == (
        ColumnSpec(None, "float32", (-1, 3)),
    )
    named = infer_signature({"ids": np.arange(3), "text": np.array(["a", "b", "c"])})
    assert named.inputs == (ColumnSpec("ids", "int64", (-1,)), ColumnSpec("text", "str", (-1,)))
    assert infer_signature([[1.0, 2.0]]).inputs == (ColumnSpec(None, "float64", (-1, 2)),)
    rows = infer_signature([{"a": 1, "b": "x"}, {"a": 2, "b": "y"}])
    assert [(s.name, s.type) for s in rows.inputs] == [("a", "long"), ("b", "string")]


def test_outputs_are_inferred_from_arrays_and_series() -> None:
    signature = infer_signature(FRAME, np.array([0, 1]))
    assert signature.outputs == (ColumnSpec(None, "int64", (-1,)),)
    named = infer_signature(FRAME, pd.Series([0.1, 0.2], name="score"))
    assert named.outputs == (ColumnSpec("score", "double"),)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (pd.DataFrame({"x": [None, None]}, dtype=object), "only missing values"),
        (pd.DataFrame({"x": [1, "a"]}, dtype=object), "fit no column type"),
        (np.float64(3.0), "scalar"),
        ({}, "empty dict"),
        (np.array(["2024-01-01"], dtype="datetime64[D]"), "do not support"),
    ],
)
def test_inference_refuses_what_it_cannot_type(value: Any, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        infer_signature(value)


def test_validate_reorders_columns_drops_extras_and_widens_integers() -> None:
    given_frame = pd.DataFrame(
        {"extra": ["x"], "income": np.array([3], dtype="int64"), "age": [40]}
    )
    result = CHURN.validate(given_frame)
    assert list(result.columns) == ["age", "income"]
    assert result["income"].dtype == np.float64 and result["income"].iloc[0] == 3.0
    assert result["age"].dtype == np.int64


def test_validate_returns_a_matching_frame_unchanged() -> None:
    frame = pd.DataFrame({"age": [1], "income": [2.0]})
    assert CHURN.validate(frame) is frame


def test_validate_accepts_dicts_and_row_lists() -> None:
    assert CHURN.validate({"age": 3, "income": 1.5}).shape == (1, 2)
    assert CHURN.validate({"age": [3, 4], "income": [1.5, 2]}).shape == (2, 2)
    assert CHURN.validate([{"age": 3, "income": 1.5}]).shape == (1, 2)


def test_the_error_names_every_missing_and_mistyped_column() -> None:
    with pytest.raises(SignatureError) as caught:
        CHURN.validate(pd.DataFrame({"income": ["high"]}), what="model 'churn'")
    error = caught.value
    assert isinstance(error, RegistryError) and isinstance(error, ValueError)
    assert error.code == "SIGNATURE_MISMATCH"
    assert error.message.startswith(
        "input does not match the signature of model 'churn': missing column 'age'; "
        "column 'income' expects double, got string ("
    )
    assert "send a table with the columns age (long), income (double)" in error.message
    assert error.problems == (
        "missing column 'age'",
        f"column 'income' expects double, got string ({pd.Series(['high']).dtype})",
    )


@pytest.mark.parametrize(
    ("column", "values"),
    [
        ("age", [1.5]),  # double -> long would lose the fraction
        ("age", [True]),
        ("income", [np.datetime64("2024-01-01")]),
        ("income", [1, "a"]),
    ],
)
def test_unsafe_conversions_are_refused(column: str, values: list[Any]) -> None:
    frame = pd.DataFrame({"age": [1] * len(values), "income": [1.0] * len(values)})
    frame[column] = pd.Series(values, dtype=object if len(values) > 1 else None)
    with pytest.raises(SignatureError, match=f"column '{column}' expects"):
        CHURN.validate(frame)


def test_optional_columns_may_be_left_out() -> None:
    signature = Signature((ColumnSpec("a", "double"), ColumnSpec("b", "string", required=False)))
    assert list(signature.validate({"a": [1.0]}).columns) == ["a"]


def test_all_missing_values_fit_any_column_type() -> None:
    frame = pd.DataFrame({"age": [1], "income": pd.Series([None], dtype=object)})
    assert CHURN.validate(frame) is frame


def test_an_array_is_not_a_table() -> None:
    with pytest.raises(SignatureError, match=r"expected a table .* got ndarray"):
        CHURN.validate(np.zeros((2, 2)))


def test_tensor_signatures_check_shape_and_cast_safely() -> None:
    signature = infer_signature(np.zeros((2, 3)))
    assert signature.validate(np.ones((5, 3), dtype="int32")).dtype == np.float64
    assert signature.validate([[1, 2, 3]]).shape == (1, 3)
    assert signature.validate(pd.DataFrame(np.zeros((2, 3)))).shape == (2, 3)
    with pytest.raises(SignatureError, match=r"expects float64 \(-1, 3\), got float64 \(2, 4\)"):
        signature.validate(np.zeros((2, 4)))
    with pytest.raises(SignatureError, match="got str"):
        signature.validate(np.array([["a", "b", "c"]]))
    narrow = infer_signature(np.zeros((2, 3), dtype="float32"))
    with pytest.raises(SignatureError, match="expects float32"):
        narrow.validate(np.zeros((2, 3)))  # float64 -> float32 may round


def test_named_tensors_take_dicts() -> None:
    signature = infer_signature({"ids": np.arange(3), "mask": np.ones((3, 2), dtype=bool)})
    result = signature.validate({"mask": np.zeros((1, 2), dtype=bool), "ids": [7]})
    assert set(result) == {"ids", "mask"}
    with pytest.raises(SignatureError, match="missing tensor 'mask'"):
        signature.validate({"ids": [1]})
    single = Signature((ColumnSpec("X", "float32", (-1, 2)),))
    assert single.validate({"X": np.array([[1, 2]], dtype="int16")}).dtype == np.float32
    assert single.validate(np.array([[1.0, 2.0]], dtype="float32")).dtype == np.float32
    with pytest.raises(SignatureError, match="tensor 'X' expects float32"):
        single.validate([[1.0, 2.0]])  # float64 -> float32 may round: not a safe cast


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (dict(name="x", type="dbl"), "column type 'dbl' is unknown"),
        (dict(name="x", type="complex128", shape=(-1,)), "tensor type 'complex128'"),
        (dict(name="x", type="float32", shape=(-2,)), "shape"),
    ],
)
def test_specs_refuse_unknown_types_and_bad_shapes(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        ColumnSpec(**spec)


def test_signatures_refuse_mixed_kinds_and_duplicate_names() -> None:
    with pytest.raises(InvalidInput, match="mix columns and tensors"):
        Signature((ColumnSpec("a", "double"), ColumnSpec("b", "float32", (-1,))))
    with pytest.raises(InvalidInput, match="distinct names"):
        Signature((ColumnSpec("a", "double"), ColumnSpec("a", "long")))
    with pytest.raises(InvalidInput, match="empty"):
        Signature(())


def test_mlflow_strings_are_read_as_mlflow_writes_them() -> None:
    signature = Signature.from_mlflow(
        {
            "inputs": '[{"type": "double", "name": "a", "required": true}, '
            '{"type": "long", "name": "b", "required": false}]',
            "outputs": '[{"type": "long", "required": true}]',
            "params": None,
        }
    )
    assert signature == Signature(
        (ColumnSpec("a", "double"), ColumnSpec("b", "long", required=False)),
        (ColumnSpec(None, "long"),),
    )
    tensors = Signature.from_mlflow(
        {"inputs": '[{"type": "tensor", "tensor-spec": {"dtype": "float64", "shape": [-1, 4]}}]'}
    )
    assert tensors.inputs == (ColumnSpec(None, "float64", (-1, 4)),)
    assert tensors.outputs is None
    assert json.loads(tensors.to_mlflow()["inputs"] or "") == [
        {"type": "tensor", "tensor-spec": {"dtype": "float64", "shape": [-1, 4]}, "required": True}
    ]


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ('[{"type": "array", "items": {"type": "string"}, "name": "tags"}]', "'array' has no"),
        ("[{", "not JSON"),
        ('{"type": "double"}', "list of specs"),
        ('[{"name": "a"}]', "'type' string"),
        ('[{"type": "tensor", "tensor-spec": {"dtype": "float64"}}]', "tensor-spec"),
        ('[{"type": "double", "name": 3}]', "non-string 'name'"),
    ],
)
def test_unsupported_or_malformed_mlflow_signatures_are_refused(inputs: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        Signature.from_mlflow({"inputs": inputs})


@pytest.mark.parametrize(
    ("document", "field"),
    [
        ([], "signature must be an object"),
        ({"inputs": [], "outputs": None, "extra": 1}, "unknown fields"),
        ({"inputs": "x", "outputs": None}, r"signature\.inputs must be a list"),
        ({"inputs": [{"type": "double"}], "outputs": None}, "need names"),
        ({"inputs": [{"name": "a", "type": 1}], "outputs": None}, r"inputs\[0\]\.type"),
        ({"inputs": [{"name": "a", "type": "double", "required": "yes"}]}, "required"),
        ({"inputs": [{"name": "a", "type": "float32", "shape": "(-1,)"}]}, "shape must be"),
        ({"inputs": [{"name": "a", "type": "double", "shape": None, "x": 1}]}, "unknown fields"),
    ],
)
def test_from_dict_names_the_bad_field(document: Any, field: str) -> None:
    with pytest.raises(InvalidInput, match=field):
        Signature.from_dict(document)


_names = st.text(alphabet=string.ascii_letters + "_ ", min_size=1, max_size=8)
_columns = st.builds(
    ColumnSpec,
    name=_names,
    type=st.sampled_from(
        ["boolean", "integer", "long", "float", "double", "string", "binary", "datetime"]
    ),
    required=st.booleans(),
)
_tensors = st.builds(
    ColumnSpec,
    name=st.none(),
    type=st.sampled_from(["float32", "float64", "int64", "bool", "str", "uint8"]),
    shape=st.lists(st.integers(-1, 5), min_size=1, max_size=3).map(tuple),
)


@st.composite
def _signatures(draw: st.DrawFn) -> Signature:
    if draw(st.booleans()):
        specs = draw(st.lists(_columns, min_size=1, max_size=5, unique_by=lambda s: s.name))
        inputs = tuple(specs)
    else:
        inputs = (draw(_tensors),)
    outputs = draw(st.none() | st.lists(_tensors, min_size=1, max_size=1).map(tuple))
    return Signature(inputs, outputs)


@given(_signatures())
def test_signatures_round_trip_through_the_manifest_and_mlflow_formats(sig: Signature) -> None:
    assert Signature.from_dict(json.loads(json.dumps(sig.to_dict()))) == sig
    assert Signature.from_mlflow(sig.to_mlflow()) == sig


_column_values = {
    "boolean": st.booleans(),
    "long": st.integers(-(2**40), 2**40),
    "double": st.floats(allow_nan=False, allow_infinity=False),
    "string": st.text(max_size=5),
}


@st.composite
def _frames(draw: st.DrawFn) -> pd.DataFrame:
    names = draw(st.lists(_names, min_size=1, max_size=4, unique=True))
    rows = draw(st.integers(1, 4))
    data = {}
    for name in names:
        kind = draw(st.sampled_from(sorted(_column_values)))
        data[name] = pd.Series(draw(st.lists(_column_values[kind], min_size=rows, max_size=rows)))
        if kind == "string":
            data[name] = data[name].astype(object)
    return pd.DataFrame(data)


@settings(max_examples=60, deadline=None)
@given(_frames(), st.randoms(use_true_random=False))
def test_a_frame_passes_its_own_signature_in_any_column_order(
    frame: pd.DataFrame, rng: Any
) -> None:
    signature = infer_signature(frame)
    shuffled = list(frame.columns)
    rng.shuffle(shuffled)
    result = signature.validate(frame[shuffled].assign(zz_extra_column=0))
    assert list(result.columns) == list(frame.columns)
    pd.testing.assert_frame_equal(result, frame)
