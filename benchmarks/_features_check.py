"""Correctness of a training set: each tool's result against the brute-force oracle
(tests/features/_oracle.py, the one the offline store's tests use) and against a reference
result (Feast's duckdb store), matched on ``(entity_id, event_timestamp)`` (unique in the
generated entity rows; every tool may reorder rows, so order is not compared here).

Per tool: entity rows dropped (asked, not in the result), extra rows, and rows whose features
differ (a null against a value, or another value; float32 compared exactly, as every tool
copies the stored values). The oracle runs on all entity rows up to ``oracle_rows`` and on a
seeded sample beyond, over the feature rows of the sampled entities only (the same answer: a
row's features come from its own entity's rows).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "features"))

FEATURES = [f"f{i}" for i in range(10)]
KEY = ["entity_id", "event_timestamp"]


@dataclass(frozen=True)
class Verdict:
    tool: str
    asked: int
    returned: int
    dropped: int
    dropped_null: int  # of the dropped rows, those whose features should all be null
    extra: int
    mismatched: int  # of the rows compared
    compared: int
    against: str
    in_order: bool | None = None  # the entity rows' order kept (None: not checked)

    def line(self) -> str:
        return (
            f"{self.tool:22} vs {self.against:14} rows {self.returned:>9,} of {self.asked:>9,}"
            f"  dropped {self.dropped:>7,} ({self.dropped_null:>7,} should be null)"
            f"  extra {self.extra:>3,}"
            f"  mismatched {self.mismatched:>6,} of {self.compared:>9,} compared"
            + ("" if self.in_order is None else f"  order kept: {self.in_order}")
        )


def _frame(path: Path) -> pd.DataFrame:
    """A result's key and feature columns, the event time as UTC microseconds, features float32
    with NaN for null."""
    table = pq.read_table(path, columns=[*KEY, *FEATURES])
    frame = pd.DataFrame({"entity_id": table.column("entity_id").to_numpy()})
    times = table.column("event_timestamp")
    if pa.types.is_timestamp(times.type):
        times = times.cast(pa.timestamp("us", tz="UTC"))
    frame["event_timestamp"] = times.cast(pa.int64()).to_numpy()
    for name in FEATURES:
        frame[name] = table.column(name).cast(pa.float32()).to_numpy(zero_copy_only=False)
    return frame


def _compare(tool: str, result: pd.DataFrame, expected: pd.DataFrame, against: str) -> Verdict:
    """``result`` against ``expected`` (both as :func:`_frame` makes them), on expected's keys."""
    merged = expected.merge(
        result, on=KEY, how="left", suffixes=("", "_got"), indicator=True, validate="1:m"
    )
    found = merged[merged["_merge"] == "both"]
    missing = merged[merged["_merge"] == "left_only"]
    dropped = len(missing)
    dropped_null = int(missing[FEATURES].isna().all(axis=1).sum())
    differ = np.zeros(len(found), dtype=bool)
    for name in FEATURES:
        want, got = found[name].to_numpy(), found[f"{name}_got"].to_numpy()
        both_null = np.isnan(want) & np.isnan(got)
        differ |= ~(both_null | (want == got))
    keys = pd.MultiIndex.from_frame(expected[KEY])
    extra = int((~pd.MultiIndex.from_frame(result[KEY]).isin(keys)).sum())
    extra += len(found) - found[KEY].drop_duplicates().shape[0]  # duplicated rows
    return Verdict(
        tool=tool,
        asked=len(expected),
        returned=len(result),
        dropped=dropped,
        dropped_null=dropped_null,
        extra=extra,
        mismatched=int(differ.sum()),
        compared=len(found),
        against=against,
    )


def oracle_frame(
    features: Path, entities: Path, ttl: int, oracle_rows: int, seed: int = 42
) -> pd.DataFrame:
    """The oracle's answer for the entity rows (all, or a seeded sample of ``oracle_rows``)."""
    from _oracle import oracle

    entity_df = pq.read_table(entities).to_pandas()
    if len(entity_df) > oracle_rows:
        entity_df = entity_df.sample(n=oracle_rows, random_state=seed).reset_index(drop=True)
    wanted = pa.array(entity_df["entity_id"].unique())
    table = pq.read_table(features, filters=[("entity_id", "in", wanted)])
    feature_df = table.to_pandas()
    view = (feature_df, ["entity_id"], "event_timestamp", "created_timestamp", ttl, FEATURES)
    answer = oracle(entity_df, [view], "event_timestamp")
    frame = pd.DataFrame({"entity_id": answer["entity_id"].to_numpy(dtype=np.int64)})
    times = pd.to_datetime(answer["event_timestamp"], utc=True).astype("datetime64[us, UTC]")
    frame["event_timestamp"] = times.to_numpy(dtype="datetime64[us]").astype(np.int64)
    for name in FEATURES:
        frame[name] = pd.to_numeric(answer[name], errors="raise").to_numpy(dtype=np.float32)
    return frame


def check(
    results: dict[str, Path],
    *,
    features: Path,
    entities: Path,
    ttl: int,
    oracle_rows: int,
    reference: str | None,
) -> list[Verdict]:
    """Every result against the oracle, then against ``reference`` (one of ``results``) on all
    entity rows."""
    expected = oracle_frame(features, entities, ttl, oracle_rows)
    frames = {tool: _frame(path) for tool, path in results.items()}
    sampled = pd.MultiIndex.from_frame(expected[KEY])
    against = "oracle" if len(expected) == len(_entity_keys(entities)) else "oracle sample"
    verdicts = [
        # On a sample, a result's rows outside it are not extra: only the sampled keys count.
        _compare(tool, frame[pd.MultiIndex.from_frame(frame[KEY]).isin(sampled)], expected, against)
        for tool, frame in frames.items()
    ]
    asked = _entity_keys(entities)
    if reference in frames:
        base = frames[reference].merge(asked, on=KEY, how="right")
        for tool, frame in frames.items():
            if tool != reference:
                verdict = _compare(tool, frame, base, reference)
                in_order = len(frame) == len(asked) and bool(
                    (frame[KEY].to_numpy() == asked[KEY].to_numpy()).all()
                )
                verdicts.append(replace(verdict, in_order=in_order))
    return verdicts


def _entity_keys(entities: Path) -> pd.DataFrame:
    """All asked keys (a reference that dropped rows still counts them as asked)."""
    table = pq.read_table(entities, columns=KEY)
    times = table.column("event_timestamp").cast(pa.timestamp("us", tz="UTC")).cast(pa.int64())
    return pd.DataFrame(
        {"entity_id": table.column("entity_id").to_numpy(), "event_timestamp": times.to_numpy()}
    )


def summary(verdicts: list[Verdict]) -> list[dict[str, Any]]:
    return [vars(verdict) for verdict in verdicts]
