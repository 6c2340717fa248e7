"""Variant comparison: known differences are found, equal variants are not, intervals are right."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from loopwright.errors import InvalidInput
from loopwright.monitoring._variants import compare_variants, t_cdf, t_quantile
from loopwright.monitoring.entities import VariantComparison


def _compare(frame: pd.DataFrame, **options: Any) -> VariantComparison:
    arguments: dict[str, Any] = {
        "deployment": "churn-api",
        "metric": None,
        "baseline": None,
        "candidate": None,
        "confidence": 0.95,
        "min_samples": 100,
        "window_start": 1000,
        "window_end": 2000,
    }
    arguments.update(options)
    return compare_variants(frame, **arguments)


def _labelled(accuracy: dict[str, float], n: dict[str, int], seed: int = 0) -> pd.DataFrame:
    """Rows of each variant whose predictions are right with the given probability."""
    rng = np.random.default_rng(seed)
    parts = []
    for variant, rate in accuracy.items():
        size = n[variant]
        predicted = rng.integers(0, 2, size)
        right = rng.random(size) < rate
        parts.append(
            pd.DataFrame(
                {
                    "request_id": [f"{variant}-{i}" for i in range(size)],
                    "row": 0,
                    "variant": variant,
                    "model": "churn",
                    "model_version": 2 if variant == "canary" else 1,
                    "latency_ms": rng.normal(10, 1, size),
                    "output.predict": predicted,
                    "label": pd.Series(np.where(right, predicted, 1 - predicted), dtype=object),
                }
            )
        )
    return pd.concat(parts, ignore_index=True)


def test_t_distribution_matches_scipy() -> None:
    for df in (1, 2.5, 7, 30.3, 1000, 1e6):
        for t in (-12, -3, -0.5, 0.0, 0.1, 1.96, 4, 40):
            assert t_cdf(t, df) == pytest.approx(stats.t.cdf(t, df), abs=1e-9)
        for q in (0.025, 0.6, 0.975, 0.9995):
            assert t_quantile(q, df) == pytest.approx(stats.t.ppf(q, df), rel=1e-9)


def test_a_better_canary_is_promoted() -> None:
    frame = _labelled({"primary": 0.70, "canary": 0.80}, {"primary": 2000, "canary": 1500})
    result = _compare(frame)
    assert (result.metric, result.test, result.higher_is_better) == (
        "accuracy",
        "two-proportion z",
        True,
    )
    assert (result.baseline.variant, result.candidate.variant) == ("primary", "canary")
    assert result.baseline.model_versions == ("churn/1",)
    assert result.candidate.model_versions == ("churn/2",)
    assert (result.baseline.n, result.candidate.n) == (2000, 1500)
    assert result.difference == pytest.approx(result.candidate.value - result.baseline.value)
    assert 0 < result.ci_low < result.difference < result.ci_high
    assert result.baseline.ci_low < result.baseline.value < result.baseline.ci_high
    assert result.p_value < 1e-6
    assert result.significant and result.enough_data
    assert result.decision == "promote"
    assert (result.window_start, result.window_end) == (1000, 2000)
    # the same data read as error rates: lower is better, the verdict is the same
    errors = _compare(frame, metric="error_rate")
    assert not errors.higher_is_better
    assert errors.difference == pytest.approx(-result.difference)
    assert errors.decision == "promote"


def test_a_worse_canary_is_rolled_back() -> None:
    frame = _labelled({"primary": 0.85, "canary": 0.75}, {"primary": 1500, "canary": 1500})
    assert _compare(frame).decision == "rollback"


def test_equal_variants_continue() -> None:
    frame = _labelled({"primary": 0.8, "canary": 0.8}, {"primary": 1000, "canary": 1000}, seed=5)
    result = _compare(frame)
    assert result.ci_low < 0 < result.ci_high
    assert not result.significant
    assert result.p_value > 0.05
    assert result.decision == "continue"


def test_too_few_samples_continue_even_when_far_apart() -> None:
    frame = _labelled({"primary": 0.1, "canary": 0.95}, {"primary": 60, "canary": 60})
    result = _compare(frame)
    assert result.p_value < 0.001
    assert not result.enough_data and not result.significant
    assert result.decision == "continue"
    assert _compare(frame, min_samples=50).decision == "promote"


def test_two_proportion_z_and_newcombe_interval_by_hand() -> None:
    # Newcombe (1998), example (a): 56/70 vs 48/80; method 10 gives 0.0524 to 0.3339.
    rows = [("b", 1)] * 56 + [("b", 0)] * 14 + [("a", 1)] * 48 + [("a", 0)] * 32
    frame = pd.DataFrame(
        {
            "variant": [v for v, _ in rows],
            "output.predict": [1] * len(rows),
            "label": pd.Series([c for _, c in rows], dtype=object),
        }
    )
    result = _compare(frame, baseline="a", candidate="b", min_samples=2)
    assert result.difference == pytest.approx(0.2)
    assert result.ci_low == pytest.approx(0.0524, abs=5e-5)
    assert result.ci_high == pytest.approx(0.3339, abs=5e-5)
    pooled = (56 + 48) / 150
    z = 0.2 / np.sqrt(pooled * (1 - pooled) * (1 / 70 + 1 / 80))
    assert result.p_value == pytest.approx(2 * stats.norm.sf(z))
    assert result.candidate.ci_low == pytest.approx(0.6918, abs=5e-5)  # Wilson, 56/70
    assert result.candidate.ci_high == pytest.approx(0.8770, abs=5e-5)


def test_latency_is_welch_t_on_one_sample_per_request() -> None:
    rng = np.random.default_rng(7)
    a, b = rng.normal(10, 2, 300), rng.normal(11, 3, 250)
    frame = pd.DataFrame(
        {
            "request_id": [f"a{i}" for i in range(300)] + [f"b{i}" for i in range(250)],
            "variant": ["primary"] * 300 + ["b"] * 250,
            "latency_ms": np.r_[a, b],
            "output.predict": 1,
        }
    )
    # a multi-row request repeats its latency on every row: it is still one sample
    many_rows = pd.concat([frame, frame.iloc[[0] * 50]], ignore_index=True)
    result = _compare(many_rows, metric="latency_ms")
    expected = stats.ttest_ind(b, a, equal_var=False)
    interval = expected.confidence_interval(0.95)
    assert result.test == "welch t" and not result.higher_is_better
    assert (result.baseline.n, result.candidate.n) == (300, 250)
    assert result.p_value == pytest.approx(expected.pvalue, rel=1e-8)
    assert (result.ci_low, result.ci_high) == pytest.approx((interval.low, interval.high))
    assert result.decision == "rollback"  # slower, significantly
    mean = stats.t.interval(0.95, 299, loc=a.mean(), scale=stats.sem(a))
    assert (result.baseline.ci_low, result.baseline.ci_high) == pytest.approx(mean)


def test_mean_prediction_is_the_default_without_labels_and_others_are_listed() -> None:
    rng = np.random.default_rng(8)
    frame = pd.DataFrame(
        {
            "variant": ["primary"] * 400 + ["canary"] * 400 + ["shadow"] * 50,
            "output.predict": np.r_[rng.normal(0.30, 0.1, 400), rng.normal(0.30, 0.1, 450)],
            "label": pd.Series([None] * 850, dtype=object),
        }
    )
    result = _compare(frame)
    assert (result.metric, result.test) == ("mean_prediction", "welch t")
    assert result.decision == "continue"
    assert [o.variant for o in result.others] == ["shadow"]
    assert result.others[0].n == 50


def test_mae_lower_is_better() -> None:
    rng = np.random.default_rng(9)
    truth = rng.normal(100, 10, 1000)
    noise = np.r_[rng.normal(0, 5, 500), rng.normal(0, 2, 500)]
    frame = pd.DataFrame(
        {
            "variant": ["primary"] * 500 + ["canary"] * 500,
            "output.predict": truth + noise,
            "label": pd.Series(truth.tolist(), dtype=object),
        }
    )
    result = _compare(frame, metric="mae")
    assert result.difference < 0
    assert result.decision == "promote"


def test_defaults_pick_by_rows_without_primary_or_canary() -> None:
    frame = _labelled({"a": 0.8, "b": 0.8, "c": 0.8}, {"a": 50, "b": 300, "c": 200})
    result = _compare(frame)
    assert (result.baseline.variant, result.candidate.variant) == ("b", "c")
    assert [o.variant for o in result.others] == ["a"]


def test_a_named_variant_without_rows_is_not_enough_data() -> None:
    frame = _labelled({"primary": 0.8}, {"primary": 500})
    result = _compare(frame, candidate="canary")
    assert result.candidate.n == 0
    assert np.isnan(result.candidate.value) and np.isnan(result.difference)
    assert (result.enough_data, result.decision) == (False, "continue")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"confidence": 0}, "between 0 and 1"),
        ({"confidence": 1.0}, "between 0 and 1"),
        ({"confidence": 95}, "between 0 and 1"),
        ({"confidence": "0.95"}, "confidence must be a number"),
        ({"min_samples": 1}, "min_samples"),
        ({"min_samples": True}, "min_samples"),
        ({"metric": "auc"}, "metrics: accuracy, error_rate"),
        ({"baseline": "primary", "candidate": "primary"}, "both 'primary'"),
    ],
)
def test_bad_options(options: dict[str, Any], message: str) -> None:
    frame = _labelled({"primary": 0.8, "canary": 0.8}, {"primary": 10, "canary": 10})
    with pytest.raises(InvalidInput, match=message):
        _compare(frame, **options)


def test_refusals_that_name_the_way_out() -> None:
    one = _labelled({"primary": 0.8}, {"primary": 10})
    with pytest.raises(InvalidInput, match=r"logged 1 variant.*'primary'.*needs two"):
        _compare(one)
    unlabelled = one.assign(label=pd.Series([None] * 10, dtype=object), variant="x")
    unlabelled = pd.concat([unlabelled, one], ignore_index=True).assign(label=None)
    with pytest.raises(InvalidInput, match="needs labels"):
        _compare(unlabelled, metric="accuracy")
    text = pd.DataFrame({"variant": ["a", "b"], "output.predict": ["yes", "no"]})
    with pytest.raises(InvalidInput, match="not numbers"):
        _compare(text)
    with pytest.raises(InvalidInput, match="'variant' column"):
        _compare(text.drop(columns=["variant"]))


def test_mean_prediction_of_booleans_is_the_positive_rate() -> None:
    frame = pd.DataFrame(
        {
            "variant": ["primary"] * 200 + ["canary"] * 200,
            "output.predict": [True, False] * 100 + [True] * 150 + [False] * 50,
        }
    )
    result = _compare(frame, metric="mean_prediction")
    assert (result.baseline.value, result.candidate.value) == (0.5, 0.75)
    assert result.significant
