"""Every built-in model flavor passes the published conformance checks, security included.

The checks live in :mod:`loopwright.registry.packaging.flavors.testing` (third-party flavors run
them too); each case below saves a small real model as a package. These tests also show that the
checks fail for a flavor that breaks the contract, so a passing run means something.
"""

from __future__ import annotations

import pickle
import sys
import textwrap
import uuid
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from loopwright.registry.packaging.flavors import (
    available_flavors,
    register_flavor,
    unregister_flavor,
)
from loopwright.registry.packaging.flavors.testing import (
    CHECKS,
    FlavorCase,
    FlavorCheck,
    SavedModel,
    check_flavor,
    check_unsafe_packages_need_trust,
    parametrize_with_checks,
)
from loopwright.registry.packaging.mlflow_import import convert_mlflow_model
from loopwright.registry.packaging.package import save_model
from loopwright.registry.packaging.signature import Signature


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


def _sklearn_logistic(folder: Path) -> SavedModel:
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression().fit(X, Y)
    save_model(model, folder, input_example=X.head(5))
    return SavedModel(folder, model.predict(X))


def _sklearn_forest(folder: Path) -> SavedModel:
    from sklearn.ensemble import RandomForestClassifier

    model = RandomForestClassifier(n_estimators=5, random_state=0).fit(X, Y)
    save_model(model, folder, input_example=X.head(5))
    return SavedModel(folder, model.predict(X))


def _xgboost_classifier(folder: Path) -> SavedModel:
    import xgboost

    model = xgboost.XGBClassifier(n_estimators=5, max_depth=2).fit(X, Y)
    save_model(model, folder, input_example=X.head(5))
    return SavedModel(folder, model.predict(X))


def _xgboost_booster(folder: Path) -> SavedModel:
    import xgboost

    params = {"objective": "binary:logistic", "max_depth": 2}
    booster = xgboost.train(params, xgboost.DMatrix(X, label=Y), num_boost_round=5)
    save_model(booster, folder, input_example=X.head(5))
    return SavedModel(folder, booster.predict(xgboost.DMatrix(X)))


def _lightgbm_classifier(folder: Path) -> SavedModel:
    import lightgbm

    labels = np.where(Y == 1, "yes", "no")  # string labels must come back as such
    model = lightgbm.LGBMClassifier(n_estimators=5, min_child_samples=5, verbose=-1)
    model.fit(X, labels)
    save_model(model, folder, input_example=X.head(5))
    return SavedModel(folder, model.predict(X))


def _onnx(folder: Path) -> SavedModel:
    import onnxruntime
    from skl2onnx import to_onnx
    from sklearn.linear_model import LogisticRegression

    features = X.to_numpy(dtype=np.float32)
    proto = to_onnx(LogisticRegression().fit(features, Y), features[:1])
    save_model(proto, folder, input_example=X.head(5))
    session = onnxruntime.InferenceSession(proto.SerializeToString())
    return SavedModel(folder, session.run(None, {session.get_inputs()[0].name: features})[0])


def _pyfunc(folder: Path) -> SavedModel:
    model = _user_model_class(folder.parent)("a", 0.1)
    save_model(model, folder, input_example=X.head(5))
    return SavedModel(folder, model.predict(X))


def _mlflow_pyfunc(folder: Path) -> SavedModel:
    import mlflow.pyfunc
    from mlflow.pyfunc.model import PythonModel

    source = folder.parent / "mlflow-pyfunc"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # MLflow's own hints and its pandas deprecations

        class Threshold(PythonModel):  # local: cloudpickle stores it by value
            # The DataFrame hint keeps MLflow from warning about missing hints on every load.
            def predict(
                self, context: Any, model_input: pd.DataFrame, params: Any = None
            ) -> np.ndarray:
                result: np.ndarray = (model_input["a"] > 0.1).astype(int).to_numpy()
                return result

        mlflow.pyfunc.save_model(
            source, python_model=Threshold(), input_example=X.head(5), pip_requirements=[]
        )
    convert_mlflow_model(source, folder)
    return SavedModel(folder, (X["a"] > 0.1).astype(int).to_numpy())


def _sklearn_mlflow_pickle(folder: Path) -> SavedModel:
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
    return SavedModel(folder, model.predict(X))


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
    FlavorCase("sklearn-logistic", "sklearn", _sklearn_logistic, X),
    FlavorCase("sklearn-forest", "sklearn", _sklearn_forest, X),
    FlavorCase("sklearn-mlflow-pickle", "sklearn", _sklearn_mlflow_pickle, X, needs_trust=True),
    FlavorCase("xgboost-classifier", "xgboost", _xgboost_classifier, X),
    FlavorCase("xgboost-booster", "xgboost", _xgboost_booster, X),
    FlavorCase("lightgbm-classifier", "lightgbm", _lightgbm_classifier, X),
    FlavorCase("onnx", "onnx", _onnx, X),
    FlavorCase("pyfunc", "pyfunc", _pyfunc, X, needs_trust=True),
    FlavorCase("mlflow-pyfunc", "mlflow_pyfunc", _mlflow_pyfunc, X, needs_trust=True),
]


@pytest.fixture(scope="module", autouse=True)
def _forget_user_modules() -> Iterator[None]:
    """The pyfunc case imports a module written by the test; drop it afterwards."""
    before = set(sys.modules)
    yield
    for name in set(sys.modules) - before:
        if name.startswith("lw_user_model_"):
            del sys.modules[name]


def test_every_registered_flavor_has_a_conformance_case() -> None:
    assert set(available_flavors()) <= {case.flavor for case in CASES}


@parametrize_with_checks(CASES)
def test_flavor_conforms(case: FlavorCase, check: FlavorCheck, tmp_path: Path) -> None:
    check(case, tmp_path)


class LaxPickleFlavor:
    """A broken third-party flavor: it unpickles but loads without asking for trust."""

    name = "lax_pickle"
    uses_pickle = True
    executes_code = False

    def handles(self, model: Any) -> bool:
        return isinstance(model, Cut)

    def save(self, model: Any, folder: Path) -> dict[str, Any]:
        (folder / "model.pkl").write_bytes(pickle.dumps(model))
        return {"file": "model.pkl"}

    def load(self, folder: Path, options: Mapping[str, Any], *, trusted: bool) -> Any:
        return pickle.loads((folder / "model.pkl").read_bytes())  # the defect: no trust check

    def predict(self, native: Any, data: Any) -> Any:
        return native.predict(data)

    def libraries(self) -> dict[str, str]:
        return {}

    def signature(self, model: Any) -> Signature | None:
        return None


class Cut:
    def predict(self, frame: pd.DataFrame) -> Any:
        return (frame["a"] > 0.1).astype(int).to_numpy()


def _lax_pickle(folder: Path) -> SavedModel:
    save_model(Cut(), folder, input_example=X.head(5))
    return SavedModel(folder, Cut().predict(X))


@pytest.fixture
def lax_flavor() -> Iterator[FlavorCase]:
    register_flavor(LaxPickleFlavor())
    try:
        yield FlavorCase("lax-pickle", "lax_pickle", _lax_pickle, X, needs_trust=True)
    finally:
        unregister_flavor("lax_pickle")


def test_a_flavor_that_loads_pickles_without_trust_fails_the_checks(
    lax_flavor: FlavorCase, tmp_path: Path
) -> None:
    check_flavor(
        lax_flavor,
        tmp_path / "passing",
        [c for c in CHECKS if c is not check_unsafe_packages_need_trust],
    )
    with pytest.raises(
        AssertionError, match=r"check_unsafe_packages_need_trust failed .*lax-pickle"
    ):
        check_flavor(lax_flavor, tmp_path / "all")


def test_wrong_expected_predictions_fail_the_round_trip(tmp_path: Path) -> None:
    def wrong(folder: Path) -> SavedModel:
        saved = _sklearn_logistic(folder)
        return SavedModel(saved.package, 1 - np.asarray(saved.expected))

    case = FlavorCase("sklearn-wrong", "sklearn", wrong, X)
    with pytest.raises(AssertionError, match="check_round_trip failed for case 'sklearn-wrong'"):
        check_flavor(case, tmp_path)
