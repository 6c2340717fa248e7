"""Evidently's contender, run by benchmarks/monitoring.py inside benchmarks/.venvs/evidently.

``Report([DataDriftPreset()]).run(current, reference)`` with an explicit ``DataDefinition``
(the numeric and categorical column lists), as the anchors measured it (drift.md section 3.1).
Only ``run()`` is timed; reading Parquet into pandas and wrapping the frames in ``Dataset`` is
timed apart as loading. A warm-up run on the first 2000 rows (above Evidently's 1000-row switch,
so the same tests are chosen) pays the lazy imports first. No HTML is written: ``run()`` already
builds the figures (drift.md section 3.2).

A column is flagged as Evidently decides: its ``ValueDrift`` value against the method's
threshold, below it for p-value methods (their display name says "p_value"), at or above it for
distances. The count is checked against Evidently's own ``DriftedColumnsCount``.
"""

from __future__ import annotations

from typing import Any

import _monitoring_child as child
import pandas as pd
from evidently import DataDefinition, Dataset, Report
from evidently.presets import DataDriftPreset

WARMUP_ROWS = 2000


def flags(snapshot: Any) -> tuple[list[str], dict[str, Any], float | None]:
    """Flagged columns, each column's (method, value), and Evidently's own drifted count."""
    flagged: list[str] = []
    per_column: dict[str, Any] = {}
    own_count: float | None = None
    for metric in snapshot.dict()["metrics"]:
        config = metric["config"]
        if config["type"].endswith("DriftedColumnsCount"):
            own_count = metric["value"]["count"]
        if not config["type"].endswith("ValueDrift"):
            continue
        method, threshold, value = config["method"], config["threshold"], metric["value"]
        drifted = bool(value < threshold if "p_value" in method else value >= threshold)
        per_column[config["column"]] = {"method": method, "value": float(value), "drifted": drifted}
        if drifted:
            flagged.append(config["column"])
    return flagged, per_column, own_count


def main() -> None:
    args = child.arguments(__doc__ or "").parse_args()
    numeric, categorical = child.names(args.numeric), child.names(args.categorical)
    definition = DataDefinition(numerical_columns=numeric, categorical_columns=categorical)
    rss_imports = child.rss_mib()

    def datasets(ref: pd.DataFrame, cur: pd.DataFrame) -> tuple[Dataset, Dataset]:
        return (
            Dataset.from_pandas(ref, data_definition=definition),
            Dataset.from_pandas(cur, data_definition=definition),
        )

    load_times, frames = child.timed(
        lambda: (pd.read_parquet(args.reference), pd.read_parquet(args.current)), 1
    )
    reference_frame, current_frame = frames
    reference, current = datasets(reference_frame, current_frame)
    child.settle()
    rss_loaded = child.rss_mib()
    warm_ref, warm_cur = datasets(
        reference_frame.head(WARMUP_ROWS), current_frame.head(WARMUP_ROWS)
    )
    Report([DataDriftPreset()]).run(warm_cur, warm_ref)

    reset = child.reset_peak()
    times, snapshot = child.timed(
        lambda: Report([DataDriftPreset()]).run(current, reference), args.repeat
    )
    flagged, per_column, own_count = flags(snapshot)
    if own_count is not None and own_count != len(flagged):
        raise SystemExit(
            f"Evidently's DriftedColumnsCount says {own_count:g} columns drifted, the ValueDrift "
            f"metrics {len(flagged)} ({flagged}): the flag rule in {__file__} needs updating"
        )
    child.write(
        args.out,
        {
            "times_s": times,
            "load_s": load_times[0],
            "rss_imports_mib": rss_imports,
            "rss_loaded_mib": rss_loaded,
            "run_peak_mib": child.peak_mib() if reset else None,
            "flagged": flagged,
            "data_mib": sum(
                float(f.memory_usage(deep=True).sum()) for f in (reference_frame, current_frame)
            )
            / child.MIB,
            "columns": per_column,
            "rule": "Evidently's defaults (its per-column method and threshold)",
        },
    )


if __name__ == "__main__":
    main()
