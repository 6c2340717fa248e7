"""What the LLMOps benchmark parts share: the MLflow 3.17 venv they compare against, a free port,
the load average and the one-line verdicts.

Standard library only: the trace and prompt parts run their own file as a child under MLflow's
interpreter, which has no Loopwright installed.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The anchor report (../shared/anchors/llmops.md) measured MLflow 3.17.2.
MLFLOW_PIN = "mlflow==3.17.2"
# Made by ../shared/mlflow-suite/run.sh with the same pin; reused when its version matches.
SUITE_VENV = Path.home() / ".cache" / "loopwright" / "mlflow-suite-venv"
OWN_VENV = ROOT / "benchmarks" / ".venvs" / "mlflow-3.17"


def _mlflow_version(python: Path) -> str | None:
    probe = "import importlib.metadata as m; print(m.version('mlflow'))"
    done = subprocess.run([str(python), "-c", probe], capture_output=True, text=True, check=False)
    return done.stdout.strip() if done.returncode == 0 else None


def mlflow_python() -> tuple[Path, str]:
    """The interpreter of a venv holding ``MLFLOW_PIN`` and its mlflow version: the MLflow
    suite's venv when it holds that version, else benchmarks/.venvs/mlflow-3.17, created on first
    use (pip install, a few minutes; needs the package index)."""
    wanted = MLFLOW_PIN.split("==")[1]
    for venv in (SUITE_VENV, OWN_VENV):
        python = venv / "bin" / "python"
        if python.exists() and _mlflow_version(python) == wanted:
            return python, wanted
    print(f"creating {OWN_VENV.relative_to(ROOT)} ({MLFLOW_PIN}, a few minutes)", flush=True)
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(OWN_VENV)], check=True)
    python = OWN_VENV / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", MLFLOW_PIN], check=True)
    version = _mlflow_version(python)
    if version != wanted:
        raise SystemExit(f"{OWN_VENV} holds mlflow {version}, not {wanted}; delete it and rerun")
    return python, version


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f} (1/5/15 min, {os.cpu_count()} cores)"


def verdict(target: str, passed: bool, measured: str) -> str:
    """One line a reader can scan for PASS / FAIL."""
    return f"{'PASS' if passed else 'FAIL'}  {target}: {measured}"
