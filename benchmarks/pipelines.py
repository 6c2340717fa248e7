"""Pipelines benchmark: a 10-step linear no-op pipeline and a 100-way fan-out with a join,
cold and cached, Loopwright against Metaflow and Prefect; and one loop iteration's bookkeeping.

    .venv/bin/python benchmarks/pipelines.py [--repeat 3] [--only loopwright,metaflow,prefect]
                                             [--skip-loop] [--json F]

Each contender runs in its own processes, each tool from its own virtual environment
(benchmarks/.venvs/metaflow, benchmarks/.venvs/prefect, built on first use from PyPI):

- ``loopwright``: ``@lw.step`` / ``@lw.pipeline`` on a fresh embedded store (SQLite + local
  blobs) in-process, the default executor; "cold" is the first run on the store, "cached" the
  same pipeline again (every step a cache hit). Timed inside the process around
  ``Pipeline.run`` (imports excluded), and as the wall time of the whole command.
- ``metaflow``: ``python flow.py run`` (local datastore and metadata, ``--max-workers 2`` for the
  fan-out — its default 16 is slower on two cores, see the anchors' report); Metaflow has no
  cross-run cache, so its "cached" row is a second identical run. The command's wall time only:
  Metaflow runs every step in its own subprocess.
- ``prefect``: ``@flow``/``@task`` with ``.map`` for the fan-out, the default cache policy, in one
  process that runs the flow twice: the first run starts Prefect's ephemeral API server; the
  second is "warm" (the anchors' report's figures are warm) and its tasks are cache hits only
  if Prefect's default policy finds them (it includes the flow run id, so they are not).

One loop iteration (``--skip-loop`` to leave it out): a loop on a served deployment whose
pipeline only returns an already registered version, driven from ``triggered`` to
``canary`` with approval off: the time is the loop's own bookkeeping (records, gate, traffic
change), without training.

Figures are medians over ``--repeat`` processes; the load average is printed at start and end
(a loaded machine slows the multi-process tools most). Targets (issue 14): Loopwright 10 steps
< 0.3 s, fan-out < 2 s (>= 10x Metaflow, >= 3x Prefect), fully cached < 0.2 s; loop bookkeeping
per iteration < 1 s.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
HERE = ROOT / "benchmarks"
VENVS = HERE / ".venvs"
REQUIREMENTS = {"metaflow": ("metaflow",), "prefect": ("prefect",)}
CONTENDERS = ("loopwright", "metaflow", "prefect")
FANOUT = 100
STEPS = 10

LOOPWRIGHT_SCRIPT = """
import json, sys, time
t0 = time.perf_counter()
import loopwright as lw

@lw.step
def noop(x: int) -> int:
    return x + 1

@lw.step
def item(i: int) -> int:
    return i * 2

@lw.step
def join(values: list) -> int:
    return sum(values)

@lw.pipeline
def linear(start: int = 0) -> int:
    x = start
    for _ in range(STEPS):
        x = noop(x)
    return x

@lw.pipeline
def fanout(n: int = FANOUT) -> int:
    return join(item.map(list(range(n))))

client = lw.connect(home=sys.argv[1])
imported = time.perf_counter() - t0
out = {"import_s": imported}
for name, pipe in (("linear", linear), ("fanout", fanout)):
    for phase in ("cold", "cached"):
        t = time.perf_counter()
        run = pipe.run(client=client)
        out[f"{name}_{phase}"] = time.perf_counter() - t
        assert run.status == "completed", (run.status, run.error)
        if phase == "cached":
            served = [s for s in client.pipelines.get_run(run.id).steps if s.status == "cached"]
            out[f"{name}_cached_steps"] = len(served)
client.close()
print(json.dumps(out))
""".replace("STEPS", str(STEPS)).replace("FANOUT", str(FANOUT))

METAFLOW_LINEAR = (
    "from metaflow import FlowSpec, step\n\n\nclass Linear(FlowSpec):\n"
    "    @step\n    def start(self):\n        self.x = 0\n        self.next(self.s1)\n"
    + "".join(
        f"    @step\n    def s{i}(self):\n        self.x += 1\n        self.next(self.s{i + 1})\n"
        for i in range(1, STEPS - 1)
    )
    + f"    @step\n    def s{STEPS - 1}(self):\n        self.x += 1\n        self.next(self.end)\n"
    "    @step\n    def end(self):\n        pass\n\n\nif __name__ == '__main__':\n    Linear()\n"
)

METAFLOW_FANOUT = textwrap.dedent(
    f"""
    from metaflow import FlowSpec, step


    class Fanout(FlowSpec):
        @step
        def start(self):
            self.items = list(range({FANOUT}))
            self.next(self.item, foreach="items")

        @step
        def item(self):
            self.value = self.input * 2
            self.next(self.join)

        @step
        def join(self, inputs):
            self.total = sum(i.value for i in inputs)
            self.next(self.end)

        @step
        def end(self):
            pass


    if __name__ == "__main__":
        Fanout()
    """
)

PREFECT_SCRIPT = textwrap.dedent(
    f"""
    import json, time
    from prefect import flow, task

    @task
    def noop(x: int) -> int:
        return x + 1

    @task
    def item(i: int) -> int:
        return i * 2

    @task
    def join(values: list) -> int:
        return sum(values)

    @flow
    def linear() -> int:
        x = 0
        for _ in range({STEPS}):
            x = noop(x)
        return x

    @flow
    def fanout() -> int:
        return join(item.map(list(range({FANOUT}))).result())

    out = {{}}
    for name, fn in (("linear", linear), ("fanout", fanout)):
        for phase in ("first", "warm"):
            t = time.perf_counter()
            fn()
            out[f"{{name}}_{{phase}}"] = time.perf_counter() - t
    print(json.dumps(out))
    """
)


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def venv_python(tool: str) -> Path:
    """The tool's own virtual environment, built on first use."""
    venv = VENVS / tool
    python = venv / "bin" / "python"
    if not python.exists():
        print(f"building {venv} ({', '.join(REQUIREMENTS[tool])}) ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *REQUIREMENTS[tool]], check=True)
    return python


def _wall(cmd: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
    return elapsed, done.stdout


def run_loopwright(work: Path) -> dict[str, float]:
    script = work / "lw_bench.py"
    script.write_text(LOOPWRIGHT_SCRIPT)
    env = {**os.environ, "PYTHONPATH": str(work)}
    env.pop("LOOPWRIGHT_SERVER_URI", None)
    wall, out = _wall([sys.executable, str(script), str(work / "home")], work, env)
    figures: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    figures["command_s"] = wall
    return figures


def run_metaflow(work: Path) -> dict[str, float]:
    python = venv_python("metaflow")
    (work / "linear.py").write_text(METAFLOW_LINEAR)
    (work / "fanout.py").write_text(METAFLOW_FANOUT)
    env = {
        **os.environ,
        "USERNAME": "bench",
        "METAFLOW_DEFAULT_DATASTORE": "local",
        "METAFLOW_DEFAULT_METADATA": "local",
        "METAFLOW_DATASTORE_SYSROOT_LOCAL": str(work),
    }
    figures: dict[str, float] = {}
    for name in ("linear", "fanout"):
        for phase in ("cold", "cached"):  # Metaflow has no cross-run cache: a second run
            cmd = [str(python), f"{name}.py", "run", "--max-workers", "2"]
            figures[f"{name}_{phase}"], _ = _wall(cmd, work, env)
    return figures


def run_prefect(work: Path) -> dict[str, float]:
    python = venv_python("prefect")
    (work / "prefect_bench.py").write_text(PREFECT_SCRIPT)
    env = {
        **os.environ,
        "PREFECT_HOME": str(work / "prefect-home"),
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
        "PREFECT_LOGGING_LEVEL": "WARNING",
    }
    env.pop("PREFECT_API_URL", None)
    wall, out = _wall([str(python), "prefect_bench.py"], work, env)
    figures: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    figures["command_s"] = wall
    return figures


LOOP_SCRIPT = """
import json, sys, time
from datetime import timedelta
import numpy as np
import loopwright as lw
from loopwright.loop import driver
from loopwright.registry.entities import ApprovalPolicy
from sklearn.linear_model import LogisticRegression

client = lw.connect(home=sys.argv[1])
rng = np.random.default_rng(0)
X = rng.normal(size=(200, 3)); y = (X[:, 0] > 0).astype(int)
with client.start_run(experiment="bench") as run:
    info = run.log_model(LogisticRegression().fit(X, y), registered_model_name="bench-model",
                         input_example=X[:2])
# The bookkeeping alone: no approvals (the default policy would hold the traffic for one).
client.registry.set_policy("bench-model", ApprovalPolicy(rules=()))
client.deployments.create("bench-api", "models:/bench-model/1")
with client.start_run(experiment="bench") as run:
    run.log_model(LogisticRegression(C=0.5).fit(X, y), registered_model_name="bench-model",
                  input_example=X[:2])
timings = []
for i in range(int(sys.argv[2])):
    name = f"bench-loop-{i}"
    client.loops.create(name, deployment="bench-api", pipeline="lw_loop_pipeline:returns_v2",
                        require_approval=False, canary_window=timedelta(hours=1), cwd=sys.argv[3])
    it = client.loops.start_iteration(name)
    t = time.perf_counter()
    it = driver.advance(client, it.id, owner="bench")
    timings.append(time.perf_counter() - t)
    assert it.state == "canary", (it.state, it.reason)
    client.deployments.rollback("bench-api")
    client.loops.transition(it.id, expect="canary", to="failed", reason="benchmark done")
print(json.dumps({"iteration_s": timings}))
"""

LOOP_PIPELINE = """
import loopwright as lw

@lw.step
def pick() -> str:
    return "models:/bench-model/2"

@lw.pipeline
def returns_v2() -> str:
    return pick()
"""


def run_loop(work: Path, iterations: int) -> dict[str, Any]:
    (work / "lw_loop_bench.py").write_text(LOOP_SCRIPT)
    (work / "lw_loop_pipeline.py").write_text(LOOP_PIPELINE)
    env = {**os.environ, "PYTHONPATH": str(work)}
    env.pop("LOOPWRIGHT_SERVER_URI", None)
    cmd = [sys.executable, "lw_loop_bench.py", str(work / "home"), str(iterations), str(work)]
    _, out = _wall(cmd, work, env)
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


RUNNERS = {"loopwright": run_loopwright, "metaflow": run_metaflow, "prefect": run_prefect}


def _median(runs: list[dict[str, float]], key: str) -> float | None:
    values = [r[key] for r in runs if key in r]
    return statistics.median(values) if values else None


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:8.3f} s"


def _ratio(anchor: float | None, ours: float | None) -> str:
    if anchor is None or ours is None or ours <= 0:
        return "-"
    return f"{anchor / ours:7.1f}x"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", default=",".join(CONTENDERS))
    parser.add_argument("--skip-loop", action="store_true")
    parser.add_argument("--loop-iterations", type=int, default=5)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    chosen = [c for c in args.only.split(",") if c]
    for name in chosen:
        if name not in RUNNERS:
            parser.error(f"--only: unknown contender {name!r} (known: {', '.join(CONTENDERS)})")
    print(f"load average at start: {load_average()}  (cores: {os.cpu_count()})", flush=True)
    results: dict[str, list[dict[str, float]]] = {}
    for name in chosen:
        results[name] = []
        for i in range(args.repeat):
            with tempfile.TemporaryDirectory(prefix=f"pipelines-bench-{name}-") as tmp:
                figures = RUNNERS[name](Path(tmp))
            results[name].append(figures)
            print(f"  {name} run {i + 1}/{args.repeat}: " + json.dumps(figures), flush=True)
    loop: dict[str, Any] | None = None
    if not args.skip_loop:
        with tempfile.TemporaryDirectory(prefix="pipelines-bench-loop-") as tmp:
            loop = run_loop(Path(tmp), args.loop_iterations)
    ours = results.get("loopwright", [])
    print()
    head = ("loopwright", "metaflow", "ratio", "prefect", "ratio")
    print(f"{'workload':28} " + " ".join(f"{h:>12}" if h != "ratio" else f"{h:>8}" for h in head))
    rows = [
        ("10-step linear, cold", "linear_cold", "linear_cold", "linear_warm"),
        ("10-step linear, cached", "linear_cached", "linear_cached", "linear_warm"),
        ("100-way fan-out, cold", "fanout_cold", "fanout_cold", "fanout_warm"),
        ("100-way fan-out, cached", "fanout_cached", "fanout_cached", "fanout_warm"),
    ]
    table = []
    for label, lw_key, mf_key, pf_key in rows:
        a = _median(ours, lw_key)
        m = _median(results.get("metaflow", []), mf_key)
        p = _median(results.get("prefect", []), pf_key)
        table.append({"workload": label, "loopwright": a, "metaflow": m, "prefect": p})
        cells = f"{_fmt(a):>12} {_fmt(m):>12} {_ratio(m, a):>8} {_fmt(p):>12} {_ratio(p, a):>8}"
        print(f"{label:28} {cells}")
    first = _median(results.get("prefect", []), "linear_first")
    if first is not None:
        print(f"{'prefect first run (starts its server)':40} {_fmt(first)}")
    if ours:
        print(f"{'loopwright import + connect':40} {_fmt(_median(ours, 'import_s'))}")
        print(f"{'loopwright whole command (4 runs)':40} {_fmt(_median(ours, 'command_s'))}")
    if loop is not None:
        per = statistics.median(loop["iteration_s"])
        count = len(loop["iteration_s"])
        print(f"{'loop iteration bookkeeping (median)':40} {_fmt(per)}  over {count}")
    print(f"\nload average at end: {load_average()}")
    if args.json:
        args.json.write_text(json.dumps({"runs": results, "table": table, "loop": loop}, indent=2))


if __name__ == "__main__":
    main()
