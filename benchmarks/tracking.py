"""Tracking benchmark: the same workloads on MLflow and Loopwright, both on SQLite on disk.

    .venv/bin/python benchmarks/tracking.py [--repeat 3] [--only a,b,c,d,e]

MLflow runs in its own virtual environment (make it once with `python3 -m venv
benchmarks/.venvs/mlflow && benchmarks/.venvs/mlflow/bin/pip install mlflow`); without it the MLflow
column says so. Each workload runs in a fresh process on a fresh store, `--repeat` times; medians.

(a) 10,000 single log_metric calls in one run      (b) 100,000 points by batch logging
(c) 1,000 runs with 10 params and 10 metrics each, then `metrics.m0 > 0.5 and params.p1 = 'x'`
(d) cold import                                    (e) fresh store open

For Loopwright, (a) and (b) report what the caller sees and the time until the points are durable
(end of run, which flushes the background writer).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MLFLOW_PYTHON = ROOT / "benchmarks" / ".venvs" / "mlflow" / "bin" / "python"

# Each workload is a small program printing a JSON object of timings in seconds.
LOOPWRIGHT = {
    "a": """
import time, loopwright as lw
c = lw.connect(home=HOME)
run = c.start_run("bench")
t = time.perf_counter()
for i in range(10_000):
    run.log_metric("loss", i * 0.001, step=i)
caller = time.perf_counter() - t
run.end()
print(json.dumps({"caller": caller, "durable": time.perf_counter() - t}))
""",
    "b": """
import time, loopwright as lw
from loopwright.tracking import Metric
c = lw.connect(home=HOME)
run = c.start_run("bench")
now = int(time.time() * 1000)
points = [Metric(f"m{i % 10}", i * 0.001, i // 10, now) for i in range(100_000)]
t = time.perf_counter()
for start in range(0, 100_000, 1000):  # MLflow's log_batch takes at most 1,000 metrics
    run.log_batch(points[start:start + 1000])
caller = time.perf_counter() - t
run.end()
print(json.dumps({"caller": caller, "durable": time.perf_counter() - t}))
""",
    "c": """
import time, loopwright as lw
c = lw.connect(home=HOME)
t = time.perf_counter()
for r in range(1000):
    with c.start_run("bench", name=f"r{r}") as run:
        run.log_params({f"p{j}": "x" if (r + j) % 3 == 0 else "y" for j in range(10)})
        run.log_metrics({f"m{j}": ((r * 7919 + j * 104729) % 1000) / 1000 for j in range(10)})
create = time.perf_counter() - t
t = time.perf_counter()
hits = c.search_runs("metrics.m0 > 0.5 and params.p1 = 'x'", experiments=["bench"])
search = time.perf_counter() - t
t = time.perf_counter()
every = c.search_runs("", experiments=["bench"], max_results=1000)
search_all = time.perf_counter() - t
print(json.dumps({"create": create, "search": search, "hits": len(hits),
                  "search_all": search_all, "all": len(every)}))
""",
    "d": """
import time
t = time.perf_counter()
import loopwright
print(json.dumps({"import": time.perf_counter() - t}))
""",
    "e": """
import time
t = time.perf_counter()
import loopwright as lw
lw.connect(home=HOME).close()
print(json.dumps({"open": time.perf_counter() - t}))
""",
}

MLFLOW = {
    "a": """
import time, mlflow
c = mlflow.MlflowClient(tracking_uri=DB)
exp = c.create_experiment("bench")
run = c.create_run(exp)
t = time.perf_counter()
for i in range(10_000):
    c.log_metric(run.info.run_id, "loss", i * 0.001, step=i)
c.set_terminated(run.info.run_id)
d = time.perf_counter() - t
print(json.dumps({"caller": d, "durable": d}))
""",
    "b": """
import time, mlflow
from mlflow.entities import Metric
c = mlflow.MlflowClient(tracking_uri=DB)
exp = c.create_experiment("bench")
run = c.create_run(exp)
now = int(time.time() * 1000)
points = [Metric(f"m{i % 10}", i * 0.001, now, i // 10) for i in range(100_000)]
t = time.perf_counter()
for start in range(0, 100_000, 1000):
    c.log_batch(run.info.run_id, metrics=points[start:start + 1000])
c.set_terminated(run.info.run_id)
d = time.perf_counter() - t
print(json.dumps({"caller": d, "durable": d}))
""",
    "c": """
import time, mlflow
from mlflow.entities import Metric, Param
c = mlflow.MlflowClient(tracking_uri=DB)
exp = c.create_experiment("bench")
t = time.perf_counter()
for r in range(1000):
    run = c.create_run(exp, run_name=f"r{r}")
    now = int(time.time() * 1000)
    c.log_batch(run.info.run_id,
                params=[Param(f"p{j}", "x" if (r + j) % 3 == 0 else "y") for j in range(10)],
                metrics=[Metric(f"m{j}", ((r * 7919 + j * 104729) % 1000) / 1000, now, 0)
                         for j in range(10)])
    c.set_terminated(run.info.run_id)
create = time.perf_counter() - t
t = time.perf_counter()
hits = c.search_runs([exp], "metrics.m0 > 0.5 and params.p1 = 'x'", max_results=1000)
search = time.perf_counter() - t
t = time.perf_counter()
every = c.search_runs([exp], "", max_results=1000)
search_all = time.perf_counter() - t
print(json.dumps({"create": create, "search": search, "hits": len(hits),
                  "search_all": search_all, "all": len(every)}))
""",
    "d": """
import time
t = time.perf_counter()
import mlflow
print(json.dumps({"import": time.perf_counter() - t}))
""",
    "e": """
import time
t = time.perf_counter()
import mlflow
mlflow.MlflowClient(tracking_uri=DB).search_experiments()
print(json.dumps({"open": time.perf_counter() - t}))
""",
}


def run_once(python: Path | str, program: str) -> dict[str, float]:
    with tempfile.TemporaryDirectory(dir=ROOT / "benchmarks") as tmp:
        home, db = f"{tmp}/home", f"sqlite:///{tmp}/mlflow.db"
        prelude = f"import json\nHOME = {home!r}\nDB = {db!r}\n"
        done = subprocess.run(
            [str(python), "-c", prelude + program],
            capture_output=True,
            text=True,
            check=False,
            cwd=tmp,
        )
    if done.returncode != 0:
        raise SystemExit(f"workload failed:\n{done.stderr[-3000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def medians(python: Path | str, program: str, repeat: int) -> dict[str, float]:
    results = [run_once(python, program) for _ in range(repeat)]
    return {key: statistics.median(r[key] for r in results) for key in results[0]}


def show(label: str, ours: float, theirs: float | None, unit: str, *, per_second: bool) -> None:
    """``per_second``: figures are rates (higher is better); else durations in seconds."""
    fmt = f"{{:>12,.{0 if per_second else 3}f}}"
    line = f"{label:<46} loopwright {fmt.format(ours)} {unit:<8}"
    if theirs is None:
        print(line + " mlflow: not installed")
        return
    ratio = ours / theirs if per_second else theirs / ours
    print(line + f" mlflow {fmt.format(theirs)} {unit:<8} {ratio:8.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", default="a,b,c,d,e")
    args = parser.parse_args()
    has_mlflow = MLFLOW_PYTHON.exists()
    print(f"medians of {args.repeat} fresh processes; ratio > 1 means Loopwright is faster\n")

    for key in args.only.split(","):
        ours = medians(sys.executable, LOOPWRIGHT[key], args.repeat)
        theirs = medians(MLFLOW_PYTHON, MLFLOW[key], args.repeat) if has_mlflow else None
        if key in ("a", "b"):
            n = 10_000 if key == "a" else 100_000
            name = "10,000 log_metric calls" if key == "a" else "100,000 points by log_batch"
            their_rate = n / theirs["durable"] if theirs else None
            show(
                f"({key}) {name}, seen by caller",
                n / ours["caller"],
                their_rate,
                "pts/s",
                per_second=True,
            )
            show(
                f"({key}) {name}, durable",
                n / ours["durable"],
                their_rate,
                "pts/s",
                per_second=True,
            )
        elif key == "c":
            show(
                "(c) create 1,000 runs (10 params, 10 metrics)",
                1000 / ours["create"],
                1000 / theirs["create"] if theirs else None,
                "runs/s",
                per_second=True,
            )
            show(
                f"(c) filtered search ({int(ours['hits'])} hits)",
                ours["search"],
                theirs["search"] if theirs else None,
                "s",
                per_second=False,
            )
            show(
                "(c) search returning all 1,000 runs",
                ours["search_all"],
                theirs["search_all"] if theirs else None,
                "s",
                per_second=False,
            )
        elif key == "d":
            show(
                "(d) cold import",
                ours["import"],
                theirs["import"] if theirs else None,
                "s",
                per_second=False,
            )
        elif key == "e":
            show(
                "(e) fresh store open (incl. import)",
                ours["open"],
                theirs["open"] if theirs else None,
                "s",
                per_second=False,
            )


if __name__ == "__main__":
    main()
