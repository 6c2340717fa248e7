"""LightGBM models in LightGBM's text format (``model.txt``).

A ``lightgbm.Booster`` loads back as itself. The scikit-learn wrappers are stored as their
booster plus, in the flavor options, what the wrapper adds: for classifiers the class labels, so
that ``predict`` returns the original labels. They load back as a :class:`BoosterClassifier` or
:class:`BoosterRegressor`, small stand-ins with ``predict`` (and ``predict_proba``) computed the
way LightGBM's wrappers compute them.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ....errors import InvalidInput, InvalidModelPackage
from ..signature import Signature
from ._protocol import defined_in, option, package_file

__all__ = ["BoosterClassifier", "BoosterRegressor", "LightGBMFlavor"]

_KINDS = ("booster", "classifier", "regressor")


class BoosterRegressor:
    """A loaded LGBMRegressor (or LGBMRanker): ``predict`` is the booster's prediction."""

    def __init__(self, booster: Any) -> None:
        self.booster = booster

    def predict(self, data: Any) -> Any:
        return self.booster.predict(data)


class BoosterClassifier:
    """A loaded LGBMClassifier: probabilities from the booster, labels from ``classes_``."""

    def __init__(self, booster: Any, classes: Any) -> None:
        self.booster = booster
        self.classes_ = classes

    def predict_proba(self, data: Any) -> Any:
        import numpy as np

        scores = np.asarray(self.booster.predict(data))
        if scores.ndim == 1:  # binary objective: the probability of the second class
            return np.column_stack([1.0 - scores, scores])
        return scores

    def predict(self, data: Any) -> Any:
        return self.classes_[self.predict_proba(data).argmax(axis=1)]


class LightGBMFlavor:
    """``lightgbm.Booster`` and LightGBM's scikit-learn wrappers."""

    name = "lightgbm"
    uses_pickle = False
    executes_code = False

    def handles(self, model: Any) -> bool:
        return defined_in(model, "lightgbm")

    def save(self, model: Any, folder: Path) -> dict[str, Any]:
        import lightgbm

        options: dict[str, Any] = {"file": "model.txt"}
        if isinstance(model, lightgbm.Booster):
            booster, options["kind"] = model, "booster"
        elif isinstance(model, lightgbm.LGBMClassifier):
            booster, options["kind"] = model.booster_, "classifier"
            classes = model.classes_
            options["classes"] = classes.tolist()
            options["classes_dtype"] = classes.dtype.str
            if classes.dtype.kind not in "biufU":
                raise InvalidInput(
                    f"the class labels have dtype {classes.dtype}; the lightgbm flavor stores "
                    "numeric, boolean or string labels only"
                )
        elif isinstance(model, lightgbm.LGBMModel):
            booster, options["kind"] = model.booster_, "regressor"
        else:
            raise InvalidInput(
                "the lightgbm flavor stores Booster and LGBM* models, not "
                f"{type(model).__qualname__}"
            )
        booster.save_model(str(folder / "model.txt"))
        return options

    def load(self, folder: Path, options: Mapping[str, Any], *, trusted: bool) -> Any:
        import lightgbm

        kind = option(options, "kind", str, self.name)
        if kind not in _KINDS:
            raise InvalidModelPackage(f"the lightgbm flavor cannot load kind {kind!r}")
        booster = lightgbm.Booster(model_file=str(package_file(folder, options, "file", self.name)))
        if kind == "booster":
            return booster
        if kind == "regressor":
            return BoosterRegressor(booster)
        return BoosterClassifier(booster, _classes(options))

    def predict(self, native: Any, data: Any) -> Any:
        return native.predict(data)

    def libraries(self) -> dict[str, str]:
        import lightgbm

        return {"lightgbm": lightgbm.__version__}

    def signature(self, model: Any) -> Signature | None:
        return None


def _classes(options: Mapping[str, Any]) -> Any:
    import numpy as np

    labels = option(options, "classes", list, "lightgbm")
    dtype = option(options, "classes_dtype", str, "lightgbm")
    try:
        parsed = np.dtype(dtype)
        if parsed.kind not in "biufU":
            raise TypeError(dtype)
        return np.asarray(labels, dtype=parsed)
    except (TypeError, ValueError):
        raise InvalidModelPackage(
            f"the lightgbm flavor options give unusable classes ({dtype!r}); rebuild the package"
        ) from None
