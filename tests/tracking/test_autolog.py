"""scikit-learn autologging end to end: real fits, a real store, models read back with skops."""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("sklearn")
skops_io = pytest.importorskip("skops.io")

from sklearn.datasets import load_diabetes, load_iris  # noqa: E402
from sklearn.ensemble import IsolationForest, RandomForestRegressor  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.metrics import accuracy_score, mean_squared_error, r2_score  # noqa: E402
from sklearn.model_selection import GridSearchCV  # noqa: E402
from sklearn.pipeline import Pipeline  # noqa: E402
from sklearn.preprocessing import FunctionTransformer, StandardScaler  # noqa: E402

from loopwright.client import Client  # noqa: E402
from loopwright.config import resolve_settings  # noqa: E402
from loopwright.tracking import Run, RunStatus  # noqa: E402
from loopwright.tracking.autolog import MAX_PARAM_LENGTH, AutologWarning, autolog  # noqa: E402

EXPERIMENT = "autolog"


@pytest.fixture
def client(tmp_path: Path) -> Iterator[Client]:
    with Client(resolve_settings(home=tmp_path / "h")) as client:
        autolog(client_factory=lambda: client, experiment=EXPERIMENT)
        try:
            yield client
        finally:
            autolog(disable=True)


def _runs(client: Client) -> list[Run]:
    if EXPERIMENT not in {e.name for e in client.list_experiments()}:
        return []
    return client.list_runs(EXPERIMENT)


def _only_run(client: Client) -> Run:
    runs = _runs(client)
    assert len(runs) == 1, [r.name for r in runs]
    return runs[0]


def _load_model(client: Client, run_id: str) -> tuple[object, dict[str, object]]:
    """The autologged package, loaded the safe way, and its manifest."""
    loaded = client.load_model(f"runs:/{run_id}/model")
    return loaded, json.loads(loaded.manifest.to_json())


def test_logistic_regression_logs_params_metrics_and_model(client: Client, tmp_path: Path) -> None:
    x, y = load_iris(return_X_y=True)
    model = LogisticRegression(C=0.5, max_iter=1000).fit(x, y)

    run = _only_run(client)
    assert run.status is RunStatus.FINISHED and run.name == "LogisticRegression"
    assert run.params["C"] == "0.5" and run.params["max_iter"] == "1000"
    metrics = {key: m.value for key, m in run.metrics.items()}
    assert metrics["training_accuracy_score"] == pytest.approx(accuracy_score(y, model.predict(x)))
    for name in ("precision_score", "recall_score", "f1_score"):
        assert 0.8 < metrics[f"training_{name}"] <= 1.0
    assert 0 < metrics["training_log_loss"] < 1
    assert "training_roc_auc" not in metrics  # three classes
    assert metrics["fit_duration_s"] > 0

    paths = {a.path for a in client.list_artifacts(run.id)}
    assert {"model/model.skops", "model/loopwright-model.json"} <= paths
    loaded, manifest = _load_model(client, run.id)
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))  # type: ignore[attr-defined]
    assert manifest["flavor"] == "sklearn" and not manifest["uses_pickle"]
    assert manifest["signature"] is not None  # inferred from the first rows of X


def test_binary_classifier_logs_roc_auc(client: Client) -> None:
    x, y = load_iris(return_X_y=True)
    LogisticRegression(max_iter=1000).fit(x[y < 2], y[y < 2])
    metrics = _only_run(client).metrics
    assert metrics["training_roc_auc"].value == pytest.approx(1.0)


def test_random_forest_regressor(client: Client, tmp_path: Path) -> None:
    x, y = load_diabetes(return_X_y=True)
    model = RandomForestRegressor(n_estimators=10, random_state=0).fit(x, y)

    run = _only_run(client)
    assert run.params["n_estimators"] == "10"
    metrics = {key: m.value for key, m in run.metrics.items()}
    mse = mean_squared_error(y, model.predict(x))
    assert metrics["training_mean_squared_error"] == pytest.approx(mse)
    assert metrics["training_root_mean_squared_error"] == pytest.approx(math.sqrt(mse))
    assert metrics["training_r2_score"] == pytest.approx(r2_score(y, model.predict(x)))
    assert metrics["training_mean_absolute_error"] > 0
    loaded, _ = _load_model(client, run.id)
    np.testing.assert_allclose(loaded.predict(x), model.predict(x))  # type: ignore[attr-defined]


def test_pipeline_logs_once_as_the_outer_estimator(client: Client) -> None:
    x, y = load_iris(return_X_y=True)
    Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression())]).fit(x, y)
    run = _only_run(client)
    assert run.name == "Pipeline" and "steps" in run.params
    assert "training_accuracy_score" in run.metrics


def test_search_and_threaded_ensembles_log_once(client: Client) -> None:
    x, y = load_iris(return_X_y=True)
    GridSearchCV(LogisticRegression(max_iter=1000), {"C": [0.1, 1.0]}, cv=2).fit(x, y)
    # Bagging fits its trees on joblib worker threads: they must not log runs of their own.
    IsolationForest(n_estimators=8, n_jobs=2, random_state=0).fit(x)
    assert sorted(r.name for r in _runs(client)) == ["GridSearchCV", "IsolationForest"]


def test_fit_inside_an_explicit_run_logs_to_it(client: Client) -> None:
    x, y = load_iris(return_X_y=True)
    with client.start_run(experiment="mine") as run:
        LogisticRegression(C=1.0, max_iter=1000).fit(x, y)
        # A second fit in the same run keeps the first value of a param (params are immutable).
        LogisticRegression(C=2.0, max_iter=1000).fit(x, y)
        assert client.get_run(run.id).status is RunStatus.RUNNING
    logged = client.get_run(run.id)
    assert logged.status is RunStatus.FINISHED
    assert logged.params["C"] == "1.0"
    assert "training_accuracy_score" in logged.metrics
    assert _runs(client) == []


def test_failing_fit_marks_its_run_failed_and_reraises(client: Client) -> None:
    x, y = load_iris(return_X_y=True)
    x = x.copy()
    x[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        LogisticRegression().fit(x, y)
    run = _only_run(client)
    assert run.status is RunStatus.FAILED
    assert run.error is not None and "ValueError" in run.error


def test_logging_failures_warn_once_and_never_break_the_fit(tmp_path: Path) -> None:
    def broken() -> Client:
        raise RuntimeError("store is down")

    x, y = load_iris(return_X_y=True)
    autolog(client_factory=broken, experiment=EXPERIMENT)
    try:
        with pytest.warns(AutologWarning, match="store is down") as caught:
            model = LogisticRegression(max_iter=1000).fit(x, y)
            LogisticRegression(max_iter=1000).fit(x, y)
    finally:
        autolog(disable=True)
    assert len(caught) == 1
    assert model.predict(x[:1]).shape == (1,)


@pytest.mark.parametrize(
    ("kw_args", "func", "message"),
    [
        ({"values": (i for i in range(3))}, np.negative, "cannot pickle 'generator'"),
        (None, lambda v: v * 2, "cannot be loaded back"),
    ],
    ids=["skops-fails", "inline-function"],
)
def test_a_model_skops_cannot_save_still_logs_the_rest(
    client: Client, kw_args: dict[str, object] | None, func: object, message: str
) -> None:
    with pytest.warns(AutologWarning, match=message):
        FunctionTransformer(func, kw_args=kw_args).fit(np.ones((3, 2)))
    run = _only_run(client)
    assert run.status is RunStatus.FINISHED and "func" in run.params
    assert client.list_artifacts(run.id) == []


def test_long_param_values_are_truncated(client: Client) -> None:
    FunctionTransformer(np.negative, kw_args={"text": "x" * 2000}).fit(np.ones((2, 2)))
    value = _only_run(client).params["kw_args"]
    assert len(value) == MAX_PARAM_LENGTH and value.endswith("...")


def test_disable_restores_fit_and_stops_logging(tmp_path: Path) -> None:
    original = LogisticRegression.__dict__["fit"]
    base_fit = RandomForestRegressor.fit
    with Client(resolve_settings(home=tmp_path / "h")) as client:
        autolog(client_factory=lambda: client, experiment=EXPERIMENT, log_models=False)
        assert LogisticRegression.__dict__["fit"] is not original
        autolog(disable=True)
        autolog(disable=True)  # idempotent
        assert LogisticRegression.__dict__["fit"] is original
        assert RandomForestRegressor.fit is base_fit
        x, y = load_iris(return_X_y=True)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            LogisticRegression(max_iter=1000).fit(x, y)
        assert _runs(client) == []


def test_enabling_twice_patches_once(client: Client) -> None:
    autolog(client_factory=lambda: client, experiment=EXPERIMENT, log_models=False)
    x, y = load_iris(return_X_y=True)
    LogisticRegression(max_iter=1000).fit(x, y)
    run = _only_run(client)
    assert client.list_artifacts(run.id) == []  # the second call's settings apply
