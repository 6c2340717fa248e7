"""The monitoring benchmark's data: a reference and a current frame with known shifts, on disk once.

Follows the anchors' generator (../shared/anchors/drift.md section 3.1): ``--num-cols`` numeric
columns cycling through normal, lognormal, uniform, exponential and Poisson(30), and
``--cat-cols`` categorical string columns with 4, 6, 10, 20, 50 ... Zipf-like categories. Both
frames come from the same generator, each column from its own seeded stream (so a column's values
do not depend on how many columns there are), and the current frame is shifted in five columns:

- num_00 (normal): mean + 0.5 sd                  - a real shift, every sensible test flags it
- num_01 (lognormal): spread x 1.3 about the mean - a real shift (decile PSI ~0.125)
- num_02 (uniform): mean + 0.03 sd                - negligible; effect sizes should not flag it
- cat_0 (4 categories): popularity order reversed - a real shift
- cat_1 (6 categories): +2 pp on one category     - small; effect sizes should not flag it

Every other column is identically distributed in both frames: a flag there is a false alarm.
The frames are written to Parquet (categorical columns as Arrow strings, so pandas reads them as
``object`` like the anchors' frames) under a cache folder named by the parameters, once; every
contender reads the same two files.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

# Bump when the generator changes, so an old cache is not read as the new data.
GENERATOR_VERSION = 1
CARDINALITIES = (4, 6, 10, 20, 50)
NUMERIC_KINDS = ("normal", "lognormal", "uniform", "exponential", "poisson")
SHIFTS = {
    "num_00": "mean +0.5 sd",
    "num_01": "spread x1.3",
    "num_02": "mean +0.03 sd (negligible)",
    "cat_0": "order reversed",
    "cat_1": "+2 pp (small)",
}
# The columns a test with a sound default should flag: the real shifts, not the negligible ones.
EXPECTED = ("num_00", "num_01", "cat_0")


@dataclass(frozen=True)
class Frames:
    """Where one generated pair lives, and its columns by kind."""

    reference: Path
    current: Path
    numeric: tuple[str, ...]
    categorical: tuple[str, ...]

    @property
    def columns(self) -> tuple[str, ...]:
        return self.numeric + self.categorical


def numeric_names(count: int) -> tuple[str, ...]:
    return tuple(f"num_{i:02d}" for i in range(count))


def categorical_names(count: int) -> tuple[str, ...]:
    return tuple(f"cat_{i}" for i in range(count))


def _rng(seed: int, side: int, column: int) -> np.random.Generator:
    return np.random.default_rng([seed, side, column])


def numeric_column(index: int, rows: int, rng: np.random.Generator, *, shifted: bool) -> np.ndarray:
    """Column ``num_{index}``; ``shifted`` applies that column's shift, if it has one."""
    kind = NUMERIC_KINDS[index % len(NUMERIC_KINDS)]
    if kind == "normal":
        loc, scale = float(index), 1.0 + index % 3
        values = rng.normal(loc, scale, rows)
        sd = scale
    elif kind == "lognormal":
        values = rng.lognormal(0.0, 0.5, rows)
        sd = float(np.sqrt((np.exp(0.25) - 1) * np.exp(0.25)))
    elif kind == "uniform":
        values = rng.uniform(0.0, 10.0, rows)
        sd = 10.0 / np.sqrt(12.0)
    elif kind == "exponential":
        values = rng.exponential(2.0, rows)
        sd = 2.0
    else:
        return rng.poisson(30.0, rows).astype(np.int64)
    if shifted and index == 0:
        values += 0.5 * sd
    elif shifted and index == 1:
        mean = float(np.exp(0.125))  # the lognormal(0, 0.5) mean: spread about it, mean unchanged
        values = mean + 1.3 * (values - mean)
    elif shifted and index == 2:
        values += 0.03 * sd
    return values


def category_probabilities(index: int, *, shifted: bool) -> np.ndarray:
    """Zipf-like (1/rank) popularity of ``cat_{index}``'s categories, shifted if asked."""
    k = CARDINALITIES[index % len(CARDINALITIES)]
    p = 1.0 / np.arange(1, k + 1)
    p /= p.sum()
    if shifted and index == 0:
        p = p[::-1].copy()
    elif shifted and index == 1:
        # +2 percentage points on the third category, taken from the others in proportion.
        gain = 0.02
        others = np.ones(k, dtype=bool)
        others[2] = False
        p[others] *= (1.0 - p[2] - gain) / p[others].sum()
        p[2] += gain
    return p


def categorical_column(
    index: int, rows: int, rng: np.random.Generator, *, shifted: bool
) -> pa.Array:
    p = category_probabilities(index, shifted=shifted)
    labels = pa.array([f"c{index}_{j:02d}" for j in range(len(p))])
    codes = rng.choice(len(p), size=rows, p=p).astype(np.int32)
    return pa.DictionaryArray.from_arrays(pa.array(codes), labels).cast(pa.string())


def frame(rows: int, num_cols: int, cat_cols: int, seed: int, *, current: bool) -> pa.Table:
    """The reference (``current=False``) or the shifted current frame."""
    side = 1 if current else 0
    columns: dict[str, pa.Array] = {}
    for i, name in enumerate(numeric_names(num_cols)):
        columns[name] = pa.array(numeric_column(i, rows, _rng(seed, side, i), shifted=current))
    for i, name in enumerate(categorical_names(cat_cols)):
        rng = _rng(seed, side, 1000 + i)
        columns[name] = categorical_column(i, rows, rng, shifted=current)
    return pa.table(columns)


def ensure(cache: Path, rows: int, num_cols: int = 20, cat_cols: int = 5, seed: int = 42) -> Frames:
    """The pair for these parameters, generated and written under ``cache`` when missing."""
    if num_cols < 3 or cat_cols < 2:
        raise ValueError(
            f"{num_cols} numeric and {cat_cols} categorical columns: the shifted columns "
            "need at least 3 numeric and 2 categorical; pass larger --num-cols/--cat-cols"
        )
    folder = cache / f"v{GENERATOR_VERSION}-rows{rows}-num{num_cols}-cat{cat_cols}-seed{seed}"
    frames = Frames(
        folder / "reference.parquet",
        folder / "current.parquet",
        numeric_names(num_cols),
        categorical_names(cat_cols),
    )
    folder.mkdir(parents=True, exist_ok=True)
    for path, current in ((frames.reference, False), (frames.current, True)):
        if path.exists():
            continue
        table = frame(rows, num_cols, cat_cols, seed, current=current)
        # Written aside then renamed: an interrupted run leaves no half file to be read later.
        partial = path.with_name(f".{path.name}.{os.getpid()}")
        pq.write_table(table, partial, row_group_size=256 * 1024)
        partial.replace(path)
    return frames
