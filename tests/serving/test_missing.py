"""Which models take missing values: refused before the model only where a step refuses them."""

from __future__ import annotations

from typing import Any

import pytest

from loopwright.serving._missing import allows_missing

sklearn = pytest.importorskip("sklearn")


def _cases() -> list[tuple[str, Any, bool]]:
    from sklearn.compose import make_column_transformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    lr = LogisticRegression
    return [
        ("linear model", lr(), False),
        ("histogram boosting", HistGradientBoostingClassifier(), True),
        ("imputer then linear", make_pipeline(SimpleImputer(), lr()), True),
        ("scaler then linear", make_pipeline(StandardScaler(), lr()), False),
        ("scaler, imputer, linear", make_pipeline(StandardScaler(), SimpleImputer(), lr()), True),
        (
            "columns imputed, then linear",
            make_pipeline(make_column_transformer((SimpleImputer(), ["a", "b"])), lr()),
            True,
        ),
        (
            "one column imputed, the rest passed through",
            make_pipeline(
                make_column_transformer((SimpleImputer(), ["a"]), remainder="passthrough"), lr()
            ),
            False,
        ),
        (
            "encoded colors, numbers passed through",
            make_pipeline(
                make_column_transformer((OneHotEncoder(), ["c"]), remainder="passthrough"), lr()
            ),
            False,
        ),
        (
            "scaler then boosting",
            make_pipeline(StandardScaler(), HistGradientBoostingClassifier()),
            True,
        ),
        ("not scikit-learn", object(), True),
        ("fitted: every column imputed", _fitted(["a", "b"]), True),
        ("fitted: one column left to the linear model", _fitted(["a"]), False),
    ]


def _fitted(imputed: list[str]) -> Any:
    import pandas as pd
    from sklearn.compose import make_column_transformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    frame = pd.DataFrame({"a": [0.0, 1.0, None, 3.0], "b": [1.0, 0.0, 1.0, None]})
    columns = make_column_transformer((SimpleImputer(), imputed), remainder="passthrough")
    return make_pipeline(columns, LogisticRegression()).fit(frame.fillna(0), [0, 1, 0, 1])


@pytest.mark.parametrize(("label", "model", "expected"), _cases(), ids=[c[0] for c in _cases()])
def test_missing_values_are_refused_only_where_a_step_refuses_them(
    label: str, model: Any, expected: bool
) -> None:
    assert allows_missing(model) is expected
