"""Materializers: every built-in round-trips, digests are stable across processes, pickle needs
an opt-in to save and trust to load, user materializers come first."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from sklearn.ensemble import RandomForestClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from loopwright.errors import InvalidInput, NotFound, UntrustedModel
from loopwright.pipelines import materializers
from loopwright.pipelines.materializers import Stored, digest, load, register_materializer, save


def _model() -> Any:
    return make_pipeline(
        StandardScaler(), RandomForestClassifier(n_estimators=3, random_state=0)
    ).fit([[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1])


def _round_trip(value: Any, folder: Path, *, allow_pickle: bool = False) -> tuple[Stored, Any]:
    stored = save(value, folder, "output", allow_pickle=allow_pickle)
    assert stored.path.exists() and stored.path.parent == folder
    assert stored.digest == digest(value, allow_pickle=allow_pickle)
    assert stored.size > 0
    return stored, load(stored.materializer, stored.path, trusted=allow_pickle)


def test_json_values_round_trip_with_tuples_as_lists(tmp_path: Path) -> None:
    value = {"n": 3, "x": 0.5, "ok": True, "none": None, "s": "é", "items": (1, [2, (3,)])}
    stored, back = _round_trip(value, tmp_path)
    assert (stored.materializer, stored.type_name) == ("json", "dict")
    assert back == {"n": 3, "x": 0.5, "ok": True, "none": None, "s": "é", "items": [1, [2, [3]]]}
    assert stored.path.name == "output.json"


def test_json_keeps_nan_and_infinity_and_takes_numpy_scalars(tmp_path: Path) -> None:
    _, back = _round_trip([float("nan"), float("inf"), np.float64(0.25), np.int64(7)], tmp_path)
    assert math.isnan(back[0]) and back[1] == math.inf and back[2:] == [0.25, 7]
    assert type(back[3]) is int
    assert digest(np.float64(0.25)) == digest(0.25)


def test_json_digest_ignores_key_order_but_not_types() -> None:
    assert digest({"a": 1, "b": 2}) == digest({"b": 2, "a": 1})
    assert digest(1) != digest(1.0) != digest(True)
    assert digest([1, 2]) == digest((1, 2))


def test_dict_with_non_string_keys_is_not_json(tmp_path: Path) -> None:
    # JSON would turn 1 into "1" silently: such a dict needs pickle (or a materializer).
    with pytest.raises(InvalidInput, match="register_materializer"):
        save({1: "a"}, tmp_path, "output", allow_pickle=False)
    assert save({1: "a"}, tmp_path, "output", allow_pickle=True).materializer == "pickle"


def test_numpy_arrays_round_trip_without_pickle(tmp_path: Path) -> None:
    value = np.arange(12, dtype=np.float32).reshape(3, 4)
    stored, back = _round_trip(value, tmp_path)
    assert stored.materializer == "numpy" and stored.path.suffix == ".npy"
    assert back.dtype == np.float32 and np.array_equal(back, value)


def test_object_arrays_are_refused_unless_pickled(tmp_path: Path) -> None:
    value = np.array([{"a": 1}, None], dtype=object)
    with pytest.raises(InvalidInput, match="object-dtype array"):
        save(value, tmp_path, "output", allow_pickle=False)
    stored, back = _round_trip(value, tmp_path / "p", allow_pickle=True)
    assert stored.materializer == "pickle" and back[0] == {"a": 1}


def test_dataframes_keep_index_and_series_their_name(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {"x": [1.5, 2.5], "y": ["a", "b"]}, index=pd.Index(["r1", "r2"], name="id")
    )
    stored, back = _round_trip(frame, tmp_path / "f")
    assert stored.materializer == "pandas" and stored.type_name == "pandas.DataFrame"
    pd.testing.assert_frame_equal(back, frame)
    series = pd.Series([1, 2, 3], index=[10, 20, 30], name="score")
    _, back_series = _round_trip(series, tmp_path / "s")
    pd.testing.assert_series_equal(back_series, series)
    _, unnamed = _round_trip(pd.Series([0.5]), tmp_path / "u")
    assert isinstance(unnamed, pd.Series) and unnamed.name is None


def test_arrow_tables_round_trip(tmp_path: Path) -> None:
    table = pa.table({"a": [1, 2, 3], "b": ["x", None, "z"]})
    stored, back = _round_trip(table, tmp_path)
    assert stored.materializer == "arrow" and back.equals(table)


def test_bytes_round_trip(tmp_path: Path) -> None:
    stored, back = _round_trip(bytearray(b"\x00\xffdata"), tmp_path)
    assert stored.materializer == "bytes" and back == b"\x00\xffdata"


def test_a_model_round_trips_as_the_native_estimator(tmp_path: Path) -> None:
    model = _model()
    stored, back = _round_trip(model, tmp_path)
    assert stored.materializer == "model" and stored.path.is_dir()
    assert type(back) is type(model)
    assert list(back.predict([[0.5], [2.5]])) == list(model.predict([[0.5], [2.5]]))


def test_a_path_output_is_copied_file_or_folder(tmp_path: Path) -> None:
    file = tmp_path / "report.txt"
    file.write_text("hello")
    stored, back = _round_trip(file, tmp_path / "out1")
    assert (
        stored.materializer == "path" and back.name == "report.txt" and back.read_text() == "hello"
    )
    assert back != file
    folder = tmp_path / "data"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "a.csv").write_text("x\n1\n")
    stored_folder, back_folder = _round_trip(folder, tmp_path / "out2")
    assert (back_folder / "sub" / "a.csv").read_text() == "x\n1\n"
    (folder / "sub" / "a.csv").write_text("x\n2\n")
    assert digest(folder) != stored_folder.digest


def test_a_missing_path_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="does not exist"):
        save(tmp_path / "nope", tmp_path, "output", allow_pickle=False)
    with pytest.raises(InvalidInput, match="does not exist"):
        digest(tmp_path / "nope")


class _Opaque:
    def __init__(self, n: int) -> None:
        self.n = n


def test_pickle_needs_the_opt_in_and_trust(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match=r"_Opaque.*@step\(pickle=True\)"):
        save(_Opaque(1), tmp_path, "output", allow_pickle=False)
    with pytest.raises(InvalidInput, match="register_materializer"):
        digest(_Opaque(1))
    stored = save(_Opaque(1), tmp_path, "output", allow_pickle=True)
    assert stored.materializer == "pickle"
    with pytest.raises(UntrustedModel):
        load("pickle", stored.path, trusted=False)
    assert load("pickle", stored.path, trusted=True).n == 1


@pytest.fixture
def point_materializer() -> Iterator[None]:
    def write(value: _Opaque, path: Path) -> None:
        path.write_text(json.dumps({"n": value.n}))

    def read(path: Path) -> _Opaque:
        return _Opaque(json.loads(path.read_text())["n"])

    register_materializer(_Opaque, "opaque", write, read)
    yield
    materializers.unregister_materializer("opaque")


@pytest.mark.usefixtures("point_materializer")
def test_a_user_materializer_is_used_before_pickle(tmp_path: Path) -> None:
    stored = save(_Opaque(5), tmp_path, "output", allow_pickle=True)
    assert stored.materializer == "opaque" and stored.digest == digest(_Opaque(5))
    assert load("opaque", stored.path, trusted=False).n == 5
    with pytest.raises(InvalidInput, match="already registered"):
        register_materializer(int, "opaque", lambda v, p: None, lambda p: None)


def test_user_materializer_names_are_checked(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="built-in"):
        register_materializer(_Opaque, "json", lambda v, p: None, lambda p: None)

    def write_nothing(value: object, path: Path) -> None:
        pass

    register_materializer(_Opaque, "lazy", write_nothing, lambda p: None)
    try:
        with pytest.raises(InvalidInput, match="wrote nothing"):
            save(_Opaque(1), tmp_path, "output", allow_pickle=False)
    finally:
        materializers.unregister_materializer("lazy")
    with pytest.raises(NotFound):
        materializers.unregister_materializer("lazy")


def test_an_unknown_materializer_names_the_fix(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="register_materializer"):
        load("parquet2", tmp_path, trusted=False)


_VALUES = """
import numpy as np, pandas as pd, pyarrow as pa
from sklearn.ensemble import RandomForestClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
values = {
    "json": {"b": [1, 2.5, None], "a": "x"},
    "numpy": np.arange(6).reshape(2, 3),
    "pandas": pd.DataFrame({"x": [1.0, 2.0]}, index=["a", "b"]),
    "arrow": pa.table({"a": [1, 2]}),
    "model": make_pipeline(StandardScaler(), RandomForestClassifier(n_estimators=3, random_state=0))
        .fit([[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1]),
}
"""


def test_equal_values_give_equal_digests_in_two_processes() -> None:
    script = _VALUES + textwrap.dedent(
        """
        import json
        from loopwright.pipelines.materializers import digest
        print(json.dumps({name: digest(value) for name, value in values.items()}))
        """
    )
    runs = [
        json.loads(
            subprocess.run(
                [sys.executable, "-c", script], capture_output=True, text=True, check=True
            ).stdout
        )
        for _ in range(2)
    ]
    assert runs[0] == runs[1]
    assert len(set(runs[0].values())) == len(runs[0])
    namespace: dict[str, Any] = {}
    exec(_VALUES, namespace)  # and this process agrees
    assert {name: digest(v) for name, v in namespace["values"].items()} == runs[0]


def test_different_models_give_different_digests() -> None:
    other = make_pipeline(StandardScaler(), RandomForestClassifier(n_estimators=3, random_state=1))
    other.fit([[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1])
    assert digest(_model()) == digest(_model()) != digest(other)


def shifted_log(x: Any) -> Any:
    return np.log1p(x) + 1.0


def test_a_model_that_names_untrusted_functions_loads_only_when_trusted(tmp_path: Path) -> None:
    from sklearn.preprocessing import FunctionTransformer

    model = make_pipeline(FunctionTransformer(shifted_log), StandardScaler()).fit([[1.0], [2.0]])
    stored = save(model, tmp_path, "output", allow_pickle=False)
    assert stored.materializer == "model"
    with pytest.raises(UntrustedModel, match="shifted_log"):
        load("model", stored.path, trusted=False)
    back = load("model", stored.path, trusted=True)
    assert np.allclose(back.transform([[3.0]]), model.transform([[3.0]]))


def test_a_damaged_model_package_is_refused(tmp_path: Path) -> None:
    from loopwright.errors import IntegrityError

    stored = save(_model(), tmp_path, "output", allow_pickle=False)
    (stored.path / "model.skops").write_bytes(b"not a zip")
    with pytest.raises(IntegrityError, match=r"model\.skops"):
        load("model", stored.path, trusted=True)


def test_simple_values_are_not_asked_of_the_model_flavors(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert materializers.materializer_for(_model()) == "model"

    def asked(value: object) -> str | None:
        raise AssertionError(f"the model flavors were asked about {value!r}")

    monkeypatch.setattr(materializers, "_safe_model_flavor", asked)
    assert materializers.materializer_for(3) == "json"
    assert materializers.materializer_for({"a": [1.5, "x"]}) == "json"


def test_frames_arrow_cannot_store_are_refused_naming_the_column(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match=r"column a.*pickle=True"):
        save(pd.DataFrame({"a": [1, "x"]}), tmp_path, "output", allow_pickle=False)
    with pytest.raises(InvalidInput, match="name it with a string"):
        save(pd.Series([1], name=("a", "b")), tmp_path, "output", allow_pickle=False)


def test_unusual_frames_round_trip(tmp_path: Path) -> None:
    frames = [
        pd.DataFrame({0: [1], 1: [2]}),
        pd.DataFrame({"c": pd.Categorical(["a", "b"])}),
        pd.DataFrame([[1, 2]], columns=pd.MultiIndex.from_tuples([("a", "x"), ("a", "y")])),
    ]
    for number, frame in enumerate(frames):
        _, back = _round_trip(frame, tmp_path / str(number))
        pd.testing.assert_frame_equal(back, frame)


def test_a_stored_path_that_was_altered_is_refused(tmp_path: Path) -> None:
    file = tmp_path / "a.txt"
    file.write_text("a")
    stored = save(file, tmp_path / "out", "output", allow_pickle=False)
    (stored.path / "extra.txt").write_text("b")
    with pytest.raises(InvalidInput, match="found 2 entries"):
        load("path", stored.path, trusted=False)


def test_a_model_its_flavor_cannot_store_is_pickled_only_when_opted_in(tmp_path: Path) -> None:
    from sklearn.preprocessing import FunctionTransformer

    model = FunctionTransformer(lambda x: x + 1).fit([[1.0]])
    with pytest.raises(InvalidInput, match="module level"):
        save(model, tmp_path / "a", "output", allow_pickle=False)
    stored = save(model, tmp_path / "b", "output", allow_pickle=True)
    assert stored.materializer == "pickle" and stored.path.name == "output.pkl"
    assert [p.name for p in (tmp_path / "b").iterdir()] == ["output.pkl"]
    assert load("pickle", stored.path, trusted=True).transform(np.ones((1, 1)))[0][0] == 2.0


def test_register_and_unregister_are_public_from_loopwright_pipelines(tmp_path: Path) -> None:
    import loopwright.pipelines as pipelines

    class Celsius(float):
        pass

    def save_celsius(value: Any, path: Path) -> None:
        path.write_text(repr(float(value)))

    pipelines.register_materializer(
        Celsius, "celsius_public", save_celsius, lambda path: Celsius(float(path.read_text()))
    )
    try:
        stored = save(Celsius(21.5), tmp_path, "t", allow_pickle=False)
        assert stored.materializer == "celsius_public"
        assert load("celsius_public", stored.path, trusted=False) == 21.5
    finally:
        pipelines.unregister_materializer("celsius_public")
    with pytest.raises(NotFound, match="celsius_public"):
        pipelines.unregister_materializer("celsius_public")
    assert {"register_materializer", "unregister_materializer"} <= set(pipelines.__all__)
