"""Every model flavor passes the same contract, security checks included.

Each registered flavor has at least one case below: a small real model saved as a package. Every
case must round-trip its predictions, list and hash every file, detect a flipped byte or a
planted file, reject input that breaks the signature, and refuse to load without
``trusted=True`` whenever loading unpickles data or imports packaged code.
"""

from __future__ import annotations

import json
import shutil
import sys
import textwrap
import uuid
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from blake3 import blake3

from loopwright.errors import IntegrityError, PermissionDenied
from loopwright.registry.flavors import available_flavors, get_flavor
from loopwright.registry.mlflow_import import convert_mlflow_model
from loopwright.registry.package import (
    MANIFEST_FILE,
    load_package,
    read_manifest,
    save_model,
    verify_package,
)
from loopwright.registry.signature import SignatureError


def _data() -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(0)
    X = pd.DataFrame(
        {
            "a": rng.normal(size=80),
            "b": rng.normal(size=80),
            "c": rng.integers(0, 5, size=80),
        }
    )
    y = ((X["a"] + X["b"] + X["c"] / 5) > 0.4).astype(int)
    return X, y


X, Y = _data()


@dataclass(frozen=True)
class Made:
    package: Path
    expected: Any


@dataclass(frozen=True)
class Case:
    id: str
    flavor: str
    make: Callable[[Path], Made]
    needs_trust: bool = False


def _sklearn_logistic(folder: Path) -> Made:
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression().fit(X, Y)
    save_model(model, folder, input_example=X.head(5))
    return Made(folder, model.predict(X))


def _sklearn_forest(folder: Path) -> Made:
    from sklearn.ensemble import RandomForestClassifier

    model = RandomForestClassifier(n_estimators=5, random_state=0).fit(X, Y)
    save_model(model, folder, input_example=X.head(5))
    return Made(folder, model.predict(X))


def _xgboost_classifier(folder: Path) -> Made:
    import xgboost

    model = xgboost.XGBClassifier(n_estimators=5, max_depth=2).fit(X, Y)
    save_model(model, folder, input_example=X.head(5))
    return Made(folder, model.predict(X))


def _xgboost_booster(folder: Path) -> Made:
    import xgboost

    params = {"objective": "binary:logistic", "max_depth": 2}
    booster = xgboost.train(params, xgboost.DMatrix(X, label=Y), num_boost_round=5)
    save_model(booster, folder, input_example=X.head(5))
    return Made(folder, booster.predict(xgboost.DMatrix(X)))


def _lightgbm_classifier(folder: Path) -> Made:
    import lightgbm

    labels = np.where(Y == 1, "yes", "no")  # string labels must come back as such
    model = lightgbm.LGBMClassifier(n_estimators=5, min_child_samples=5, verbose=-1)
    model.fit(X, labels)
    save_model(model, folder, input_example=X.head(5))
    return Made(folder, model.predict(X))


def _onnx(folder: Path) -> Made:
    import onnxruntime
    from skl2onnx import to_onnx
    from sklearn.linear_model import LogisticRegression

    features = X.to_numpy(dtype=np.float32)
    proto = to_onnx(LogisticRegression().fit(features, Y), features[:1])
    save_model(proto, folder, input_example=X.head(5))
    session = onnxruntime.InferenceSession(proto.SerializeToString())
    return Made(folder, session.run(None, {session.get_inputs()[0].name: features})[0])


def _pyfunc(folder: Path) -> Made:
    model = _user_model_class(folder.parent)("a", 0.1)
    save_model(model, folder, input_example=X.head(5))
    return Made(folder, model.predict(X))


def _mlflow_pyfunc(folder: Path) -> Made:
    import mlflow.pyfunc

    source = folder.parent / "mlflow-pyfunc"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # MLflow's own hints and its pandas deprecations

        class Threshold(mlflow.pyfunc.PythonModel):  # local: cloudpickle stores it by value
            # The DataFrame hint keeps MLflow from warning about missing hints on every load.
            def predict(
                self, context: Any, model_input: pd.DataFrame, params: Any = None
            ) -> np.ndarray:
                return (model_input["a"] > 0.1).astype(int).to_numpy()

        mlflow.pyfunc.save_model(
            source, python_model=Threshold(), input_example=X.head(5), pip_requirements=[]
        )
    convert_mlflow_model(source, folder)
    return Made(folder, (X["a"] > 0.1).astype(int).to_numpy())


def _sklearn_mlflow_pickle(folder: Path) -> Made:
    import mlflow.sklearn
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression().fit(X, Y)
    source = folder.parent / "mlflow-sklearn"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # MLflow's own hints and its pandas deprecations
        mlflow.sklearn.save_model(
            model,
            source,
            serialization_format="cloudpickle",
            input_example=X.head(5),
            pip_requirements=[],
        )
    convert_mlflow_model(source, folder)
    return Made(folder, model.predict(X))


_USER_MODULE = textwrap.dedent(
    '''
    """A user's model class, written by the test as a module file."""


    class Threshold:
        def __init__(self, column, cut):
            self.column = column
            self.cut = cut

        def predict(self, frame):
            return (frame[self.column] > self.cut).astype(int).to_numpy()
    '''
)


def _user_model_class(folder: Path) -> Any:
    import importlib

    name = f"lw_user_model_{uuid.uuid4().hex[:8]}"
    code = folder / "user-code"
    code.mkdir(exist_ok=True)
    (code / f"{name}.py").write_text(_USER_MODULE, encoding="utf-8")
    sys.path.insert(0, str(code))
    try:
        return importlib.import_module(name).Threshold
    finally:
        sys.path.remove(str(code))


CASES = [
    Case("sklearn-logistic", "sklearn", _sklearn_logistic),
    Case("sklearn-forest", "sklearn", _sklearn_forest),
    Case("sklearn-mlflow-pickle", "sklearn", _sklearn_mlflow_pickle, needs_trust=True),
    Case("xgboost-classifier", "xgboost", _xgboost_classifier),
    Case("xgboost-booster", "xgboost", _xgboost_booster),
    Case("lightgbm-classifier", "lightgbm", _lightgbm_classifier),
    Case("onnx", "onnx", _onnx),
    Case("pyfunc", "pyfunc", _pyfunc, needs_trust=True),
    Case("mlflow-pyfunc", "mlflow_pyfunc", _mlflow_pyfunc, needs_trust=True),
]


@pytest.fixture(scope="module")
def _built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Made]]:
    """Each case's package, built once; tests work on copies (some of them damage packages)."""
    built: dict[str, Made] = {}
    before = set(sys.modules)
    yield built
    for name in set(sys.modules) - before:
        if name.startswith("lw_user_model_"):
            del sys.modules[name]


@pytest.fixture(params=CASES, ids=[case.id for case in CASES])
def case(request: pytest.FixtureRequest) -> Case:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def made(
    case: Case,
    _built: dict[str, Made],
    tmp_path_factory: pytest.TempPathFactory,
    tmp_path: Path,
) -> Made:
    if case.id not in _built:
        _built[case.id] = case.make(tmp_path_factory.mktemp(case.id) / "package")
    original = _built[case.id]
    copy = tmp_path / "package"
    shutil.copytree(original.package, copy)
    return Made(copy, original.expected)


def _assert_same(got: Any, expected: Any) -> None:
    got, expected = np.asarray(got), np.asarray(expected)
    if expected.dtype.kind == "f":
        np.testing.assert_allclose(got, expected, rtol=1e-6)
    else:
        np.testing.assert_array_equal(got, expected)


def test_every_registered_flavor_has_a_conformance_case() -> None:
    assert set(available_flavors()) <= {case.flavor for case in CASES}


def test_round_trip_predicts_as_the_original(case: Case, made: Made) -> None:
    loaded = load_package(made.package, trusted=case.needs_trust)
    assert loaded.flavor == case.flavor
    _assert_same(loaded.predict(X), made.expected)
    reordered = X[["c", "b", "a"]].assign(unused="ignored")  # order and extras do not matter
    _assert_same(loaded.predict(reordered), made.expected)
    if hasattr(loaded, "predict_proba"):
        assert np.asarray(loaded.predict_proba(X)).shape == (len(X), 2)


def test_manifest_lists_and_hashes_every_file(case: Case, made: Made) -> None:
    manifest = read_manifest(made.package)
    on_disk = {
        path.relative_to(made.package).as_posix(): path
        for path in made.package.rglob("*")
        if path.is_file() and path.name != MANIFEST_FILE
    }
    assert set(manifest.files) == set(on_disk)
    for relative, entry in manifest.files.items():
        content = on_disk[relative].read_bytes()
        assert (entry.hash, entry.size) == (blake3(content).hexdigest(), len(content))
    manifest_bytes = (made.package / MANIFEST_FILE).read_bytes()
    assert manifest.hash == blake3(manifest_bytes).hexdigest()
    assert manifest.flavor == case.flavor
    assert verify_package(made.package) == manifest


def test_a_flipped_byte_in_any_file_is_detected(case: Case, made: Made, tmp_path: Path) -> None:
    for relative in read_manifest(made.package).files:
        copy = tmp_path / f"flipped-{uuid.uuid4().hex[:8]}"
        shutil.copytree(made.package, copy)
        target = copy / relative
        content = bytearray(target.read_bytes())
        content[len(content) // 2] ^= 0x01
        target.write_bytes(bytes(content))
        with pytest.raises(IntegrityError, match=relative.split("/")[-1]):
            load_package(copy, trusted=True)


@pytest.mark.parametrize("planted", ["extra.py", "code/sitecustomize.py", "nested/dir/x.bin"])
def test_a_planted_file_is_detected(case: Case, made: Made, planted: str) -> None:
    target = made.package / planted
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("print('planted')\n", encoding="utf-8")
    with pytest.raises(IntegrityError, match="not listed"):
        load_package(made.package, trusted=True)


def test_the_signature_rejects_a_missing_and_a_mistyped_column(case: Case, made: Made) -> None:
    loaded = load_package(made.package, trusted=case.needs_trust)
    assert loaded.signature is not None
    with pytest.raises(SignatureError, match="missing column 'a'"):
        loaded.predict(X.drop(columns="a"))
    with pytest.raises(SignatureError, match="column 'b' expects double, got string"):
        loaded.predict(X.assign(b="text"))


def test_unsafe_packages_need_trust(case: Case, made: Made) -> None:
    manifest = read_manifest(made.package)
    flavor = get_flavor(case.flavor)
    if case.needs_trust:
        assert manifest.uses_pickle or manifest.executes_code
        with pytest.raises(PermissionDenied, match="trusted=True"):
            load_package(made.package)
        # The flavor refuses on its own too, whatever the manifest claims.
        with pytest.raises(PermissionDenied, match="trusted=True"):
            flavor.load(made.package, manifest.flavor_options, trusted=False)
        return
    assert not (manifest.uses_pickle or manifest.executes_code)
    assert not (flavor.uses_pickle or flavor.executes_code)
    document = json.loads((made.package / MANIFEST_FILE).read_bytes())
    document["uses_pickle"] = True  # the manifest's word is honoured even for safe flavors
    (made.package / MANIFEST_FILE).write_text(json.dumps(document), encoding="utf-8")
    with pytest.raises(PermissionDenied, match="unpickles data"):
        load_package(made.package)
