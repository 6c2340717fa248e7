"""Loading by URI after the layering: the registry resolves ``models:/`` and ``runs:/`` only
through a client it is given; ``lw.load_model`` gives it the default client when one is needed."""

from __future__ import annotations

from pathlib import Path

import pytest

import loopwright as lw
from loopwright import _active
from loopwright.errors import InvalidInput
from loopwright.registry.loading import load_model


def test_the_registry_needs_a_client_to_resolve_a_model_uri() -> None:
    with pytest.raises(InvalidInput, match="needs a client"):
        load_model("models:/churn/1")


def test_a_package_folder_loads_without_making_a_default_client(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("skops")
    from sklearn.linear_model import LinearRegression

    from loopwright.registry.packaging.package import save_model

    model = LinearRegression().fit([[0.0], [1.0], [2.0]], [0.0, 1.0, 2.0])
    save_model(model, tmp_path / "pkg", input_example=[[1.0]])
    monkeypatch.setattr(_active, "_default_client", None)
    loaded = lw.load_model(str(tmp_path / "pkg"))
    assert loaded.predict([[3.0]])[0] == pytest.approx(3.0)
    assert _active._default_client is None
