"""ServedModel.prepare on tensors: missing values refused by row, clean input passed as is."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from loopwright.errors import SignatureError
from loopwright.serving.model import ServedModel
from loopwright.serving.sources import load_source, resolve_source


@pytest.fixture
def served(tmp_path: Path) -> ServedModel:
    from sklearn.linear_model import LinearRegression

    from loopwright.registry.packaging.package import save_model

    X = np.arange(12, dtype="float64").reshape(4, 3)
    save_model(LinearRegression().fit(X, [1.0, 2.0, 3.0, 4.0]), tmp_path / "reg", input_example=X)
    return load_source(resolve_source(f"reg={tmp_path / 'reg'}", None))


def test_a_tensor_with_missing_values_is_refused_naming_the_rows(served: ServedModel) -> None:
    data = np.zeros((8, 3))
    data[[1, 6], 2] = np.nan
    data[6, 0] = np.nan
    with pytest.raises(
        SignatureError, match=r"the input tensor has missing values in rows \[1, 6\]"
    ):
        served.prepare(data)


def test_a_tensor_without_missing_values_reaches_the_model_unchanged(served: ServedModel) -> None:
    data = np.full((5, 3), 2.5)
    item = served.prepare(data)
    assert item.rows == 5 and np.array_equal(item.data, data)
    assert served.run(item.data, ("predict",))["predict"].shape == (5,)
