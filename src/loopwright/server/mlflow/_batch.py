"""MLflow's ``runs/log-batch`` body read straight into the metric writer's rows.

``MlflowClient().log_batch`` sends up to 1,000 points a request. Validating them with the
``LogBatch`` model and turning each into a ``Metric`` and then into a row built ~3,000 objects
only to take them apart (about a quarter of the request's time in process). A body of plain
points, as MLflow's client sends them (``key``, ``value``, ``timestamp``, ``step``), becomes the
rows in one loop here, with the model's checks. Anything else (a number given as a string,
``"NaN"``, a point naming a logged model or a dataset, a mistake) goes through ``LogBatch`` as
before, so what is accepted, what is stored and every error message stay the same; a test
compares the two paths.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from ...store.limits import INT64_MAX, INT64_MIN
from ...tracking._validate import metric_point
from ...tracking._writer import Point
from . import _messages as m

__all__ = ["Batch", "read_batch"]

# The fields of a point MLflow's client sends (MetricIn has three more, for logged models).
_PLAIN = frozenset(("key", "value", "timestamp", "step"))


@dataclass(frozen=True)
class Batch:
    """A validated log-batch request: its message, its points as rows and their keys.

    ``message.metrics`` holds the points only when they took the model's path (``linked``
    then says whether any names a logged model or a dataset); on the fast path it is empty.
    """

    message: m.LogBatch
    run_id: str
    rows: list[Point]
    keys: set[str]

    @property
    def linked(self) -> bool:
        return any(p.model_id or p.dataset_name or p.dataset_digest for p in self.message.metrics)


def read_batch(body: Any) -> Batch:
    """The request body as FastAPI parsed it from JSON, validated as ``LogBatch`` would."""
    if type(body) is dict and type(body.get("metrics")) is list:
        try:
            rest = m.LogBatch.model_validate({**body, "metrics": []})
        except ValidationError:
            rest = None
        # Without a run id, the model's path: it reports a bad point before the missing id.
        run_id = None if rest is None else rest.run_id or rest.run_uuid
        if rest is not None and run_id:
            rows = _plain_rows(run_id, body["metrics"])
            if rows is not None:
                keys = {row[1] for row in rows}
                if not any("\x00" in key for key in keys):
                    return Batch(rest, run_id, rows, keys)
    try:
        message = m.LogBatch.model_validate(body)
    except ValidationError as exc:
        # As FastAPI reports a body that fails its model (the MLflow error handler words it).
        errors = [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
        raise RequestValidationError(errors, body=body) from None
    run_id = message.run
    rows = [metric_point(run_id, p.key, p.value, p.step, p.timestamp) for p in message.metrics]
    return Batch(message, run_id, rows, {p.key for p in message.metrics})


def _plain_rows(run_id: str, points: list[Any]) -> list[Point] | None:
    """The rows of points that are plain (see the module docstring), else None."""
    rows: list[Point] = []
    append = rows.append
    for point in points:
        # Only MLflow's four fields: any other (model_id, dataset_name ...) takes the model's path.
        if type(point) is not dict or not _PLAIN.issuperset(point):
            return None
        key, value = point.get("key"), point.get("value")
        timestamp, step = point.get("timestamp"), point.get("step", 0)
        if (
            type(key) is not str
            or type(timestamp) is not int
            or type(step) is not int
            or not INT64_MIN <= timestamp <= INT64_MAX
            or not INT64_MIN <= step <= INT64_MAX
        ):
            return None
        if type(value) is not float:
            if type(value) is int and INT64_MIN <= value <= INT64_MAX:
                value = float(value)
            else:
                return None
        if value != value:  # NaN, stored as 0 with is_nan (as _validate.metric_point does)
            append((run_id, key, step, timestamp, 0.0, True))
        else:
            append((run_id, key, step, timestamp, value, False))
    return rows
