"""Models and a holdout for the gate tests: ``churn`` versions registered from runs that used
the training set, and ``churn-holdout`` v1 (400 labelled rows with a ``gender`` column).

Version 1 (``good``) is a logistic regression on ``x1``, ``x2`` (AUC ~0.95 on the holdout);
2 (``coin``) a stratified dummy (AUC ~0.5); 3 (``biased``) selects on ``gcode`` (gender as 0/1),
so its selection rates by gender differ; 4 (``ridge``) a ridge classifier, without
``predict_proba``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from loopwright.client import Client

MODEL = "churn"
HOLDOUT = "churn-holdout"


def frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    """(training, holdout): ``x1``, ``x2``, ``gcode``, ``gender``, ``churned``."""
    rng = np.random.default_rng(0)
    n = 1000
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    gcode = rng.integers(0, 2, n)
    churned = (x1 + 0.5 * rng.normal(size=n) > 0).astype(int)
    frame = pd.DataFrame(
        {
            "x1": x1,
            "x2": x2,
            "gcode": gcode,
            "gender": np.where(gcode == 1, "f", "m"),
            "churned": churned,
        }
    )
    return frame.iloc[:600].reset_index(drop=True), frame.iloc[600:].reset_index(drop=True)


def estimators(train: pd.DataFrame) -> list[tuple[str, Any, list[str]]]:
    from sklearn.dummy import DummyClassifier
    from sklearn.linear_model import LogisticRegression, RidgeClassifier

    y = train["churned"]
    xs = ["x1", "x2"]
    biased_y = ((train["gcode"] == 1) & (train["x1"] > -1)).astype(int)
    return [
        ("good", LogisticRegression().fit(train[xs], y), xs),
        ("coin", DummyClassifier(strategy="stratified", random_state=0).fit(train[xs], y), xs),
        (
            "biased",
            LogisticRegression().fit(train[[*xs, "gcode"]], biased_y),
            [*xs, "gcode"],
        ),
        ("ridge", RidgeClassifier().fit(train[xs], y), xs),
    ]


def populate(client: Client, *, only: int | None = None) -> str:
    """Register the versions (the first ``only`` of them) and add the holdout; its version id."""
    train, holdout = frames()
    training = client.datasets.add("churn-train", train, table_name="train.parquet")
    version = client.datasets.add(HOLDOUT, holdout, table_name="holdout.parquet")
    for _, estimator, columns in estimators(train)[:only]:
        with client.start_run(experiment="churn") as run:
            run.use_dataset(training.id)
            run.log_model(estimator, input_example=train[columns][:5])
        client.registry.register(MODEL, run_id=run.id)
    return version.id


def spec(*rules: str, **extra: Any) -> dict[str, Any]:
    base = {"name": "churn-release", "dataset": HOLDOUT, "target": "churned"}
    return {**base, "rules": list(rules), **extra}
