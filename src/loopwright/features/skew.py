"""Training/serving skew: the features a deployment served against the offline store's.

A deployment serving a model version tagged ``loopwright.feature_service`` (``svc@v2``) logs
the completed inputs of every request: the join keys, the request data and the feature values
it served (``input.<column>`` in the prediction log, serving/_feature_input.py). The check
samples those rows, asks the offline store for the same service at the same keys and request
times (a point-in-time join, so the offline value is what the online store *should* have
served), and compares them feature by feature. A stale online store (not materialized since
the source changed), a push that bypassed the source, or an on-demand function that differs
between training and serving show up as mismatches.

Sampling: the window is cut into up to :data:`SLICES` equal slices and the newest ``sample``
rows of each are read (bounded reads, spread over the window rather than only its newest
minutes), then ``sample`` rows are drawn from them at random with a seed fixed by the
deployment and window, so the same check twice compares the same rows.

Comparison, per feature over the sampled rows: both values null, nothing; served null,
``missing_online``; offline null, ``missing_offline``; else ``compared``, and ``mismatched``
when numbers differ by more than ``tolerance * max(1, |offline|)``, or other values are unequal.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import random
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from numbers import Real
from typing import TYPE_CHECKING, Any

from ..errors import InvalidInput, NotFound, StoreError
from .entities import FeatureSkew, SkewReport

if TYPE_CHECKING:
    import pandas as pd

    from ..registry.protocol import Registry
    from ..serving._prediction_protocol import Predictions
    from ..serving.protocol import Deployments
    from ._selection import Selection
    from .entities import TrainingSet

__all__ = ["MAX_SAMPLE", "SERVICE_TAG", "SLICES", "check_skew"]

SERVICE_TAG = "loopwright.feature_service"
MAX_SAMPLE = 100_000
SLICES = 10
EXAMPLES = 5
# The entity rows' time column handed to the offline store: the request's arrival time.
TIME_COLUMN = "loopwright_request_at"
_INPUT = "input."
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def check_skew(
    *,
    deployment: str,
    sample: int,
    since_ms: int | None,
    until_ms: int | None,
    tolerance: float,
    predictions: Predictions,
    deployments: Deployments,
    registry: Registry,
    historical: Callable[..., TrainingSet],
    now_ms: int,
    resolve: Callable[..., Selection] | None = None,
) -> SkewReport:
    """Compare a sample of what ``deployment`` served with the offline store, per feature.

    Args:
        deployment: the deployment's name.
        sample: at most this many logged rows (1..:data:`MAX_SAMPLE`).
        since_ms, until_ms: the window of request times (UTC ms, ``since <= t < until``;
            None: unbounded on that side).
        tolerance: the relative difference numbers may have (``>= 0``).
        predictions: the prediction log reader.
        deployments: the deployment service (the deployment must exist).
        registry: the registry (a logged model version's ``loopwright.feature_service`` tag).
        historical: the offline store, ``historical(entity_rows, service_ref,
            timestamp_field=..., full_feature_names=...)`` -> :class:`TrainingSet`
            (``FeatureStore.get_historical_features``).
        now_ms: the check's time (``SkewReport.checked_at``).
        resolve: ``resolve(service_ref, full_feature_names=False)`` -> :class:`Selection`
            (``DefinitionStore.resolve``): which logged columns are join keys, request data
            and features (``view__feature`` when the model was trained with full names).
            Required: a caller that has no definitions cannot tell them apart.

    Raises:
        NotFound: no such deployment; no logged prediction in the window; or no logged model
            version records a feature service.
        InvalidInput: a bad argument, or the log lacks a join key or request field column.
    """
    _check_arguments(sample, since_ms, until_ms, tolerance)
    if resolve is None:
        raise InvalidInput(
            "check_skew needs resolve= (the definition store's resolve) to tell the logged "
            "join keys and request data from the features; pass DefinitionStore.resolve"
        )
    deployments.get(deployment)  # NotFound names the deployments there are
    logged = _sample_rows(predictions, deployment, sample, since_ms, until_ms)
    if logged is None:
        raise NotFound(
            f"deployment {deployment!r} has no logged prediction {_window(since_ms, until_ms)}; "
            "serve traffic with the prediction log on, or widen since / until"
        )
    service, rows = _rows_of_service(logged, registry, deployment)
    selection = resolve(service)
    full_names = False
    if not _served_any(rows, selection):
        # A model trained with full feature names (view__feature) is served and logged so.
        full = resolve(service, full_feature_names=True)
        if _served_any(rows, full):
            selection, full_names = full, True
    entity_rows = _entity_rows(rows, selection, deployment)
    training_set = historical(
        entity_rows, service, timestamp_field=TIME_COLUMN, full_feature_names=full_names
    )
    offline = training_set.to_pandas()
    if len(offline) != len(entity_rows):
        raise StoreError(
            f"the offline store returned {len(offline)} rows for {len(entity_rows)} entity rows "
            f"of {service!r}; a point-in-time join must keep every row"
        )
    keys = [name for name, _ in selection.join_keys]
    times = _ms(rows["timestamp"])
    results = tuple(
        _compare(ref, column, rows, offline, keys, times, tolerance)
        for ref, column in feature_columns(selection)
    )
    return SkewReport(
        deployment=deployment,
        service=service,
        sampled=len(rows),
        since=since_ms,
        until=until_ms,
        features=results,
        checked_at=now_ms,
    )


def _served_any(rows: pd.DataFrame, selection: Selection) -> bool:
    return any(f"{_INPUT}{column}" in rows.columns for column in selection.columns)


def feature_columns(selection: Selection) -> list[tuple[str, str]]:
    """``(view:feature, output column)`` of every feature the selection serves, in output
    order (hidden views only feed on-demand views: not served, not compared)."""
    by_column: dict[str, str] = {}
    picks: list[Any] = [view for view in selection.views if not view.hidden]
    for pick in [*picks, *selection.on_demand]:
        for (feature, _), column in zip(pick.features, pick.columns, strict=True):
            by_column.setdefault(column, f"{pick.name}:{feature}")
    return [(by_column.get(column, column), column) for column in selection.columns]


# --- sampling -----------------------------------------------------------------------------------


def _check_arguments(
    sample: int, since_ms: int | None, until_ms: int | None, tolerance: float
) -> None:
    if isinstance(sample, bool) or not isinstance(sample, int) or not 1 <= sample <= MAX_SAMPLE:
        raise InvalidInput(
            f"skew sample {sample!r} must be a whole number from 1 to {MAX_SAMPLE:,}"
        )
    if (
        isinstance(tolerance, bool)
        or not isinstance(tolerance, Real)
        or not math.isfinite(tolerance)
        or tolerance < 0
    ):
        raise InvalidInput(f"skew tolerance {tolerance!r} must be a finite number >= 0 (e.g. 1e-6)")
    if since_ms is not None and until_ms is not None and since_ms >= until_ms:
        raise InvalidInput(
            f"skew window: since ({since_ms}) must be before until ({until_ms}), in UTC ms"
        )


def _sample_rows(
    predictions: Predictions,
    deployment: str,
    sample: int,
    since_ms: int | None,
    until_ms: int | None,
) -> pd.DataFrame | None:
    import pandas as pd

    low, high = since_ms, until_ms
    if low is None or high is None:
        span = next((d for d in predictions.deployments() if d.name == deployment), None)
        if span is None or span.first is None or span.last is None:
            return None
        low = _to_ms(span.first) if low is None else low
        high = _to_ms(span.last) + 1 if high is None else high
        if low >= high:
            return None
    slices = max(1, min(SLICES, sample, high - low))
    edges = [low + (high - low) * i // slices for i in range(slices + 1)]
    frames = [
        predictions.read(deployment, since=_utc(a), until=_utc(b), limit=sample)
        for a, b in itertools.pairwise(edges)
    ]
    frames = [frame for frame in frames if len(frame)]
    if not frames:
        return None
    pool = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    if len(pool) > sample:
        seed = hashlib.blake2b(f"{deployment}|{low}|{high}".encode(), digest_size=8).digest()
        chosen = sorted(random.Random(seed).sample(range(len(pool)), sample))
        pool = pool.iloc[chosen]
    return pool.reset_index(drop=True)


def _rows_of_service(
    logged: pd.DataFrame, registry: Registry, deployment: str
) -> tuple[str, pd.DataFrame]:
    """The feature service of the newest logged row whose model version records one, and the
    sampled rows served by versions recording that same service."""
    services: dict[tuple[str, int], str | None] = {}
    for model, version in (
        logged[["model", "model_version"]].drop_duplicates().itertuples(index=False)
    ):
        if model is None or version is None or _null(version):
            continue
        found = registry.get_version(str(model), int(version))
        services[(str(model), int(version))] = found.tags.get(SERVICE_TAG)
    service_of = [
        None if _null(v) else services.get((str(m), int(v)))
        for m, v in zip(logged["model"], logged["model_version"], strict=True)
    ]
    chosen = next((s for s in reversed(service_of) if s), None)
    if chosen is None:
        versions = ", ".join(sorted(f"{m}/{v}" for m, v in services)) or "none"
        raise NotFound(
            f"the model versions deployment {deployment!r} logged ({versions}) record no feature "
            f"service (tag {SERVICE_TAG!r}); train on a training set of a feature service "
            "(save_training_set with run_id) and register the model from that run"
        )
    keep = [s == chosen for s in service_of]
    return chosen, logged[keep].reset_index(drop=True)


def _entity_rows(rows: pd.DataFrame, selection: Selection, deployment: str) -> pd.DataFrame:
    """The logged join keys and request data, and the request time, as offline entity rows."""
    import pandas as pd

    wanted = [name for name, _ in (*selection.join_keys, *selection.request_fields)]
    missing = [name for name in wanted if f"{_INPUT}{name}" not in rows.columns]
    if missing:
        raise InvalidInput(
            f"the prediction log of deployment {deployment!r} has no column(s) "
            f"{[_INPUT + name for name in missing]}: the skew check needs the join keys and "
            "request data serving logs with the features it fetched (serve the model version "
            "tagged with its feature service, with the prediction log on)"
        )
    # The log unites files by column name: a key column that another model's files lack reads
    # back as float with NaN, so each is cast back to its declared type (nulls kept).
    frame = pd.DataFrame(
        {
            name: _typed(rows[f"{_INPUT}{name}"].reset_index(drop=True), dtype)
            for name, dtype in (*selection.join_keys, *selection.request_fields)
        }
    )
    frame[TIME_COLUMN] = pd.to_datetime(rows["timestamp"], utc=True).reset_index(drop=True)
    return frame


_PANDAS_TYPES = {
    "int32": "Int32",
    "int64": "Int64",
    "float32": "float32",
    "float64": "float64",
    "bool": "boolean",
}


def _typed(column: pd.Series[Any], dtype: str) -> pd.Series[Any]:
    import pandas as pd

    if dtype == "timestamp":
        return pd.to_datetime(column, utc=True)
    target = _PANDAS_TYPES.get(dtype)
    if target is None:  # string, bytes: as logged
        return column
    try:
        return column.astype(target)
    except (TypeError, ValueError):  # the offline store names the column and its type
        return column


# --- comparing ----------------------------------------------------------------------------------


def _compare(
    ref: str,
    column: str,
    rows: pd.DataFrame,
    offline: pd.DataFrame,
    keys: Sequence[str],
    times: Sequence[int],
    tolerance: float,
) -> FeatureSkew:
    logged = f"{_INPUT}{column}"
    served_values = rows[logged].tolist() if logged in rows.columns else [None] * len(rows)
    if column not in offline.columns:
        raise StoreError(
            f"the offline store's training set has no column {column!r} for feature {ref!r}; "
            f"columns: {', '.join(map(str, offline.columns))}"
        )
    offline_values = offline[column].tolist()
    key_values = {key: rows[f"{_INPUT}{key}"].tolist() for key in keys}
    compared = mismatched = missing_online = missing_offline = 0
    examples: list[Mapping[str, Any]] = []
    for index, (served, expected) in enumerate(zip(served_values, offline_values, strict=True)):
        served_null, expected_null = _null(served), _null(expected)
        if served_null and expected_null:
            continue
        if served_null:
            missing_online += 1
            continue
        if expected_null:
            missing_offline += 1
            continue
        compared += 1
        if _equal(served, expected, tolerance):
            continue
        mismatched += 1
        if len(examples) < EXAMPLES:
            examples.append(
                {
                    "key": {key: _plain(values[index]) for key, values in key_values.items()},
                    "time": times[index],
                    "served": _plain(served),
                    "offline": _plain(expected),
                }
            )
    return FeatureSkew(
        feature=ref,
        compared=compared,
        mismatched=mismatched,
        missing_online=missing_online,
        missing_offline=missing_offline,
        examples=tuple(examples),
    )


def _equal(served: Any, expected: Any, tolerance: float) -> bool:
    if _number(served) and _number(expected):
        a, b = float(served), float(expected)
        return abs(a - b) <= tolerance * max(1.0, abs(b))
    try:
        return bool(served == expected)
    except (TypeError, ValueError):  # arrays: compare their items
        return bool(_plain(served) == _plain(expected))


def _number(value: Any) -> bool:
    import numpy as np

    return isinstance(value, Real) and not isinstance(value, bool | np.bool_)


def _null(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float):
        return math.isnan(value)
    import pandas as pd

    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):  # a list or array value: not a missing one
        return False


def _plain(value: Any) -> Any:
    """A JSON-safe copy of a value (NumPy scalars and arrays, timestamps as UTC ms)."""
    import numpy as np
    import pandas as pd

    if isinstance(value, pd.Timestamp | datetime):
        return _to_ms(value)
    if isinstance(value, np.ndarray):
        return [_plain(item) for item in value.tolist()]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, bytes):
        return value.hex()
    return value


# --- time -----------------------------------------------------------------------------------------


def _ms(series: pd.Series[Any]) -> list[int]:
    import pandas as pd

    stamps = pd.to_datetime(series, utc=True)
    return [int(stamp.value // 1_000_000) for stamp in stamps]


def _to_ms(moment: datetime) -> int:
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return (aware - _EPOCH) // timedelta(milliseconds=1)


def _utc(ms: int) -> datetime:
    return _EPOCH + timedelta(milliseconds=ms)


def _window(since_ms: int | None, until_ms: int | None) -> str:
    if since_ms is None and until_ms is None:
        return "at all"
    low = "the start" if since_ms is None else _utc(since_ms).isoformat()
    high = "now" if until_ms is None else _utc(until_ms).isoformat()
    return f"from {low} to {high}"
