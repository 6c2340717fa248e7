"""LLMOps prompt registry: register, move an alias, load (by version, by alias, cached) on
Loopwright embedded and on MLflow, both on SQLite in a temp dir.

    .venv/bin/python benchmarks/llmops_prompts.py [--n 100] [--quick]

Each tool runs in its own process on a fresh store: Loopwright's ``client.prompts`` (embedded;
uncached loads go to the service, ``PromptService.load``) and mlflow 3.17.2 from its own venv
(``_llmops_common.mlflow_python``; ``mlflow.genai.register_prompt``, ``set_prompt_alias``,
``load_prompt`` with ``cache_ttl_seconds=0`` for uncached loads) with a SQLite tracking URI.
Workload: ``--n`` versions of one text prompt registered, the alias ``beta`` moved ``--n`` times
(unprotected in Loopwright's default policy, so no approval is involved), then ``--n`` loads of
each kind.
Reported: the median per call in ms, and MLflow's median over ours. The issue's target: a prompt
load uncached embedded <= 1 ms (MLflow measured 25 ms by alias on SQLite). Also the prompt part
of benchmarks/llmops.py (``--part prompts``).
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
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _llmops_common import load_average, mlflow_python, verdict

OPS = ("register", "set_alias", "load_version", "load_alias", "load_cached")
# ../shared/anchors/llmops.md section 3: MLflow 3.17, SQLite, load by alias uncached.
ANCHOR_LOAD_ALIAS_MS = 25.0


def _timed(n: int, call: Callable[[int], Any]) -> float:
    """The median of ``n`` calls of ``call(i)`` in ms (one untimed warm-up call first)."""
    call(0)
    times = []
    for i in range(n):
        start = time.perf_counter()
        call(i)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def run_loopwright(home: str, n: int) -> dict[str, float]:
    import loopwright as lw

    with lw.connect(home=home) as client:
        prompts, service = client.prompts, client.prompts.backend
        figures = {"register": _timed(n, lambda i: prompts.register("bench", f"v{i} {{{{ q }}}}"))}
        figures["set_alias"] = _timed(n, lambda i: prompts.set_alias("bench", "beta", i % n + 1))
        figures["load_version"] = _timed(n, lambda i: service.load(f"prompts:/bench/{i % n + 1}"))
        figures["load_alias"] = _timed(n, lambda i: service.load("prompts:/bench@beta"))
        figures["load_cached"] = _timed(n, lambda i: prompts.load("prompts:/bench@beta"))
    return figures


def run_mlflow(home: str, n: int) -> dict[str, Any]:
    import mlflow

    uri = f"sqlite:///{home}/mlflow.db"
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    genai = mlflow.genai
    figures: dict[str, Any] = {
        "register": _timed(n, lambda i: genai.register_prompt("bench", f"v{i} {{{{ q }}}}"))
    }
    figures["set_alias"] = _timed(
        n, lambda i: genai.set_prompt_alias("bench", alias="beta", version=i % n + 1)
    )
    figures["load_version"] = _timed(
        n, lambda i: genai.load_prompt(f"prompts:/bench/{i % n + 1}", cache_ttl_seconds=0)
    )
    figures["load_alias"] = _timed(
        n, lambda i: genai.load_prompt("prompts:/bench@beta", cache_ttl_seconds=0)
    )
    figures["load_cached"] = _timed(n, lambda i: genai.load_prompt("prompts:/bench@beta"))
    figures["version"] = mlflow.__version__
    return figures


def _child(tool: str, n: int, python: Path) -> dict[str, Any]:
    """Run one tool in a fresh process of ``python`` and a fresh temp dir; its figures."""
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}
    env = {k: v for k, v in env.items() if not k.startswith("LOOPWRIGHT_")}
    with tempfile.TemporaryDirectory(prefix=f"prompts-{tool}-") as home:
        done = subprocess.run(
            [str(python), __file__, "--child", tool, "--n", str(n), "--home", home],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
    if done.returncode != 0:
        raise SystemExit(f"{tool} failed:\n{done.stderr[-3000:]}")
    figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def run(n: int) -> dict[str, Any]:
    """Both tools, printed as a table; ``{"loopwright": figures, "mlflow": figures}``."""
    ours = _child("loopwright", n, Path(sys.executable))
    theirs = _child("mlflow", n, mlflow_python()[0])
    print(
        f"prompt registry, SQLite on disk, median ms per call over {n}, mlflow {theirs['version']}"
    )
    print(f"{'operation':14} {'loopwright':>11} {'mlflow':>9} {'mlflow/ours':>12}")
    for op in OPS:
        ratio = theirs[op] / ours[op] if ours[op] else float("inf")
        print(f"{op:14} {ours[op]:11.3f} {theirs[op]:9.3f} {ratio:11.1f}x")
    anchor_ratio = ANCHOR_LOAD_ALIAS_MS / ours["load_alias"] if ours["load_alias"] else float("inf")
    print(
        f"anchor: MLflow load by alias uncached {ANCHOR_LOAD_ALIAS_MS:.0f} ms (SQLite); "
        f"ours {ours['load_alias']:.3f} ms, {anchor_ratio:.1f}x faster"
    )
    return {"loopwright": ours, "mlflow": theirs}


def verdicts(result: dict[str, Any]) -> list[str]:
    """The issue's target: a prompt load uncached embedded <= 1 ms (by version and by alias)."""
    ours = result["loopwright"]
    worst = max(ours["load_version"], ours["load_alias"])
    measured = (
        f"median {ours['load_version']:.3f} ms by version, {ours['load_alias']:.3f} ms by alias "
        f"(mlflow {result['mlflow']['load_alias']:.3f} ms by alias)"
    )
    return [verdict("prompt load uncached embedded <= 1 ms", worst <= 1.0, measured)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100, help="versions, moves and loads each")
    parser.add_argument("--quick", action="store_true", help="--n 20")
    parser.add_argument("--child", choices=("loopwright", "mlflow"), help=argparse.SUPPRESS)
    parser.add_argument("--home", help=argparse.SUPPRESS)
    args = parser.parse_args()
    n = 20 if args.quick else args.n
    if args.child:
        run_child = run_loopwright if args.child == "loopwright" else run_mlflow
        print(json.dumps(run_child(args.home, n)))
        return
    print(f"load average at start: {load_average()}")
    result = run(n)
    for line in verdicts(result):
        print(line)
    print(f"load average at end: {load_average()}")


if __name__ == "__main__":
    main()
