"""Serving benchmark: one small model behind Loopwright, MLServer, BentoML and a FastAPI baseline.

    .venv/bin/python benchmarks/serving.py [--repeat 3] [--seconds 10] [--warmup 2]
                                           [--connections 32] [--only a,b] [--quick] [--json F]

The model (scikit-learn GradientBoostingClassifier, 100 trees, 20 features; trained once per
run, saved in each tool's format, see _serving_tools) is served by:

- ``loopwright``: ``loopwright serve`` from this environment with its defaults: prediction log
  on, batching up to 32 rows that lingers while requests keep arriving (at most 5 ms);
  ``loopwright-nobatch`` with ``--max-batch-size 1`` (batching off);
  ``loopwright-batch0`` with ``--max-batch-latency-ms 0`` (merges what waits while the model
  is busy, never lingers); ``loopwright-nolog`` (only with --only) with ``--no-log``;
- ``mlserver``: MLServer 1.7.1 + mlserver-sklearn, ``parallel_workers: 0``; ``mlserver-batch``
  with adaptive batching ``max_batch_size 32``, ``max_batch_time 0.005``;
- ``bentoml``: BentoML 1.4.40, ``@bentoml.service(workers=1)``, defaults;
- ``fastapi``: FastAPI + uvicorn (uvloop, httptools), one ``async def`` route, pydantic body.

The anchors run from their own venvs under benchmarks/.venvs/ (made on first use, see
_serving_envs). Every server is one worker process, pinned to ``--server-cpu`` with taskset and
BLAS/OpenMP threads at 1; the load generator (_serving_load: raw asyncio HTTP/1.1, keep-alive
connections, closed loop) runs as a separate process pinned to ``--client-cpu``. Each
repetition starts every configuration afresh, round-robin, so background load hits them all:

- cold start: spawn to the first 200 on a real predict request (polled every 20 ms);
- idle RSS: the server's whole process tree, right after that first answer;
- "single": single-row requests, "batch100": 100-row requests, each ``--warmup`` seconds
  unrecorded then ``--seconds`` recorded: req/s, rows/s, P50/P95/P99, errors.

The tables show medians over the repetitions, then Loopwright's ratio to each anchor and the
issue 12 targets. The load average is printed at start and end: a busy machine makes every
figure slower, and the ratios (same repetition, same load) are the robust part.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

from _serving_envs import ensure
from _serving_tools import (
    BATCH_ROWS,
    CONFIGS,
    DEFAULT_CONFIGS,
    Config,
    body,
    free_port,
    loopwright_http,
    prepare,
)

LOAD = Path(__file__).resolve().parent / "_serving_load.py"
START_TIMEOUT = 180.0
CASES = {"single": 1, "batch100": BATCH_ROWS}
ENVS = {"mlserver": "srv-mlserver", "bentoml": "srv-bentoml", "fastapi": "srv-baseline"}


class Failed(Exception):
    """A server did not start or the load generator failed; the message says why."""


@dataclass
class Results:
    """One configuration's samples by measure, and why it failed if it did."""

    samples: dict[str, list[float]] = field(default_factory=dict)
    failure: str = ""

    def add(self, measure: str, value: float) -> None:
        self.samples.setdefault(measure, []).append(value)

    def median(self, measure: str) -> float | None:
        values = self.samples.get(measure)
        return statistics.median(values) if values else None


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    url: str
    cold_start: float


def server_environment(extra: dict[str, str]) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("LOOPWRIGHT_", "MLSERVER_", "BENTOML_", "VIRTUAL_ENV"))
    }
    # One core each: BLAS/OpenMP pools would otherwise spread the model over both.
    env.update(OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    env.update(extra)
    return env


@contextmanager
def serving(config: Config, work: Path, cpu: str, probe: bytes) -> Iterator[Server]:
    """Start ``config``'s server pinned to ``cpu``; wait for a 200 on ``probe``; always stop."""
    port = free_port()
    launch = config.launch(work, port)
    url = f"http://127.0.0.1:{port}{config.path}"
    log = work / f"{config.name}-{port}.log"
    with log.open("wb") as out:
        start = time.perf_counter()
        process = subprocess.Popen(
            ["taskset", "-c", cpu, *launch.argv],
            cwd=launch.cwd,
            env=server_environment(launch.env),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so stop() reaches every worker
        )
    try:
        while not answers(url, probe):
            if process.poll() is not None:
                raise Failed(f"exited with {process.returncode}: {log_tail(log)}")
            if time.perf_counter() - start > START_TIMEOUT:
                raise Failed(f"no 200 within {START_TIMEOUT:.0f} s: {log_tail(log)}")
            time.sleep(0.02)
        yield Server(process, url, time.perf_counter() - start)
    finally:
        stop(process)


def answers(url: str, probe: bytes) -> bool:
    request = urllib.request.Request(url, probe, {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def descendants(pid: int) -> list[int]:
    """``pid`` and every process below it (BentoML's workers leave its process group)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


def rss_mib(pid: int) -> float:
    """Resident memory of ``pid``'s process tree, in MiB."""
    total = 0
    for process in descendants(pid):
        try:
            for line in Path(f"/proc/{process}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the server's group, then SIGKILL to anything of its tree still there."""
    tree = descendants(process.pid)
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=15)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    for pid in tree[1:]:
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def log_tail(log: Path) -> str:
    lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
    return lines[-1].strip()[:200] if lines else "no output"


def drive(url: str, body_file: Path, cpu: str, args: argparse.Namespace) -> dict[str, float]:
    """One run of the load generator, pinned to ``cpu``, in its own process."""
    argv = ["taskset", "-c", cpu, sys.executable, str(LOAD), "--url", url]
    argv += ["--body", str(body_file), "--connections", str(args.connections)]
    argv += ["--seconds", str(args.seconds), "--warmup", str(args.warmup)]
    limit = args.seconds + args.warmup + 60
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=limit, check=False)
    except subprocess.TimeoutExpired:
        raise Failed(f"the load generator ran past {limit:.0f} s") from None
    if done.returncode != 0:
        raise Failed(f"the load generator failed: {done.stderr.strip()[-200:]}")
    return dict(json.loads(done.stdout))


def measure(
    config: Config, work: Path, bodies: dict[tuple[str, str], Path], args: argparse.Namespace
) -> dict[str, float]:
    """Start ``config`` afresh, measure start and memory, load it with each case, stop it."""
    figures: dict[str, float] = {}
    probe = bodies[config.protocol, "single"].read_bytes()
    with serving(config, work, args.server_cpu, probe) as server:
        figures["cold_start_s"] = server.cold_start
        figures["rss_mib"] = rss_mib(server.process.pid)
        for case, rows in CASES.items():
            got = drive(server.url, bodies[config.protocol, case], args.client_cpu, args)
            for key in ("req_per_s", "p50_ms", "p95_ms", "p99_ms"):
                figures[f"{case}:{key}"] = got[key]
            figures[f"{case}:rows_per_s"] = got["req_per_s"] * rows
            figures[f"{case}:errors_pct"] = 100 * got["errors"] / max(1, got["requests"])
            if got["errors"]:
                causes = ", ".join(f"{k} x{v}" for k, v in got["error_causes"].items())
                print(f"    {config.name} {case}: {got['errors']} errors ({causes})", flush=True)
    return figures


def load_average() -> str:
    """The 1, 5 and 15 minute load averages, against the number of cores."""
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f} ({os.cpu_count()} cores)"


def fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def table(results: dict[str, Results]) -> None:
    head = (
        f"{'config':<18} {'case':<9} {'req/s':>8} {'rows/s':>9} {'p50 ms':>8} {'p95 ms':>8} "
        f"{'p99 ms':>8} {'err %':>6} {'cold s':>7} {'RSS MiB':>8}"
    )
    print("\n" + head)
    for name, res in results.items():
        if res.failure:
            print(f"{name:<18} failed: {res.failure}")
            continue
        for case in CASES:
            m = res.median
            print(
                f"{name:<18} {case:<9} {fmt(m(f'{case}:req_per_s'), ',.0f'):>8} "
                f"{fmt(m(f'{case}:rows_per_s'), ',.0f'):>9} {fmt(m(f'{case}:p50_ms'), '.1f'):>8} "
                f"{fmt(m(f'{case}:p95_ms'), '.1f'):>8} {fmt(m(f'{case}:p99_ms'), '.1f'):>8} "
                f"{fmt(m(f'{case}:errors_pct'), '.1f'):>6} "
                f"{fmt(m('cold_start_s'), '.2f') if case == 'single' else '':>7} "
                f"{fmt(m('rss_mib'), '.0f') if case == 'single' else '':>8}"
            )


def ratio_of_medians(
    results: dict[str, Results], ours: str, theirs: str, measure: str
) -> float | None:
    """Median over repetitions of ours/theirs in the same repetition (same background load)."""
    a, b = results[ours].samples.get(measure, []), results[theirs].samples.get(measure, [])
    pairs = [x / y for x, y in zip(a, b, strict=False) if y]
    return statistics.median(pairs) if pairs else None


def ratios(results: dict[str, Results]) -> None:
    ours = [n for n in results if CONFIGS[n].tool == "loopwright" and not results[n].failure]
    anchors = [n for n in results if CONFIGS[n].tool != "loopwright" and not results[n].failure]
    if not ours or not anchors:
        return
    print(
        "\nratio of Loopwright to each anchor (median of per-repetition ratios; > 1: ours faster)"
    )
    print(f"{'':<18} {'case':<9} " + " ".join(f"{a:>15}" for a in anchors))
    for name in ours:
        for case in CASES:
            cells = [ratio_of_medians(results, name, a, f"{case}:rows_per_s") for a in anchors]
            print(f"{name:<18} {case:<9} " + " ".join(f"{fmt(c, '.2f'):>15}" for c in cells))


def targets(results: dict[str, Results]) -> None:
    """Issue 12's targets, with Loopwright's best configuration for each."""

    def ok(name: str) -> bool:
        return name in results and not results[name].failure

    ours = [n for n in results if CONFIGS[n].tool == "loopwright" and ok(n)]
    if not ours:
        return
    print("\nissue 12 targets (Loopwright's best configuration each)")
    checks = [
        ("single rows >= 1.5x mlserver-batch", "mlserver-batch", "single:rows_per_s", 1.5),
        ("single rows >= 1.3x fastapi", "fastapi", "single:rows_per_s", 1.3),
        ("100-row rows/s >= fastapi / 1.2", "fastapi", "batch100:rows_per_s", 1 / 1.2),
    ]
    for label, anchor, key, goal in checks:
        if not ok(anchor):
            print(f"  {label}: {anchor} not measured")
            continue
        best = max(ours, key=lambda n: ratio_of_medians(results, n, anchor, key) or 0)
        got = ratio_of_medians(results, best, anchor, key)
        verdict = "met" if got is not None and got >= goal else "NOT met"
        print(f"  {label}: {fmt(got, '.2f')}x ({best}) -> {verdict}")
    for name in ours:
        p99 = results[name].median("single:p99_ms")
        verdict = "met" if p99 is not None and p99 <= 50 else "NOT met"
        print(f"  {name} single-row P99 <= 50 ms: {fmt(p99, '.1f')} ms -> {verdict}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10.0, help="recorded seconds per case")
    parser.add_argument("--warmup", type=float, default=2.0, help="unrecorded seconds first")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--only", default=",".join(DEFAULT_CONFIGS), help=", ".join(CONFIGS))
    parser.add_argument("--server-cpu", default="0")
    parser.add_argument("--client-cpu", default="1")
    parser.add_argument("--quick", action="store_true", help="--repeat 1 --seconds 3 --warmup 1")
    parser.add_argument("--json", type=Path, help="also write every sample here")
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it (server logs)")
    args = parser.parse_args()
    if args.quick:
        args.repeat, args.seconds, args.warmup = 1, 3.0, 1.0
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = [n for n in names if n not in CONFIGS]
    if unknown:
        parser.error(f"unknown configurations {unknown}; choose from {', '.join(CONFIGS)}")
    configs = [CONFIGS[n] for n in names]
    # Servers run in their own sessions: turn SIGTERM into an exit so `finally` stops them.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    versions = {
        tool: ensure(env) for tool, env in ENVS.items() if any(c.tool == tool for c in configs)
    }
    print(
        f"machine: {os.cpu_count()} cores, shared with other work, so figures are indicative\n"
        f"anchors: {', '.join(f'{t} {v}' for t, v in versions.items()) or 'none'}; "
        f"loopwright serve runs on {loopwright_http()}\n"
        f"server on CPU {args.server_cpu}, load generator on CPU {args.client_cpu}; "
        f"{args.connections} connections; {args.warmup:g} s warm-up + {args.seconds:g} s per case; "
        f"--repeat {args.repeat}\nload average at start: {load_average()}",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="lw-bench-serving-") as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        rows = prepare(work, configs)
        bodies: dict[tuple[str, str], Path] = {}
        for protocol in {c.protocol for c in configs}:
            for case, count in CASES.items():
                path = work / f"body-{protocol}-{case}.json"
                path.write_bytes(body(protocol, rows[:count]))
                bodies[protocol, case] = path
        results = {c.name: Results() for c in configs}
        for rep in range(args.repeat):
            for config in configs:
                if results[config.name].failure:
                    continue
                print(f"  repetition {rep + 1}: {config.name}", flush=True)
                try:
                    for key, value in measure(config, work, bodies, args).items():
                        results[config.name].add(key, value)
                except Failed as failure:
                    results[config.name].failure = str(failure)
    table(results)
    ratios(results)
    targets(results)
    print(f"load average at end: {load_average()}")
    if args.json:
        samples = {n: {"samples": r.samples, "failure": r.failure} for n, r in results.items()}
        args.json.write_text(json.dumps(samples, indent=1))


if __name__ == "__main__":
    main()
