"""A model held in memory for serving: input checked before the model, outputs by name.

A :class:`ServedModel` wraps a :class:`~loopwright.registry.LoadedModel` (loaded once, through the
registry's hash-verifying, pickle-refusing loader) with what serving needs on every request:
the signature check (:meth:`Signature.validate`, so the errors name missing and mistyped
columns exactly as ``LoadedModel.predict`` does), a check for missing values the model cannot
take, the outputs it offers (``predict``, and ``predict_proba`` where the model has it), and
how to merge several requests' inputs into one batch and split the outputs back.
"""

from __future__ import annotations

import math
import statistics
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import InvalidInput, LoopwrightError, ModelFailed, SignatureError
from ._missing import allows_missing

if TYPE_CHECKING:
    from ..registry.packaging.loaded import LoadedModel
    from ..registry.packaging.signature import Signature
    from ._feature_input import FeatureInput

__all__ = ["ModelInput", "ServedModel", "merge", "select", "split"]

PREDICT = "predict"
PREDICT_PROBA = "predict_proba"


@dataclass(frozen=True)
class ModelInput:
    """One request's input as the model takes it: a DataFrame, an array or a dict of arrays."""

    data: Any
    rows: int


@dataclass
class ServedModel:
    """A loaded model addressed by ``name`` and registry ``version`` (``None`` for a folder).

    Attributes:
        uri: where it was loaded from (``models:/churn/3`` or a folder).
        version_name: the version requests name: the registry's number, else the package
            hash prefix.
        predict_ms: the median time of recent predict calls (infinite until the first).
        outputs: the output names a request may select, ``predict`` first.
        allows_missing: whether missing values (NaN) may reach the model (see ``_missing``).
        label: ``model 'churn' version 3`` (without the version for a folder), for messages.
        features: completes requests carrying only entity keys from the online store (a
            version trained on a feature service; set by the repository), else ``None``.
    """

    name: str
    version: int | None
    uri: str
    loaded: LoadedModel
    outputs: tuple[str, ...] = field(init=False)
    allows_missing: bool = field(init=False)
    version_name: str = field(init=False)
    label: str = field(init=False)
    features: FeatureInput | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        from ..registry.packaging.flavors import get_flavor

        self._flavor = get_flavor(self.loaded.flavor)
        self._recent_ms: deque[float] = deque(maxlen=15)
        proba = callable(getattr(self.loaded.raw, PREDICT_PROBA, None))
        self.outputs = (PREDICT, PREDICT_PROBA) if proba else (PREDICT,)
        self.allows_missing = allows_missing(self.loaded.raw)
        # The version requests name: the registry's number, else the package hash prefix.
        self.version_name = (
            str(self.version) if self.version is not None else (self.loaded.manifest.hash[:12])
        )
        # Named in every request's signature check: formatted once.
        self.label = f"model {self.name!r}" + (
            "" if self.version is None else f" version {self.version}"
        )

    def warm_up(self) -> None:
        """Predict once on the package's input example (first calls are slow; this also
        measures :attr:`predict_ms`). A model without an example, or whose example fails,
        is left as it is: its first request pays instead."""
        example = self.loaded.input_example
        if example is None:
            return
        try:
            data = self.prepare(example).data
            self.run(data, self.outputs)
            self.run(data, self.outputs)
        except (LoopwrightError, ValueError, TypeError):
            return

    @property
    def signature(self) -> Signature | None:
        return self.loaded.signature

    def check_outputs(self, names: Sequence[str]) -> tuple[str, ...]:
        """The selected output names, or an error naming the ones this model has."""
        unknown = [name for name in names if name not in self.outputs]
        if unknown:
            raise InvalidInput(
                f"{self.label} has no output {', '.join(map(repr, unknown))}; "
                f"outputs: {', '.join(self.outputs)}"
            )
        return tuple(dict.fromkeys(names)) or (PREDICT,)

    def prepare(self, data: Any) -> ModelInput:
        """``data`` checked against the signature and conformed to it, ready for the model.

        Raises:
            SignatureError: missing or mistyped columns, a wrong tensor shape or dtype.
            InvalidInput: no rows, or missing values the model does not accept.
        """
        signature = self.signature
        if signature is not None:
            data = signature.validate(data, what=self.label)
        rows = _rows(data)
        if rows == 0:
            raise InvalidInput(f"the request for {self.label} has no rows; send at least one")
        if not self.allows_missing:
            _refuse_missing(data, self.label)
        return ModelInput(data, rows)

    def run(self, data: Any, outputs: Sequence[str]) -> dict[str, Any]:
        """The model's outputs on checked ``data`` (from :meth:`prepare` or :func:`merge`).

        Raises:
            ModelFailed: the model raised; the original exception is its ``__cause__``.
        """
        result: dict[str, Any] = {}
        start = time.perf_counter()
        try:
            for name in outputs:
                if name == PREDICT:
                    result.update(_named(PREDICT, self._flavor.predict(self.loaded.raw, data)))
                else:
                    result[name] = getattr(self.loaded.raw, name)(data)
        except Exception as exc:
            raise ModelFailed(
                f"{self.label} failed while predicting: {type(exc).__name__}: {exc}"
            ) from exc
        self._recent_ms.append((time.perf_counter() - start) * 1000)
        return result

    @property
    def predict_ms(self) -> float:
        """The median time of the last predict calls, in ms (infinite before the first).

        A median, because on a shared machine one call in a few is preempted and takes ten
        times as long; where the next call runs (see batching) should not follow those.
        """
        if not self._recent_ms:
            return math.inf
        return statistics.median(self._recent_ms)


def merge(inputs: Sequence[ModelInput]) -> Any:
    """The inputs of several requests as one batch (rows stacked in order)."""
    first = inputs[0].data
    if len(inputs) == 1:
        return first
    if isinstance(first, Mapping):
        import numpy as np

        return {key: np.concatenate([item.data[key] for item in inputs]) for key in first}
    if hasattr(first, "iloc"):
        import pandas as pd

        return pd.concat([item.data for item in inputs], ignore_index=True)
    import numpy as np

    return np.concatenate([item.data for item in inputs])


def split(outputs: Mapping[str, Any], sizes: Sequence[int]) -> list[dict[str, Any]]:
    """Batch outputs cut back into one dict per request, ``sizes`` rows each."""
    parts: list[dict[str, Any]] = [{} for _ in sizes]
    for name, value in outputs.items():
        start = 0
        for part, size in zip(parts, sizes, strict=True):
            part[name] = (
                value.iloc[start : start + size]
                if hasattr(value, "iloc")
                else (value[start : start + size])
            )
            start += size
    return parts


def select(outputs: Mapping[str, Any], wanted: Sequence[str]) -> dict[str, Any]:
    """The part of ``outputs`` a request selected (``predict`` may have given several)."""
    if PREDICT in wanted:
        if PREDICT_PROBA in wanted:
            return dict(outputs)
        return {name: value for name, value in outputs.items() if name != PREDICT_PROBA}
    return {name: outputs[name] for name in wanted}


def _named(name: str, value: Any) -> dict[str, Any]:
    """A prediction as named outputs: a DataFrame or dict gives one output per column."""
    import numpy as np

    if hasattr(value, "columns"):
        return {str(column): value[column].to_numpy() for column in value.columns}
    if isinstance(value, Mapping):
        return {str(key): np.asarray(column) for key, column in value.items()}
    if hasattr(value, "to_numpy"):
        return {name: value.to_numpy()}
    return {name: np.asarray(value)}


def _rows(data: Any) -> int:
    if isinstance(data, Mapping):
        return len(next(iter(data.values()))) if data else 0
    shape = getattr(data, "shape", None)
    if shape is not None:
        return int(shape[0]) if len(shape) else 1
    return len(data)


def _refuse_missing(data: Any, label: str) -> None:
    import numpy as np

    problems: list[str] = []
    if hasattr(data, "columns"):
        mask = data.isna().to_numpy()  # one pass over the frame; columns named only if needed
        if mask.any():
            for index in mask.any(axis=0).nonzero()[0]:
                column = str(data.columns[index])
                problems.append(_missing_rows(f"column {column!r}", mask[:, index]))
    else:
        arrays = data.items() if isinstance(data, Mapping) else [(None, data)]
        for key, array in arrays:
            array = np.asarray(array)
            # One pass over the values first: rows are named only when some are missing
            # (this runs on every request; the per-row pass tripled its cost, 1.6 -> 4.8 us).
            if array.dtype.kind == "f" and np.isnan(array).any():
                missing = np.isnan(array).reshape(len(array), -1).any(axis=1)
                what = "the input tensor" if key is None else f"tensor {key!r}"
                problems.append(_missing_rows(what, missing))
    if problems:
        raise SignatureError(
            f"input has missing values (null or NaN) that {label} does not accept: "
            f"{'; '.join(problems)}; fill them in before sending",
            problems,
        )


def _missing_rows(what: str, missing: Any) -> str:
    rows = [int(i) for i in missing.nonzero()[0][:5]]
    more = "" if int(missing.sum()) <= 5 else " ..."
    return f"{what} has missing values in rows {rows}{more}"
