"""XGBoost models in XGBoost's own format (UBJSON ``model.ubj``; JSON from MLflow imports).

Boosters and the scikit-learn wrappers (``XGBClassifier``, ``XGBRegressor`` ...) are saved with
their ``save_model`` and reloaded into the same class, chosen from a fixed list by name (the
manifest never names a class to import).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ....errors import InvalidInput, InvalidModelPackage
from ..signature import Signature
from ._protocol import defined_in, option, package_file

__all__ = ["MODEL_CLASSES", "XGBoostFlavor"]

MODEL_CLASSES = (
    "Booster",
    "XGBClassifier",
    "XGBRegressor",
    "XGBRanker",
    "XGBRFClassifier",
    "XGBRFRegressor",
)


class XGBoostFlavor:
    """``xgboost.Booster`` and XGBoost's scikit-learn wrappers."""

    name = "xgboost"
    uses_pickle = False
    executes_code = False

    def handles(self, model: Any) -> bool:
        return defined_in(model, "xgboost")

    def save(self, model: Any, folder: Path) -> dict[str, Any]:
        # A subclass is stored as the XGBoost class it derives from.
        model_class = next(
            (
                c.__name__
                for c in type(model).__mro__
                if c.__name__ in MODEL_CLASSES and c.__module__.startswith("xgboost")
            ),
            None,
        )
        if model_class is None:
            raise InvalidInput(
                f"the xgboost flavor stores {', '.join(MODEL_CLASSES)}, not "
                f"{type(model).__qualname__}; pass one of those"
            )
        model.save_model(str(folder / "model.ubj"))
        return {"model_class": model_class, "file": "model.ubj"}

    def load(self, folder: Path, options: Mapping[str, Any], *, trusted: bool) -> Any:
        import xgboost

        model_class = option(options, "model_class", str, self.name)
        if model_class not in MODEL_CLASSES:
            raise InvalidModelPackage(
                f"the xgboost flavor cannot load model_class {model_class!r}; "
                f"it loads {', '.join(MODEL_CLASSES)}"
            )
        native = getattr(xgboost, model_class)()
        native.load_model(str(package_file(folder, options, "file", self.name)))
        return native

    def predict(self, native: Any, data: Any) -> Any:
        import xgboost

        if isinstance(native, xgboost.Booster):
            return native.predict(xgboost.DMatrix(data))
        return native.predict(data)

    def libraries(self) -> dict[str, str]:
        import xgboost

        return {"xgboost": xgboost.__version__}

    def signature(self, model: Any) -> Signature | None:
        return None
