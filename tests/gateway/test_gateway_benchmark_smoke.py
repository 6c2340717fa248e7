"""benchmarks/llmops_gateway.py at a tiny size (Loopwright only), so it cannot rot unnoticed:
the stub and the server in their own processes, every request stored as a usage row and a
trace."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "llmops_gateway.py"


def test_the_gateway_benchmark_runs_and_counts_every_request(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--requests", "3", "--warmup", "1", "--only", "lw"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    measured = [row[0] for row in result["rows"] if "[anchor report" not in row[0]]
    assert measured == ["direct stub", "loopwright gateway (tracing + usage on)"]
    assert len(result["rows"]) == len(measured) + 3  # MLflow (2) and LiteLLM from the anchor
    # The target's verdict is printed, PASS or FAIL (wall times on a busy machine vary).
    assert "gateway overhead <= 2 ms, tracing and usage on" in done.stdout
    assert result["usage_rows"] == result["traces"] == 8  # (3 + 1) JSON and (3 + 1) SSE
    assert result["estimated"] == 0
