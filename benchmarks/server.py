"""Server benchmark: MLflow's client against `mlflow server` and `loopwright server`, on SQLite.

    .venv/bin/python benchmarks/server.py [--repeat 3] [--mlflow-repeat N] [--metric-calls 500]
                                          [--only a,b,c,d]

The client is MLflow's, run from MLflow's own environment (benchmarks/.venvs/mlflow, made by the
setup below when missing) for both servers, so only the server differs. Each server keeps its
metadata in SQLite in a fresh temporary folder on disk; each workload gets a fresh server and
store, and runs in a fresh client process with ``MLFLOW_HTTP_REQUEST_MAX_RETRIES=0``. `mlflow
server` runs with its defaults (4 workers); Loopwright's runs as `loopwright server` (or, before
that command exists, uvicorn over ``create_app``). The table shows medians over the repetitions.

(a) one run, ``mlflow.log_metric("m", v, step=i)`` 10,000 times; `mlflow server` manages about 17
    points/s, so it gets ``--metric-calls`` calls (default 500) and both are reported in points/s
(b) 100,000 points by ``MlflowClient().log_batch``, 1,000 metrics a call
(c) 1,000 runs, each ``mlflow.start_run()`` and ended, then ``mlflow.search_runs`` and
    ``MlflowClient().search_runs`` with ``max_results=1000``, timed separately
(d) cold start: from spawning the server to its first 200 from ``GET /health``, polled every 20 ms,
    on a fresh store (every server start above is a sample) and on the store it just wrote

After (a) and (b) the server is killed with SIGKILL at once and started again on the same store,
and the points it had acknowledged are read back: "durable" counts those that survived.
A workload that fails on one side shows "failed: <reason>" there; the others still run.

The floor: the same client programs, with the same request counts, against a bare Starlette app
under uvicorn (the settings `loopwright server` uses) that answers every request with one
constant JSON body, valid enough for MLflow's client. "floor" shows its rate, and "lw over floor"
the time Loopwright's server adds per client call (per run for (c)): what is left to cut on our
side. The load average is printed at start and end: a loaded machine makes every figure slower.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MLFLOW_ENV = ROOT / "benchmarks" / ".venvs" / "mlflow"
MLFLOW_PYTHON = MLFLOW_ENV / "bin" / "python"
MLFLOW_VERSION = "3.17.2"
LOOPWRIGHT_CLI = Path(sys.executable).parent / "loopwright"
TOOLS = ("mlflow", "loopwright", "floor")
LOOPWRIGHT_METRIC_CALLS = 10_000
BATCH_POINTS = 100_000
RUNS = 1000
START_TIMEOUT = 180.0  # seconds to wait for the first 200 from /health
CLIENT_TIMEOUT = 3600.0

# Client programs: each gets its constants from a prelude and prints one JSON object.
CLIENT = {
    "a": """
mlflow.set_experiment("bench")
with mlflow.start_run() as run:
    t = time.perf_counter()
    for i in range(CALLS):
        mlflow.log_metric("m", i * 0.001, step=i)
    seconds = time.perf_counter() - t
print(json.dumps({"seconds": seconds, "points": CALLS, "run_id": run.info.run_id,
                  "keys": ["m"]}))
""",
    "b": """
from mlflow.entities import Metric
client = MlflowClient()
run = client.create_run(client.create_experiment("bench"))
now = int(time.time() * 1000)
points = [Metric(f"m{i % 10}", i * 0.001, now, i // 10) for i in range(POINTS)]
t = time.perf_counter()
for start in range(0, POINTS, 1000):  # log_batch takes at most 1,000 metrics
    client.log_batch(run.info.run_id, metrics=points[start:start + 1000])
seconds = time.perf_counter() - t
print(json.dumps({"seconds": seconds, "points": POINTS, "run_id": run.info.run_id,
                  "keys": [f"m{k}" for k in range(10)]}))
""",
    "c": """
experiment = mlflow.set_experiment("bench")
t = time.perf_counter()
for _ in range(RUNS):
    with mlflow.start_run():
        pass
create = time.perf_counter() - t
result = {"create": create}
if SEARCH:  # not against the floor, which stores nothing
    t = time.perf_counter()
    frame = mlflow.search_runs(max_results=1000)
    result["search_fluent"] = time.perf_counter() - t
    t = time.perf_counter()
    found = MlflowClient().search_runs([experiment.experiment_id], max_results=1000)
    result["search_client"] = time.perf_counter() - t
    if len(frame) != RUNS or len(found) != RUNS:
        raise SystemExit(f"search found {len(frame)} and {len(found)} runs, not {RUNS}")
print(json.dumps(result))
""",
}

COUNT = """
client = MlflowClient()
print(json.dumps({"points": sum(len(client.get_metric_history(RUN_ID, k)) for k in KEYS)}))
"""


# The floor's one answer to every request: enough of each reply MLflow's client parses (it
# ignores the fields a message does not have) for set_experiment, start_run, log_metric,
# log_batch and end_run.
_RUN_INFO = {
    "run_id": "0" * 32,
    "run_uuid": "0" * 32,
    "run_name": "floor",
    "experiment_id": "1",
    "user_id": "bench",
    "status": "RUNNING",
    "start_time": 1,
    "artifact_uri": "mlflow-artifacts:/1/" + "0" * 32 + "/artifacts",
    "lifecycle_stage": "active",
}
FLOOR_BODY = json.dumps(
    {
        "experiment_id": "1",
        "experiment": {
            "experiment_id": "1",
            "name": "bench",
            "artifact_location": "mlflow-artifacts:/1",
            "lifecycle_stage": "active",
        },
        "run": {"info": _RUN_INFO, "data": {"metrics": [], "params": [], "tags": []}},
        "run_info": _RUN_INFO,
    }
).encode()


def floor_app() -> object:
    """A bare Starlette app answering every request with :data:`FLOOR_BODY`."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    async def answer(request: Request) -> Response:
        await request.body()
        return Response(FLOOR_BODY, media_type="application/json")

    methods = ["GET", "POST", "PATCH", "DELETE", "PUT"]
    return Starlette(routes=[Route("/{path:path}", answer, methods=methods)])


def serve_floor(port: int) -> None:
    import uvicorn

    # The settings `loopwright server` runs uvicorn with (cli/server.py).
    uvicorn.run(
        "server:floor_app",
        factory=True,
        app_dir=str(Path(__file__).resolve().parent),
        host="127.0.0.1",
        port=port,
        workers=1,
        log_level="warning",
        access_log=False,
    )


class Failed(Exception):
    """A server or client step failed; the message is the reason shown in the table."""


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    url: str
    seconds_to_ready: float


@dataclass
class Results:
    """One tool's samples: durations or rates by measure, or why a workload failed."""

    samples: dict[str, list[float]] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)

    def add(self, measure: str, value: float) -> None:
        self.samples.setdefault(measure, []).append(value)

    def median(self, measure: str) -> float | None:
        values = self.samples.get(measure)
        return statistics.median(values) if values else None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def clean_environment() -> dict[str, str]:
    return {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("MLFLOW_", "LOOPWRIGHT_", "VIRTUAL_ENV"))
    }


def server_command(tool: str, folder: Path, port: int, cli: bool) -> list[str]:
    address = ["--host", "127.0.0.1", "--port", str(port)]
    if tool == "floor":
        return [sys.executable, str(Path(__file__).resolve()), "--serve-floor", str(port)]
    if tool == "mlflow":
        return [
            str(MLFLOW_ENV / "bin" / "mlflow"),
            "server",
            "--backend-store-uri",
            f"sqlite:///{folder / 'mlflow.db'}",
            "--artifacts-destination",
            str(folder / "artifacts"),
            *address,
        ]
    if cli:
        return [str(LOOPWRIGHT_CLI), "--home", str(folder / "home"), "server", *address]
    factory = "loopwright.server.app:create_app"
    return [sys.executable, "-m", "uvicorn", "--factory", factory, *address]


def stop(process: subprocess.Popen[bytes], sig: signal.Signals = signal.SIGTERM) -> None:
    """Signal the server's whole process group (MLflow's workers too) and reap it."""
    try:
        os.killpg(process.pid, sig)
        process.wait(timeout=15)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def log_tail(log: Path) -> str:
    lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
    return lines[-1].strip() if lines else "no output"


@contextmanager
def serving(tool: str, folder: Path, cli: bool) -> Iterator[Server]:
    """Start ``tool``'s server over ``folder`` and wait for /health; always stop it after."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = clean_environment()
    env["LOOPWRIGHT_HOME"] = str(folder / "home")
    log = folder / f"{tool}-server-{port}.log"
    with log.open("wb") as out:
        start = time.perf_counter()
        process = subprocess.Popen(
            server_command(tool, folder, port, cli),
            cwd=folder,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so stop() reaches every worker
        )
    try:
        while not healthy(url):
            if process.poll() is not None:
                raise Failed(f"server exited with {process.returncode}: {log_tail(log)}")
            if time.perf_counter() - start > START_TIMEOUT:
                raise Failed(f"no 200 from /health within {START_TIMEOUT:.0f} s")
            time.sleep(0.02)
        yield Server(process, url, time.perf_counter() - start)
    finally:
        stop(process)


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=1) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def run_client(server: Server, folder: Path, program: str, **constants: object) -> dict[str, float]:
    prelude = "import json, time, mlflow\nfrom mlflow import MlflowClient\n" + "".join(
        f"{name} = {value!r}\n" for name, value in constants.items()
    )
    env = clean_environment()
    env.update(MLFLOW_TRACKING_URI=server.url, MLFLOW_HTTP_REQUEST_MAX_RETRIES="0")
    try:
        done = subprocess.run(
            [str(MLFLOW_PYTHON), "-c", prelude + program],
            capture_output=True,
            text=True,
            cwd=folder,
            env=env,
            timeout=CLIENT_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise Failed(f"client still running after {CLIENT_TIMEOUT:.0f} s") from None
    if done.returncode != 0:
        lines = [line.strip() for line in done.stderr.splitlines() if line.strip()]
        if not lines:
            raise Failed(f"client exited with {done.returncode}")
        raise Failed(re.sub(r"^(?:\w+\.)+(?=\w+: )", "", lines[-1]))  # drop the module path
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def workload(tool: str, key: str, calls: int, cli: bool, results: Results) -> None:
    """Run workload ``key`` once against a fresh ``tool`` server, adding to ``results``."""
    with tempfile.TemporaryDirectory(prefix=f"lw-bench-{tool}-") as tmp:
        folder = Path(tmp)
        with serving(tool, folder, cli) as server:
            results.add("start", server.seconds_to_ready)
            if key == "c":
                got = run_client(server, folder, CLIENT["c"], RUNS=RUNS, SEARCH=tool != "floor")
                results.add("c:create", RUNS / got["create"])
                for measure in ("search_fluent", "search_client"):
                    if measure in got:
                        results.add(f"c:{measure}", got[measure])
                return
            if key == "a":
                got = run_client(server, folder, CLIENT["a"], CALLS=calls)
            else:
                got = run_client(server, folder, CLIENT["b"], POINTS=BATCH_POINTS)
            results.add(f"{key}:rate", got["points"] / got["seconds"])
            if tool == "floor":
                return  # it stores nothing to read back
            stop(server.process, signal.SIGKILL)  # no chance to flush anything it buffered
        with serving(tool, folder, cli) as again:
            results.add("restart", again.seconds_to_ready)
            kept = run_client(again, folder, COUNT, RUN_ID=got["run_id"], KEYS=got["keys"])
        results.add(f"{key}:kept", kept["points"] / got["points"])
        results.add(f"{key}:acknowledged", got["points"])


def cold_start(tool: str, cli: bool, results: Results) -> None:
    with (
        tempfile.TemporaryDirectory(prefix=f"lw-bench-{tool}-") as tmp,
        serving(tool, Path(tmp), cli) as server,
    ):
        results.add("start", server.seconds_to_ready)


def ensure_mlflow() -> str:
    """MLflow's version in its environment, which is created with MLflow pinned when missing."""
    if not MLFLOW_PYTHON.exists():
        print(f"creating {MLFLOW_ENV} with mlflow=={MLFLOW_VERSION}", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(MLFLOW_ENV)], check=True)
        pin = f"mlflow=={MLFLOW_VERSION}"
        subprocess.run([str(MLFLOW_PYTHON), "-m", "pip", "install", "--quiet", pin], check=True)
    done = subprocess.run(
        [str(MLFLOW_PYTHON), "-c", "import mlflow; print(mlflow.__version__)"],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def has_server_command() -> bool:
    if not LOOPWRIGHT_CLI.exists():
        return False
    probe = [str(LOOPWRIGHT_CLI), "server", "--help"]
    return subprocess.run(probe, capture_output=True, check=False).returncode == 0


def cell(results: Results, key: str, measure: str, unit: str) -> str:
    if key in results.failures:
        return f"failed: {results.failures[key]}"
    value = results.median(measure)
    if value is None:
        return "not run"
    if unit == "kept":
        # Worst repetition, as points: every acknowledged point must survive.
        acknowledged = int(min(results.samples[measure.replace("kept", "acknowledged")]))
        kept = round(min(results.samples[measure]) * acknowledged)
        return f"{kept:,} of {acknowledged:,}"
    return f"{value:,.0f} {unit}" if unit.endswith("/s") else f"{value:.3f} {unit}"


def ratio(ours: Results, theirs: Results, key: str, measure: str, unit: str) -> str:
    if unit == "kept" or key in ours.failures or key in theirs.failures:
        return ""
    mine, other = ours.median(measure), theirs.median(measure)
    if mine is None or other is None:
        return ""
    return f"{mine / other if unit.endswith('/s') else other / mine:.1f}x"


# Points or runs per client call, to turn a rate into the time per call.
_PER_CALL = {"a:rate": 1, "b:rate": 1000, "c:create": 1}


def over_floor(ours: Results, floor: Results, key: str, measure: str) -> str:
    """The time Loopwright adds per client call (per run for (c)) over the bare app's."""
    if measure not in _PER_CALL or key in ours.failures or key in floor.failures:
        return ""
    mine, bare = ours.median(measure), floor.median(measure)
    if not mine or not bare:
        return ""
    unit = "run" if measure == "c:create" else "call"
    return f"+{(1 / mine - 1 / bare) * _PER_CALL[measure] * 1000:.2f} ms/{unit}"


def table(results: dict[str, Results], keys: list[str], calls: int, repeat: dict[str, int]) -> None:
    rows = {
        "a": [
            (
                f"(a) log_metric calls (mlflow {calls:,}, lw {LOOPWRIGHT_METRIC_CALLS:,})",
                "a:rate",
                "pts/s",
            ),
            ("(a) durable after SIGKILL, worst run", "a:kept", "kept"),
        ],
        "b": [
            (f"(b) {BATCH_POINTS:,} points by log_batch", "b:rate", "pts/s"),
            ("(b) durable after SIGKILL, worst run", "b:kept", "kept"),
        ],
        "c": [
            (f"(c) create {RUNS:,} runs (start_run/end)", "c:create", "runs/s"),
            ("(c) mlflow.search_runs(max_results=1000)", "c:search_fluent", "s"),
            ("(c) MlflowClient().search_runs(...)", "c:search_client", "s"),
        ],
        "d": [
            ("(d) cold start to first /health 200, fresh", "start", "s"),
            ("(d) start again on the store after SIGKILL", "restart", "s"),
        ],
    }
    theirs, ours, floor = results["mlflow"], results["loopwright"], results["floor"]
    print(
        f"\n{'workload':<58} {'mlflow server':>22} {'loopwright server':>22} {'ratio':>7} "
        f"{'floor (bare app)':>18} {'lw over floor':>16}"
    )
    for key in keys:
        for label, measure, unit in rows[key]:
            failed = key if key != "d" else "start"
            bare = cell(floor, failed, measure, unit) if measure in _PER_CALL else ""
            print(
                f"{label:<58} {cell(theirs, failed, measure, unit):>22} "
                f"{cell(ours, failed, measure, unit):>22} "
                f"{ratio(ours, theirs, failed, measure, unit):>7} {bare:>18} "
                f"{over_floor(ours, floor, failed, measure):>16}"
            )
    for tool in TOOLS:
        starts = len(results[tool].samples.get("start", []))
        print(
            f"{tool}: medians of {repeat[tool]} repetitions; cold start over {starts} fresh starts"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--mlflow-repeat", type=int, default=None, help="repetitions for mlflow (default --repeat)"
    )
    parser.add_argument(
        "--metric-calls", type=int, default=500, help="(a) log_metric calls against mlflow server"
    )
    parser.add_argument("--only", default="a,b,c,d")
    parser.add_argument("--serve-floor", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_floor:
        serve_floor(args.serve_floor)
        return
    # Servers run in their own sessions: turn SIGTERM into an exit so `finally` stops them.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    keys = [key for key in "abcd" if key in args.only.split(",")]
    repeat = {
        "mlflow": args.mlflow_repeat or args.repeat,
        "loopwright": args.repeat,
        "floor": args.repeat,
    }
    calls = {
        "mlflow": args.metric_calls,
        "loopwright": LOOPWRIGHT_METRIC_CALLS,
        "floor": LOOPWRIGHT_METRIC_CALLS,
    }

    mlflow_version = ensure_mlflow()
    cli = has_server_command()
    print(
        f"machine: {os.cpu_count()} cores, shared with other work, so figures are noisy\n"
        f"mlflow {mlflow_version} (client for both, and mlflow server with 4 workers); "
        f"loopwright via {'`loopwright server`' if cli else 'uvicorn --factory create_app'}\n"
        f"--repeat {args.repeat}, mlflow repetitions {repeat['mlflow']}; "
        "ratio > 1 means Loopwright is faster\n"
        f"load average at start: {load_average()}",
        flush=True,
    )
    results = {tool: Results() for tool in TOOLS}
    for rep in range(max(repeat.values())):
        for tool in TOOLS:
            if rep >= repeat[tool]:
                continue
            workloads = [key for key in keys if key != "d"] or ["d"]
            for key in workloads:
                if tool == "floor" and key == "d":
                    continue
                if key in results[tool].failures:
                    continue
                print(f"  repetition {rep + 1}: {tool} ({key})", flush=True)
                try:
                    if key == "d":
                        cold_start(tool, cli, results[tool])
                    else:
                        workload(tool, key, calls[tool], cli, results[tool])
                except Failed as failure:
                    results[tool].failures["start" if key == "d" else key] = str(failure)[:160]
    table(results, keys, args.metric_calls, repeat)
    print(f"load average at end: {load_average()}")


def load_average() -> str:
    """The 1, 5 and 15 minute load averages, against the number of cores."""
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f} ({os.cpu_count()} cores)"


if __name__ == "__main__":
    main()
