"""LLM gateway overhead: the time a gateway adds per request over calling the upstream directly.

    .venv/bin/python benchmarks/llmops_gateway.py [--requests 200] [--warmup 20]
        [--only lw,litellm,mlflow]

One stub OpenAI-compatible upstream (tests/gateway/_llm_stub.py) runs in its own process; each
gateway runs in its own process in front of it; this process is the client (httpx, one
keep-alive connection, requests one after another). For each path it times ``--requests``
chat completions after ``--warmup``, as JSON and as SSE (``stream: true`` with
``stream_options.include_usage``, read to the end), and reports the median and p95; "overhead" is
the gateway's median minus the direct median, in the same run.

- direct: the stub itself;
- loopwright: ``loopwright server`` (1 worker, SQLite, no auth) with one route to the stub,
  usage accounting and tracing on (as always), a price per model so each request gets a cost;
  afterwards the usage rows and traces the server stored are counted (both must equal the
  requests sent, warm-up included);
- mlflow: MLflow 3.17.2's gateway (``mlflow server``, 1 worker, SQLite) from its own venv
  (``_llmops_common.mlflow_python``), one endpoint with usage tracking off and one with it on
  (a trace per request), configured by benchmarks/_llmops_mlflow_gateway.py; its stored traces
  are counted afterwards;
- litellm: LiteLLM 1.108.7's proxy (no database, 1 worker) from benchmarks/.venvs/litellm, with
  one model entry pointing at the stub; when that venv is missing, the anchor report's figures
  (../shared/anchors/llmops.md, measured on this machine class) are printed, marked as such.

The gateway process's CPU time per request (user + system, all its threads, from /proc) is
printed too: unlike wall time it barely moves with other load on the machine.

The anchor report's figures (MLflow's gateway, LiteLLM, their overhead over its stub) are printed
beside this run's, with the ratio of their overhead to ours. The issue's target: <= 2 ms overhead
per request with tracing and usage on, JSON and SSE. The load average is printed first and last:
figures from a busy machine are slower everywhere. Also the gateway part of benchmarks/llmops.py
(``--part gateway``).
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from _llmops_common import ROOT, free_port, load_average, mlflow_python, verdict

VENV_BIN = Path(sys.executable).parent
LITELLM = ROOT / "benchmarks" / ".venvs" / "litellm" / "bin"
# From ../shared/anchors/llmops.md section 3 (200 sequential requests, a ~1.2 ms stub).
ANCHOR_STUB = (1.25, 1.4)
ANCHOR: dict[str, tuple[float, float | None]] = {
    "MLflow gateway, usage tracking off": (13.2, 24.0),
    "MLflow gateway, usage tracking on": (24.8, None),
    "LiteLLM 1.108.7 proxy, no DB": (15.5, 24.0),
}
MESSAGES = [{"role": "user", "content": "say something short about gateways"}]


def _wait(url: str, proc: subprocess.Popen[bytes], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{url} did not answer within {seconds} s")


def _cpu_ms(pid: int) -> float:
    """CPU time (user + system, every thread) process ``pid`` and its live descendants have used
    so far, in ms: ``mlflow server`` serves from a uvicorn child, not from the launched pid."""
    parents: dict[int, int] = {}
    ticks: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended meanwhile
            continue
        child = int(stat.parent.name)
        parents[child], ticks[child] = int(fields[1]), int(fields[11]) + int(fields[12])
    tree, grew = {pid}, True
    while grew:
        more = {child for child, parent in parents.items() if parent in tree} - tree
        tree, grew = tree | more, bool(more)
    return sum(ticks.get(member, 0) for member in tree) * 1000 / os.sysconf("SC_CLK_TCK")


@contextmanager
def _process(
    args: list[str], ready: str, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(args, stdout=log, stderr=log, env={**os.environ, **(env or {})})
        try:
            _wait(ready, proc)
            yield proc
        except Exception:
            log.seek(0)
            sys.stderr.write(log.read().decode(errors="replace")[-3000:])
            raise
        finally:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()


STUB_MAIN = """
import sys, time
sys.path.insert(0, {path!r})
import uvicorn
from _llm_stub import Stub, _app
uvicorn.run(_app(Stub(keep=False)), host="127.0.0.1", port={port}, log_level="warning",
            access_log=False, lifespan="off")
"""


def _time(
    call: Callable[[], None], requests: int, warmup: int, pid: int
) -> tuple[float, float, float]:
    """Median and p95 ms of ``requests`` calls, and the CPU ms per call of process ``pid``."""
    for _ in range(warmup):
        call()
    times = []
    cpu = _cpu_ms(pid)
    for _ in range(requests):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    cpu = (_cpu_ms(pid) - cpu) / requests
    ordered = sorted(times)
    return statistics.median(ordered), ordered[int(0.95 * (len(ordered) - 1))], cpu


def _paths(
    http: httpx.Client, base: str, model: str, headers: dict[str, str]
) -> dict[str, Callable[[], None]]:
    body = {"model": model, "messages": MESSAGES}
    stream_body = {**body, "stream": True, "stream_options": {"include_usage": True}}

    def json_call() -> None:
        answer = http.post(f"{base}/chat/completions", json=body, headers=headers)
        assert answer.status_code == 200, answer.text
        answer.json()

    def sse_call() -> None:
        with http.stream(
            "POST", f"{base}/chat/completions", json=stream_body, headers=headers
        ) as answer:
            assert answer.status_code == 200, answer.read()
            usage = False
            for line in answer.iter_lines():
                usage = usage or '"usage": {' in line or '"usage":{' in line
            assert usage, "no usage chunk in the stream"

    return {"json": json_call, "sse": sse_call}


def run_loopwright(stub_url: str, work: Path, requests: int, warmup: int) -> dict[str, object]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {"LOOPWRIGHT_HOME": str(work / "lw-home"), "LOOPWRIGHT_USER": "bench"}
    args = [str(VENV_BIN / "loopwright"), "server", "--port", str(port)]
    with _process(args, f"{url}/health", env) as proc, httpx.Client(timeout=30) as http:
        route = {"targets": [{"name": "primary", "base_url": f"{stub_url}/v1", "model": "stub",
                              "price": {"input_per_1m": 0.5, "output_per_1m": 1.5}}]}  # fmt: skip
        created = http.post(f"{url}/api/v1/gateway/routes", json={"name": "chat", "config": route})
        assert created.status_code == 201, created.text
        result: dict[str, object] = {}
        for kind, call in _paths(http, f"{url}/v1", "chat", {}).items():
            result[kind] = _time(call, requests, warmup, proc.pid)
        usage = http.get(f"{url}/api/v1/gateway/usage", params={"route": "chat"}).json()
        result["usage_rows"] = sum(row["requests"] for row in usage)
        result["estimated"] = sum(row["estimated_requests"] for row in usage)
    # The server has stopped (its exporter flushed at shutdown): count what it stored.
    from loopwright.config import resolve_settings
    from loopwright.store.home import open_store

    with open_store(resolve_settings(home=work / "lw-home")) as store, store.db.read() as conn:
        import sqlalchemy as sa

        result["traces"] = conn.execute(sa.text("SELECT count(*) FROM traces")).scalar()
    return result


LITELLM_CONFIG = """model_list:
  - model_name: chat
    litellm_params:
      model: openai/stub
      api_base: {base}
      api_key: unused
"""


def run_mlflow(stub_url: str, work: Path, requests: int, warmup: int) -> dict[str, object]:
    """MLflow 3.17's gateway (``mlflow server``, 1 worker, SQLite, job execution off) in front of
    the stub, from its own venv: the endpoint ``plain`` (usage tracking off) and ``traced``
    (usage tracking on), configured by benchmarks/_llmops_mlflow_gateway.py."""
    python, version = mlflow_python()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    db = work / "mlflow.db"
    args = [str(python.parent / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port),
            "--backend-store-uri", f"sqlite:///{db}", "--default-artifact-root",
            str(work / "mlflow-artifacts"), "--workers", "1"]  # fmt: skip
    env = {
        # The anchor report's settings: no job runner, the plain-HTTP loopback stub allowed, no
        # telemetry or model-catalog fetch.
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
        "MLFLOW_GATEWAY_API_BASE_ALLOWED_SCHEMES": "http,https",
        "MLFLOW_GATEWAY_API_BASE_ALLOW_PRIVATE_IPS": "true",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "DO_NOT_TRACK": "true",
        "MLFLOW_MODEL_CATALOG_URI": "",
    }
    setup = ROOT / "benchmarks" / "_llmops_mlflow_gateway.py"
    result: dict[str, object] = {"version": version}
    with _process(args, f"{url}/health", env) as proc, httpx.Client(timeout=30) as http:
        subprocess.run([str(python), str(setup), url, f"{stub_url}/v1"], check=True)
        for endpoint in ("plain", "traced"):
            for kind, call in _paths(http, f"{url}/gateway/mlflow/v1", endpoint, {}).items():
                result[f"{endpoint}_{kind}"] = _time(call, requests, warmup, proc.pid)
    with sqlite3.connect(db) as conn:  # after the server stopped: what it stored
        result["traces"] = conn.execute("SELECT count(*) FROM trace_info").fetchone()[0]
    return result


def run_litellm(stub_url: str, work: Path, requests: int, warmup: int) -> dict[str, object]:
    config = work / "litellm.yaml"
    config.write_text(LITELLM_CONFIG.format(base=f"{stub_url}/v1"))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    key = "sk-bench-" + os.urandom(16).hex()
    args = [str(LITELLM / "litellm"), "--config", str(config), "--port", str(port),
            "--num_workers", "1"]  # fmt: skip
    env = {"LITELLM_MASTER_KEY": key, "LITELLM_TELEMETRY": "False", "DISABLE_SCHEMA_UPDATE": "1"}
    with (
        _process(args, f"{url}/health/liveliness", env) as proc,
        httpx.Client(timeout=30) as http,
    ):
        headers = {"Authorization": f"Bearer {key}"}
        return {
            kind: _time(call, requests, warmup, proc.pid)
            for kind, call in _paths(http, f"{url}/v1", "chat", headers).items()
        }


def run(requests: int, warmup: int, only: set[str]) -> dict[str, Any]:
    """The stub, then each gateway in ``only`` (lw, litellm) in front of it; printed as a table.
    Returns ``rows`` (as printed), ``direct``, ``lw`` and ``litellm`` figures when run."""
    stub_port = free_port()
    stub_url = f"http://127.0.0.1:{stub_port}"
    stub_main = STUB_MAIN.format(path=str(ROOT / "tests" / "gateway"), port=stub_port)
    rows: list[tuple[str, str, str, str]] = []
    result: dict[str, Any] = {}
    with (
        tempfile.TemporaryDirectory() as tmp,
        _process([sys.executable, "-c", stub_main], f"{stub_url}/v1/models") as stub,
        httpx.Client(timeout=30) as http,
    ):
        work = Path(tmp)
        direct = {k: _time(c, requests, warmup, stub.pid)
                  for k, c in _paths(http, f"{stub_url}/v1", "stub", {}).items()}  # fmt: skip
        result["direct"] = direct
        rows.append(("direct stub", _fmt(direct["json"]), _fmt(direct["sse"]),
                     f"(stub CPU {_cpu(direct)})"))  # fmt: skip
        if "lw" in only:
            lw = result["lw"] = run_loopwright(stub_url, work, requests, warmup)
            rows.append(("loopwright gateway (tracing + usage on)", _fmt(lw["json"]),
                         _fmt(lw["sse"]), _overhead(lw, direct)))  # fmt: skip
        if "litellm" in only and (LITELLM / "litellm").exists():
            lite = result["litellm"] = run_litellm(stub_url, work, requests, warmup)
            rows.append(("litellm 1.108.7 proxy (no DB)", _fmt(lite["json"]),
                         _fmt(lite["sse"]), _overhead(lite, direct)))  # fmt: skip
        elif "litellm" in only:
            print("benchmarks/.venvs/litellm is missing: LiteLLM only from the anchor report")
        if "mlflow" in only:
            ml = result["mlflow"] = run_mlflow(stub_url, work, requests, warmup)
            for endpoint, label in (
                ("plain", "usage tracking off"),
                ("traced", "usage tracking on"),
            ):
                figures = {"json": ml[f"{endpoint}_json"], "sse": ml[f"{endpoint}_sse"]}
                rows.append((f"mlflow {ml['version']} gateway, {label}", _fmt(figures["json"]),
                             _fmt(figures["sse"]), _overhead(figures, direct)))  # fmt: skip
    for name, (anchor_json, anchor_sse) in ANCHOR.items():
        sse = "-" if anchor_sse is None else f"{anchor_sse:.1f}"
        over = f"{anchor_json - ANCHOR_STUB[0]:+.1f} / " + (
            "-" if anchor_sse is None else f"{anchor_sse - ANCHOR_STUB[1]:+.1f}"
        )
        over += f" ms over its {ANCHOR_STUB[0]} / {ANCHOR_STUB[1]} ms stub"
        rows.append((f"{name} [anchor report, not this run]", f"{anchor_json:.1f}", sse, over))
    width = max(len(r[0]) for r in rows)
    print(f"\n{requests} sequential chat completions per path after {warmup} warm-up;"
          " ms, median (p95)")  # fmt: skip
    print(f"{'path':<{width}}  {'JSON':>16}  {'SSE':>16}  overhead JSON / SSE (median); "
          "gateway process CPU per request (all threads: usage and trace writers too)")  # fmt: skip
    for name, json_ms, sse_ms, over in rows:
        print(f"{name:<{width}}  {json_ms:>16}  {sse_ms:>16}  {over}")
    if "lw" in result:
        lw, sent = result["lw"], 2 * (requests + warmup)
        print(f"\nloopwright stored {lw['usage_rows']} usage rows ({lw['estimated']} "
              f"estimated) and {lw['traces']} traces for {sent} requests")  # fmt: skip
        if "mlflow" in result:
            print(f"mlflow stored {result['mlflow']['traces']} traces for the {sent} requests "
                  "to its usage-tracked endpoint")  # fmt: skip
        ours = lw["json"][0] - direct["json"][0]
        for name in ("litellm", "mlflow"):
            theirs = result.get(name)
            if theirs is not None and ours > 0:
                key = "json" if name == "litellm" else "traced_json"
                label = "litellm" if name == "litellm" else "mlflow, usage tracking on"
                ratio = (theirs[key][0] - direct["json"][0]) / ours
                print(f"JSON overhead: {label} / loopwright, this run = {ratio:.1f}x")
        for name, (anchor_json, _) in ANCHOR.items():
            if ours > 0:
                ratio = (anchor_json - ANCHOR_STUB[0]) / ours
                print(f"JSON overhead: {name} (anchor) / loopwright (this run) = {ratio:.1f}x")
    result["rows"] = rows
    result["sent"] = 2 * (requests + warmup)
    return result


def verdicts(result: dict[str, Any]) -> list[str]:
    """The issue's target: <= 2 ms overhead per request with tracing and usage on, JSON and SSE,
    and (what makes tracing and usage "on") every request stored as a usage row and a trace."""
    if "lw" not in result:
        return []
    lw, direct = result["lw"], result["direct"]
    json_over = lw["json"][0] - direct["json"][0]
    sse_over = lw["sse"][0] - direct["sse"][0]
    stored = lw["usage_rows"] == lw["traces"] == result["sent"]
    measured = (
        f"median +{json_over:.2f} ms JSON, +{sse_over:.2f} ms SSE (CPU {_cpu(lw)} per request); "
        f"{lw['usage_rows']} usage rows and {lw['traces']} traces for {result['sent']} requests"
    )
    passed = max(json_over, sse_over) <= 2.0 and stored
    return [verdict("gateway overhead <= 2 ms, tracing and usage on", passed, measured)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument(
        "--only", default="lw,litellm,mlflow", help="comma-separated: lw, litellm, mlflow"
    )
    args = parser.parse_args()
    print(f"load average at start: {load_average()}")
    result = run(args.requests, args.warmup, set(args.only.split(",")))
    for line in verdicts(result):
        print(line)
    print(f"load average at end: {load_average()}")
    extra = (
        {k: result["lw"][k] for k in ("usage_rows", "estimated", "traces")}
        if "lw" in result
        else {}
    )
    print(json.dumps({"rows": result["rows"], **extra}))


def _fmt(stats: Any) -> str:
    median, p95, _ = stats
    return f"{median:.2f} ({p95:.2f})"


def _cpu(result: dict[str, Any]) -> str:
    return f"{result['json'][2]:.2f} / {result['sse'][2]:.2f} ms"


def _overhead(result: dict[str, Any], direct: dict[str, Any]) -> str:
    json_over = result["json"][0] - direct["json"][0]
    sse_over = result["sse"][0] - direct["sse"][0]
    return f"{json_over:+.2f} / {sse_over:+.2f} ms; gateway CPU {_cpu(result)}"


if __name__ == "__main__":
    main()
