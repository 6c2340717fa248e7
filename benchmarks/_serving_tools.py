"""The serving benchmark's model, request bodies and server commands, one entry per tool.

:func:`prepare` trains the model once (``make_classification`` 10,000 x 20,
``GradientBoostingClassifier(n_estimators=100, max_depth=3, random_state=0)``, as the anchor
report did) and saves it in each tool's format: a Loopwright package (skops), a joblib file for
MLServer and the FastAPI baseline, and BentoML's model store (written from BentoML's venv). The
request bodies hold the same rows in each tool's protocol: OIP v2 for Loopwright and MLServer,
``{"x": ...}`` for BentoML, ``{"instances": ...}`` for the baseline.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from _serving_envs import python

APPS = Path(__file__).resolve().parent / "_serving_apps"
LOOPWRIGHT_CLI = Path(sys.executable).parent / "loopwright"
FEATURES = 20
BATCH_ROWS = 100
# MLServer's adaptive batching as the anchor report configured it (Loopwright's defaults are
# the same size and cap).
BATCH_SIZE = 32
BATCH_MS = 5.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass(frozen=True)
class Launch:
    """How to start one server: command, extra environment, working folder."""

    argv: list[str]
    env: dict[str, str]
    cwd: Path


@dataclass(frozen=True)
class Config:
    """One server configuration under test."""

    name: str
    tool: str  # the anchor it counts as: loopwright, mlserver, bentoml, fastapi
    path: str  # the predict route
    protocol: str  # the body format: oip, bentoml, instances
    launch: Callable[[Path, int], Launch]


def _loopwright(*extra: str) -> Callable[[Path, int], Launch]:
    def launch(work: Path, port: int) -> Launch:
        argv = [str(LOOPWRIGHT_CLI), "serve", f"gbc={work / 'lw-package'}", *extra]
        argv += ["--host", "127.0.0.1", "--port", str(port)]
        # The prediction log is on, as `loopwright serve` runs by default; its home is fresh.
        return Launch(argv, {"LOOPWRIGHT_HOME": str(work / f"lw-home-{port}")}, work)

    return launch


def _mlserver(batching: bool) -> Callable[[Path, int], Launch]:
    def launch(work: Path, port: int) -> Launch:
        folder = work / f"mlserver-{port}"
        (folder / "gbc").mkdir(parents=True)
        settings = {
            "parallel_workers": 0,  # in-process: the default 1 crashes with uvloop >= 0.22
            "http_port": port,
            "grpc_port": free_port(),
            "metrics_port": free_port(),
            "host": "127.0.0.1",
        }
        model: dict[str, object] = {
            "name": "gbc",
            "implementation": "mlserver_sklearn.SKLearnModel",
            "parameters": {"uri": str(work / "model.joblib")},
        }
        if batching:
            model.update(max_batch_size=BATCH_SIZE, max_batch_time=BATCH_MS / 1000)
        (folder / "settings.json").write_text(json.dumps(settings))
        (folder / "gbc" / "model-settings.json").write_text(json.dumps(model))
        argv = [str(python("srv-mlserver").parent / "mlserver"), "start", str(folder)]
        return Launch(argv, {}, folder)

    return launch


def _bentoml(work: Path, port: int) -> Launch:
    argv = [str(python("srv-bentoml").parent / "bentoml"), "serve", "bento_service:Gbc"]
    argv += ["--host", "127.0.0.1", "--port", str(port), "--working-dir", str(APPS)]
    env = {"BENTOML_HOME": str(work / "bentoml"), "BENTOML_DO_NOT_TRACK": "true"}
    return Launch(argv, env, work)


def _fastapi(work: Path, port: int) -> Launch:
    argv = [str(python("srv-baseline")), "-m", "uvicorn", "baseline_app:app"]
    argv += ["--app-dir", str(APPS), "--host", "127.0.0.1", "--port", str(port)]
    argv += ["--workers", "1", "--log-level", "warning", "--no-access-log"]
    return Launch(argv, {"BENCH_MODEL": str(work / "model.joblib")}, work)


_LW_INFER = "/v2/models/gbc/infer"
CONFIGS = {
    c.name: c
    for c in (
        Config("loopwright", "loopwright", _LW_INFER, "oip", _loopwright()),
        Config(
            "loopwright-nobatch",
            "loopwright",
            _LW_INFER,
            "oip",
            _loopwright("--max-batch-size", "1"),
        ),
        Config(
            "loopwright-batch0",
            "loopwright",
            _LW_INFER,
            "oip",
            _loopwright("--max-batch-latency-ms", "0"),
        ),
        Config("loopwright-nolog", "loopwright", _LW_INFER, "oip", _loopwright("--no-log")),
        Config("mlserver", "mlserver", "/v2/models/gbc/infer", "oip", _mlserver(False)),
        Config("mlserver-batch", "mlserver", "/v2/models/gbc/infer", "oip", _mlserver(True)),
        Config("bentoml", "bentoml", "/predict", "bentoml", _bentoml),
        Config("fastapi", "fastapi", "/predict", "instances", _fastapi),
    )
}
# What runs without --only (loopwright-nolog isolates the prediction log's cost).
# loopwright is `loopwright serve`'s defaults: batching up to 32 rows, lingering while requests
# keep arriving (at most 5 ms). loopwright-nobatch turns batching off; loopwright-batch0 merges
# only the requests already waiting when the model is free (it never lingers).
DEFAULT_CONFIGS = (
    "loopwright",
    "loopwright-nobatch",
    "loopwright-batch0",
    "mlserver",
    "mlserver-batch",
    "bentoml",
    "fastapi",
)


def loopwright_http() -> str:
    """The event loop and HTTP parser uvicorn picks ("auto") for `loopwright serve`, which
    runs from this environment."""
    from importlib.util import find_spec

    loop = "uvloop" if find_spec("uvloop") else "asyncio"
    return f"{loop} + {'httptools' if find_spec('httptools') else 'h11'}"


def body(protocol: str, rows: list[list[float]]) -> bytes:
    """The request body holding ``rows`` in ``protocol``'s format."""
    if protocol == "oip":
        flat = [value for row in rows for value in row]
        tensor = {"name": "predict", "shape": [len(rows), FEATURES], "datatype": "FP64"}
        return json.dumps({"inputs": [{**tensor, "data": flat}]}).encode()
    key = "x" if protocol == "bentoml" else "instances"
    return json.dumps({key: rows}).encode()


def prepare(work: Path, configs: list[Config]) -> list[list[float]]:
    """Trains the model and saves it in each format ``configs`` need; returns 100 rows."""
    import joblib
    from sklearn.datasets import make_classification
    from sklearn.ensemble import GradientBoostingClassifier

    from loopwright.registry.packaging.package import save_model

    X, y = make_classification(n_samples=10_000, n_features=FEATURES, random_state=0)
    model = GradientBoostingClassifier(n_estimators=100, max_depth=3, random_state=0).fit(X, y)
    joblib.dump(model, work / "model.joblib")
    save_model(model, work / "lw-package", input_example=X[:5])
    if any(c.tool == "bentoml" for c in configs):
        save = [str(python("srv-bentoml")), str(APPS / "bento_service.py"), "model.joblib"]
        env = {**os.environ, "BENTOML_HOME": str(work / "bentoml"), "BENTOML_DO_NOT_TRACK": "true"}
        subprocess.run(save, cwd=work, env=env, check=True, capture_output=True)
    rows: list[list[float]] = X[:BATCH_ROWS].round(6).tolist()
    return rows
