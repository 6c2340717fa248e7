"""Model quality on labelled prediction-log rows: classification and regression metrics, per
model version and per slice, with the label coverage. NumPy only (no scikit-learn needed; the
tests check every figure against scikit-learn's).

Classification: ``accuracy``; ``precision``, ``recall``, ``f1`` (two classes: of the larger
label, the positive class; more: macro averages over the classes seen in labels or predictions);
with logged probabilities (``output.predict_proba``): ``roc_auc`` (more than two classes:
one-vs-rest, macro over the classes present in the labels), ``log_loss`` and
``calibration_error`` (top-label expected calibration error on 10 equal-width bins).
Regression: ``mae``, ``rmse``, ``mape`` (a share, not a percentage; rows whose label is 0 are
left out, since their percentage error is undefined; absent when every label is 0).
A figure that is undefined on the rows (AUC with one class present) is left out, not NaN.
Each group of ``by_version`` and ``by_slice`` also has ``rows``, its labelled rows; a group's
binary figures keep the window's positive class.

Example:
    >>> import pandas as pd
    >>> frame = pd.DataFrame({"output.predict": [1, 0, 1, 1], "label": [1, 0, 0, None]})
    >>> result = score(frame)
    >>> result.task, result.metrics["accuracy"], result.coverage
    ('classification', 0.6666666666666666, 0.75)
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import InvalidInput
from .entities import Performance, Task

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "PREDICTION",
    "PROBABILITIES",
    "comparable",
    "guess_task",
    "prediction_column",
    "score",
    "version_key",
]

PREDICTION = "output.predict"
PROBABILITIES = "output.predict_proba"
ECE_BINS = 10
# Logged probabilities are matched to classes by position (scikit-learn's sorted classes_):
# used only if the most probable class is the logged prediction on this share of rows.
_PROBA_AGREEMENT = 0.9
_MISSING = "(missing)"  # the slice value of rows whose slice column is null


def score(
    frame: pd.DataFrame,
    *,
    task: Task | None = None,
    slices: Sequence[str] = (),
    predictions: int | None = None,
    prediction: str | None = None,
) -> Performance:
    """Score the rows of ``frame`` (prediction-log rows with a ``label`` column, None where
    unlabelled) that have a label and a prediction.

    Args:
        frame: log rows joined with their labels (``LabelBook.join``).
        task: ``classification`` or ``regression``; None: guessed (:func:`guess_task`).
        slices: columns to break the metrics down by (``input.country`` or ``country``).
        predictions: the rows logged in the window (coverage's denominator; default: the
            frame's rows).
        prediction: the prediction column (default: ``output.predict``, else the only scalar
            output column).
    """
    if "label" not in frame.columns:
        raise InvalidInput(
            "the frame has no 'label' column; join the labels first (LabelBook.join)"
        )
    if task not in (None, "classification", "regression"):
        raise InvalidInput(f"task {task!r} is not 'classification', 'regression' or None")
    column = prediction_column(frame, prediction)
    slice_columns = [_slice_column(frame, name) for name in slices]
    total = len(frame) if predictions is None else predictions
    if isinstance(total, bool) or not isinstance(total, int) or total < 0:
        raise InvalidInput(f"predictions must be a count (0 or more), not {predictions!r}")
    labelled = frame[frame["label"].notna() & frame[column].notna()]
    y_values, p_values = labelled["label"].tolist(), labelled[column].tolist()
    kind: Task = task or guess_task(y_values, p_values)
    proba = _probabilities(labelled) if kind == "classification" else None
    scorer = _Scorer(kind, y_values, p_values, proba)
    by_version: dict[str, Mapping[str, float]] = {}
    if "model" in labelled.columns and len(labelled):
        keys = ["model", "model_version"] if "model_version" in labelled.columns else ["model"]
        by_version = _grouped(scorer, labelled, keys, lambda k: version_key(*k))
    by_slice: dict[str, Mapping[str, Mapping[str, float]]] = {}
    for name, col in zip(slices, slice_columns, strict=True):
        by_slice[name] = _grouped(
            scorer, labelled, [col], lambda k: _MISSING if _is_null(k[0]) else str(k[0])
        )
    rows = len(labelled)
    return Performance(
        task=kind,
        metrics=scorer.on(np.ones(rows, dtype=bool), with_rows=False),
        rows=rows,
        predictions=total,
        coverage=rows / total if total else 0.0,
        by_version=by_version,
        by_slice=by_slice,
    )


def _grouped(
    scorer: _Scorer,
    frame: pd.DataFrame,
    columns: list[str],
    name: Callable[[tuple[Any, ...]], str],
) -> dict[str, Mapping[str, float]]:
    """The scorer's figures for the rows of each value of ``columns`` (named by ``name``;
    values with the same name, such as 1 and '1', are one group)."""
    positions: dict[str, list[np.ndarray]] = {}
    groups = frame.groupby(columns, dropna=False, sort=False).indices
    for key, where in groups.items():
        positions.setdefault(name(key if isinstance(key, tuple) else (key,)), []).append(where)
    out: dict[str, Mapping[str, float]] = {}
    for key in sorted(positions):
        mask = np.zeros(len(frame), dtype=bool)
        mask[np.concatenate(positions[key])] = True
        out[key] = scorer.on(mask)
    return out


def prediction_column(frame: pd.DataFrame, prediction: str | None = None) -> str:
    """The column holding the predictions: ``prediction`` (with or without ``output.``), else
    ``output.predict``, else the frame's only scalar output column."""
    if prediction is not None:
        for name in (prediction, f"output.{prediction}"):
            if name in frame.columns:
                return name
        raise InvalidInput(
            f"prediction column {prediction!r} is not in the frame; outputs: "
            f"{', '.join(_outputs(frame)) or 'none'}"
        )
    if PREDICTION in frame.columns:
        return PREDICTION
    scalar = [name for name in _outputs(frame) if not _is_list_column(frame[name])]
    if len(scalar) == 1:
        return scalar[0]
    raise InvalidInput(
        f"cannot tell which column holds the predictions (outputs: "
        f"{', '.join(_outputs(frame)) or 'none'}); name it with prediction="
    )


def guess_task(labels: Sequence[object], predictions: Sequence[object] = ()) -> Task:
    """``regression`` if any label or prediction is a number with a fraction (2.5), else
    ``classification`` (whole numbers, strings and booleans are classes)."""
    for values in (labels, predictions):
        kind = _kind(values)
        if kind == "numbers":
            numbers_ = np.asarray(values, dtype=float)
            finite = numbers_[np.isfinite(numbers_)]
            if np.any(finite != np.floor(finite)):
                return "regression"
        elif kind == "mixed" and any(_fractional(v) for v in values):
            return "regression"
    return "classification"


# --- the figures --------------------------------------------------------------------------------


class _Scorer:
    """The labels, predictions and probabilities of every labelled row, turned into arrays
    once; :meth:`on` scores any subset (a model version, a slice) with the same classes."""

    def __init__(
        self, task: Task, labels: list[Any], predictions: list[Any], proba: np.ndarray | None
    ) -> None:
        self.task = task
        self.proba_classes: np.ndarray | None = None
        if task == "regression":
            self.y, self.p = _numbers(labels, "label"), _numbers(predictions, "prediction")
            self.classes = np.array([])
            self.proba = None
            return
        self.y, self.p = comparable(labels, predictions)
        self.classes = np.unique(np.concatenate([self.y, self.p]))
        self.proba = None
        if proba is not None and len(proba) == len(self.y):
            mapped = _proba_classes(proba, self.classes, self.p)
            if mapped is not None:
                self.proba, self.proba_classes = proba, mapped

    def on(self, mask: np.ndarray, *, with_rows: bool = True) -> dict[str, float]:
        n = int(mask.sum())
        out: dict[str, float] = {"rows": float(n)} if with_rows else {}
        if n == 0:
            return out
        y, p = self.y[mask], self.p[mask]
        if self.task == "regression":
            out.update(_regression(y.astype(float), p.astype(float)))
            return out
        out.update(_classification(y, p, self.classes))
        if self.proba is not None and self.proba_classes is not None:
            out.update(_probabilistic(y, self.proba[mask], self.proba_classes))
        return out


def _classification(y: np.ndarray, p: np.ndarray, classes: np.ndarray) -> dict[str, float]:
    out = {"accuracy": float(np.mean(y == p))}
    if len(classes) <= 2:
        positive = classes[-1]
        precision, recall, f1 = _prf(y == positive, p == positive)
    else:
        figures = np.array([_prf(y == c, p == c) for c in classes])
        precision, recall, f1 = (float(x) for x in figures.mean(axis=0))
    out.update(precision=precision, recall=recall, f1=f1)
    return out


def _prf(actual: np.ndarray, predicted: np.ndarray) -> tuple[float, float, float]:
    """Precision, recall and F1 of one class (0 where undefined, as scikit-learn's default)."""
    tp = float(np.sum(actual & predicted))
    precision = tp / float(predicted.sum()) if predicted.any() else 0.0
    recall = tp / float(actual.sum()) if actual.any() else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def _probabilistic(y: np.ndarray, proba: np.ndarray, classes: np.ndarray) -> dict[str, float]:
    out: dict[str, float] = {}
    sums = proba.sum(axis=1, keepdims=True)
    normed = proba / np.where(sums > 0, sums, 1.0)
    present = [j for j, c in enumerate(classes) if np.any(y == c) and not np.all(y == c)]
    if len(classes) == 2 and len(present) == 2:
        out["roc_auc"] = _auc(y == classes[1], normed[:, 1])
    elif len(classes) > 2 and present:
        out["roc_auc"] = float(np.mean([_auc(y == classes[j], normed[:, j]) for j in present]))
    index = np.searchsorted(classes, y).clip(0, len(classes) - 1)  # classes are sorted
    if np.all(classes[index] == y):  # every label has a probability column
        eps = np.finfo(np.float64).eps
        chosen = np.clip(normed[np.arange(len(y)), index], eps, 1 - eps)
        out["log_loss"] = float(-np.mean(np.log(chosen)))
    confidence = normed.max(axis=1)
    correct = classes[normed.argmax(axis=1)] == y
    edges = np.arange(1, ECE_BINS) / ECE_BINS  # bins (i/10, (i+1)/10]
    bins = np.searchsorted(edges, confidence, side="left")
    error = 0.0
    for b in np.unique(bins):
        inside = bins == b
        error += abs(float(correct[inside].mean()) - float(confidence[inside].mean())) * float(
            inside.mean()
        )
    out["calibration_error"] = error
    return out


def _auc(positive: np.ndarray, scores: np.ndarray) -> float:
    """ROC AUC by the rank-sum (Mann-Whitney U) identity, ties given their average rank."""
    _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)  # a value's rows take ranks ends-count+1 .. ends
    ranks = ((ends - counts + 1 + ends) / 2)[inverse]
    n_pos = float(positive.sum())
    n_neg = float(len(scores) - n_pos)
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _regression(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    error = p - y
    out = {
        "mae": float(np.mean(np.abs(error))),
        "rmse": float(math.sqrt(np.mean(error**2))),
    }
    nonzero = y != 0
    if nonzero.any():
        out["mape"] = float(np.mean(np.abs(error[nonzero]) / np.abs(y[nonzero])))
    return out


# --- reading the frame --------------------------------------------------------------------------


def comparable(labels: list[Any], predictions: list[Any]) -> tuple[np.ndarray, np.ndarray]:
    """Labels and predictions as comparable arrays: numbers if both are numbers (1 == 1.0 ==
    True), else text (whole numbers written without '.0', so label '1' matches prediction 1)."""
    if _kind(labels) == "numbers" and _kind(predictions) == "numbers":
        return np.array(labels, dtype=float), np.array(predictions, dtype=float)
    return np.array(list(map(_text, labels)), dtype=str), np.array(
        list(map(_text, predictions)), dtype=str
    )


def _probabilities(frame: pd.DataFrame) -> np.ndarray | None:
    """The logged class probabilities of every row as a 2-D array, or None if some row lacks
    them or rows differ in width."""
    if PROBABILITIES not in frame.columns or not len(frame):
        return None
    cells = frame[PROBABILITIES].tolist()
    if any(c is None or not hasattr(c, "__len__") for c in cells):
        return None
    if len({len(c) for c in cells}) != 1 or len(cells[0]) < 2:
        return None
    try:
        proba = np.array([np.asarray(c, dtype=float) for c in cells])
    except (TypeError, ValueError):
        return None
    return proba if np.all(np.isfinite(proba)) and np.all(proba >= 0) else None


def _proba_classes(
    proba: np.ndarray, classes: np.ndarray, predicted: np.ndarray
) -> np.ndarray | None:
    """The class of each probability column: the classes in sorted order (as scikit-learn's
    ``classes_``), or 0..width-1 for whole-number classes; None unless the most probable
    class agrees with the logged prediction on nearly every row (else the guess is wrong)."""
    width = proba.shape[1]
    if len(classes) == width:
        candidate = classes
    elif classes.dtype.kind == "f" and np.all(np.isin(classes, np.arange(width))):
        candidate = np.arange(width, dtype=float)
    else:
        return None
    agreement = float(np.mean(candidate[proba.argmax(axis=1)] == predicted))
    return candidate if agreement >= _PROBA_AGREEMENT else None


def _numbers(values: list[Any], what: str) -> np.ndarray:
    if _kind(values) == "numbers":
        return np.array(values, dtype=float)
    bad = [v for v in values if not _is_number(v)]
    if bad:
        raise InvalidInput(
            f"regression needs numeric {what}s; {len(bad)} are not, e.g. "
            f"{', '.join(repr(v)[:40] for v in bad[:3])} (pass task='classification' if these "
            "are classes)"
        )
    return np.array(values, dtype=float)


def _kind(values: Sequence[object]) -> str:
    """``numbers`` if every value is a number or bool, ``text`` if none is, else ``mixed``
    (pandas' type inference runs in C: a Python check per value took seconds per million)."""
    from pandas.api.types import infer_dtype

    inferred = infer_dtype(list(values) if not isinstance(values, list) else values, skipna=False)
    if inferred in ("integer", "floating", "mixed-integer-float", "boolean", "empty"):
        return "numbers"
    if inferred in ("string", "bytes"):
        return "text"
    if all(map(_is_number, values)):
        return "numbers"
    return "mixed"


def _fractional(value: object) -> bool:
    return (
        _is_number(value)
        and not isinstance(value, bool | np.bool_)
        and math.isfinite(float(value))  # type: ignore[arg-type]
        and not float(value).is_integer()  # type: ignore[arg-type]
    )


def _is_number(value: object) -> bool:
    return isinstance(value, numbers.Real | np.bool_) and not isinstance(value, str)


def _text(value: object) -> str:
    if isinstance(value, bool | np.bool_):
        return str(bool(value))
    if isinstance(value, numbers.Real) and float(value).is_integer():
        return str(int(float(value)))
    return str(value)


def _is_null(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _is_list_column(column: pd.Series) -> bool:
    first = column.dropna()
    return (
        bool(len(first))
        and hasattr(first.iloc[0], "__len__")
        and not isinstance(first.iloc[0], str)
    )


def _outputs(frame: pd.DataFrame) -> list[str]:
    return [str(c) for c in frame.columns if str(c).startswith("output.")]


def _slice_column(frame: pd.DataFrame, name: str) -> str:
    for column in (name, f"input.{name}"):
        if column in frame.columns:
            return column
    raise InvalidInput(
        f"slice column {name!r} is not in the frame; columns: {', '.join(map(str, frame.columns))}"
    )


def version_key(model: object, version: object) -> str:
    """``NAME/VERSION`` of a logged row's model (``(missing)`` without a model)."""
    if _is_null(model):
        return _MISSING
    if _is_null(version):
        return str(model)
    return f"{model}/{int(version)}"  # type: ignore[call-overload]
