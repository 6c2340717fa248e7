"""How a model version does on a gate's holdout: the holdout read as one table, then the
version's metrics (the registry's evaluation code; AUC and log loss by monitoring's scorer of
class probabilities), fairness by each sensitive column (the worst value over them) and the
latency of its ``predict`` on one row at a time. What cannot be measured is noted, not raised,
so the rule that needs it fails saying why.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import InvalidInput, LoopwrightError

if TYPE_CHECKING:
    import pandas as pd

    from ..client import Client
    from ..data.entities import DatasetVersion
    from ..registry.entities import ModelVersion
    from ..registry.packaging.loaded import LoadedModel
    from .entities import GateSpec

__all__ = [
    "FAIRNESS_METRICS",
    "LATENCY_METRICS",
    "METRICS",
    "PROBABILITY_METRICS",
    "Scores",
    "read_holdout",
    "score_version",
]

# Metrics computed on the holdout (``auc`` is ``roc_auc``); ``vs_champion`` takes the same names.
METRICS = frozenset(
    {"accuracy", "precision", "recall", "f1", "auc", "roc_auc", "log_loss", "rmse", "mae", "r2"}
)
PROBABILITY_METRICS = frozenset({"auc", "roc_auc", "log_loss"})
LATENCY_METRICS = frozenset({"p50_ms", "p95_ms", "p99_ms", "mean_ms", "max_ms"})
# The registry's fairness figures: ratios (1 is parity) and differences (0 is parity).
FAIRNESS_METRICS = frozenset(
    {
        "demographic_parity_ratio",
        "disparate_impact_ratio",
        "demographic_parity_difference",
        "equal_opportunity_difference",
        "equalized_odds_difference",
    }
)
_DATA_SUFFIXES = (".parquet", ".pq", ".csv")
_WARMUP_CALLS = 5  # predict calls before timing: the first ones pay for lazy imports and caches


@dataclass
class Scores:
    """What one model measured on the holdout; ``error`` says why nothing was measured."""

    metrics: dict[str, float] = field(default_factory=dict)
    fairness: dict[str, tuple[float, str]] = field(default_factory=dict)  # value, attribute
    latency: dict[str, float] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)  # why a figure is missing
    error: str | None = None


def read_holdout(client: Client, dataset: DatasetVersion, spec: GateSpec) -> pd.DataFrame:
    """The dataset version's Parquet and CSV files as one frame, checked for the spec's columns."""
    import pandas as pd

    files = [f.path for f in client.datasets.files(dataset)]
    data = sorted(p for p in files if p.lower().endswith(_DATA_SUFFIXES))
    if not data:
        raise InvalidInput(
            f"dataset version {dataset.ref} holds no Parquet or CSV files "
            f"({', '.join(files[:5]) or 'no files'}); a gate's holdout must be a table"
        )
    with tempfile.TemporaryDirectory(prefix="lw-gate-") as folder:
        client.datasets.download(dataset, folder)
        parts = [
            pd.read_csv(Path(folder) / p) if p.lower().endswith(".csv") else _parquet(folder, p)
            for p in data
        ]
    frame = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
    missing = [c for c in (spec.target, *spec.sensitive) if c not in frame.columns]
    if missing:
        raise InvalidInput(
            f"holdout {dataset.ref} has no column {', '.join(map(repr, missing))} named by gate "
            f"{spec.name!r}; its columns: {', '.join(map(str, frame.columns[:30]))}"
        )
    labelled = frame[frame[spec.target].notna()].reset_index(drop=True)
    if labelled.empty:
        raise InvalidInput(
            f"holdout {dataset.ref} has no row with a {spec.target!r} label; a gate needs labels"
        )
    return labelled


def _parquet(folder: str, path: str) -> pd.DataFrame:
    import pandas as pd

    return pd.read_parquet(Path(folder) / path)


def score_version(
    client: Client,
    version: ModelVersion,
    frame: pd.DataFrame,
    spec: GateSpec,
    *,
    trusted: bool,
    latency: bool,
) -> Scores:
    """The version's metrics, fairness and (if asked) latency on the holdout."""
    from ..registry.reports.evaluation import evaluate

    label = f"models:/{version.model}/{version.version}"
    scores = Scores()
    features = frame.drop(columns=[spec.target])
    model = client.load_model(label, trusted=trusted)  # a package that will not load: raised
    try:
        predicted = _column(model.predict(features))
    except LoopwrightError as exc:  # a signature mismatch, say: the gate fails, saying why
        scores.error = f"{label} could not predict on the holdout ({exc})"
        return scores
    except Exception as exc:  # the model's own code failed on these rows: a failed gate
        scores.error = f"{label} failed on the holdout ({type(exc).__name__}: {str(exc)[:300]})"
        return scores
    truth = frame[spec.target].to_numpy()
    try:
        result = evaluate(truth, predicted, task=spec.task)
    except InvalidInput as exc:
        scores.error = f"{label}'s predictions cannot be scored against {spec.target!r}: {exc}"
        return scores
    scores.metrics.update({k: float(v) for k, v in result.metrics.items() if k != "n"})
    if result.task == "classification":
        _probability_metrics(scores, model, features, truth, predicted, label)
    for column in spec.sensitive:
        _fairness(scores, truth, predicted, frame[column], column, result.task)
    if latency:
        try:
            scores.latency.update(_latency(model, features, spec.latency_rows))
        except Exception as exc:  # predict on one row can fail where a batch did not
            scores.notes["latency"] = (
                f"{label} failed on a single row ({type(exc).__name__}: {str(exc)[:300]})"
            )
    return scores


def _probability_metrics(
    scores: Scores, model: LoadedModel, features: Any, truth: Any, predicted: Any, label: str
) -> None:
    """AUC and log loss from the class probabilities, by monitoring's scorer."""
    import pandas as pd

    from ..monitoring.performance import PREDICTION, PROBABILITIES, score

    if not hasattr(model, "predict_proba"):
        scores.notes["probabilities"] = f"{label} has no predict_proba (auc and log_loss need it)"
        return
    try:
        proba = _matrix(model.predict_proba(features))
    except Exception as exc:  # any failure leaves the figures unmeasured, saying why
        scores.notes["probabilities"] = f"{label}'s predict_proba failed ({exc})"
        return
    frame = pd.DataFrame(
        {PREDICTION: list(predicted), PROBABILITIES: list(proba), "label": list(truth)}
    )
    figures = score(frame, task="classification").metrics
    for name in ("roc_auc", "log_loss"):
        if name in figures:
            scores.metrics[name] = float(figures[name])
    if "roc_auc" in scores.metrics:
        scores.metrics["auc"] = scores.metrics["roc_auc"]
    else:
        scores.notes["probabilities"] = (
            f"{label}'s probabilities do not match its classes or the holdout has one class"
        )


def _fairness(
    scores: Scores,
    truth: Any,
    predicted: Any,
    groups: pd.Series,
    column: str,
    task: str,
) -> None:
    """The worst value of each fairness figure over the sensitive columns seen so far."""
    from ..registry.reports.evaluation import evaluate

    if task != "classification":
        scores.notes["fairness"] = "fairness figures need a classification"
        return
    try:
        fairness = evaluate(truth, predicted, task="classification", sensitive=groups).fairness
    except InvalidInput as exc:
        scores.notes["fairness"] = f"fairness by {column!r} cannot be computed: {exc}"
        return
    assert fairness is not None
    for name in FAIRNESS_METRICS:
        value = getattr(fairness, name)
        if value is None:
            scores.notes.setdefault(name, f"{name} is undefined by {column!r}")
            continue
        worse = min if name.endswith("_ratio") else max
        known = scores.fairness.get(name)
        if known is None or worse(known[0], value) != known[0]:
            scores.fairness[name] = (float(value), column)


def _latency(model: LoadedModel, features: pd.DataFrame, rows: int) -> dict[str, float]:
    """Milliseconds per ``predict`` of one row, over ``rows`` rows after a warm-up."""
    import numpy as np

    count = min(rows, len(features))
    singles = [features.iloc[i : i + 1] for i in range(count)]
    for row in singles[:_WARMUP_CALLS]:
        model.predict(row)
    times = []
    for row in singles:
        start = time.perf_counter_ns()
        model.predict(row)
        times.append((time.perf_counter_ns() - start) / 1e6)
    measured = np.asarray(times)
    return {
        "p50_ms": float(np.percentile(measured, 50)),
        "p95_ms": float(np.percentile(measured, 95)),
        "p99_ms": float(np.percentile(measured, 99)),
        "mean_ms": float(measured.mean()),
        "max_ms": float(measured.max()),
        "calls": float(count),
    }


def _column(values: Any) -> Any:
    import numpy as np

    if hasattr(values, "columns") and len(values.columns) == 1:  # a one-column frame
        values = values.iloc[:, 0]
    array = np.asarray(values)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1:
        raise InvalidInput(f"the model returned {array.shape} values; a gate needs one per row")
    return array


def _matrix(values: Any) -> Any:
    import numpy as np

    array = np.asarray(values, dtype=float)
    if array.ndim != 2:
        raise InvalidInput(f"predict_proba returned shape {array.shape}, not rows x classes")
    return array
