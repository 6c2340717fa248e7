"""Batch-scoring benchmark: ``predict_batch`` (local, process, Ray) against a plain pandas loop.

    .venv/bin/python benchmarks/batch_scoring.py [--rows 10000000] [--workers 2] [--work DIR]

The input is ``--rows`` rows of 20 float64 features in one Parquet file (row groups of 100,000
rows), generated once into ``--work`` and reused while its row count matches. The model is a
scikit-learn ``GradientBoostingClassifier`` with 100 trees, fitted on a 20,000-row sample and
saved as a Loopwright package (skops).

Each contender reads the same file and writes the predictions as Parquet:

- ``pandas loop``: ``ParquetFile.iter_batches`` → ``to_pandas`` → ``model.predict`` →
  ``ParquetWriter``, in this process, one core; the model object fitted here;
- ``loopwright local``: ``predict_batch(executor="local")``: the package loaded and verified,
  every batch checked against the signature, ``model`` and ``model_version`` columns written;
- ``loopwright process``: ``executor="process"`` with ``--workers`` processes (their start-up,
  imports and model load are inside the time);
- ``loopwright ray``: ``executor="ray"``, Ray started before the clock (its start-up is shown
  apart), ``--workers`` tasks at once.

Rows/s per contender, and the ratios the issue sets targets for: local against the pandas
loop (within 1.3x), process(2) against local (near-linear: ~2x on two idle cores).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

FEATURES = 20
ROW_GROUP = 100_000
TRAIN_ROWS = 20_000
TREES = 100


def make_input(path: Path, rows: int) -> None:
    """``rows`` rows of ``FEATURES`` features, written chunk by chunk (bounded memory)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    names = [f"f{i}" for i in range(FEATURES)]
    schema = pa.schema([(name, pa.float64()) for name in names])
    rng = np.random.default_rng(7)
    temp = path.with_suffix(".tmp")
    with pq.ParquetWriter(temp, schema) as writer:
        for start in range(0, rows, ROW_GROUP):
            block = rng.normal(size=(min(ROW_GROUP, rows - start), FEATURES))
            writer.write_table(pa.table({n: block[:, i] for i, n in enumerate(names)}, schema))
    temp.rename(path)


def fit_model(source: Path) -> Any:
    import pyarrow.parquet as pq
    from sklearn.ensemble import GradientBoostingClassifier

    sample = next(pq.ParquetFile(source).iter_batches(batch_size=TRAIN_ROWS)).to_pandas()
    label = (sample["f0"] * sample["f1"] + sample["f2"] ** 2 > 1).astype(int)
    return GradientBoostingClassifier(n_estimators=TREES, random_state=0).fit(sample, label)


def pandas_loop(model: Any, source: Path, output: Path, batch_rows: int) -> int:
    """The baseline: what one writes by hand with pandas and scikit-learn."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = 0
    writer = None
    for batch in pq.ParquetFile(source).iter_batches(batch_size=batch_rows):
        frame = batch.to_pandas()
        table = pa.table({"predict": model.predict(frame)})
        if writer is None:
            writer = pq.ParquetWriter(output, table.schema)
        writer.write_table(table)
        rows += len(frame)
    if writer is not None:
        writer.close()
    return rows


def cpu_seconds() -> float:
    """CPU time of this process and of its ended (waited-for) children: the process workers."""
    own, children = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def timed(label: str, run: Any, repeat: int) -> dict[str, Any]:
    """The median of ``repeat`` runs (each writes its output afresh), wall and CPU time.

    On a loaded machine the wall time measures the other load as much as the job; the CPU
    time (workers' start-up included) is what the job cost, whatever else runs.
    """
    times, cpu = [], []
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), cpu_seconds()
        rows = run()
        times.append(time.perf_counter() - start)
        cpu.append(cpu_seconds() - start_cpu)
    seconds, cpu_s = statistics.median(times), statistics.median(cpu)
    print(
        f"  {label:<22} {rows:>11,} rows {seconds:8.2f} s {rows / seconds:>12,.0f} rows/s"
        f"  cpu {cpu_s:7.2f} s"
    )
    return {
        "label": label,
        "rows": rows,
        "seconds": seconds,
        "rows_per_s": rows / seconds,
        "cpu_seconds": cpu_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch-rows", type=int, default=65_536)
    parser.add_argument("--work", type=Path, default=None, help="keep the input here")
    parser.add_argument(
        "--executors", default="local,process,ray", help="which of local,process,ray to run"
    )
    parser.add_argument("--repeat", type=int, default=1, help="runs per contender (median)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON too")
    args = parser.parse_args()

    import pyarrow as pa
    import pyarrow.parquet as pq

    from loopwright.registry.packaging.package import save_model
    from loopwright.serving.batch import predict_batch

    work = args.work or Path(tempfile.gettempdir()) / "loopwright-batch-bench"
    work.mkdir(parents=True, exist_ok=True)
    source = work / "input.parquet"
    if not source.exists() or pq.read_metadata(source).num_rows != args.rows:
        source.unlink(missing_ok=True)
        print(f"writing {args.rows:,} rows x {FEATURES} features to {source} ...")
        make_input(source, args.rows)
    model = fit_model(source)
    package = work / "model"
    shutil.rmtree(package, ignore_errors=True)
    example = next(pq.ParquetFile(source).iter_batches(batch_size=3)).to_pandas()
    save_model(model, package, input_example=example)
    outputs = work / "out"
    shutil.rmtree(outputs, ignore_errors=True)
    outputs.mkdir()
    executors = [name for name in args.executors.split(",") if name]

    # Untimed, on 10,000 rows: lazy imports and first calls are paid by neither contender.
    warm = work / "warm.parquet"
    first = next(pq.ParquetFile(source).iter_batches(batch_size=10_000))
    pq.write_table(pa.Table.from_batches([first]), warm)
    pandas_loop(model, warm, outputs / "warm-pandas.parquet", args.batch_rows)
    predict_batch(None, str(package), warm, outputs / "warm-local")

    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(
        f"{args.rows:,} rows, GradientBoosting {TREES} trees, {FEATURES} features, "
        f"batches of {args.batch_rows:,}, {args.workers} workers"
    )
    results = [
        timed(
            "pandas loop",
            lambda: pandas_loop(model, source, outputs / "pandas.parquet", args.batch_rows),
            args.repeat,
        )
    ]

    def loopwright(executor: str, workers: int | None) -> int:
        shutil.rmtree(outputs / executor, ignore_errors=True)
        result = predict_batch(
            None,
            str(package),
            source,
            outputs / executor,
            executor=executor,
            workers=workers,
            batch_rows=args.batch_rows,
        )
        return result.rows

    if "local" in executors:
        results.append(timed("loopwright local", lambda: loopwright("local", None), args.repeat))
    if "process" in executors:
        label = f"loopwright process({args.workers})"
        results.append(timed(label, lambda: loopwright("process", args.workers), args.repeat))
    if "ray" in executors:
        import ray

        start = time.perf_counter()
        ray.init(num_cpus=args.workers, include_dashboard=False, logging_level="WARNING")
        print(f"  (ray.init: {time.perf_counter() - start:.1f} s, not counted)")
        label = f"loopwright ray({args.workers})"
        results.append(timed(label, lambda: loopwright("ray", args.workers), args.repeat))
        ray.shutdown()

    by_label = {r["label"].split("(")[0]: r["rows_per_s"] for r in results}
    base = by_label["pandas loop"]
    print("ratios (rows/s):")
    for label, speed in by_label.items():
        if label != "pandas loop":
            print(f"  {label:<22} {speed / base:5.2f}x the pandas loop")
    local = by_label.get("loopwright local")
    if local:
        for label in ("loopwright process", "loopwright ray"):
            if label in by_label:
                print(f"  {label:<22} {by_label[label] / local:5.2f}x loopwright local")
    cpu = {r["label"].split("(")[0]: r["cpu_seconds"] for r in results}
    if "loopwright local" in cpu and "loopwright process" in cpu:
        overhead = cpu["loopwright process"] - cpu["loopwright local"]
        print(
            f"  process CPU beyond local: {overhead:.2f} s (workers' start-up); on "
            f"{args.workers} idle cores that bounds process at "
            f"{args.workers * cpu['loopwright local'] / cpu['loopwright process']:.2f}x local"
        )
    print(
        "(process includes starting its workers, ~1.5 s of imports and model load each, while "
        "this process already scores; ray's start-up is not counted)"
    )
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if args.json:
        print(json.dumps(results))


if __name__ == "__main__":
    main()
