"""LLMOps benchmark: trace ingestion, the prompt registry and gateway overhead, each against
MLflow 3.17 (and LiteLLM for the gateway), every tool in its own venv and process.

    .venv/bin/python benchmarks/llmops.py [--part traces,prompts,gateway] [--quick]
        [--traces 1000] [--trace-modes lw-embedded,mlflow-sync] [--prompts 100]
        [--requests 200] [--warmup 20] [--json results.json]

Parts (each also described in its own module):

- traces (benchmarks/_llmops_traces.py): 1,000 traces x 5 spans; calls, time to durable, traces
  stored; Loopwright embedded and server, MLflow synchronous and async (on its store and ours);
- prompts (benchmarks/llmops_prompts.py, runnable alone): register, alias move, loads by version,
  by alias uncached, cached; Loopwright embedded and MLflow, both on SQLite;
- gateway (benchmarks/llmops_gateway.py, runnable alone): overhead per chat completion, JSON and
  SSE, over one stub upstream; Loopwright (tracing and usage on), LiteLLM 1.108.7
  (benchmarks/.venvs/litellm) and MLflow's gateway (usage tracking off and on).

MLflow is mlflow 3.17.2 (the anchor report's version) from the MLflow suite's venv
($HOME/.cache/loopwright/mlflow-suite-venv) or benchmarks/.venvs/mlflow-3.17, made on first use;
its workloads run as children of that interpreter. Each part prints its figures, the anchor
report's (../shared/anchors/llmops.md section 3) and their ratio; the end prints the load average
at start and end and one PASS/FAIL line per target of issue 19. ``--quick`` runs tiny counts
(checks that everything works; its figures say little, the more so on a loaded machine).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import _llmops_traces as traces
import llmops_gateway as gateway
import llmops_prompts as prompts
from _llmops_common import load_average

PARTS = ("traces", "prompts", "gateway")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--part", default=",".join(PARTS), help="comma-separated: " + ", ".join(PARTS)
    )
    parser.add_argument("--quick", action="store_true", help="tiny counts: does everything run?")
    parser.add_argument("--traces", type=int, default=1000, help="traces per mode")
    parser.add_argument("--trace-modes", default=",".join(traces.MODES), help="comma-separated")
    parser.add_argument("--prompts", type=int, default=100, help="versions, moves, loads each")
    parser.add_argument("--requests", type=int, default=200, help="per gateway path")
    parser.add_argument("--warmup", type=int, default=20, help="gateway warm-up requests")
    parser.add_argument("--json", type=Path, help="write every part's results here too")
    args = parser.parse_args()
    parts = [p for p in args.part.split(",") if p]
    unknown = set(parts) - set(PARTS)
    if unknown:
        parser.error(f"unknown parts {sorted(unknown)}; parts: {', '.join(PARTS)}")
    if args.quick:
        args.traces, args.prompts, args.requests, args.warmup = 20, 5, 10, 2

    started = load_average()
    print(f"load average at start: {started}", flush=True)
    results: dict[str, Any] = {"load_average_start": started}
    lines: list[str] = []
    if "traces" in parts:
        print("\n== traces ==", flush=True)
        rows = traces.run(args.traces, [m for m in args.trace_modes.split(",") if m])
        results["traces"], lines = rows, lines + traces.verdicts(rows)
    if "prompts" in parts:
        print("\n== prompts ==", flush=True)
        figures = prompts.run(args.prompts)
        results["prompts"], lines = figures, lines + prompts.verdicts(figures)
    if "gateway" in parts:
        print("\n== gateway ==", flush=True)
        measured = gateway.run(args.requests, args.warmup, {"lw", "litellm", "mlflow"})
        results["gateway"], lines = measured, lines + gateway.verdicts(measured)
    ended = load_average()
    results["load_average_end"] = ended
    print("\n== targets (issue 19) ==")
    for line in lines:
        print(line)
    print(f"load average at start: {started}; at end: {ended}")
    if args.quick:
        print("(--quick: tiny counts, a check that every part runs, not a measurement)")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    main()
