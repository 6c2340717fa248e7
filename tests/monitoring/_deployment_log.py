"""A deployment to monitor: a registered model whose lineage names its training data, and a
prediction log holding an unshifted hour and a shifted one (imported by bare name).

The model (``churn`` v1, a scikit-learn pipeline that loads without ``trusted``) takes ``age``,
``income`` and ``plan``; the training dataset (``churn-train@v1``) also holds the target
``churned``. The log of deployment ``churn-api`` holds :data:`ROWS` rows in
``[START, START + 1h)`` drawn like the training data, and :data:`ROWS` in the next hour with
``age`` shifted by +15 and ``plan`` mostly ``c``; ``income`` is never shifted.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from loopwright.data.entities import DatasetVersion
from loopwright.data.service import DatasetService
from loopwright.registry.entities import ModelVersion
from loopwright.registry.service import RegistryService
from loopwright.serving.prediction_log import PredictionLog, PredictionRecord
from loopwright.serving.predictions import PredictionService
from loopwright.store.home import Store

MODEL, DATASET, DEPLOYMENT = "churn", "churn-train", "churn-api"
START = datetime(2026, 11, 30, 10, tzinfo=UTC)
UNSHIFTED_END = START + timedelta(hours=1)
SHIFTED_END = START + timedelta(hours=2)
ROWS = 1200
REQUEST_ROWS = 40  # rows per logged request
SHIFTED = ("input.age", "input.plan")


class Clock:
    """A settable clock in UTC milliseconds."""

    def __init__(self, now: datetime = SHIFTED_END) -> None:
        self.now = int(now.timestamp() * 1000)

    def __call__(self) -> int:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += int(delta.total_seconds() * 1000)


def features(rows: int, *, shifted: bool = False, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    plans = [0.2, 0.2, 0.6] if shifted else [0.5, 0.3, 0.2]
    return pd.DataFrame(
        {
            "age": rng.normal(55.0 if shifted else 40.0, 10.0, rows),
            "income": rng.lognormal(10.0, 0.5, rows),
            "plan": rng.choice(["a", "b", "c"], rows, p=plans),
        }
    )


def training_frame(rows: int = 3000) -> pd.DataFrame:
    frame = features(rows, seed=1)
    frame["churned"] = (frame["age"] + np.random.default_rng(2).normal(0, 5, rows) > 42).astype(int)
    return frame


def fit(frame: pd.DataFrame) -> Any:
    from sklearn.compose import make_column_transformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    encode = make_column_transformer(
        (OneHotEncoder(handle_unknown="ignore"), ["plan"]), remainder="passthrough"
    )
    return make_pipeline(encode, LogisticRegression(max_iter=1000)).fit(
        frame[["age", "income", "plan"]], frame["churned"]
    )


@dataclass
class Deployed:
    """What :func:`deploy` made."""

    model: Any
    version: ModelVersion
    dataset: DatasetVersion
    log: Path


def register(store: Store, tmp: Path, *, lineage: bool = True, model_name: str = MODEL) -> Any:
    """``model_name`` v1 trained on ``churn-train@v1`` (named in its lineage if ``lineage``)."""
    from loopwright.registry.packaging.package import save_model

    frame = training_frame()
    datasets = DatasetService(store)
    dataset = datasets.add(DATASET, pa.Table.from_pandas(frame, preserve_index=False))
    fitted = fit(frame)
    package = tmp / f"package-{model_name}"
    save_model(fitted, package, input_example=frame[["age", "income", "plan"]].head(5))
    registry = RegistryService(store)
    ids = [dataset.id] if lineage else []
    version = registry.register(model_name, package, dataset_version_ids=ids)
    return fitted, version, dataset


def log_window(
    log: PredictionLog,
    model: Any,
    version: ModelVersion,
    end: datetime,
    *,
    shifted: bool,
    rows: int = ROWS,
    deployment: str = DEPLOYMENT,
    prefix: str | None = None,
    seed: int = 3,
    variant: str = "primary",
) -> list[str]:
    """Log ``rows`` rows in the hour before ``end``; returns the request ids."""
    frame = features(rows, shifted=shifted, seed=seed + (7 if shifted else 0))
    predicted = model.predict(frame)
    start = end - timedelta(hours=1)
    step = timedelta(hours=1) / (rows // REQUEST_ROWS + 1)
    prefix = prefix or ("s" if shifted else "u")
    ids = []
    for n, first in enumerate(range(0, rows, REQUEST_ROWS)):
        part = frame.iloc[first : first + REQUEST_ROWS]
        request_id = f"{prefix}-{n}"
        ids.append(request_id)
        log.append(
            PredictionRecord(
                request_id=request_id,
                deployment=deployment,
                variant=variant,
                model=version.model,
                model_version=version.version,
                timestamp=start + step * (n + 1),
                latency_ms=2.0,
                status=200,
                inputs={c: part[c].tolist() for c in part.columns},
                outputs={"predict": predicted[first : first + REQUEST_ROWS].tolist()},
            )
        )
    return ids


def deploy(store: Store, tmp: Path) -> Deployed:
    """The registered model and a log with the unshifted hour, then the shifted hour."""
    fitted, version, dataset = register(store, tmp)
    root = tmp / "prediction-log"
    log = PredictionLog(root)
    try:
        log_window(log, fitted, version, UNSHIFTED_END, shifted=False)
        log_window(log, fitted, version, SHIFTED_END, shifted=True)
    finally:
        log.close()
    return Deployed(fitted, version, dataset, root)


def predictions(deployed: Deployed) -> PredictionService:
    return PredictionService(deployed.log)
