"""Registry benchmark: the same model workloads on MLflow and Loopwright, both on SQLite on disk.

    .venv/bin/python benchmarks/registry.py [--repeat 3]

MLflow runs in its own virtual environment, made once as for tracking.py (`python3 -m venv
benchmarks/.venvs/mlflow && benchmarks/.venvs/mlflow/bin/pip install mlflow`); without it the
MLflow column says so. The workload also needs scikit-learn and skops there: when they are missing,
setup installs them with that environment's pip, pinned to the versions in Loopwright's
environment, so both tools save and load the same library code.

The model is a scikit-learn pipeline (StandardScaler, LogisticRegression) fitted on the
breast-cancer data; each process fits it the same way (deterministic, so the same coefficients),
outside the timings. Each tool saves it in its default format, which is skops for both. Each
repetition uses a fresh store and fresh processes; the table shows medians.

(a) log the model in a run with ``input_example=X[:5]``: the first call in a process (it pays
    for lazy imports) and a second one. MLflow is shown with its defaults, which infer the pip
    requirements by loading the model in a subprocess, and with ``pip_requirements`` given (the
    same pins it infers), which skips that subprocess.
(b) register 50 versions of the model from that run        (c) move the alias "challenger" 50 times
    (Loopwright's default approval policy protects "champion", so an unprotected alias is used)
(d) a fresh process that imports the tool, loads ``models:/bench@challenger`` and predicts 100
    rows: wall time of the whole process. MLflow both through ``mlflow.pyfunc.load_model`` and
    ``mlflow.sklearn.load_model``, with ``MLFLOW_ALLOW_PICKLE_DESERIALIZATION=true``, which MLflow
    requires to load any sklearn model, skops included. The package cache is cold for both.
(e) list the 50 versions, and search them with ``name = 'bench'`` (MLflow has one call for both)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MLFLOW_PYTHON = ROOT / "benchmarks" / ".venvs" / "mlflow" / "bin" / "python"
SHARED_LIBRARIES = ("scikit-learn", "skops")
VERSIONS = 50
SEARCHES = 20  # (e) is timed over this many calls and reported per call

# Each program gets HOME, DB, ROWS (where FIT saves the 100 rows to predict), VERSIONS,
# SEARCHES and, for MLflow, GIVE_PINS and LOG_ONLY from a prelude; it prints a JSON object.
FIT = """
import numpy as np
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
X, y = load_breast_cancer(return_X_y=True)
model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(X, y)
np.save(ROWS, X[:100])
"""

LOOPWRIGHT = """
import loopwright as lw
c = lw.connect(home=HOME)
with c.start_run(experiment="bench") as run:
    t = time.perf_counter()
    run.log_model(model, "model", input_example=X[:5])
    log_first = time.perf_counter() - t
    t = time.perf_counter()
    run.log_model(model, "model_again", input_example=X[:5])
    log_second = time.perf_counter() - t
t = time.perf_counter()
for _ in range(VERSIONS):
    c.registry.register("bench", run_id=run.id)
register = time.perf_counter() - t
t = time.perf_counter()
for v in range(1, VERSIONS + 1):
    c.registry.set_alias("bench", "challenger", v)
alias = time.perf_counter() - t
t = time.perf_counter()
for _ in range(SEARCHES):
    listed = c.registry.list_versions("bench")
list_all = (time.perf_counter() - t) / SEARCHES
t = time.perf_counter()
for _ in range(SEARCHES):
    found = c.registry.search_versions("name = 'bench'")
search = (time.perf_counter() - t) / SEARCHES
c.close()
assert len(listed) == len(found) == VERSIONS
"""

MLFLOW = """
from importlib.metadata import version
import mlflow, mlflow.sklearn
mlflow.set_tracking_uri(DB)
mlflow.set_experiment("bench")
extra = {}
if GIVE_PINS:  # the pins MLflow 3.17.2 infers for this model
    names = ("mlflow", "numpy", "pandas", "scikit-learn", "scipy", "skops")
    extra["pip_requirements"] = [f"{n}=={version(n)}" for n in names]
with mlflow.start_run() as run:
    t = time.perf_counter()
    mlflow.sklearn.log_model(model, name="model", input_example=X[:5], **extra)
    log_first = time.perf_counter() - t
    t = time.perf_counter()
    mlflow.sklearn.log_model(model, name="model_again", input_example=X[:5], **extra)
    log_second = time.perf_counter() - t
if LOG_ONLY:
    print(json.dumps({"log_first": log_first, "log_second": log_second}))
    raise SystemExit
c = mlflow.MlflowClient()
t = time.perf_counter()
for _ in range(VERSIONS):
    mlflow.register_model(f"runs:/{run.info.run_id}/model", "bench")
register = time.perf_counter() - t
t = time.perf_counter()
for v in range(1, VERSIONS + 1):
    c.set_registered_model_alias("bench", "challenger", v)
alias = time.perf_counter() - t
t = time.perf_counter()
for _ in range(SEARCHES):
    found = c.search_model_versions("name = 'bench'")
search = list_all = (time.perf_counter() - t) / SEARCHES
assert len(found) == VERSIONS
"""

REPORT = """
print(json.dumps({"log_first": log_first, "log_second": log_second, "register": register,
                  "alias": alias, "list": list_all, "search": search}))
"""

# (d) runs as a whole process, timed from outside; inside it also times its import. The
# checksum (a position-weighted sum of the predicted labels) shows that the loaders agree.
LOAD = """
import time
t0 = time.perf_counter()
import numpy as np
import {module}
t1 = time.perf_counter()
predicted = {module}.load_model("models:/bench@challenger").predict(np.load(ROWS))
print(json.dumps({{"import": t1 - t0, "load_predict": time.perf_counter() - t1,
                  "checksum": int((np.asarray(predicted) * np.arange(1, 101)).sum())}}))
"""
LOADERS = {
    "loopwright": "loopwright",
    "mlflow": "mlflow.pyfunc",
    "mlflow_sklearn": "mlflow.sklearn",
}


def prelude(tmp: str, *, give_pins: bool = False, log_only: bool = False) -> str:
    return (
        f"import json, time\nHOME = {tmp + '/home'!r}\nDB = {'sqlite:///' + tmp + '/mlflow.db'!r}\n"
        f"ROWS = {tmp + '/rows.npy'!r}\nVERSIONS = {VERSIONS}\nSEARCHES = {SEARCHES}\n"
        f"GIVE_PINS = {give_pins}\nLOG_ONLY = {log_only}\n"
    )


def run_program(
    python: Path | str, program: str, cwd: str, env: dict[str, str] | None = None
) -> dict[str, float]:
    """Run ``program`` in a new process; adds its wall time (``wall``) to the JSON it prints."""
    started = time.perf_counter()
    done = subprocess.run(
        [str(python), "-c", program],
        capture_output=True,
        text=True,
        check=False,
        cwd=cwd,
        env={**os.environ, **(env or {})},
    )
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"workload failed:\n{done.stderr[-3000:]}")
    return {**json.loads(done.stdout.strip().splitlines()[-1]), "wall": wall}


def repetition(tool: str) -> dict[str, dict[str, float]]:
    """One fresh store: the workload, then each loader in a fresh process. For MLflow, also
    (a) with the requirements given, on a second fresh store."""
    with tempfile.TemporaryDirectory(prefix="registry-bench-", dir=ROOT / "benchmarks") as tmp:
        if tool == "loopwright":
            python, workload, loaders = sys.executable, LOOPWRIGHT, ["loopwright"]
            env = {"LOOPWRIGHT_HOME": f"{tmp}/home"}
        else:
            python, workload, loaders = MLFLOW_PYTHON, MLFLOW, ["mlflow", "mlflow_sklearn"]
            # MLflow refuses to deserialize any sklearn model, skops files included, without it.
            env = {
                "MLFLOW_TRACKING_URI": f"sqlite:///{tmp}/mlflow.db",
                "MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "true",
            }
        results = {"workload": run_program(python, prelude(tmp) + FIT + workload + REPORT, tmp)}
        for loader in loaders:
            program = prelude(tmp) + LOAD.format(module=LOADERS[loader])
            results[f"load:{loader}"] = run_program(python, program, tmp, env)
    if tool == "mlflow":
        with tempfile.TemporaryDirectory(prefix="registry-bench-", dir=ROOT / "benchmarks") as tmp:
            program = prelude(tmp, give_pins=True, log_only=True) + FIT + MLFLOW
            results["given_pins"] = run_program(MLFLOW_PYTHON, program, tmp)
    return results


def medians(tool: str, repeat: int) -> dict[str, dict[str, float]]:
    runs = [repetition(tool) for _ in range(repeat)]
    return {
        part: {key: statistics.median(r[part][key] for r in runs) for key in runs[0][part]}
        for part in runs[0]
    }


def prepare_mlflow() -> str | None:
    """MLflow's version, or None without its environment; gives it our scikit-learn and skops."""
    if not MLFLOW_PYTHON.exists():
        return None
    try:
        wanted = {name: version(name) for name in SHARED_LIBRARIES}
    except PackageNotFoundError as missing:
        raise SystemExit(f"{missing} is not installed in {sys.prefix}; it is needed here") from None
    found = installed(("mlflow", *SHARED_LIBRARIES))
    if any(found[name] != wanted[name] for name in SHARED_LIBRARIES):
        pins = [f"{name}=={number}" for name, number in wanted.items()]
        print(f"installing {' '.join(pins)} into {MLFLOW_PYTHON.parents[1]}", flush=True)
        subprocess.run([str(MLFLOW_PYTHON), "-m", "pip", "install", "--quiet", *pins], check=True)
    return found["mlflow"]


def installed(names: tuple[str, ...]) -> dict[str, str | None]:
    """The versions of ``names`` in the MLflow environment (None: not installed)."""
    program = f"""
import json
from importlib.metadata import PackageNotFoundError, version
found = {{}}
for name in {names!r}:
    try:
        found[name] = version(name)
    except PackageNotFoundError:
        found[name] = None
print(json.dumps(found))
"""
    done = subprocess.run([str(MLFLOW_PYTHON), "-c", program], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{MLFLOW_PYTHON} does not run:\n{done.stderr[-3000:]}")
    return dict(json.loads(done.stdout))


def show(label: str, ours: float, theirs: float | None, unit: str, *, per_second: bool) -> None:
    """``per_second``: figures are rates (higher is better); else durations."""
    fmt = f"{{:>10,.{0 if per_second else 3}f}}"
    line = f"{label:<56} loopwright {fmt.format(ours)} {unit:<10}"
    if theirs is None:
        print(line + " mlflow: not installed")
        return
    ratio = ours / theirs if per_second else theirs / ours
    print(line + f" mlflow {fmt.format(theirs)} {unit:<10} {ratio:6.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    mlflow_version = prepare_mlflow()
    ours = medians("loopwright", args.repeat)
    theirs = medians("mlflow", args.repeat) if mlflow_version else {}
    print(
        f"medians of {args.repeat} repetitions (fresh stores, fresh processes) on "
        f"{os.cpu_count()} CPU cores shared with other work; ratio > 1 means Loopwright is faster"
    )
    print(
        f"MLflow {mlflow_version or '(not installed)'}; both tools save the model with skops, "
        "their default.\n'mlflow infers': its default, requirements inferred in a subprocess; "
        "'mlflow pins': pip_requirements given\n"
    )

    def duration(label: str, part: str, key: str, mlflow_part: str, unit: str = "s") -> None:
        scale = 1000 if unit == "ms" else 1
        figure = theirs.get(mlflow_part, {}).get(key)
        show(
            label,
            ours[part][key] * scale,
            None if figure is None else figure * scale,
            unit,
            per_second=False,
        )

    def rate(label: str, key: str, unit: str) -> None:
        figure = theirs.get("workload", {}).get(key)
        per_second = None if figure is None else VERSIONS / figure
        show(label, VERSIONS / ours["workload"][key], per_second, unit, per_second=True)

    for call, key in (("1st", "log_first"), ("2nd", "log_second")):
        for variant, part in (("infers", "workload"), ("pins", "given_pins")):
            duration(
                f"(a) log_model, {call} call in process, mlflow {variant}", "workload", key, part
            )
    rate(f"(b) register {VERSIONS} versions from the run", "register", "versions/s")
    rate(f"(c) set alias 'challenger' {VERSIONS} times", "alias", "moves/s")
    for loader in ("mlflow", "mlflow_sklearn"):
        name, part, lw = LOADERS[loader], f"load:{loader}", "load:loopwright"
        duration(f"(d) whole process, {name}.load_model", lw, "wall", part)
        duration(f"(d)   import numpy and the tool, {name}", lw, "import", part)
        duration(f"(d)   load by alias + predict 100 rows, {name}", lw, "load_predict", part)
    duration(f"(e) list {VERSIONS} versions (mlflow: search)", "workload", "list", "workload", "ms")
    duration(f"(e) search name = 'bench' ({VERSIONS} hits)", "workload", "search", "workload", "ms")
    sums = {int(r["checksum"]) for part, r in (ours | theirs).items() if part.startswith("load:")}
    agree = "yes" if len(sums) == 1 else f"NO (positives: {sorted(sums)})"
    print(f"\npredictions of the 100 rows identical across loaders: {agree}")


if __name__ == "__main__":
    main()
