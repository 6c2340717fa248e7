"""The calibration table of every registered test (``benchmarks/monitoring.py --calibration``).

For each size n (rows per side) and each of ``pairs`` seeded pairs, one reference and one current
table are drawn with three null columns (identical distributions on both sides) and three
shifted ones:

- ``null_normal``: normal(0, 1);  ``null_poisson``: Poisson(30) (integers: ties);
  ``null_cat``: 10 Zipf-like (1/rank) categories;
- ``mean+0.2sd``: normal(0, 1) -> normal(0.2, 1);  ``scale x1.3``: normal(0, 1) -> normal(0, 1.3);
  ``cat +5pp``: the Zipf categories with 5 percentage points more on the third.

Column and quality tests run in one ``compare(reference, current, tests=..., p_values=True,
correction="none")`` per pair: without a correction each column's verdict is that test's alone,
at its default threshold and its default rule (an effect size flags when it crosses its threshold
and its null test rejects at alpha; a p-value test when p < alpha). Multivariate tests (they
compare whole rows) get their own tables: the three null columns, then each shifted column with
the two null numeric columns; they cost far more per pair, so their power is estimated on the
first ``multivariate_power_pairs`` pairs only.

False-alarm rate: the share of null pairs whose verdict is "drifted" (and, where the test gives a
p-value, the share with p < alpha); a test is calibrated when both are within alpha + 2 standard
errors, sqrt(alpha (1 - alpha) / pairs), the binomial noise of the estimate. Power: the share of
shifted pairs the default verdict flags (p < alpha in brackets).
"""

from __future__ import annotations

import json
import math
import os
import time
from collections import defaultdict
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

NULL_COLUMNS = {"null_normal": "numeric", "null_poisson": "numeric", "null_cat": "categorical"}
SHIFTED_COLUMNS = {"mean+0.2sd": "numeric", "scale x1.3": "numeric", "cat +5pp": "categorical"}
CATEGORIES = 10


def _zipf(shifted: bool) -> np.ndarray:
    p = 1.0 / np.arange(1, CATEGORIES + 1)
    p /= p.sum()
    if shifted:
        others = np.arange(CATEGORIES) != 2
        p[others] *= (1.0 - p[2] - 0.05) / p[others].sum()
        p[2] += 0.05
    return p


def _categorical(rng: np.random.Generator, n: int, shifted: bool) -> pa.Array:
    codes = rng.choice(CATEGORIES, size=n, p=_zipf(shifted)).astype(np.int32)
    labels = pa.array([f"k{j}" for j in range(CATEGORIES)])
    return pa.DictionaryArray.from_arrays(pa.array(codes), labels).cast(pa.string())


def pair_tables(n: int, index: int, seed: int) -> tuple[pa.Table, pa.Table]:
    """Pair ``index`` at size ``n``: (reference, current), every column on both sides."""
    rng = np.random.default_rng([seed, n, index])
    sides = []
    for current in (False, True):
        sides.append(
            pa.table(
                {
                    "null_normal": rng.normal(0.0, 1.0, n),
                    "null_poisson": rng.poisson(30.0, n).astype(np.int64),
                    "null_cat": _categorical(rng, n, False),
                    "mean+0.2sd": rng.normal(0.2 if current else 0.0, 1.0, n),
                    "scale x1.3": rng.normal(0.0, 1.3 if current else 1.0, n),
                    "cat +5pp": _categorical(rng, n, current),
                }
            )
        )
    return sides[0], sides[1]


def registered() -> tuple[list[str], list[str]]:
    """(column and quality tests, multivariate tests), as registered here."""
    from loopwright.monitoring.stats import TESTS

    column: list[str] = []
    table: list[str] = []
    for name in TESTS:
        (table if TESTS[name].kind == "multivariate" else column).append(name)
    return column, table


@dataclass
class Tally:
    """One (test, size, column) cell: how many pairs, verdicts, p < alpha, skipped."""

    pairs: int = 0
    drifted: int = 0
    with_p: int = 0
    p_below: int = 0
    skipped: int = 0
    seconds: float = 0.0

    def add(self, other: Tally) -> None:
        self.pairs += other.pairs
        self.drifted += other.drifted
        self.with_p += other.with_p
        self.p_below += other.p_below
        self.skipped += other.skipped
        self.seconds += other.seconds


MULTIVARIATE_NULL = "null (3 columns)"
TABLE_WIDE = "all 6 columns"  # table-wide quality checks (schema) in the column tests' pass


@dataclass
class Chunk:
    """Work for one process: pairs ``start``..``stop`` at size ``n``; the multivariate tests'
    shifted layouts only on those below ``power_stop``."""

    n: int
    start: int
    stop: int
    power_stop: int
    seed: int
    alpha: float
    column_tests: list[str]
    table_tests: list[str]
    tallies: dict[tuple[str, int, str], Tally] = field(default_factory=dict)


def _record(
    tallies: dict[tuple[str, int, str], Tally],
    results: Iterable[Any],
    n: int,
    alpha: float,
    seconds: float,
    label: str | None = None,
) -> None:
    """Count the verdicts of ``results`` (``TestResult``s); ``label`` names the data of the
    table-wide (``"*"``) results, which calibrate on the whole table rather than a column."""
    for test in results:
        column = test.column
        if column == "*":
            column = label or TABLE_WIDE
        elif column not in NULL_COLUMNS and column not in SHIFTED_COLUMNS:
            continue
        tally = tallies.setdefault((test.test, n, column), Tally())
        tally.pairs += 1
        tally.seconds += seconds
        if math.isnan(test.statistic):
            tally.skipped += 1
            continue
        tally.drifted += int(test.drifted)
        if test.p_value is not None:
            tally.with_p += 1
            tally.p_below += int(test.p_value < alpha)


def _compare(
    reference: pa.Table, current: pa.Table, tests: list[str], alpha: float
) -> tuple[Any, float]:
    from loopwright.monitoring.compare import compare

    start = time.perf_counter()
    result = compare(
        reference,
        current,
        tests=tests,
        p_values=True,
        correction="none",
        distributions=False,
        alpha=alpha,
    )
    return result, time.perf_counter() - start


def run_chunk(chunk: Chunk) -> Chunk:
    """Run ``chunk``'s pairs in this process; its tallies filled."""
    numeric_nulls = ["null_normal", "null_poisson"]
    layouts = {MULTIVARIATE_NULL: list(NULL_COLUMNS)}
    layouts.update({shift: [shift, *numeric_nulls] for shift in SHIFTED_COLUMNS})
    for index in range(chunk.start, chunk.stop):
        reference, current = pair_tables(chunk.n, index, chunk.seed)
        if chunk.column_tests:
            result, seconds = _compare(reference, current, chunk.column_tests, chunk.alpha)
            _record(chunk.tallies, result.tests, chunk.n, chunk.alpha, seconds)
        for test in chunk.table_tests:
            for label, columns in layouts.items():
                if label != MULTIVARIATE_NULL and index >= chunk.power_stop:
                    continue
                result, seconds = _compare(
                    reference.select(columns), current.select(columns), [test], chunk.alpha
                )
                # compare adds its table-wide quality checks: only ``test`` is this layout's.
                only = [r for r in result.tests if r.test == test]
                _record(chunk.tallies, only, chunk.n, chunk.alpha, seconds, label)
    return chunk


def chunks(
    sizes: Iterable[int],
    pairs: int,
    power_pairs: int,
    jobs: int,
    seed: int,
    alpha: float,
) -> list[Chunk]:
    """The work cut into about ``4 * jobs`` pieces per size (pairs are independent)."""
    column_tests, table_tests = registered()
    out = []
    for n in sizes:
        step = max(1, math.ceil(pairs / (4 * jobs)))
        for start in range(0, pairs, step):
            stop = min(pairs, start + step)
            out.append(Chunk(n, start, stop, power_pairs, seed, alpha, column_tests, table_tests))
    return out


def bound(alpha: float, pairs: int) -> float:
    """alpha + 2 standard errors of a rate estimated on ``pairs`` pairs."""
    return alpha + 2 * math.sqrt(alpha * (1 - alpha) / pairs) if pairs else math.nan


def rate(count: int, total: int) -> float | None:
    return count / total if total else None


def cell(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def print_tables(
    tallies: dict[tuple[str, int, str], Tally], sizes: list[int], alpha: float
) -> list[str]:
    """The false-alarm and power tables; returns the cells above the bound."""
    tests = sorted({t for t, _, _ in tallies}, key=_order)
    above: list[str] = []
    print(f"\nfalse alarms on null pairs (alpha {alpha:g}; bound = alpha + 2 SE; '-': no p-value)")
    print(
        f"{'test':<15} {'n/side':>7} {'null data':<17} {'pairs':>6} {'verdict':>8} "
        f"{'p<alpha':>8} {'bound':>6} {'skipped':>8}  calibrated"
    )
    for test in tests:
        for n in sizes:
            for column in (*NULL_COLUMNS, MULTIVARIATE_NULL, TABLE_WIDE):
                t = tallies.get((test, n, column))
                if t is None:
                    continue
                counted = t.pairs - t.skipped
                verdict, p_rate = rate(t.drifted, counted), rate(t.p_below, t.with_p)
                limit = bound(alpha, counted)
                ok = all(v is None or v <= limit for v in (verdict, p_rate))
                if not ok:
                    above.append(f"{test} n={n} {column}")
                print(
                    f"{test:<15} {n:>7} {column:<17} {counted:>6} {cell(verdict):>8} "
                    f"{cell(p_rate):>8} {limit:>6.3f} {t.skipped:>8}  {'yes' if ok else 'NO'}"
                )
    print("\npower on fixed shifts: share flagged by the default verdict (p < alpha)")
    print(f"{'test':<15} {'n/side':>7} " + " ".join(f"{s:>18}" for s in SHIFTED_COLUMNS))
    for test in tests:
        for n in sizes:
            cells = []
            for shift in SHIFTED_COLUMNS:
                t = tallies.get((test, n, shift))
                if t is None or t.pairs == t.skipped:
                    cells.append(f"{'n/a':>18}")
                    continue
                verdict = rate(t.drifted, t.pairs - t.skipped)
                p_rate = rate(t.p_below, t.with_p)
                text = cell(verdict) + (f" ({cell(p_rate)})" if p_rate is not None else "")
                cells.append(f"{text:>18}")
            if any(c.strip() != "n/a" for c in cells):
                print(f"{test:<15} {n:>7} " + " ".join(cells))
    return above


def _order(test: str) -> tuple[int, str]:
    from loopwright.monitoring.stats import TESTS

    kinds = ("numeric", "univariate", "categorical", "multivariate", "quality")
    kind = TESTS[test].kind if test in TESTS else "quality"
    return (kinds.index(kind) if kind in kinds else len(kinds), test)


def run(
    *,
    pairs: int,
    sizes: list[int],
    alpha: float,
    seed: int,
    multivariate_power_pairs: int = 100,
    jobs: int = 1,
    json_out: Path | None = None,
) -> list[str]:
    """Print the calibration tables; returns the (test, size, data) cells above the bound."""
    power_pairs = min(multivariate_power_pairs, pairs)
    work = chunks(sizes, pairs, power_pairs, jobs, seed, alpha)
    column_tests, table_tests = work[0].column_tests, work[0].table_tests
    print(
        f"calibration: {pairs} pairs per size (power of {', '.join(table_tests) or '-'} on "
        f"{power_pairs}), sizes {sizes} rows per side, "
        f"alpha {alpha:g}, seed {seed}, {jobs} process(es)\n"
        f"tests: {', '.join(column_tests + table_tests)}; compare(..., correction='none')\n"
        f"load average at start: {_load()}",
        flush=True,
    )
    started = time.perf_counter()
    tallies: dict[tuple[str, int, str], Tally] = defaultdict(Tally)
    done: list[Chunk] = []
    with ProcessPoolExecutor(max_workers=jobs) if jobs > 1 else nullcontext() as pool:
        finished = pool.map(run_chunk, work) if pool is not None else map(run_chunk, work)
        for chunk in finished:
            done.append(chunk)
            print(
                f"  n={chunk.n}: pairs {chunk.start}-{chunk.stop - 1} done "
                f"({len(done)}/{len(work)}, {time.perf_counter() - started:.0f} s)",
                flush=True,
            )
    for chunk in done:
        for key, tally in chunk.tallies.items():
            tallies[key].add(tally)
    above = print_tables(tallies, sizes, alpha)
    verdict = "ABOVE alpha + 2 SE: " + "; ".join(above) if above else "no test above alpha + 2 SE"
    print(
        f"\n{verdict}"
        f"\ncalibration took {time.perf_counter() - started:.0f} s; load average at end: {_load()}"
    )
    if json_out is not None:
        rows = [
            {"test": t, "n": n, "data": c, **vars(tally)} for (t, n, c), tally in tallies.items()
        ]
        json_out.write_text(json.dumps({"alpha": alpha, "pairs": pairs, "cells": rows}, indent=1))
    return above


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f} ({os.cpu_count()} cores)"
