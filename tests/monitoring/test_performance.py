"""Performance on labelled log rows: every figure equals scikit-learn's on random data."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as sk

from loopwright.errors import InvalidInput
from loopwright.monitoring.performance import guess_task, prediction_column, score


def _labels(values: Any) -> pd.Series:
    """Labels as LabelBook.join gives them: Python objects, None where unlabelled."""
    return pd.Series(list(values), dtype=object)


def _classification(k: int, n: int = 600, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    proba = rng.dirichlet(np.ones(k) * 0.7, n)
    truth = np.array([rng.choice(k, p=row) for row in proba])  # probabilities that mean something
    frame = pd.DataFrame(
        {
            "request_id": [f"r{i}" for i in range(n)],
            "row": 0,
            "output.predict": proba.argmax(axis=1),
            "output.predict_proba": list(proba),
            "label": _labels(truth.tolist()),
        }
    )
    return frame, proba


def _ece(truth: np.ndarray, proba: np.ndarray, bins: int = 10) -> float:
    """Top-label ECE written the textbook way (Guo et al. 2017), bins (i/10, (i+1)/10]."""
    confidence = proba.max(axis=1)
    correct = proba.argmax(axis=1) == truth
    total = 0.0
    for i in range(bins):
        inside = (confidence > i / bins) & (confidence <= (i + 1) / bins)
        if inside.any():
            gap = abs(correct[inside].mean() - confidence[inside].mean())
            total += gap * inside.mean()
    return float(total)


@pytest.mark.parametrize("k", [2, 3, 5])
def test_classification_matches_sklearn(k: int) -> None:
    frame, proba = _classification(k)
    truth = np.array(frame["label"].tolist())
    predicted = frame["output.predict"].to_numpy()
    result = score(frame)
    average = "binary" if k == 2 else "macro"
    expected = {
        "accuracy": sk.accuracy_score(truth, predicted),
        "precision": sk.precision_score(truth, predicted, average=average, zero_division=0),
        "recall": sk.recall_score(truth, predicted, average=average, zero_division=0),
        "f1": sk.f1_score(truth, predicted, average=average, zero_division=0),
        "roc_auc": (
            sk.roc_auc_score(truth, proba[:, 1])
            if k == 2
            else sk.roc_auc_score(truth, proba, multi_class="ovr")
        ),
        "log_loss": sk.log_loss(truth, proba),
        "calibration_error": _ece(truth, proba),
    }
    assert result.task == "classification"
    assert set(result.metrics) == set(expected)
    for name, value in expected.items():
        assert result.metrics[name] == pytest.approx(value, abs=1e-12), name
    assert (result.rows, result.predictions, result.coverage) == (600, 600, 1.0)


def test_auc_with_ties_matches_sklearn() -> None:
    rng = np.random.default_rng(3)
    p1 = rng.integers(0, 5, 400) / 4  # many ties
    truth = (rng.random(400) < p1).astype(int)
    frame = pd.DataFrame(
        {
            "output.predict": (p1 > 0.5).astype(int),
            "output.predict_proba": list(np.c_[1 - p1, p1]),
            "label": _labels(truth),
        }
    )
    assert score(frame).metrics["roc_auc"] == pytest.approx(sk.roc_auc_score(truth, p1), abs=1e-12)


def test_string_classes_and_positive_class_is_the_larger() -> None:
    truth = ["spam", "ham", "spam", "ham", "spam", "spam"]
    predicted = ["spam", "spam", "ham", "ham", "spam", "spam"]
    frame = pd.DataFrame({"output.predict": predicted, "label": _labels(truth)})
    result = score(frame)
    assert result.metrics["precision"] == pytest.approx(
        sk.precision_score(truth, predicted, pos_label="spam")
    )
    assert result.metrics["recall"] == pytest.approx(0.75)
    assert "roc_auc" not in result.metrics  # no probabilities logged


def test_labels_and_predictions_of_different_types_still_match() -> None:
    frame = pd.DataFrame({"output.predict": [1.0, 0.0, 1.0], "label": _labels(["1", "0", "0"])})
    assert score(frame).metrics["accuracy"] == pytest.approx(2 / 3)
    frame = pd.DataFrame({"output.predict": [True, False], "label": _labels([1, 0])})
    assert score(frame).metrics["accuracy"] == 1.0


def test_regression_matches_sklearn_and_mape_skips_zero_labels() -> None:
    rng = np.random.default_rng(4)
    truth = rng.normal(50, 10, 500)
    predicted = truth + rng.normal(0, 3, 500)
    frame = pd.DataFrame({"output.predict": predicted, "label": _labels(truth.tolist())})
    result = score(frame)
    assert result.task == "regression"
    assert result.metrics["mae"] == pytest.approx(sk.mean_absolute_error(truth, predicted))
    assert result.metrics["rmse"] == pytest.approx(sk.root_mean_squared_error(truth, predicted))
    assert result.metrics["mape"] == pytest.approx(
        sk.mean_absolute_percentage_error(truth, predicted)
    )
    with_zero = pd.DataFrame({"output.predict": [1.5, 2.0, 3.0], "label": _labels([0, 2.5, 3])})
    result = score(with_zero)
    assert result.metrics["mape"] == pytest.approx(0.5 / 2.5 / 2)  # the zero label left out
    assert result.metrics["mae"] == pytest.approx((1.5 + 0.5 + 0) / 3)
    zeros = pd.DataFrame({"output.predict": [1.5, 0.5], "label": _labels([0, 0])})
    assert "mape" not in score(zeros).metrics


def test_coverage_counts_unlabelled_rows_and_given_predictions() -> None:
    frame = pd.DataFrame({"output.predict": [1, 0, 1, 1], "label": _labels([1, None, 0, None])})
    result = score(frame)
    assert (result.rows, result.predictions, result.coverage) == (2, 4, 0.5)
    assert score(frame, predictions=10).coverage == pytest.approx(0.2)
    none = score(pd.DataFrame({"output.predict": [1], "label": _labels([None])}))
    assert (none.rows, none.coverage, dict(none.metrics)) == (0, 0.0, {})
    assert score(frame.iloc[:0], predictions=0).coverage == 0.0


def test_per_version_and_per_slice() -> None:
    frame = pd.DataFrame(
        {
            "model": ["churn", "churn", "churn", "churn", "churn", None],
            "model_version": [1, 1, 2, 2, 2, None],
            "input.country": ["fr", "de", "fr", "fr", None, "de"],
            "output.predict": [1, 0, 1, 0, 1, 1],
            "label": _labels([1, 1, 1, 1, 0, 1]),
        }
    )
    result = score(frame, slices=["country"])
    assert set(result.by_version) == {"churn/1", "churn/2", "(missing)"}
    assert result.by_version["churn/1"]["accuracy"] == 0.5
    assert result.by_version["churn/2"]["accuracy"] == pytest.approx(1 / 3)
    assert result.by_version["churn/2"]["rows"] == 3
    assert set(result.by_slice["country"]) == {"fr", "de", "(missing)"}
    assert result.by_slice["country"]["fr"]["accuracy"] == pytest.approx(2 / 3)
    # the positive class is the whole window's (1), even in a slice where only 1 is labelled
    assert result.by_slice["country"]["de"]["recall"] == 0.5
    assert "rows" not in result.metrics


def test_task_guess_and_override() -> None:
    assert guess_task([1, 0, 2]) == "classification"
    assert guess_task(["a", True]) == "classification"
    assert guess_task([1.0, 2.0]) == "classification"
    assert guess_task([1, 2.5]) == "regression"
    assert guess_task([1, 2], [0.7, 1.2]) == "regression"
    frame = pd.DataFrame({"output.predict": [1, 2, 4], "label": _labels([1, 2, 3])})
    assert score(frame).task == "classification"
    regression = score(frame, task="regression")
    assert regression.metrics["mae"] == pytest.approx(1 / 3)


def test_probabilities_that_do_not_match_the_classes_are_not_used() -> None:
    # three columns, two string classes seen: the columns cannot be matched to classes
    frame = pd.DataFrame(
        {
            "output.predict": ["a", "b"],
            "output.predict_proba": [[0.7, 0.2, 0.1], [0.1, 0.8, 0.1]],
            "label": _labels(["a", "b"]),
        }
    )
    assert "log_loss" not in score(frame).metrics
    # integer classes 0..2 with only 0 and 2 seen: column j is class j
    frame = pd.DataFrame(
        {
            "output.predict": [0, 2, 2],
            "output.predict_proba": [[0.7, 0.2, 0.1], [0.1, 0.1, 0.8], [0.2, 0.2, 0.6]],
            "label": _labels([0, 2, 0]),
        }
    )
    proba = np.array(frame["output.predict_proba"].tolist())
    expected = sk.log_loss([0, 2, 0], proba, labels=[0, 1, 2])
    assert score(frame).metrics["log_loss"] == pytest.approx(expected)
    # argmax disagrees with the logged predictions: the column order is not the classes'
    frame["output.predict"] = [1, 0, 1]
    frame["label"] = _labels([1, 0, 1])
    frame["output.predict_proba"] = [[0.9, 0.1], [0.2, 0.8], [0.7, 0.3]]
    assert "roc_auc" not in score(frame).metrics


def test_prediction_column_choice() -> None:
    frame = pd.DataFrame({"output.score": [0.1], "output.proba": [[0.9, 0.1]], "label": [1]})
    assert prediction_column(frame) == "output.score"
    assert prediction_column(frame, "score") == "output.score"
    two = pd.DataFrame({"output.a": [1], "output.b": [1], "label": [1]})
    with pytest.raises(InvalidInput, match="name it with prediction="):
        prediction_column(two)
    with pytest.raises(InvalidInput, match="'c' is not in the frame"):
        prediction_column(two, "c")


def test_bad_inputs() -> None:
    frame = pd.DataFrame({"output.predict": [1.5, 2.0], "label": _labels(["x", 2])})
    with pytest.raises(InvalidInput, match="numeric labels"):
        score(frame, task="regression")
    with pytest.raises(InvalidInput, match="'label' column"):
        score(frame.drop(columns=["label"]))
    with pytest.raises(InvalidInput, match="task 'ranking'"):
        score(frame, task="ranking")  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="slice column 'country'"):
        score(frame, slices=["country"])
    with pytest.raises(InvalidInput, match="predictions must be a count"):
        score(frame, predictions=-1)


def test_calibration_bins_hold_their_upper_edge() -> None:
    # confidence exactly 0.3 and 0.7 fall in (0.2, 0.3] and (0.6, 0.7], as the textbook has it
    proba = np.array([[0.7, 0.3], [0.3, 0.7], [0.7, 0.3], [0.45, 0.55]])
    truth = np.array([0, 1, 1, 0])
    frame = pd.DataFrame(
        {
            "output.predict": proba.argmax(axis=1),
            "output.predict_proba": list(proba),
            "label": _labels(truth),
        }
    )
    assert score(frame).metrics["calibration_error"] == pytest.approx(_ece(truth, proba))
