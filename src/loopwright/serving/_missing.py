"""Whether a model takes missing values (NaN), so that the server can refuse them before it.

scikit-learn estimators declare ``allow_nan`` in their tags, but a Pipeline reports its final
step's tag: ``make_pipeline(SimpleImputer(), LogisticRegression())`` says it refuses NaN although
its imputer fills them in. So pipelines and column transformers are walked: each step either
*handles* missing values (an imputer, or a final estimator that allows them natively), *passes*
them on (a scaler allows NaN and leaves it in place) or *refuses* them. Models of other
libraries (xgboost, lightgbm, ONNX graphs) take NaN as "missing" natively.
"""

from __future__ import annotations

from typing import Any

__all__ = ["allows_missing"]

HANDLES, PASSES, REFUSES = "handles", "passes", "refuses"


def allows_missing(model: Any) -> bool:
    """False only when missing values would reach a step that refuses them."""
    if not type(model).__module__.startswith("sklearn"):
        return True
    try:
        return _state(model) != REFUSES
    except Exception:  # an estimator whose tags cannot be read: let the model decide
        return True


def _state(step: Any) -> str:
    if isinstance(step, str):  # "drop" or "passthrough" in a pipeline or column transformer
        return HANDLES if step == "drop" else PASSES
    if step is None:
        return PASSES
    module = type(step).__module__
    if module.startswith("sklearn.impute"):
        return HANDLES
    steps = getattr(step, "steps", None)
    if module.startswith("sklearn.pipeline") and steps is not None:
        for _, inner in steps:
            state = _state(inner)
            if state != PASSES:
                return state
        return PASSES
    if module.startswith("sklearn.compose") and hasattr(step, "transformers"):
        # Fitted, transformers_ lists the remainder too, and only if columns are left for it.
        fitted = getattr(step, "transformers_", None)
        if fitted is not None:
            states = {_state(inner) for _, inner, _ in fitted}
        else:
            states = {_state(inner) for _, inner, _ in step.transformers}
            states.add(_state(step.remainder))
        if REFUSES in states:
            return REFUSES
        return HANDLES if states == {HANDLES} else PASSES
    from sklearn.utils import get_tags

    if not get_tags(step).input_tags.allow_nan:
        return REFUSES
    return HANDLES if callable(getattr(step, "predict", None)) else PASSES
