"""No request body makes the inference core fail other than with a client error.

Whatever JSON arrives at /v2/.../infer or /invocations, decoding and the signature check either
give the model an input or raise a LoopwrightError (mapped to 4xx); once the input passes,
the model either answers or raises ModelFailed (500 with the request id). Any other exception
would be an unplanned 500.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from _served_model import train, training_frame
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loopwright.errors import LoopwrightError, ModelFailed
from loopwright.registry.packaging.package import save_model
from loopwright.serving.model import ServedModel
from loopwright.serving.oip import decode_request
from loopwright.serving.scoring import decode_json
from loopwright.serving.sources import load_source, resolve_source

SCALARS = st.none() | st.booleans() | st.integers(-300, 300) | st.floats() | st.text(max_size=3)
DATA = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3), max_leaves=8)
SHAPES = st.lists(st.integers(-1, 3), max_size=3) | SCALARS
INPUT = st.fixed_dictionaries(
    {
        "name": st.sampled_from(["a", "b", "color", "x", ""]),
        "datatype": st.sampled_from(["FP64", "FP32", "INT64", "INT8", "BOOL", "BYTES", "X"]),
        "shape": SHAPES,
        "data": DATA,
    },
    optional={"parameters": st.dictionaries(st.text(max_size=3), SCALARS, max_size=2)},
)
OIP_BODIES = (
    st.fixed_dictionaries(
        {"inputs": st.lists(INPUT, max_size=4)},
        optional={
            "id": SCALARS,
            "outputs": st.lists(
                st.fixed_dictionaries({"name": st.sampled_from(["predict", "predict_proba", "x"])}),
                max_size=2,
            ),
        },
    )
    | DATA
)
ROWS = st.lists(
    st.dictionaries(st.sampled_from(["a", "b", "color", "z"]), SCALARS, max_size=4), max_size=3
)
SCORING_BODIES = (
    st.fixed_dictionaries({"dataframe_records": ROWS | DATA})
    | st.fixed_dictionaries({"instances": ROWS | DATA})
    | st.fixed_dictionaries({"inputs": ROWS | DATA | st.dictionaries(st.text(max_size=2), DATA)})
    | st.fixed_dictionaries(
        {"dataframe_split": st.fixed_dictionaries({"columns": DATA, "data": DATA})}
    )
    | DATA
)


def _served(folder: Path) -> ServedModel:
    X, _ = training_frame()
    save_model(train(), folder, input_example=X[:3])
    return load_source(resolve_source(f"clf={folder}", None))


def _answer(served: ServedModel, decode: Any, body: Any) -> None:
    try:
        data, outputs = decode(body)
        item = served.prepare(data)
    except LoopwrightError:
        return  # a 4xx naming the problem
    with contextlib.suppress(ModelFailed):  # the model's own refusal: a 500 with the request id
        served.run(item.data, outputs)


def test_any_oip_body_is_answered_or_refused_as_a_client_error(tmp_path: Path) -> None:
    served = _served(tmp_path / "pkg")

    @settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
    @given(OIP_BODIES)
    def check(body: Any) -> None:
        _answer(served, lambda b: decode_request(b, served)[:2], body)

    check()


def test_any_scoring_body_is_answered_or_refused_as_a_client_error(tmp_path: Path) -> None:
    served = _served(tmp_path / "pkg")

    @settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
    @given(SCORING_BODIES)
    def check(body: Any) -> None:
        _answer(served, lambda b: (decode_json(b, served), ("predict",)), body)

    check()
