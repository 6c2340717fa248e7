"""How a model did on held-out data: overall metrics, metrics per slice, and group fairness.

``evaluate`` works on plain sequences (lists, NumPy arrays, pandas Series) and feeds model cards and
the ML-BOM. Fairness follows fairlearn's definitions for binary classification: selection rates per
group, their largest gap and smallest ratio, the gaps in true/false positive rates, and the
four-fifths rule of adverse impact.

Example:
    >>> from loopwright.registry.reports.evaluation import evaluate
    >>> result = evaluate([1, 0, 1, 1], [1, 0, 0, 1], sensitive=["a", "a", "b", "b"])
    >>> result.task, result.metrics["accuracy"], result.metrics["recall"]
    ('classification', 0.75, 0.6666666666666666)
    >>> [(g.group, g.selection_rate) for g in result.fairness.groups]
    [('a', 0.5), ('b', 0.5)]
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal

from ...errors import InvalidInput

__all__ = ["FOUR_FIFTHS", "Evaluation", "Fairness", "GroupRates", "SliceMetrics", "evaluate"]

Task = Literal["classification", "regression"]
Values = Any  # one value per row: a sequence, a NumPy array or a pandas Series

FOUR_FIFTHS = 0.8
"""The adverse-impact threshold: a group selected at under 80% of the reference group's rate."""

MISSING = "(missing)"
"""The slice that gathers rows whose group value is None or NaN."""


@dataclass(frozen=True)
class SliceMetrics:
    """Metrics on the rows where ``feature`` equals ``value``; ``small`` slices are not reliable."""

    feature: str
    value: str
    count: int
    metrics: Mapping[str, float]
    small: bool


@dataclass(frozen=True)
class GroupRates:
    """One group of the sensitive attribute. Rates are None where undefined (no positives …)."""

    group: str
    count: int
    selection_rate: float
    true_positive_rate: float | None
    false_positive_rate: float | None
    impact_ratio: float | None  # selection rate / the reference group's


@dataclass(frozen=True)
class Fairness:
    """Group fairness of a binary classifier over one sensitive attribute."""

    attribute: str
    positive_label: Any
    reference_group: str  # the most selected group, unless one was named
    groups: tuple[GroupRates, ...]
    demographic_parity_difference: float  # max - min selection rate
    demographic_parity_ratio: float  # min / max selection rate
    equal_opportunity_difference: float | None  # max - min true positive rate
    equalized_odds_difference: float | None  # the larger of the TPR and FPR gaps
    disparate_impact_ratio: float  # the lowest impact ratio among the other groups
    threshold: float = FOUR_FIFTHS

    @property
    def failing_groups(self) -> tuple[str, ...]:
        """Groups selected at under ``threshold`` times the reference group's rate."""
        return tuple(
            g.group
            for g in self.groups
            if g.impact_ratio is not None and g.impact_ratio < self.threshold
        )

    @property
    def passes_four_fifths_rule(self) -> bool:
        return self.disparate_impact_ratio >= self.threshold

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["failing_groups"] = list(self.failing_groups)
        data["passes_four_fifths_rule"] = self.passes_four_fifths_rule
        return data


@dataclass(frozen=True)
class Evaluation:
    """The result of :func:`evaluate`. ``metrics`` includes ``n``, the number of rows."""

    task: Task
    metrics: Mapping[str, float]
    slices: tuple[SliceMetrics, ...] = ()
    fairness: Fairness | None = None
    positive_label: Any = None  # binary classification only
    labels: tuple[Any, ...] = ()  # classification only, sorted
    min_slice_size: int = 30

    @property
    def n(self) -> int:
        return int(self.metrics["n"])

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable data, in a stable order."""
        return {
            "task": self.task,
            "metrics": dict(self.metrics),
            "positive_label": self.positive_label,
            "labels": list(self.labels),
            "min_slice_size": self.min_slice_size,
            "slices": [{**asdict(s), "metrics": dict(s.metrics)} for s in self.slices],
            "fairness": None if self.fairness is None else self.fairness.to_dict(),
        }


def evaluate(
    y_true: Values,
    y_pred: Values,
    *,
    task: Task | None = None,
    groups: Mapping[str, Values] | Any = None,
    sensitive: Values | str | None = None,
    positive_label: Any = None,
    reference_group: Any = None,
    min_slice_size: int = 30,
) -> Evaluation:
    """Score predictions overall, per slice of each ``groups`` column, and across ``sensitive``.

    Args:
        y_true, y_pred: labels or targets, and the model's predictions, of equal length.
        task: ``"classification"`` or ``"regression"``; inferred when None (regression when
            either side holds a non-integral number).
        groups: columns to slice by: a mapping of name to values or a pandas DataFrame.
        sensitive: the protected attribute's values, or the name of a ``groups`` column. Its
            groups are also reported as slices. Needs a binary classification (or a
            ``positive_label`` to score one class against the rest).
        positive_label: the class that counts as selected. Defaults to 1 (or True) for 0/1
            (or boolean) labels and wherever 1 is a label, else the last label in sorted order.
        reference_group: the group the four-fifths rule compares with; the most selected one by
            default.
        min_slice_size: slices with fewer rows are flagged ``small``.

    Classification metrics are accuracy, precision, recall and F1 (for the positive label when
    binary, macro-averaged otherwise); regression metrics are RMSE, MAE and R². Undefined ratios
    (no predicted positives …) count as 0, as scikit-learn's ``zero_division=0`` does.
    """
    import numpy as np

    truth, pred = _column(y_true), _column(y_pred)
    if len(truth) != len(pred):
        raise InvalidInput(f"y_true has {len(truth)} values but y_pred has {len(pred)}")
    if len(truth) == 0:
        raise InvalidInput("cannot evaluate zero predictions: y_true and y_pred are empty")
    columns = _group_columns(groups, len(truth))
    attribute: str | None = None
    if isinstance(sensitive, str):
        if sensitive not in columns:
            raise InvalidInput(f"sensitive={sensitive!r} is not a groups column: {list(columns)}")
        attribute = sensitive
    elif sensitive is not None:
        attribute = "sensitive"
        if attribute in columns:
            raise InvalidInput("groups has a 'sensitive' column: pass sensitive='sensitive'")
        columns = {**_group_columns({attribute: sensitive}, len(truth)), **columns}
    task = task or _infer_task(truth, pred)
    if task not in ("classification", "regression"):
        raise InvalidInput(f"task must be 'classification' or 'regression', not {task!r}")

    if task == "regression":
        truth, pred = _numeric(truth, "y_true"), _numeric(pred, "y_pred")
        if attribute is not None:
            raise InvalidInput(
                "fairness metrics need a classification; for a regression pass the attribute "
                "in groups= to compare per-slice errors"
            )

        def score(rows: Any) -> dict[str, float]:
            return _regression(truth[rows], pred[rows])

        labels: tuple[Any, ...] = ()
        positive = None
    else:
        labels = _labels(truth, pred)
        binary = len(labels) <= 2
        positive = None
        if binary or positive_label is not None:
            positive = _positive_label(labels, positive_label)

        def score(rows: Any) -> dict[str, float]:
            return _classification(truth[rows], pred[rows], positive if binary else None)

    everything = np.arange(len(truth))
    slices = tuple(
        SliceMetrics(name, key, len(rows), score(rows), len(rows) < min_slice_size)
        for name, values in columns.items()
        for key, rows in _slices(values)
    )
    fairness = None
    if attribute is not None:
        if positive is None:
            raise InvalidInput(
                "fairness metrics need a binary classification, but the labels are "
                f"{list(labels)}; pass positive_label= to score one class against the rest"
            )
        fairness = _fairness(attribute, columns[attribute], truth, pred, positive, reference_group)
    labels = tuple(map(_plain, labels))
    return Evaluation(
        task, score(everything), slices, fairness, _plain(positive), labels, min_slice_size
    )


def _column(values: Any) -> Any:
    import numpy as np

    if hasattr(values, "to_numpy"):  # pandas
        values = values.to_numpy()
    array = np.asarray(values)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1:
        raise InvalidInput(f"expected one value per row, got an array of shape {array.shape}")
    return array


def _group_columns(groups: Any, n: int) -> dict[str, Any]:
    if groups is None:
        return {}
    items = (
        groups.items()
        if not hasattr(groups, "columns")
        else ((c, groups[c]) for c in groups.columns)
    )
    columns = {}
    for name, values in items:
        # pandas' nullable integers would become floats ("1.0") in a plain NumPy array
        column = _column(values.to_numpy(dtype=object) if hasattr(values, "to_numpy") else values)
        if len(column) != n:
            raise InvalidInput(f"groups column {name!r} has {len(column)} values, expected {n}")
        columns[str(name)] = column
    return columns


def _numeric(values: Any, what: str) -> Any:
    import numpy as np

    try:
        return values.astype(np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"{what} must be numbers for a regression ({exc})") from None


def _infer_task(truth: Any, pred: Any) -> Task:
    """sklearn's ``type_of_target`` rule: non-integral numbers mean a continuous target."""
    import numpy as np

    for values in (truth, pred):
        if values.dtype.kind == "f" and not np.all(np.isnan(values) | (values == np.round(values))):
            return "regression"
    return "classification"


def _labels(truth: Any, pred: Any) -> tuple[Any, ...]:
    found = {_plain(v) for v in truth} | {_plain(v) for v in pred}
    try:
        return tuple(sorted(found))
    except TypeError:  # mixed types
        return tuple(sorted(found, key=repr))


def _positive_label(labels: tuple[Any, ...], chosen: Any) -> Any:
    if chosen is not None:
        chosen = _plain(chosen)
        if len(labels) >= 2 and chosen not in labels:
            raise InvalidInput(f"positive_label {chosen!r} is not one of the labels {list(labels)}")
        return chosen
    if all(isinstance(label, bool) for label in labels):
        return True
    if all(label in (0, 1) for label in labels) or 1 in labels:  # {0, 1} or {-1, 1}
        return 1
    return labels[-1]


def _classification(truth: Any, pred: Any, positive: Any) -> dict[str, float]:
    import numpy as np

    metrics: dict[str, float] = {"n": len(truth), "accuracy": float(np.mean(truth == pred))}
    if positive is not None:
        precision, recall, f1 = _precision_recall_f1(truth == positive, pred == positive)
    else:
        per_label = [
            _precision_recall_f1(truth == label, pred == label) for label in _labels(truth, pred)
        ]
        precision, recall, f1 = (float(np.mean(column)) for column in zip(*per_label, strict=True))
    return metrics | {"precision": precision, "recall": recall, "f1": f1}


def _precision_recall_f1(actual: Any, predicted: Any) -> tuple[float, float, float]:
    tp = int((actual & predicted).sum())
    precision = _ratio(tp, int(predicted.sum()))
    recall = _ratio(tp, int(actual.sum()))
    f1 = _ratio(2 * tp, int(actual.sum()) + int(predicted.sum()))
    return precision, recall, f1


def _regression(truth: Any, pred: Any) -> dict[str, float]:
    import numpy as np

    error = truth - pred
    residual = float(np.sum(error**2))
    total = float(np.sum((truth - truth.mean()) ** 2))
    # scikit-learn's force_finite: a constant target scores 1 when matched exactly, else 0
    r2 = 1.0 - residual / total if total else (1.0 if residual == 0 else 0.0)
    return {
        "n": len(truth),
        "rmse": math.sqrt(residual / len(truth)),
        "mae": float(np.mean(np.abs(error))),
        "r2": r2,
    }


def _slices(values: Any) -> list[tuple[str, Any]]:
    """(label, row indices) for each distinct value, sorted by value; missing values last."""
    import numpy as np

    rows: dict[Any, list[int]] = {}
    for i, value in enumerate(values):
        rows.setdefault(_slice_value(value), []).append(i)
    present = [v for v in rows if v is not None]
    try:
        present.sort()
    except TypeError:
        present.sort(key=str)
    order = present + ([None] if None in rows else [])
    return [(MISSING if v is None else str(v), np.asarray(rows[v])) for v in order]


def _slice_value(value: Any) -> Any:
    """The value itself, or None for a missing one: None, NaN, NaT or pandas.NA."""
    value = _plain(value)
    try:
        missing = value is None or bool(value != value)
    except (TypeError, ValueError):  # pandas.NA refuses to be a bool
        missing = True
    return None if missing else value


def _fairness(
    attribute: str, values: Any, truth: Any, pred: Any, positive: Any, reference: Any
) -> Fairness:
    rates: list[tuple[str, int, float, float | None, float | None]] = []
    for group, rows in _slices(values):
        actual, selected = truth[rows] == positive, pred[rows] == positive
        tpr = _rate(int((selected & actual).sum()), int(actual.sum()))
        fpr = _rate(int((selected & ~actual).sum()), int((~actual).sum()))
        rates.append((group, len(rows), float(selected.mean()), tpr, fpr))
    selection = [rate for _, _, rate, _, _ in rates]
    if reference is None:
        reference_group = rates[selection.index(max(selection))][0]
    else:
        reference_group = MISSING if _slice_value(reference) is None else str(_plain(reference))
        if reference_group not in [group for group, *_ in rates]:
            raise InvalidInput(
                f"reference_group {reference_group!r} is not a group of {attribute!r}: "
                f"{[group for group, *_ in rates]}"
            )
    base = selection[[group for group, *_ in rates].index(reference_group)]
    groups = tuple(
        GroupRates(group, count, rate, tpr, fpr, _impact(rate, base))
        for group, count, rate, tpr, fpr in rates
    )
    others = [g.impact_ratio for g in groups if g.group != reference_group]
    tpr_gap = _gap([g.true_positive_rate for g in groups])
    fpr_gap = _gap([g.false_positive_rate for g in groups])
    odds_gap = None if tpr_gap is None or fpr_gap is None else max(tpr_gap, fpr_gap)
    return Fairness(
        attribute,
        positive,
        reference_group,
        groups,
        demographic_parity_difference=max(selection) - min(selection),
        demographic_parity_ratio=_ratio(min(selection), max(selection), empty=1.0),
        equal_opportunity_difference=tpr_gap,
        equalized_odds_difference=odds_gap,
        disparate_impact_ratio=min((r for r in others if r is not None), default=1.0),
    )


def _impact(rate: float, base: float) -> float | None:
    if base == 0:
        return 1.0 if rate == 0 else None  # nobody in the reference group is selected
    return rate / base


def _gap(rates: list[float | None]) -> float | None:
    known = [r for r in rates if r is not None]
    return max(known) - min(known) if len(known) >= 2 else None


def _rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _ratio(part: float, whole: float, empty: float = 0.0) -> float:
    return part / whole if whole else empty


def _plain(value: Any) -> Any:
    """A NumPy scalar as the matching Python value, so results serialise to JSON."""
    return value.item() if hasattr(value, "item") and not isinstance(value, str | bytes) else value
