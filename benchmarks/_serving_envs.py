"""The serving benchmark's anchor environments: one venv per tool under benchmarks/.venvs/.

Each is created on first use with the versions the anchor report measured (../shared/anchors/
serving.md) and the project environment's scikit-learn and numpy, so every tool loads the same
model file. ``python benchmarks/_serving_envs.py`` builds the missing ones and prints versions.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENVS = ROOT / "benchmarks" / ".venvs"


def _pins() -> list[str]:
    """scikit-learn and numpy as in this environment (one model file loads everywhere)."""
    import numpy
    import sklearn

    return [f"scikit-learn=={sklearn.__version__}", f"numpy=={numpy.__version__}"]


# What each anchor's venv holds, beyond the pins; the MLServer line keeps uvloop below 0.22,
# which MLServer 1.7.1's parallel workers need (SeldonIO/MLServer#2286); it serves in-process
# (parallel_workers 0) here, where uvloop's version does not matter for correctness.
REQUIREMENTS = {
    "srv-baseline": ["fastapi", "uvicorn[standard]"],
    "srv-mlserver": ["mlserver==1.7.1", "mlserver-sklearn==1.7.1", "uvloop<0.22"],
    "srv-bentoml": ["bentoml==1.4.40"],
}
# The module whose version each venv reports.
PACKAGE = {"srv-baseline": "fastapi", "srv-mlserver": "mlserver", "srv-bentoml": "bentoml"}


def python(name: str) -> Path:
    return VENVS / name / "bin" / "python"


def ensure(name: str) -> str:
    """``name``'s venv, created when missing; returns the tool's version."""
    if not python(name).exists():
        print(f"creating benchmarks/.venvs/{name} (pip install, a few minutes)", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(VENVS / name)], check=True)
        install = [str(python(name)), "-m", "pip", "install", "--quiet"]
        subprocess.run([*install, *REQUIREMENTS[name], *_pins()], check=True)
    probe = f"import importlib.metadata as m; print(m.version({PACKAGE[name]!r}))"
    done = subprocess.run(
        [str(python(name)), "-c", probe], capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


if __name__ == "__main__":
    for env in REQUIREMENTS:
        print(env, ensure(env), flush=True)
