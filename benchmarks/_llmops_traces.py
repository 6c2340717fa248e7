"""LLMOps trace ingestion: 1,000 traces x 5 spans, how fast each tracer makes them durable and
how many it actually stores. The trace part of benchmarks/llmops.py:

    .venv/bin/python benchmarks/llmops.py --part traces [--quick] [--traces 1000]
        [--trace-modes lw-embedded,mlflow-async]

Workload (../shared/anchors/llmops.md section 3): a traced function CHAIN -> RETRIEVER,
RERANKER, PARSER, LLM (a stub), called ``--n`` times in a loop after one warm-up trace. Each mode
runs in its own process on a fresh store:

- lw-embedded: ``@lw.trace`` / ``lw.span`` into the embedded store (SQLite), through the
  exporter (bounded queue, backpressure, batches);
- lw-server: the same against ``loopwright server`` (SQLite, 1 worker, no auth) on loopback;
- mlflow-sync / mlflow-async: mlflow 3.17.2 from its own venv (``_llmops_common.mlflow_python``;
  ``@mlflow.trace`` / ``mlflow.start_span``) with a SQLite tracking URI in a temp dir,
  ``MLFLOW_ENABLE_ASYNC_TRACE_LOGGING`` false / default;
- mlflow-async-on-lw: the same MLflow client, default async export, against our server.

Reported per mode: median and p95 of the traced call, the time from the first call until every
trace is durable (the tracer's own flush returned: ``sdk.flush`` / ``flush_trace_async_logging``,
or the process exit for MLflow), traces stored (counted in the database afterwards), the durable
rate (stored / time to durable) and its ratio to MLflow's synchronous rate, and what the tracer
says it dropped. The issue's target: 0 traces lost at >= 10x MLflow's durable rate.

The children run this file (standard library at the top, no Loopwright import) under
``.venv``'s interpreter for the lw- modes and MLflow's for the mlflow- modes.
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
from pathlib import Path
from typing import Any

from _llmops_common import free_port, mlflow_python, verdict

VENV_BIN = Path(sys.executable).parent
MODES = ("lw-embedded", "lw-server", "mlflow-sync", "mlflow-async", "mlflow-async-on-lw")
# ../shared/anchors/llmops.md section 3 (1,000 traces, SQLite, this machine class).
ANCHOR = {
    "mlflow-sync": "64.1 ms per call, 66.9 s to durable, 1001/1001 stored (15.0 traces/s)",
    "mlflow-async": "1.56 ms per call, 20.8 s to durable, 518/1001 stored",
}
ANCHOR_SYNC_RATE = 15.0  # traces/s durable, MLflow synchronous, in the anchor report


# --- the workload, in each child ----------------------------------------------------------------


def _lw_workload(n: int, url: str | None, home: Path) -> dict[str, Any]:
    import loopwright as lw
    from loopwright.tracing import sdk
    from loopwright.tracing.exporter import TraceExporter

    client = lw.connect(url) if url else lw.connect(home=home)
    exporter = TraceExporter(client.tracing.record)
    sdk.set_exporter(exporter)

    @lw.trace(kind="LLM")
    def generate(prompt: str) -> str:
        return f"answer to {prompt}"

    @lw.trace(kind="CHAIN")
    def answer(question: str) -> str:
        with lw.span("retrieve", kind="RETRIEVER") as s:
            s.set_outputs(["doc-1", "doc-2"])
        with lw.span("rerank", kind="RERANKER") as s:
            s.set_outputs(["doc-2"])
        with lw.span("parse", kind="PARSER") as s:
            s.set_outputs({"prompt": question})
        return generate(question)

    answer("warm-up")
    assert sdk.flush(60)
    times = []
    started = time.perf_counter()
    for i in range(n):
        t0 = time.perf_counter()
        answer(f"question {i}")
        times.append(time.perf_counter() - t0)
    flushed = sdk.flush(600)
    durable = time.perf_counter() - started
    stats = exporter.close()
    stored = _count_lw(client, n + 1)
    client.close()
    return {
        "times": times,
        "durable_s": durable,
        "flushed": flushed,
        "stored": stored,
        "dropped": stats.dropped,
        "failed": stats.failed,
    }


def _count_lw(client: Any, expected: int) -> int:
    total, token = 0, None
    while True:
        page = client.tracing.search(max_results=1000, page_token=token)
        total += sum(1 for t in page.traces if t.span_count == 5)
        token = page.next_page_token
        if token is None:
            return total


def _mlflow_workload(n: int, uri: str, artifacts: Path | None) -> dict[str, Any]:
    import mlflow

    mlflow.set_tracking_uri(uri)
    # A fresh store each run. Over a local store MLflow would put artifacts under ./mlruns
    # unless told where; a server (artifacts=None) stores them itself.
    mlflow.create_experiment("bench", artifact_location=artifacts.as_uri() if artifacts else None)
    mlflow.set_experiment("bench")

    @mlflow.trace(span_type="LLM")
    def generate(prompt: str) -> str:
        return f"answer to {prompt}"

    @mlflow.trace(span_type="CHAIN")
    def answer(question: str) -> str:
        with mlflow.start_span("retrieve", span_type="RETRIEVER") as s:
            s.set_outputs(["doc-1", "doc-2"])
        with mlflow.start_span("rerank", span_type="RERANKER") as s:
            s.set_outputs(["doc-2"])
        with mlflow.start_span("parse", span_type="PARSER") as s:
            s.set_outputs({"prompt": question})
        return generate(question)

    answer("warm-up")
    mlflow.flush_trace_async_logging()
    times = []
    loop_started_at = time.time()  # the parent counts from here to this process's exit
    started = time.perf_counter()
    for i in range(n):
        t0 = time.perf_counter()
        answer(f"question {i}")
        times.append(time.perf_counter() - t0)
    mlflow.flush_trace_async_logging(terminate=True)
    return {
        "times": times,
        "durable_s": time.perf_counter() - started,
        "loop_started_at": loop_started_at,
    }


def _child(mode: str, n: int, work: Path, url: str | None) -> None:
    if mode.startswith("lw-"):
        result = _lw_workload(n, url, work / "lw-home")
    else:
        uri = url or f"sqlite:///{work / 'mlflow.db'}"
        result = _mlflow_workload(n, uri, None if url else work / "mlflow-artifacts")
    print("RESULT " + json.dumps(result), flush=True)


# --- the parent -----------------------------------------------------------------------------------


class _Server:
    """``loopwright server`` on loopback over a fresh SQLite home."""

    def __init__(self, home: Path) -> None:
        import httpx

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.home = home
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in stop()
        env = {**os.environ, "LOOPWRIGHT_HOME": str(home), "LOOPWRIGHT_USER": "bench"}
        args = [str(VENV_BIN / "loopwright"), "server", "--port", str(self.port)]
        self.proc = subprocess.Popen(
            args, stdout=self.log, stderr=self.log, env=env, cwd=home.parent
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"loopwright server exited with {self.proc.returncode}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError("loopwright server did not start within 60 s")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


def _count_sqlite(path: Path, query: str) -> int:
    with sqlite3.connect(path) as conn:
        return int(conn.execute(query).fetchone()[0])


def run_mode(mode: str, n: int, python: Path) -> dict[str, Any]:
    """One mode in a child process of ``python`` (MLflow's venv for the mlflow- modes)."""
    with tempfile.TemporaryDirectory(prefix=f"lw-bench-{mode}-") as tmp:
        work = Path(tmp)
        server = (
            _Server(work / "server-home") if mode in ("lw-server", "mlflow-async-on-lw") else None
        )
        env = {
            **os.environ,
            "MLFLOW_DISABLE_TELEMETRY": "true",
            "DO_NOT_TRACK": "true",
            "MLFLOW_ENABLE_ASYNC_TRACE_LOGGING": "false" if mode == "mlflow-sync" else "true",
        }
        args = [str(python), __file__, "--child", mode, "--n", str(n), "--work", str(work)]
        if server is not None:
            args += ["--url", server.url]
        try:
            # cwd: whatever a tracer writes relative to it stays in the temp folder.
            done = subprocess.run(
                args, env=env, cwd=work, capture_output=True, text=True, timeout=3600
            )
            exited_at = time.time()
        finally:
            if server is not None:
                server.stop()
        lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
        if done.returncode != 0 or not lines:
            raise RuntimeError(f"{mode} failed ({done.returncode}): {done.stderr[-2000:]}")
        result: dict[str, Any] = json.loads(lines[-1][len("RESULT ") :])
        if mode.startswith("mlflow-"):
            # Until the process ended: its exit flushes whatever was still queued.
            result["durable_s"] = max(result["durable_s"], exited_at - result["loop_started_at"])
        if mode in ("mlflow-sync", "mlflow-async"):
            db = work / "mlflow.db"
            result["stored"] = _count_sqlite(db, "SELECT COUNT(*) FROM trace_info") - 1
            result["dropped"] = n - result["stored"]
            result["dropped_noted"] = "Queue full" in done.stderr or "queue is full" in done.stderr
        elif mode == "mlflow-async-on-lw":
            db = work / "server-home" / "loopwright.db"
            stored = _count_sqlite(db, "SELECT COUNT(*) FROM traces WHERE span_count = 5")
            result["stored"] = stored - 1
            result["dropped"] = n - result["stored"]
        else:
            result["stored"] -= 1  # the warm-up trace
        return result


def _summary(mode: str, n: int, result: dict[str, Any]) -> dict[str, Any]:
    times = sorted(result["times"])
    return {
        "mode": mode,
        "traces": n,
        "call_median_ms": statistics.median(times) * 1000,
        "call_p95_ms": times[int(0.95 * (len(times) - 1))] * 1000,
        "durable_s": result["durable_s"],
        "stored": result["stored"],
        "durable_per_s": result["stored"] / result["durable_s"],
        "dropped": result.get("dropped", 0),
        "failed": result.get("failed", 0),
    }


def run(n: int, modes: list[str]) -> list[dict[str, Any]]:
    """Every mode in ``modes``, a row each, printed as it finishes."""
    unknown = set(modes) - set(MODES)
    if unknown:
        raise SystemExit(f"unknown trace modes {sorted(unknown)}; modes: {', '.join(MODES)}")
    python = Path(sys.executable)
    if any(mode.startswith("mlflow-") for mode in modes):
        python, version = mlflow_python()
        print(f"mlflow {version} from {python.parents[1]}")
    print(f"{n} traces x 5 spans per mode")
    rows = []
    for mode in modes:
        child = python if mode.startswith("mlflow-") else Path(sys.executable)
        rows.append(_summary(mode, n, run_mode(mode, n, child)))
        row = rows[-1]
        print(
            f"{mode:20} call {row['call_median_ms']:7.2f} ms (p95 {row['call_p95_ms']:7.2f})  "
            f"durable in {row['durable_s']:7.2f} s  stored {row['stored']}/{n}  "
            f"{row['durable_per_s']:8.1f} traces/s  dropped {row['dropped']}",
            flush=True,
        )
    base = next((r for r in rows if r["mode"] == "mlflow-sync"), None)
    for row in rows:
        row["rate_vs_anchor_sync"] = row["durable_per_s"] / ANCHOR_SYNC_RATE
        line = f"{row['mode']:20} durable rate x{row['rate_vs_anchor_sync']:.1f} anchor MLflow sync"
        if base is not None:
            row["rate_vs_mlflow_sync"] = row["durable_per_s"] / base["durable_per_s"]
            line += f", x{row['rate_vs_mlflow_sync']:.1f} MLflow sync in this run"
        print(line)
    for mode, figure in ANCHOR.items():
        print(f"anchor {mode}: {figure}")
    return rows


def verdicts(rows: list[dict[str, Any]]) -> list[str]:
    """The issue's target for each Loopwright mode: 0 traces lost at >= 10x MLflow's durable
    rate (MLflow synchronous in this run when it ran, else the anchor report's 15.0 traces/s)."""
    base = next((r for r in rows if r["mode"] == "mlflow-sync"), None)
    rate, source = (
        (base["durable_per_s"], "this run") if base else (ANCHOR_SYNC_RATE, "anchor report")
    )
    lines = []
    for row in rows:
        if not row["mode"].startswith("lw-"):
            continue
        lost = row["traces"] - row["stored"]
        ratio = row["durable_per_s"] / rate
        passed = lost == 0 and row["dropped"] == 0 and row["failed"] == 0 and ratio >= 10
        measured = (
            f"{lost} lost, {row['dropped']} dropped, {row['failed']} failed, durable rate "
            f"x{ratio:.1f} MLflow sync ({rate:.1f} traces/s, {source})"
        )
        lines.append(verdict(f"traces {row['mode']}, 0 lost at >= 10x MLflow", passed, measured))
    return lines


def main() -> None:
    """A child's entry: ``--child MODE --n N --work DIR [--url URL]``, run by ``run_mode``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", choices=MODES, required=True)
    parser.add_argument("--n", type=int, required=True)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--url")
    args = parser.parse_args()
    _child(args.child, args.n, args.work, args.url)


if __name__ == "__main__":
    main()
