"""The feature-store benchmark's data, generated as the anchor did (featurestore.md section 3).

- ``features.parquet``: ``entity_id`` (int64, 10,000 entities), ``event_timestamp`` (uniform over
  90 days, whole seconds), ``created_timestamp`` (event + U[0, 1 h)), ``f0..f9`` (float32). 1% of
  the rows are exact ``(entity_id, event_timestamp)`` duplicates of another row with a later
  created time and other values (the created-time tie-break). ``late`` > 0 appends that share of
  late rows at the end of the file: old event times that arrive days later (created = event +
  U[1, 7) days), so they land between rows already present.
- ``entities.parquet``: ``entity_id``, ``event_timestamp``; unique pairs, shuffled; 2% in the 7
  days before the first feature row, the rest uniform over the 90 days plus one.

Timestamps are UTC microseconds; row groups of 1M rows; the generator is seeded (42). Written
once per size under the data folder and reused (``meta.json`` records how they were made).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ENTITIES = 10_000
FEATURES = tuple(f"f{i}" for i in range(10))
TTL_SECONDS = 24 * 3600
START_US = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z
DAY_US = 86_400 * 1_000_000
HOUR_US = 3_600 * 1_000_000
ROW_GROUP = 1_000_000
SEED = 42


@dataclass(frozen=True)
class Size:
    name: str
    rows: int  # feature rows, N
    entity_rows: int  # entity rows, M
    late: float = 0.0  # share of late rows appended to the feature rows


SIZES = {
    "small": Size("small", 100_000, 10_000),
    "1m": Size("1m", 1_000_000, 100_000),
    "10m": Size("10m", 10_000_000, 1_000_000),
    # The correctness check's data: the small shape with 1% late rows.
    "check": Size("check", 100_000, 10_000, late=0.01),
}


@dataclass(frozen=True)
class Data:
    folder: Path
    size: Size

    @property
    def features(self) -> Path:
        return self.folder / "features.parquet"

    @property
    def entities(self) -> Path:
        return self.folder / "entities.parquet"


def _timestamps(us: np.ndarray) -> pa.Array:
    return pa.array(us, type=pa.timestamp("us", tz="UTC"))


def _feature_table(rng: np.random.Generator, size: Size) -> pa.Table:
    dups = size.rows // 100
    late = int(size.rows * size.late)
    base = size.rows - dups - late
    entity = rng.integers(0, ENTITIES, base, dtype=np.int64)
    event = START_US + rng.integers(0, 90 * 86_400, base, dtype=np.int64) * 1_000_000
    created = event + rng.integers(0, HOUR_US, base, dtype=np.int64)
    # Duplicates: the same (entity, event) as a random earlier row, created later (by at most
    # an hour), other values.
    pick = rng.integers(0, base, dups)
    dup_created = created[pick] + rng.integers(1_000_000, HOUR_US, dups, dtype=np.int64)
    order = rng.permutation(base + dups)  # the duplicates are spread through the file
    entity = np.concatenate([entity, entity[pick]])[order]
    event = np.concatenate([event, event[pick]])[order]
    created = np.concatenate([created, dup_created])[order]
    if late:
        late_event = START_US + rng.integers(0, 90 * 86_400, late, dtype=np.int64) * 1_000_000
        entity = np.concatenate([entity, rng.integers(0, ENTITIES, late, dtype=np.int64)])
        event = np.concatenate([event, late_event])
        created = np.concatenate(
            [created, late_event + rng.integers(DAY_US, 7 * DAY_US, late, dtype=np.int64)]
        )
    values = rng.random((len(FEATURES), size.rows), dtype=np.float32)
    columns = {
        "entity_id": pa.array(entity),
        "event_timestamp": _timestamps(event),
        "created_timestamp": _timestamps(created),
    }
    columns.update({name: pa.array(values[i]) for i, name in enumerate(FEATURES)})
    return pa.table(columns)


def _entity_table(rng: np.random.Generator, size: Size, first_event_us: int) -> pa.Table:
    before = size.entity_rows * 2 // 100
    seen: set[tuple[int, int]] = set()
    entity: list[int] = []
    event: list[int] = []
    while len(entity) < size.entity_rows:  # unique (entity, time) pairs
        need = size.entity_rows - len(entity)
        early = max(0, before - sum(1 for t in event if t < first_event_us))
        ids = rng.integers(0, ENTITIES, need, dtype=np.int64)
        times = np.concatenate(
            [
                first_event_us - rng.integers(1, 7 * 86_400, min(early, need)) * 1_000_000,
                START_US + rng.integers(0, 91 * 86_400, need - min(early, need)) * 1_000_000,
            ]
        )
        for key in zip(ids.tolist(), times.tolist(), strict=True):
            if key not in seen:
                seen.add(key)
                entity.append(key[0])
                event.append(key[1])
    order = rng.permutation(len(entity))
    return pa.table(
        {
            "entity_id": pa.array(np.asarray(entity, dtype=np.int64)[order]),
            "event_timestamp": _timestamps(np.asarray(event, dtype=np.int64)[order]),
        }
    )


def ensure(root: Path, size_name: str) -> Data:
    """The size's data under ``root/<size>``, generated when missing or made differently."""
    size = SIZES[size_name]
    data = Data(root / size.name, size)
    meta = {**asdict(size), "seed": SEED, "entities": ENTITIES, "features": list(FEATURES)}
    marker = data.folder / "meta.json"
    if marker.exists() and json.loads(marker.read_text()) == meta:
        return data
    data.folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(SEED)
    features = _feature_table(rng, size)
    pq.write_table(features, data.features, row_group_size=ROW_GROUP)
    first = int(np.min(features.column("event_timestamp").cast(pa.int64()).to_numpy()))
    del features
    pq.write_table(_entity_table(rng, size, first), data.entities, row_group_size=ROW_GROUP)
    marker.write_text(json.dumps(meta))
    return data
