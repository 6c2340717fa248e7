"""Flavor specifics beyond the conformance suite, and the flavor registry with its plugins."""

from __future__ import annotations

import importlib
import importlib.metadata
import logging
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from loopwright.errors import InvalidInput, NotFound, PermissionDenied
from loopwright.registry.packaging import flavors
from loopwright.registry.packaging.flavors import (
    available_flavors,
    flavor_for,
    get_flavor,
    register_flavor,
    unregister_flavor,
)
from loopwright.registry.packaging.package import load_package, read_manifest, save_model
from loopwright.registry.packaging.signature import ColumnSpec, Signature

X = pd.DataFrame({"a": np.linspace(-1, 1, 40), "b": np.cos(np.arange(40.0))})
Y = (X["a"] + X["b"] > 0.2).astype(int)


@pytest.fixture
def user_module(tmp_path: Path) -> Iterator[Any]:
    """Write and import a module of user code; return a factory for more such modules."""
    folder = tmp_path / "user-code"
    folder.mkdir()
    sys.path.insert(0, str(folder))
    created: list[str] = []

    def make(source: str, name: str | None = None) -> Any:
        name = name or f"lw_user_{uuid.uuid4().hex[:8]}"
        (folder / f"{name}.py").write_text(textwrap.dedent(source), encoding="utf-8")
        importlib.invalidate_caches()
        created.append(name)
        return importlib.import_module(name)

    yield make
    sys.path.remove(str(folder))
    for name in created:
        sys.modules.pop(name, None)


def test_the_flavor_order_puts_specific_flavors_before_sklearn_and_pyfunc_last() -> None:
    names = available_flavors()
    assert names.index("xgboost") < names.index("sklearn")
    assert names.index("lightgbm") < names.index("sklearn")
    assert names[-1] == "pyfunc"


def test_sklearn_refuses_types_outside_the_safe_set_unless_trusted(
    tmp_path: Path, user_module: Any
) -> None:
    from sklearn.linear_model import LinearRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    module = user_module("def double(x):\n    return x * 2\n")
    model = make_pipeline(FunctionTransformer(module.double), LinearRegression()).fit(X, Y)
    manifest = save_model(model, tmp_path / "pkg")
    assert manifest.flavor_options["untrusted_types"] == [f"{module.__name__}.double"]
    with pytest.raises(PermissionDenied, match=rf"{module.__name__}\.double.*trusted=True"):
        load_package(tmp_path / "pkg")
    loaded = load_package(tmp_path / "pkg", trusted=True)
    np.testing.assert_allclose(loaded.predict(X), model.predict(X))


def test_sklearn_trees_load_without_trust(tmp_path: Path) -> None:
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.neighbors import KNeighborsClassifier

    for index, model in enumerate(
        [HistGradientBoostingClassifier(max_iter=3), KNeighborsClassifier(3)]
    ):
        model.fit(X, Y)
        save_model(model, tmp_path / f"m{index}")
        np.testing.assert_array_equal(
            load_package(tmp_path / f"m{index}").predict(X), model.predict(X)
        )


def test_sklearn_refuses_lambdas_it_could_not_load_back(tmp_path: Path) -> None:
    from sklearn.linear_model import LinearRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    model = make_pipeline(FunctionTransformer(lambda x: x), LinearRegression()).fit(X, Y)
    with pytest.raises(InvalidInput, match=r"lambda.*define those functions at module level"):
        save_model(model, tmp_path / "pkg")


def test_xgboost_regressor_and_lightgbm_booster_and_regressor_round_trip(tmp_path: Path) -> None:
    import lightgbm
    import xgboost

    regressor = xgboost.XGBRegressor(n_estimators=3).fit(X, Y)
    save_model(regressor, tmp_path / "xgb")
    loaded = load_package(tmp_path / "xgb")
    assert type(loaded.raw) is xgboost.XGBRegressor
    np.testing.assert_allclose(loaded.predict(X), regressor.predict(X))

    params = {"objective": "regression", "verbose": -1, "min_data_in_leaf": 5}
    booster = lightgbm.train(params, lightgbm.Dataset(X, label=Y), num_boost_round=3)
    save_model(booster, tmp_path / "lgb-booster")
    np.testing.assert_allclose(
        load_package(tmp_path / "lgb-booster").predict(X), booster.predict(X)
    )

    lgbm = lightgbm.LGBMRegressor(n_estimators=3, min_child_samples=5, verbose=-1).fit(X, Y)
    save_model(lgbm, tmp_path / "lgb-reg")
    np.testing.assert_allclose(load_package(tmp_path / "lgb-reg").predict(X), lgbm.predict(X))


def test_lightgbm_multiclass_keeps_labels_and_probabilities(tmp_path: Path) -> None:
    import lightgbm

    labels = np.array([3, 7, 11])[np.arange(len(X)) % 3]
    model = lightgbm.LGBMClassifier(n_estimators=3, min_child_samples=3, verbose=-1).fit(X, labels)
    save_model(model, tmp_path / "pkg")
    loaded = load_package(tmp_path / "pkg")
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    np.testing.assert_allclose(loaded.predict_proba(X), model.predict_proba(X))


def test_onnx_without_example_takes_its_signature_from_the_graph(tmp_path: Path) -> None:
    from skl2onnx import to_onnx
    from sklearn.linear_model import LinearRegression

    features = X.to_numpy(dtype=np.float32)
    proto = to_onnx(LinearRegression().fit(features, Y), features[:1])
    model_file = tmp_path / "model.onnx"
    model_file.write_bytes(proto.SerializeToString())
    assert flavor_for(model_file).name == "onnx"
    manifest = save_model(model_file, tmp_path / "pkg")
    assert manifest.signature == Signature((ColumnSpec("X", "float32", (-1, 2)),))
    loaded = load_package(tmp_path / "pkg")
    assert loaded.predict(features).shape == (len(X), 1)
    with pytest.raises(InvalidInput, match="not a readable ONNX file"):
        save_model(b"not onnx", tmp_path / "bad", flavor="onnx")


_CONFIGURED = """
    import json

    class Scaled:
        def __init__(self, factor):
            self.factor = factor
            self.cache = object()  # not JSON: to_config is what gets stored

        def to_config(self):
            return {"factor": self.factor}

        @classmethod
        def from_config(cls, config):
            return cls(config["factor"])

        def predict(self, frame):
            return frame["a"].to_numpy() * self.factor
    """


def test_pyfunc_state_comes_from_to_config_when_offered(tmp_path: Path, user_module: Any) -> None:
    model = user_module(_CONFIGURED).Scaled(3.0)
    manifest = save_model(model, tmp_path / "pkg", input_example=X.head(2))
    assert manifest.executes_code and not manifest.uses_pickle
    assert manifest.flavor_options["state_kind"] == "config"
    loaded = load_package(tmp_path / "pkg", trusted=True)
    np.testing.assert_allclose(loaded.predict(X), X["a"].to_numpy() * 3.0)


def test_pyfunc_refuses_state_that_is_not_json(tmp_path: Path, user_module: Any) -> None:
    module = user_module(
        """
        class Holder:
            def __init__(self):
                self.weights = {1, 2}

            def predict(self, data):
                return data
        """
    )
    with pytest.raises(InvalidInput, match=r"attribute 'weights' is set.*to_config\(\)"):
        save_model(module.Holder(), tmp_path / "pkg")
    assert not (tmp_path / "pkg").exists()


def test_pyfunc_refuses_classes_defined_in_functions(tmp_path: Path) -> None:
    class Local:
        def predict(self, data: Any) -> Any:
            return data

    with pytest.raises(InvalidInput, match="inside a function"):
        save_model(Local(), tmp_path / "pkg")


def test_pyfunc_packages_do_not_share_modules(tmp_path: Path, user_module: Any) -> None:
    """Two packages shipping a same-named helper each get their own, and sys.modules stays clean."""
    made = []
    for value in (1, 2):
        helper_dir = tmp_path / f"helpers-{value}"
        helper_dir.mkdir()
        (helper_dir / "lw_shared_helper.py").write_text(f"VALUE = {value}\n", encoding="utf-8")
        sys.path.insert(0, str(helper_dir))
        try:
            module = user_module(
                """
                import lw_shared_helper

                class UsesHelper:
                    def predict(self, data):
                        return [lw_shared_helper.VALUE] * len(data)
                """
            )
            instance = module.UsesHelper()
        finally:
            sys.path.remove(str(helper_dir))
            sys.modules.pop("lw_shared_helper", None)
        package = tmp_path / f"pkg-{value}"
        save_model(instance, package, code_paths=[helper_dir / "lw_shared_helper.py"])
        made.append(package)
    before = set(sys.modules)
    first = load_package(made[0], trusted=True)
    second = load_package(made[1], trusted=True)
    assert first.predict([0, 0]) == [1, 1]
    assert second.predict([0]) == [2]
    added = set(sys.modules) - before
    assert "lw_shared_helper" not in sys.modules
    assert all(name.startswith("_loopwright_code_") for name in added)
    assert str(made[0] / "code") not in sys.path


def test_pyfunc_refuses_without_trust_before_importing_anything(
    tmp_path: Path, user_module: Any
) -> None:
    marker = tmp_path / "imported"
    module = user_module(
        f"""
        import pathlib
        pathlib.Path({str(marker)!r}).touch()

        class Model:
            def predict(self, data):
                return data
        """
    )
    save_model(module.Model(), tmp_path / "pkg")
    marker.unlink()
    with pytest.raises(PermissionDenied, match="imports Python code it ships"):
        load_package(tmp_path / "pkg")
    with pytest.raises(PermissionDenied):
        get_flavor("pyfunc").load(
            tmp_path / "pkg", read_manifest(tmp_path / "pkg").flavor_options, trusted=False
        )
    assert not marker.exists()


class _Toy:
    uses_pickle = False
    executes_code = False

    def __init__(self, name: str = "toy") -> None:
        self.name = name

    def handles(self, model: Any) -> bool:
        return isinstance(model, dict) and model.get("toy") is True

    def save(self, model: Any, folder: Path) -> dict[str, Any]:
        (folder / "toy.txt").write_text("toy", encoding="utf-8")
        return {}

    def load(self, folder: Path, options: Any, *, trusted: bool) -> Any:
        return {"toy": True}

    def predict(self, native: Any, data: Any) -> Any:
        return [len(data)]

    def libraries(self) -> dict[str, str]:
        return {}

    def signature(self, model: Any) -> Signature | None:
        return None


def test_registered_flavors_are_asked_first_and_can_be_removed(tmp_path: Path) -> None:
    register_flavor(_Toy())
    try:
        assert available_flavors()[0] == "toy"
        assert flavor_for({"toy": True}).name == "toy"
        save_model({"toy": True}, tmp_path / "pkg")
        assert load_package(tmp_path / "pkg").predict([1, 2, 3]) == [3]
        with pytest.raises(InvalidInput, match="already registered"):
            register_flavor(_Toy())
        register_flavor(_Toy(), replace=True)
    finally:
        unregister_flavor("toy")
    with pytest.raises(NotFound):
        get_flavor("toy")
    with pytest.raises(NotFound, match="nothing to remove"):
        unregister_flavor("toy")
    with pytest.raises(InvalidInput, match="is not a flavor"):
        register_flavor(object())  # type: ignore[arg-type]


def test_entry_point_flavors_load_lazily_and_broken_ones_are_skipped(
    monkeypatch: pytest.MonkeyPatch, user_module: Any, caplog: pytest.LogCaptureFixture
) -> None:
    module = user_module(
        """
        class Plugin:
            name = "plugin"
            uses_pickle = False
            executes_code = False
            def handles(self, model): return model == "plugin-model"
            def save(self, model, folder): return {}
            def load(self, folder, options, *, trusted): return None
            def predict(self, native, data): return data
            def libraries(self): return {}
            def signature(self, model): return None
        """
    )
    group = flavors.ENTRY_POINT_GROUP
    entries = [
        importlib.metadata.EntryPoint("plugin", f"{module.__name__}:Plugin", group),
        importlib.metadata.EntryPoint("broken", "lw_no_such_module_xyz:Flavor", group),
    ]
    calls: list[str] = []

    def fake_entry_points(*, group: str) -> list[importlib.metadata.EntryPoint]:
        calls.append(group)
        return entries

    monkeypatch.setattr(importlib.metadata, "entry_points", fake_entry_points)
    registry = flavors._Registry()
    assert calls == []  # nothing is read before a flavor is needed
    with caplog.at_level(logging.WARNING, logger="loopwright"):
        found = registry.get("plugin")
    assert found is not None and found.name == "plugin"
    assert calls == [flavors.ENTRY_POINT_GROUP]
    assert "lw_no_such_module_xyz" in caplog.text
    assert next(f.name for f in registry.ordered()) == "plugin"
    assert calls == [flavors.ENTRY_POINT_GROUP]  # read once
