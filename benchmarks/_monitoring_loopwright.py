"""Loopwright's contender, run by benchmarks/monitoring.py in the project's environment.

Two processes, as a monitor uses them:

- ``--mode build``: ``ReferenceSketch.build(reference)`` (timed), serialized with ``to_bytes``
  into ``--sketch``; done once per reference, when the reference is registered;
- ``--mode compare``: the drift pass a monitor run makes: ``ReferenceSketch.from_bytes`` of the
  stored sketch (timed as loading, with reading the current Parquet), then
  ``compare(sketch, current)`` with the default tests, timed ``--repeat`` times. This process
  never sees the reference rows, so its memory is the current window plus the sketch.

Flags: ``DriftResult.drifted_columns`` under the defaults (its ``rule`` is written out).
"""

from __future__ import annotations

from pathlib import Path

import _monitoring_child as child
import pyarrow as pa
import pyarrow.parquet as pq

from loopwright.monitoring.compare import compare
from loopwright.monitoring.sketch import ReferenceSketch

WARMUP_ROWS = 1000


def build(reference_path: Path, sketch_path: Path, repeat: int) -> dict[str, object]:
    rss_imports = child.rss_mib()
    load_times, reference = child.timed(lambda: pq.read_table(reference_path), 1)
    child.settle()
    rss_loaded = child.rss_mib()
    ReferenceSketch.build(reference.slice(0, WARMUP_ROWS))
    reset = child.reset_peak()
    times, sketch = child.timed(lambda: ReferenceSketch.build(reference), repeat)
    payload = sketch.to_bytes()
    sketch_path.write_bytes(payload)
    return {
        "times_s": times,
        "load_s": load_times[0],
        "rss_imports_mib": rss_imports,
        "rss_loaded_mib": rss_loaded,
        "run_peak_mib": child.peak_mib() if reset else None,
        "data_mib": reference.nbytes / child.MIB,
        "sketch_bytes": len(payload),
    }


def drift(current_path: Path, sketch_path: Path, repeat: int) -> dict[str, object]:
    rss_imports = child.rss_mib()

    def load() -> tuple[ReferenceSketch, pa.Table]:
        return ReferenceSketch.from_bytes(sketch_path.read_bytes()), pq.read_table(current_path)

    load_times, loaded = child.timed(load, 1)
    sketch, current = loaded
    child.settle()
    rss_loaded = child.rss_mib()
    compare(sketch, current.slice(0, WARMUP_ROWS))
    reset = child.reset_peak()
    times, result = child.timed(lambda: compare(sketch, current), repeat)
    return {
        "times_s": times,
        "load_s": load_times[0],
        "rss_imports_mib": rss_imports,
        "rss_loaded_mib": rss_loaded,
        "run_peak_mib": child.peak_mib() if reset else None,
        "data_mib": current.nbytes / child.MIB,
        "sketch_bytes": sketch_path.stat().st_size,
        "flagged": list(result.drifted_columns),
        "columns": {
            f"{t.column}:{t.test}": {
                "statistic": t.statistic,
                "p_value": t.p_value,
                "drifted": t.drifted,
            }
            for t in result.tests
        },
        "rule": result.rule,
        "correction": result.correction,
    }


def main() -> None:
    parser = child.arguments(__doc__ or "")
    parser.add_argument("--mode", choices=("build", "compare"), required=True)
    parser.add_argument("--sketch", type=Path, required=True, help="the serialized sketch's file")
    args = parser.parse_args()
    if args.mode == "build":
        figures = build(args.reference, args.sketch, args.repeat)
    else:
        figures = drift(args.current, args.sketch, args.repeat)
    child.write(args.out, figures)


if __name__ == "__main__":
    main()
