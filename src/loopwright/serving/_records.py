"""Prediction-log records of served requests: columns of plain values, one per input row."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .model import ServedModel
    from .prediction_log import PredictionRecord

__all__ = ["prediction_record", "row_values"]

# Serving a model directly (no deployment): the deployment is the model, the variant "primary".
PRIMARY = "primary"


def prediction_record(
    model: ServedModel,
    request_id: str,
    arrived: datetime,
    latency_ms: float,
    status: int,
    inputs: Any,
    outputs: Mapping[str, Any],
    *,
    deployment: str | None = None,
    variant: str = PRIMARY,
) -> PredictionRecord:
    """The record of one request answered by ``model``: served on its own (the deployment is
    the model's name), or as ``variant`` of ``deployment``."""
    from .prediction_log import PredictionRecord

    return PredictionRecord(
        request_id=request_id,
        deployment=model.name if deployment is None else deployment,
        variant=variant,
        model=model.name,
        model_version=model.version,
        timestamp=arrived,
        latency_ms=latency_ms,
        status=status,
        inputs=row_values(inputs, "input"),
        outputs=row_values(outputs, "predict"),
    )


def row_values(data: Any, default: str) -> dict[str, list[Any]]:
    """``data`` (a DataFrame, an array or a dict of arrays) as name -> one value per row.

    A 2-D array row becomes one list value (``predict_proba`` gives ``[0.2, 0.8]`` per row).
    """
    import numpy as np

    if hasattr(data, "columns"):
        return {str(column): data[column].tolist() for column in data.columns}
    if isinstance(data, Mapping):
        return {str(name): _values(value, np) for name, value in data.items()}
    return {default: _values(data, np)}


def _values(value: Any, np: Any) -> list[Any]:
    array = value.to_numpy() if hasattr(value, "to_numpy") else np.asarray(value)
    return list(array.tolist())
