"""The quickstart's retraining pipeline: what the loop runs when the monitor sees drift.

``loopwright pipelines run quickstart_pipeline:retrain`` (from examples/) runs it by hand;
the loop created in quickstart.sh runs it on a drift alert. Each step is a nested run of the
pipeline's run; outputs are stored by type (the frame as Parquet, the model as a package) and
reused by the next run with the same code, parameters and inputs.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pandas as pd
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.metrics import accuracy_score, roc_auc_score
from sklearn.model_selection import train_test_split

import loopwright as lw

MODEL_NAME = "breast-cancer-classifier"


@lw.step
def load(dataset: str) -> pd.DataFrame:
    """The newest version of ``dataset`` (its CSV files) as one frame; the run records it."""
    client = lw.connect()
    version = client.datasets.get(dataset)
    run = lw.active_run()
    if run is not None:
        run.use_dataset(version.id)
    with tempfile.TemporaryDirectory() as tmp:
        folder = client.datasets.download(version, tmp)
        frames = [pd.read_csv(path) for path in sorted(Path(folder).rglob("*.csv"))]
    return pd.concat(frames, ignore_index=True)


@lw.step
def train(frame: pd.DataFrame, n_estimators: int, seed: int) -> GradientBoostingClassifier:
    """Fit on 75 % of the rows; log held-out metrics on the rest."""
    X, y = frame.drop(columns="target"), frame["target"]
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, stratify=y, random_state=seed
    )
    model = GradientBoostingClassifier(n_estimators=n_estimators, random_state=seed)
    model.fit(X_train, y_train)
    lw.log_metrics(
        {
            "test_accuracy": accuracy_score(y_test, model.predict(X_test)),
            "test_roc_auc": roc_auc_score(y_test, model.predict_proba(X_test)[:, 1]),
        }
    )
    return model


@lw.step(cache=False)
def register(model: GradientBoostingClassifier, frame: pd.DataFrame) -> str:
    """Register the model as a new version (its source run: this step's run)."""
    run = lw.active_run()
    assert run is not None  # a step runs inside its own nested run
    X = frame.drop(columns="target")
    info = run.log_model(model, "model", input_example=X[:5], registered_model_name=MODEL_NAME)
    assert info.registered_version is not None
    return f"models:/{MODEL_NAME}/{info.registered_version.version}"


@lw.pipeline
def retrain(
    dataset: str = "breast-cancer-recalibrated", n_estimators: int = 150, seed: int = 0
) -> str:
    """Load the newest data, train, register; returns the new version's URI (the loop's input)."""
    frame = load(dataset)
    model = train(frame, n_estimators, seed)
    return register(model, frame)
