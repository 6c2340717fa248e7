"""Records of served requests keep NumPy arrays (no Python object per value on the event
loop), and the log's writer turns them into the same Arrow columns lists would give."""

from __future__ import annotations

import types
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from loopwright.serving._log_table import to_table
from loopwright.serving._records import prediction_record, row_values
from loopwright.serving.prediction_log import PredictionLog, PredictionRecord
from loopwright.serving.predictions import read_predictions

T0 = datetime(2026, 12, 4, 10, 15, tzinfo=UTC)
MODEL = types.SimpleNamespace(name="churn-rf", version=3)


def served(request_id: str, inputs: Any, outputs: Any) -> PredictionRecord:
    record: PredictionRecord = prediction_record(
        MODEL,  # type: ignore[arg-type]  # a ServedModel's name and version are all it reads
        request_id,
        T0,
        1.0,
        200,
        inputs,
        outputs,
    )
    return record


def test_a_frame_of_one_dtype_becomes_views_of_its_columns() -> None:
    frame = pd.DataFrame(np.arange(12.0).reshape(4, 3), columns=["a", "b", 7])
    columns = row_values(frame, "input")
    assert list(columns) == ["a", "b", "7"]
    for name, values in zip(frame.columns, columns.values(), strict=True):
        assert isinstance(values, np.ndarray)
        assert values.tolist() == frame[name].tolist()
        assert np.shares_memory(values, frame.to_numpy())  # a view: nothing copied per request
    mixed = pd.DataFrame({"age": [1, 2], "plan": ["pro", "free"], "score": [0.5, 1.5]})
    columns = row_values(mixed, "input")
    assert {k: v.tolist() for k, v in columns.items()} == mixed.to_dict("list")
    assert [v.dtype.kind for v in columns.values()] == ["i", "O", "f"]
    proba = row_values({"predict_proba": [[0.2, 0.8]], "predict": pd.Series([1])}, "x")
    assert proba["predict_proba"].shape == (1, 2)
    assert list(row_values(np.array([3, 4]), "predict")) == ["predict"]


def test_array_records_are_stored_as_list_records_would_be() -> None:
    rng = np.random.default_rng(7)
    frames = [
        pd.DataFrame({"age": rng.integers(18, 90, n), "plan": ["pro"] * n, "x": rng.random(n)})
        for n in (1, 3, 2)
    ]
    outputs = [
        {"predict": rng.integers(0, 2, len(f)), "predict_proba": rng.random((len(f), 2))}
        for f in frames
    ]
    as_arrays = [
        served(f"r{i}", f, o) for i, (f, o) in enumerate(zip(frames, outputs, strict=True))
    ]
    as_lists = [
        served(f"r{i}", f.to_dict("list"), {k: v.tolist() for k, v in o.items()})
        for i, (f, o) in enumerate(zip(frames, outputs, strict=True))
    ]
    assert isinstance(as_arrays[0].inputs["age"], np.ndarray)
    assert to_table(as_arrays).equals(to_table(as_lists))
    assert to_table(as_arrays).schema.field("output.predict_proba").type == pa.list_(pa.float64())


def test_arrays_that_differ_between_requests_take_a_common_type() -> None:
    table = to_table([
        served("ints", {"v": np.array([1, 2])}, {"p": np.zeros((2, 2))}),
        served("floats", {"v": np.array([2.5])}, {"p": np.zeros((1, 3))}),  # another width
        served("text", {"v": np.array(["x"], dtype=object)}, {"p": np.zeros((1, 2))}),
    ])  # fmt: skip
    assert table.column("input.v").to_pylist() == ["1", "2", "2.5", "x"]
    assert table.column("output.p").to_pylist() == [[0, 0], [0, 0], [0, 0, 0], [0, 0]]
    numbers = to_table([
        served("ints", {"v": np.array([1, 2])}, {}),
        served("floats", {"v": np.array([2.5], dtype=np.float32)}, {}),
    ])  # fmt: skip
    assert numbers.column("input.v").to_pylist() == [1.0, 2.0, 2.5]


def test_tensors_keep_their_nesting() -> None:
    images = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    empty = np.zeros((2, 0))
    table = to_table([served("r1", {"image": images}, {"none": empty})])
    assert table.column("input.image").to_pylist() == images.tolist()
    assert table.column("output.none").to_pylist() == [[], []]
    flipped = np.arange(6.0).reshape(3, 2)[:, ::-1]  # not contiguous
    assert to_table([served("r2", {"f": flipped}, {})]).column("input.f").to_pylist() == (
        flipped.tolist()
    )


def test_served_records_round_trip_through_the_log() -> None:
    root = Path.cwd() / "log"
    frame = pd.DataFrame(np.array([[1.0, 2.0], [3.0, 4.0]]), columns=["a", "b"])
    with PredictionLog(root, flush_interval=3600) as log:
        for i in range(600):  # past one conversion chunk (256 records)
            log.append(served(f"r{i:03d}", frame, {"predict": np.array([i, -i])}))
    read = read_predictions(root, "churn-rf")
    assert len(read) == 1200
    assert read["input.a"].tolist()[:4] == [1.0, 3.0, 1.0, 3.0]
    assert read["output.predict"].tolist()[-2:] == [599, -599]
