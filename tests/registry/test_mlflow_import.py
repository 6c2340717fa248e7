"""Converting real MLflow model folders (written by mlflow-skinny) into Loopwright packages."""

from __future__ import annotations

import sys
import textwrap
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from loopwright.errors import InvalidInput, NotFound, PermissionDenied, UnsafePath
from loopwright.registry.packaging.mlflow_import import convert_mlflow_model
from loopwright.registry.packaging.package import load_package, verify_package
from loopwright.registry.packaging.signature import ColumnSpec, Signature

pytest.importorskip("mlflow")

X = pd.DataFrame({"a": np.linspace(-1.0, 1.0, 30), "b": np.sin(np.arange(30.0))})
Y = (X["a"] + X["b"] > 0).astype(int)
MLFLOW_SIGNATURE = Signature(
    (ColumnSpec("a", "double"), ColumnSpec("b", "double")), (ColumnSpec(None, "long"),)
)


def _mlflow(save: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
    """Call an MLflow save function, silencing MLflow's own warnings (hints, pandas deprecations).

    ``pip_requirements=[]`` skips MLflow's requirement inference, which runs a subprocess.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        save(*args, pip_requirements=[], **kwargs)


@pytest.fixture(scope="module")
def logistic() -> Any:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression().fit(X, Y)


def test_a_skops_sklearn_model_converts_as_is(tmp_path: Path, logistic: Any) -> None:
    import mlflow.sklearn

    _mlflow(
        mlflow.sklearn.save_model,
        logistic,
        tmp_path / "mlflow",
        serialization_format="skops",
        input_example=X.head(3),
    )
    manifest = convert_mlflow_model(tmp_path / "mlflow", tmp_path / "pkg")
    assert manifest.flavor == "sklearn" and not manifest.needs_trust
    assert set(manifest.files) == {"model.skops", "input_example.json"}
    assert manifest.signature == MLFLOW_SIGNATURE
    assert manifest.libraries["mlflow"] and manifest.libraries["scikit-learn"]
    loaded = load_package(tmp_path / "pkg")
    np.testing.assert_array_equal(loaded.predict(X), logistic.predict(X))
    pd.testing.assert_frame_equal(loaded.input_example, X.head(3))


@pytest.mark.parametrize("serialization", ["cloudpickle", "pickle"])
def test_a_pickled_sklearn_model_stays_pickled_unless_trusted(
    tmp_path: Path, logistic: Any, serialization: str
) -> None:
    import mlflow.sklearn

    source = tmp_path / "mlflow"
    _mlflow(
        mlflow.sklearn.save_model,
        logistic,
        source,
        serialization_format=serialization,
        input_example=X.head(3),
    )
    kept = convert_mlflow_model(source, tmp_path / "kept")
    assert kept.uses_pickle and set(kept.files) == {"model.pkl", "input_example.json"}
    assert kept.flavor_options == {"serialization": serialization, "file": "model.pkl"}
    with pytest.raises(PermissionDenied, match=r"unpickles data.*trusted=True"):
        load_package(tmp_path / "kept")
    trusted_load = load_package(tmp_path / "kept", trusted=True)
    np.testing.assert_array_equal(trusted_load.predict(X), logistic.predict(X))

    safe = convert_mlflow_model(source, tmp_path / "safe", trusted=True)
    assert not safe.uses_pickle and "model.skops" in safe.files and "model.pkl" not in safe.files
    assert safe.signature == MLFLOW_SIGNATURE and safe.input_example == "input_example.json"
    np.testing.assert_array_equal(load_package(tmp_path / "safe").predict(X), logistic.predict(X))


@pytest.mark.parametrize("kind", ["classifier", "booster"])
def test_xgboost_models_keep_their_native_file(tmp_path: Path, kind: str) -> None:
    import mlflow.xgboost
    import xgboost

    classifier = xgboost.XGBClassifier(n_estimators=3, max_depth=2).fit(X, Y)
    model = classifier if kind == "classifier" else classifier.get_booster()
    _mlflow(mlflow.xgboost.save_model, model, tmp_path / "mlflow", input_example=X.head(3))
    manifest = convert_mlflow_model(tmp_path / "mlflow", tmp_path / "pkg")
    assert manifest.flavor == "xgboost" and not manifest.needs_trust
    assert "model.ubj" in manifest.files
    loaded = load_package(tmp_path / "pkg")
    if kind == "classifier":
        assert type(loaded.raw) is xgboost.XGBClassifier
        np.testing.assert_array_equal(loaded.predict(X), classifier.predict(X))
    else:
        expected = model.predict(xgboost.DMatrix(X))
        np.testing.assert_allclose(loaded.predict(X), expected, rtol=1e-6)


def test_a_python_model_needs_trust_and_then_predicts(tmp_path: Path) -> None:
    import mlflow.pyfunc
    from mlflow.pyfunc.model import PythonModel

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")

        class AddOne(PythonModel):
            def predict(
                self, context: Any, model_input: pd.DataFrame, params: Any = None
            ) -> np.ndarray:
                result: np.ndarray = (model_input["a"] + 1).to_numpy()
                return result

    _mlflow(mlflow.pyfunc.save_model, tmp_path / "mlflow", python_model=AddOne())
    manifest = convert_mlflow_model(tmp_path / "mlflow", tmp_path / "pkg")
    assert manifest.flavor == "mlflow_pyfunc"
    assert manifest.uses_pickle and manifest.executes_code
    with pytest.raises(PermissionDenied, match="trusted=True"):
        load_package(tmp_path / "pkg")
    loaded = load_package(tmp_path / "pkg", trusted=True)
    np.testing.assert_allclose(loaded.predict(X), X["a"] + 1)


def test_a_loader_module_model_runs_its_packaged_code_when_trusted(tmp_path: Path) -> None:
    import mlflow.pyfunc

    code = tmp_path / "lw_test_loader.py"
    code.write_text(
        textwrap.dedent(
            """
            from pathlib import Path

            class _Shift:
                def __init__(self, amount):
                    self.amount = amount

                def predict(self, data):
                    return data["a"].to_numpy() + self.amount

            def _load_pyfunc(path):
                return _Shift(float(Path(path).read_text()))
            """
        ),
        encoding="utf-8",
    )
    data = tmp_path / "shift.txt"
    data.write_text("2.5", encoding="utf-8")
    _mlflow(
        mlflow.pyfunc.save_model,
        tmp_path / "mlflow",
        loader_module="lw_test_loader",
        data_path=str(data),
        code_paths=[str(code)],
    )
    manifest = convert_mlflow_model(tmp_path / "mlflow", tmp_path / "pkg")
    assert manifest.flavor_options["kind"] == "loader_module"
    assert {"code/lw_test_loader.py", "data/shift.txt"} <= set(manifest.files)
    with pytest.raises(PermissionDenied, match="trusted=True"):
        load_package(tmp_path / "pkg")
    loaded = load_package(tmp_path / "pkg", trusted=True)
    np.testing.assert_allclose(loaded.predict(X), X["a"] + 2.5)
    assert "lw_test_loader" not in sys.modules


def test_a_pickled_pipeline_keeps_its_custom_code(tmp_path: Path) -> None:
    import mlflow.sklearn
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    code = tmp_path / "user-code"
    code.mkdir()
    (code / "lw_custom_step.py").write_text(
        textwrap.dedent(
            """
            from sklearn.base import BaseEstimator, TransformerMixin

            class Doubler(TransformerMixin, BaseEstimator):
                def fit(self, X, y=None):
                    return self

                def transform(self, X):
                    return X * 2
            """
        ),
        encoding="utf-8",
    )
    sys.path.insert(0, str(code))
    try:
        import lw_custom_step

        pipeline = make_pipeline(lw_custom_step.Doubler(), LogisticRegression()).fit(X, Y)
        expected = pipeline.predict(X)
        _mlflow(
            mlflow.sklearn.save_model,
            pipeline,
            tmp_path / "mlflow",
            serialization_format="cloudpickle",
            code_paths=[str(code / "lw_custom_step.py")],
        )
    finally:
        sys.path.remove(str(code))
        sys.modules.pop("lw_custom_step", None)
    manifest = convert_mlflow_model(tmp_path / "mlflow", tmp_path / "pkg", trusted=True)
    assert manifest.uses_pickle and manifest.executes_code  # kept: skops could not load it alone
    assert "code/lw_custom_step.py" in manifest.files
    with pytest.raises(PermissionDenied, match="trusted=True"):
        load_package(tmp_path / "pkg")
    loaded = load_package(tmp_path / "pkg", trusted=True)  # imports the packaged copy
    np.testing.assert_array_equal(loaded.predict(X), expected)
    assert "lw_custom_step" not in sys.modules


def _hand_written(folder: Path, mlmodel: str) -> Path:
    """An MLflow folder whose MLmodel file is written by hand (as a crafted one would be)."""
    folder.mkdir()
    (folder / "MLmodel").write_text(textwrap.dedent(mlmodel), encoding="utf-8")
    (folder / "model.pkl").write_bytes(b"not really a pickle")
    return folder


@pytest.mark.parametrize(
    ("mlmodel", "field"),
    [
        (
            """
            flavors:
              sklearn: {pickled_model: ../../etc/passwd, serialization_format: pickle}
            """,
            "sklearn.pickled_model",
        ),
        (
            """
            flavors:
              python_function: {loader_module: mlflow.sklearn, model_path: /etc/passwd}
              sklearn: {pickled_model: model.pkl}
            """,
            "python_function.model_path",
        ),
        (
            """
            flavors:
              xgboost: {data: ../model.ubj, model_class: xgboost.core.Booster, model_format: ubj}
            """,
            "xgboost.data",
        ),
        (
            """
            flavors:
              python_function: {loader_module: evil, code: ../../code}
            """,
            "python_function.code",
        ),
        (
            """
            flavors:
              sklearn: {pickled_model: model.pkl}
            saved_input_example_info: {artifact_path: ../../secret.json, type: dataframe}
            """,
            "saved_input_example_info",
        ),
    ],
)
def test_path_traversal_in_mlmodel_is_refused(tmp_path: Path, mlmodel: str, field: str) -> None:
    source = _hand_written(tmp_path / "mlflow", mlmodel)
    with pytest.raises(UnsafePath, match=field):
        convert_mlflow_model(source, tmp_path / "pkg")
    assert not (tmp_path / "pkg").exists()


def test_a_symlink_leaving_the_folder_is_refused(tmp_path: Path) -> None:
    source = _hand_written(
        tmp_path / "mlflow",
        """
        flavors:
          sklearn: {pickled_model: link/model.pkl, serialization_format: pickle}
        """,
    )
    (source / "link").symlink_to(tmp_path)
    with pytest.raises(UnsafePath, match="symbolic link"):
        convert_mlflow_model(source, tmp_path / "pkg")


def test_a_symlink_inside_a_copied_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "secret.txt").write_text("secret", encoding="utf-8")
    source = _hand_written(
        tmp_path / "mlflow",
        """
        flavors:
          python_function: {loader_module: loader, code: code}
        """,
    )
    (source / "code").mkdir()
    (source / "code" / "stolen.txt").symlink_to(tmp_path / "secret.txt")
    with pytest.raises(InvalidInput, match=r"'code/stolen\.txt' is a symbolic link"):
        convert_mlflow_model(source, tmp_path / "pkg")
    assert not (tmp_path / "pkg").exists()


@pytest.mark.parametrize(
    ("mlmodel", "error", "message"),
    [
        ("flavors: [1, 2]\n", InvalidInput, "no 'flavors' mapping"),
        ("flavors: {\n", InvalidInput, "not valid YAML"),
        ("!!python/object/apply:os.system ['true']\n", InvalidInput, "not valid YAML"),
        ("flavors: {tensorflow: {}}\n", InvalidInput, "sklearn, xgboost and python_function"),
        (
            "flavors: {xgboost: {data: model.pkl, model_class: os.system}}\n",
            InvalidInput,
            "model_class 'os.system'",
        ),
        (
            "flavors: {sklearn: {pickled_model: model.pkl, serialization_format: joblib}}\n",
            InvalidInput,
            "serialization 'joblib'",
        ),
        (
            'flavors: {sklearn: {pickled_model: model.pkl}}\nsignature: {inputs: \'[{"type": '
            '"array", "items": {"type": "string"}}]\'}\n',
            InvalidInput,
            "'array' has no Loopwright equivalent",
        ),
    ],
)
def test_malformed_or_unsupported_mlmodel_files_are_refused(
    tmp_path: Path, mlmodel: str, error: type[Exception], message: str
) -> None:
    source = _hand_written(tmp_path / "mlflow", mlmodel)
    with pytest.raises(error, match=message):
        convert_mlflow_model(source, tmp_path / "pkg")


def test_a_hand_written_pickle_model_is_packaged_without_reading_it(tmp_path: Path) -> None:
    source = _hand_written(
        tmp_path / "mlflow",
        """
        flavors:
          sklearn: {pickled_model: model.pkl, serialization_format: cloudpickle}
        """,
    )
    manifest = convert_mlflow_model(source, tmp_path / "pkg")
    assert manifest.uses_pickle and verify_package(tmp_path / "pkg") == manifest


def test_a_folder_without_mlmodel_is_reported(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="no MLmodel file"):
        convert_mlflow_model(tmp_path, tmp_path / "pkg")
