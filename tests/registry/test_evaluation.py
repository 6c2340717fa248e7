"""Evaluation metrics against numbers worked out by hand (and scikit-learn where it has them)."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pandas as pd
import pytest

from loopwright.errors import InvalidInput
from loopwright.registry.reports.evaluation import MISSING, evaluate

# eight people: four "f", four "m"; hand-computed figures are in the tests below
Y_TRUE = [1, 0, 1, 1, 0, 0, 1, 0]
Y_PRED = [1, 0, 0, 1, 1, 0, 0, 0]
SEX = ["f", "f", "f", "f", "m", "m", "m", "m"]
REGION = ["n", "n", "s", "s", "n", "s", "n", "s"]


def test_binary_classification_by_hand() -> None:
    result = evaluate(Y_TRUE, Y_PRED)
    # correct at 0, 1, 3, 5, 7; TP at 0 and 3; predicted positive 0, 3, 4; actual 0, 2, 3, 6
    assert result.task == "classification"
    assert result.positive_label == 1
    assert result.labels == (0, 1)
    assert result.n == 8
    assert result.metrics["accuracy"] == pytest.approx(5 / 8)
    assert result.metrics["precision"] == pytest.approx(2 / 3)
    assert result.metrics["recall"] == pytest.approx(2 / 4)
    assert result.metrics["f1"] == pytest.approx(2 * 2 / (4 + 3))
    assert result.slices == () and result.fairness is None


def test_multiclass_is_macro_averaged() -> None:
    y_true, y_pred = [0, 1, 2, 2, 1, 0], [0, 2, 2, 2, 1, 1]
    result = evaluate(y_true, y_pred)
    # per label (precision, recall): 0 -> (1, 1/2), 1 -> (1/2, 1/2), 2 -> (2/3, 1)
    assert result.positive_label is None
    assert result.metrics["accuracy"] == pytest.approx(4 / 6)
    assert result.metrics["precision"] == pytest.approx((1 + 1 / 2 + 2 / 3) / 3)
    assert result.metrics["recall"] == pytest.approx((1 / 2 + 1 / 2 + 1) / 3)
    assert result.metrics["f1"] == pytest.approx((2 / 3 + 1 / 2 + 4 / 5) / 3)
    metrics = pytest.importorskip("sklearn.metrics")
    assert result.metrics["f1"] == pytest.approx(metrics.f1_score(y_true, y_pred, average="macro"))
    assert result.metrics["precision"] == pytest.approx(
        metrics.precision_score(y_true, y_pred, average="macro")
    )


def test_regression_by_hand() -> None:
    result = evaluate([3, -0.5, 2, 7], [2.5, 0.0, 2, 8])
    # errors 0.5, -0.5, 0, -1; the target's mean is 2.875
    assert result.task == "regression"
    assert result.metrics["n"] == 4
    assert result.metrics["mae"] == pytest.approx(0.5)
    assert result.metrics["rmse"] == pytest.approx(math.sqrt(1.5 / 4))
    assert result.metrics["r2"] == pytest.approx(1 - 1.5 / 29.1875)


def test_a_constant_target_scores_like_scikit_learn() -> None:
    assert evaluate([2.5, 2.5], [2.5, 2.5]).metrics["r2"] == 1.0
    assert evaluate([2.5, 2.5], [2.0, 3.5], task="regression").metrics["r2"] == 0.0


@pytest.mark.parametrize(
    ("y_true", "y_pred", "task"),
    [
        ([0, 1, 1], [0.2, 0.9, 0.4], "regression"),  # predictions are scores, not labels
        ([1.5, 2.0], [1.0, 2.0], "regression"),
        ([1.0, 0.0], [1.0, 1.0], "classification"),  # integral floats are labels
        (["no", "yes"], ["yes", "yes"], "classification"),
        ([True, False], [True, True], "classification"),
    ],
)
def test_the_task_is_inferred(y_true: list[object], y_pred: list[object], task: str) -> None:
    assert evaluate(y_true, y_pred).task == task


def test_positive_label_defaults() -> None:
    assert evaluate(["no", "yes"], ["yes", "yes"]).positive_label == "yes"
    assert evaluate([True, False], [True, True]).positive_label is True
    assert evaluate([0, 0], [0, 0]).positive_label == 1  # 0/1 labels, even when 1 is unseen
    assert evaluate([False], [False]).positive_label is True
    assert evaluate([-1, 1], [1, 1]).positive_label == 1
    chosen = evaluate(["no", "yes", "yes"], ["no", "no", "yes"], positive_label="no")
    assert chosen.metrics["precision"] == pytest.approx(1 / 2)  # predicted "no" twice, right once
    assert chosen.metrics["recall"] == 1.0


def test_undefined_ratios_are_zero_without_warnings() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = evaluate([1, 1, 0], [0, 0, 0])
    assert result.metrics["precision"] == 0.0 and result.metrics["f1"] == 0.0


def test_slices_count_rows_and_flag_small_ones() -> None:
    region = [*REGION[:7], None]  # one missing value
    result = evaluate(Y_TRUE, Y_PRED, groups={"region": region}, min_slice_size=4)
    assert [(s.value, s.count, s.small) for s in result.slices] == [
        ("n", 4, False),
        ("s", 3, True),
        (MISSING, 1, True),
    ]
    north = result.slices[0]
    # rows 0, 1, 4, 6: truth 1, 0, 0, 1; predictions 1, 0, 1, 0
    assert north.feature == "region"
    assert north.metrics["accuracy"] == 0.5
    assert north.metrics["precision"] == 0.5 and north.metrics["recall"] == 0.5


def test_numeric_slices_sort_by_value_and_dataframes_work() -> None:
    frame = pd.DataFrame({"age_band": [10, 2, 10, 2, 10, 2, 10, 2], "region": REGION})
    result = evaluate(pd.Series(Y_TRUE), np.array(Y_PRED), groups=frame, min_slice_size=1)
    assert [(s.feature, s.value) for s in result.slices] == [
        ("age_band", "2"),
        ("age_band", "10"),
        ("region", "n"),
        ("region", "s"),
    ]
    assert not any(s.small for s in result.slices)


def test_missing_group_values_share_one_slice() -> None:
    region = pd.Series(["n", None, "s", np.nan, "n", pd.NA, "s", "n"], dtype=object)
    nullable = pd.array([1, 2, None, 1, 2, None, 1, 2], dtype="Int64")
    result = evaluate(Y_TRUE, Y_PRED, groups={"region": region, "band": nullable})
    assert [(s.feature, s.value, s.count) for s in result.slices] == [
        ("region", "n", 3),
        ("region", "s", 2),
        ("region", MISSING, 3),
        ("band", "1", 3),
        ("band", "2", 3),
        ("band", MISSING, 2),
    ]


def test_fairness_by_hand() -> None:
    result = evaluate(Y_TRUE, Y_PRED, sensitive=SEX)
    fairness = result.fairness
    assert fairness is not None
    f, m = fairness.groups
    # f: predictions 1, 0, 0, 1 (truth 1, 0, 1, 1); m: predictions 1, 0, 0, 0 (truth 0, 0, 1, 0)
    assert (f.group, f.count, f.selection_rate) == ("f", 4, 0.5)
    assert (m.group, m.count, m.selection_rate) == ("m", 4, 0.25)
    assert f.true_positive_rate == pytest.approx(2 / 3) and f.false_positive_rate == 0.0
    assert m.true_positive_rate == 0.0 and m.false_positive_rate == pytest.approx(1 / 3)
    assert fairness.reference_group == "f"
    assert (f.impact_ratio, m.impact_ratio) == (1.0, 0.5)
    assert fairness.demographic_parity_difference == pytest.approx(0.25)
    assert fairness.demographic_parity_ratio == pytest.approx(0.5)
    assert fairness.equal_opportunity_difference == pytest.approx(2 / 3)
    assert fairness.equalized_odds_difference == pytest.approx(2 / 3)  # max(2/3, 1/3)
    assert fairness.disparate_impact_ratio == pytest.approx(0.5)
    assert fairness.failing_groups == ("m",)
    assert not fairness.passes_four_fifths_rule
    # the sensitive attribute is also a slice
    assert [(s.feature, s.value) for s in result.slices] == [("sensitive", "f"), ("sensitive", "m")]


def test_fairness_by_column_name_and_reference_group() -> None:
    groups = {"sex": SEX, "region": REGION}
    result = evaluate(Y_TRUE, Y_PRED, groups=groups, sensitive="sex", reference_group="m")
    fairness = result.fairness
    assert fairness is not None and fairness.attribute == "sex"
    assert fairness.reference_group == "m"
    assert [g.impact_ratio for g in fairness.groups] == [2.0, 1.0]
    assert fairness.disparate_impact_ratio == 2.0  # "f" is selected twice as often as "m"
    assert fairness.passes_four_fifths_rule and fairness.failing_groups == ()


def test_fairness_when_nobody_is_selected() -> None:
    fairness = evaluate([1, 0, 1, 0], [0, 0, 0, 0], sensitive=["a", "a", "b", "b"]).fairness
    assert fairness is not None
    assert fairness.demographic_parity_ratio == 1.0 and fairness.disparate_impact_ratio == 1.0
    assert fairness.equalized_odds_difference == 0.0


def test_multiclass_fairness_scores_one_class_against_the_rest() -> None:
    fairness = evaluate(
        [0, 1, 2, 2], [0, 2, 2, 1], sensitive=["a", "a", "b", "b"], positive_label=2
    )
    assert fairness.fairness is not None
    assert [g.selection_rate for g in fairness.fairness.groups] == [0.5, 0.5]


def test_results_serialise_to_json() -> None:
    result = evaluate(np.array(Y_TRUE), np.array(Y_PRED), sensitive=np.array(SEX))
    data = json.loads(json.dumps(result.to_dict()))
    assert data["positive_label"] == 1 and data["labels"] == [0, 1]
    assert data["fairness"]["failing_groups"] == ["m"]
    assert data["slices"][1]["metrics"]["accuracy"] == 0.5


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"y_pred": [1, 0]}, "y_true has 8 values but y_pred has 2"),
        ({"groups": {"region": ["n"]}}, "groups column 'region' has 1 values"),
        ({"sensitive": "sex"}, "sensitive='sex' is not a groups column"),
        ({"positive_label": 7}, "positive_label 7 is not one of the labels"),
        ({"sensitive": SEX, "reference_group": "x"}, "reference_group 'x' is not a group"),
        ({"task": "ranking"}, "task must be"),
        ({"groups": {"sensitive": SEX}, "sensitive": SEX}, "pass sensitive='sensitive'"),
    ],
)
def test_bad_input_is_explained(kwargs: dict[str, object], message: str) -> None:
    arguments: dict[str, object] = {"y_true": Y_TRUE, "y_pred": Y_PRED, **kwargs}
    with pytest.raises(InvalidInput, match=message):
        evaluate(**arguments)  # type: ignore[arg-type]


def test_fairness_needs_a_binary_classification() -> None:
    with pytest.raises(InvalidInput, match="pass the attribute in groups="):
        evaluate([1.5, 2.5], [1.0, 2.0], sensitive=["a", "b"])
    with pytest.raises(InvalidInput, match="pass positive_label="):
        evaluate([0, 1, 2], [0, 1, 1], sensitive=["a", "b", "b"])
    with pytest.raises(InvalidInput, match="empty"):
        evaluate([], [])
