"""A brute-force point-in-time join in pandas: the reference the offline store must equal.

For every entity row and every view, the feature row with the same join keys whose event time
is ``<=`` the entity row's time and ``>=`` that time minus the TTL (both inclusive; a TTL of
None or 0 is unlimited), the latest event time winning, ties on event time going to the newest
created time (a missing created time is the oldest); no such row gives nulls. Every entity row
is kept, in its order, with its columns. Naive times are UTC; times compare at microseconds.
A null join key or time never matches. The benchmark (benchmarks/_features_*.py) imports it.

Deliberately simple (a dictionary of each key's rows, then a scan per entity row), so that it
is obviously right rather than fast: use it on up to some 10^4 entity rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["OracleView", "oracle"]

# (feature rows, join keys, event time column, created time column or None, TTL seconds or
# None, feature columns)
OracleView = tuple[pd.DataFrame, Sequence[str], str, str | None, int | None, Sequence[str]]

_MIN = np.iinfo(np.int64).min


def _micros(column: pd.Series) -> np.ndarray:
    """UTC microseconds since the epoch as int64 (nulls: the smallest int64)."""
    times = pd.to_datetime(column, utc=True).astype("datetime64[us, UTC]")
    values = times.to_numpy(dtype="datetime64[us]", na_value=np.datetime64("NaT"))
    micros = values.astype(np.int64)
    return np.where(pd.isna(times).to_numpy(), _MIN, micros)


def _key(values: Sequence[Any]) -> tuple[Any, ...] | None:
    if any(value is None or (isinstance(value, float) and np.isnan(value)) for value in values):
        return None
    if any(value is pd.NA or value is pd.NaT for value in values):
        return None
    return tuple(value.item() if isinstance(value, np.generic) else value for value in values)


def _pick_rows(entity: pd.DataFrame, view: OracleView, timestamp_field: str) -> list[int | None]:
    """Per entity row, the index (position) of its feature row in the view, or None."""
    frame, keys, ts_col, created_col, ttl, _features = view
    event = _micros(frame[ts_col])
    created = _micros(frame[created_col]) if created_col else np.full(len(frame), _MIN)
    by_key: dict[tuple[Any, ...], list[int]] = {}
    for position, values in enumerate(zip(*(frame[k].tolist() for k in keys), strict=True)):
        key = _key(values)
        if key is not None and event[position] != _MIN:
            by_key.setdefault(key, []).append(position)
    entity_times = _micros(entity[timestamp_field])
    window = None if not ttl else int(ttl) * 1_000_000
    picks: list[int | None] = []
    rows = zip(*(entity[k].tolist() for k in keys), strict=True) if keys else iter(())
    for index, values in enumerate(rows):
        key, t = _key(values), entity_times[index]
        best: int | None = None
        if key is not None and t != _MIN:
            for position in by_key.get(key, ()):
                e = event[position]
                if e > t or (window is not None and e < t - window):
                    continue
                if best is None or (e, created[position]) > (event[best], created[best]):
                    best = position
        picks.append(best)
    return picks


def oracle(
    entity_df: pd.DataFrame, views: Sequence[OracleView], timestamp_field: str
) -> pd.DataFrame:
    """The entity rows with each view's features joined point in time (see the module)."""
    result = entity_df.reset_index(drop=True).copy()
    for view in views:
        frame, keys, features = view[0], list(view[1]), view[5]
        # Only rows of keys the entity rows have can be picked: the rest is dropped up front
        # (vectorized), so that a sample of entity rows over millions of feature rows is quick.
        wanted = pd.MultiIndex.from_frame(result[keys].astype(object))
        frame = frame[pd.MultiIndex.from_frame(frame[keys].astype(object)).isin(wanted)]
        frame = frame.reset_index(drop=True)
        picks = _pick_rows(result, (frame, *view[1:]), timestamp_field)
        for feature in features:
            source = frame[feature]
            values = [None if pick is None else source.iloc[pick] for pick in picks]
            result[feature] = pd.Series(values, dtype="object")
    return result
