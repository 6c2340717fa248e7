"""Running on-demand feature views' stored code: types, and every way the code can fail."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest

from loopwright.errors import InvalidInput
from loopwright.features._selection import OnDemandPick
from loopwright.features.on_demand import compile_function, run


def _pick(code: str, features: Any = (("doubled", "float64"),), name: str = "odfv") -> OnDemandPick:
    spec = {"name": name, "function": "compute", "code": code}
    return OnDemandPick(name, 1, spec, tuple(features), tuple(f for f, _ in features), (), ())


DOUBLE = (
    "def compute(df: pd.DataFrame) -> pd.DataFrame:\n"
    "    import pandas as pd\n"
    "    return pd.DataFrame({'doubled': df['x'] * 2, 'count': df['x'].fillna(0).astype(int)})\n"
)


def test_run_casts_the_picked_features_and_keeps_missing_values() -> None:
    pick = _pick(DOUBLE, (("count", "int32"), ("doubled", "float32")))
    out = run(pick, pd.DataFrame({"x": [1.5, None]}, index=[7, 9]))
    assert list(out.columns) == ["count", "doubled"]
    assert str(out["count"].dtype) == "Int32" and str(out["doubled"].dtype) == "float32"
    assert out["count"].tolist() == [1, 0] and pd.isna(out["doubled"][1])


def test_the_function_is_compiled_once_per_code() -> None:
    pick = _pick(DOUBLE)
    assert compile_function(pick.spec) is compile_function(dict(pick.spec))


def test_a_function_modifying_its_input_frame_is_fine() -> None:
    code = "def compute(df):\n    df['doubled'] = df['x'] * 2\n    return df\n"
    assert run(_pick(code), pd.DataFrame({"x": [1.0, 2.0]}))["doubled"].tolist() == [2.0, 4.0]


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("def compute(df):\n    raise KeyError('x')\n", r"failed: KeyError: 'x'"),
        ("def compute(df):\n    return 1\n", "must return a pandas DataFrame, not int"),
        ("def compute(df):\n    return df\n", "returned no column 'doubled'; it returned x"),
        ("def compute(df):\n    return df.head(1).assign(doubled=1.0)\n", "returned 1 rows for 2"),
        ("def compute(df):\n    return df.assign(doubled='a')\n", "declared float64"),
        ("import nonexistent_module_xyz\ndef compute(df):\n    return df\n", "fails to load"),
        ("def other(df):\n    return df\n", "does not define 'compute'"),
    ],
)
def test_failures_name_the_view(code: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message) as refused:
        run(_pick(code, name=f"bad_{abs(hash(code))}"), pd.DataFrame({"x": [1.0, 2.0]}))
    assert "on-demand view 'bad_" in str(refused.value)


def test_integers_with_fractions_are_refused() -> None:
    code = "def compute(df):\n    return df.assign(n=df['x'])\n"
    with pytest.raises(InvalidInput, match="feature 'n' is declared int64"):
        run(_pick(code, (("n", "int64"),)), pd.DataFrame({"x": [1.5]}))


def test_a_result_with_the_rows_reordered_by_label_is_put_back_in_order() -> None:
    code = (
        "def compute(df):\n"
        "    import pandas as pd\n"
        "    big, small = df[df['x'] > 1], df[df['x'] <= 1]\n"
        "    return pd.concat([big.assign(doubled=big['x'] * 2), small.assign(doubled=0.0)])\n"
    )
    out = run(_pick(code), pd.DataFrame({"x": [1.0, 3.0, 0.5, 2.0]}))
    assert out["doubled"].tolist() == [0.0, 6.0, 0.0, 4.0]
    labelled = run(_pick(code), pd.DataFrame({"x": [1.0, 3.0]}, index=[7, 9]))
    assert labelled["doubled"].tolist() == [0.0, 6.0]


def test_a_result_with_new_labels_is_taken_by_position() -> None:
    code = "def compute(df):\n    return df.assign(doubled=df['x'] * 2).set_index(df['x'])\n"
    assert run(_pick(code), pd.DataFrame({"x": [2.0, 1.0]}))["doubled"].tolist() == [4.0, 2.0]
