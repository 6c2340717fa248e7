"""The plain scipy baseline, run by benchmarks/monitoring.py in the project's environment.

Per numeric column ``scipy.stats.ks_2samp(reference, current)`` (two-sided, ``method="auto"``:
exact up to 10 000 rows a side, asymptotic above); per categorical column the 2 x k
``scipy.stats.chi2_contingency`` test of homogeneity over the union of both sides' categories,
counted with Arrow's ``value_counts`` (counting strings in NumPy would sort them and time the
counting, not the test). What a careful engineer writes in an afternoon; the anchors' 12.5 s at
1M rows (drift.md section 3.2). The pass is one thread, column after column.

Flags: p < 0.05 per column, no correction (as the anchors' table); the p-values are written out
too, so the driver can show what a Bonferroni correction would keep.
"""

from __future__ import annotations

from typing import Any

import _monitoring_child as child
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from scipy import stats

ALPHA = 0.05


def counts(column: pa.ChunkedArray) -> dict[Any, int]:
    tally = pc.value_counts(column.drop_null())
    return dict(
        zip(tally.field("values").to_pylist(), tally.field("counts").to_pylist(), strict=True)
    )


def chi2_homogeneity(reference: pa.ChunkedArray, current: pa.ChunkedArray) -> tuple[float, float]:
    ref, cur = counts(reference), counts(current)
    union = sorted(set(ref) | set(cur), key=str)
    table = np.array([[ref.get(c, 0) for c in union], [cur.get(c, 0) for c in union]])
    if len(union) < 2:
        return 0.0, 1.0
    result = stats.chi2_contingency(table)
    return float(result.statistic), float(result.pvalue)


def drift_pass(
    reference: pa.Table, current: pa.Table, numeric: list[str], categorical: list[str]
) -> dict[str, tuple[str, float, float]]:
    """Per column: (test, statistic, p-value)."""
    out: dict[str, tuple[str, float, float]] = {}
    for name in numeric:
        ref = reference.column(name).drop_null().to_numpy()
        cur = current.column(name).drop_null().to_numpy()
        ks = stats.ks_2samp(ref, cur)
        out[name] = ("ks", float(ks.statistic), float(ks.pvalue))
    for name in categorical:
        statistic, p = chi2_homogeneity(reference.column(name), current.column(name))
        out[name] = ("chi2", statistic, p)
    return out


def main() -> None:
    args = child.arguments(__doc__ or "").parse_args()
    numeric, categorical = child.names(args.numeric), child.names(args.categorical)
    rss_imports = child.rss_mib()
    load_times, tables = child.timed(
        lambda: (pq.read_table(args.reference), pq.read_table(args.current)), 1
    )
    reference, current = tables
    child.settle()
    rss_loaded = child.rss_mib()
    warm = 1000
    drift_pass(reference.slice(0, warm), current.slice(0, warm), numeric, categorical)

    reset = child.reset_peak()
    times, result = child.timed(
        lambda: drift_pass(reference, current, numeric, categorical), args.repeat
    )
    child.write(
        args.out,
        {
            "times_s": times,
            "load_s": load_times[0],
            "rss_imports_mib": rss_imports,
            "rss_loaded_mib": rss_loaded,
            "run_peak_mib": child.peak_mib() if reset else None,
            "data_mib": (reference.nbytes + current.nbytes) / child.MIB,
            "flagged": [name for name, (_, _, p) in result.items() if p < ALPHA],
            "columns": {
                name: {"test": test, "statistic": s, "p_value": p}
                for name, (test, s, p) in result.items()
            },
            "rule": f"p < {ALPHA} per column, no correction",
        },
    )


if __name__ == "__main__":
    main()
