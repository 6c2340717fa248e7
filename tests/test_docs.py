"""The docs cannot rot: README snippets, module docstring examples and the quickstart run here."""

from __future__ import annotations

import doctest
import importlib
import os
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import pytest

import loopwright

ROOT = Path(__file__).resolve().parents[1]


def _modules() -> list[str]:
    names = [loopwright.__name__]
    for info in pkgutil.walk_packages(loopwright.__path__, prefix="loopwright."):
        if ".migrations" not in info.name and not info.name.endswith("__main__"):
            names.append(info.name)
    return names


@pytest.mark.parametrize("name", _modules())
def test_docstring_examples_run(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS, report=True)
    assert result.failed == 0


def test_readme_python_snippets_run() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    snippets = re.findall(r"```python\n(.*?)```", readme, flags=re.S)
    assert snippets, "the README should show Python usage"
    for snippet in snippets:
        exec(compile(snippet, "README.md", "exec"), {"__name__": "readme"})


def test_readme_opens_with_the_two_commands() -> None:
    head = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()[:6]
    assert any(line.startswith("make quickstart") for line in head)
    assert any(line.startswith("make test") for line in head)


def _run_quickstart(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    bin_dir = Path(sys.executable).parent
    done = subprocess.run(
        ["bash", str(ROOT / "examples" / "quickstart.sh")],
        env={**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", **env},
        capture_output=True,
        text=True,
        timeout=420,  # about 2 min on a quiet machine; CI runs it beside other tests
        check=False,
    )
    assert done.returncode == 0, done.stderr
    for name in ("logistic-regression", "random-forest", "gradient-boosting"):
        assert name in done.stdout
    assert "test_roc_auc" in done.stdout and "Run comparison" in done.stdout
    assert "model/model.skops" in done.stdout
    assert "breast-cancer@v1" in done.stdout and "used by runs" in done.stdout
    assert "validation breast-cancer-checks v1: passed" in done.stdout
    assert "bob approved: breast-cancer-classifier@champion -> v1" in done.stderr
    assert "a wrong input is refused" in done.stderr
    assert "breast-cancer-classifier@champion (sklearn) predicts" in done.stdout
    # The loop: the drift alert retrained, the gate passed, two approvals, the canary promoted.
    assert "breast-cancer-loop #1: promoted (non-inferior" in done.stdout
    assert "gate result breast-cancer-release: passed" in done.stdout  # lineage of a prediction
    assert "trigger drift:breast-cancer-watch fired" in done.stdout
    # The feature store: a model served from entity ids agrees with the offline features.
    assert "it records feature service churn_model@v1" in done.stdout
    assert "served from the customer id and cart alone" in done.stdout
    # LLMs: a prompt gated, approved, served by the gateway; lineage from one request's trace.
    assert "gate support-quality: passed" in done.stdout
    assert "bob approved: support-answer@production" in done.stdout
    assert "rendered_with prompt version prompts:/support-answer/" in done.stdout
    assert "evidence evaluation run" in done.stdout and "served_by gateway route" in done.stdout
    assert "audit chain intact" in done.stdout
    # It ends at the dashboard, whose pages all answered.
    assert "/ui/experiments" in done.stdout and "/ui/audit" in done.stdout
    assert done.stdout.rstrip().splitlines()[-1].startswith("Open the dashboard: ")
    assert "/ui/" in done.stdout.rstrip().splitlines()[-1]
    return done


def test_quickstart_runs_end_to_end(tmp_path: Path) -> None:
    _run_quickstart({"LOOPWRIGHT_HOME": str(tmp_path / "home")})
    card = tmp_path / "quickstart-data" / "model-card.md"  # beside the home
    assert card.is_file() and "Intended use" in card.read_text(encoding="utf-8")


def test_quickstart_runs_against_a_server(tmp_path: Path) -> None:
    """The README's second way: `loopwright server` in one terminal, the quickstart in another."""
    import signal
    import socket
    import time

    import httpx

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    command = [sys.executable, "-m", "loopwright.cli", "--home", str(tmp_path / "server-home")]
    # `loopwright serve` on the client's machine writes the prediction log the server's monitors
    # read: both are given the same log folder, as the README's server section says.
    log = {"LOOPWRIGHT_PREDICTION_LOG": str(tmp_path / "prediction-log")}
    server = subprocess.Popen(
        [*command, "server", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        env={**os.environ, **log},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                httpx.get(f"{url}/health", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.05)
        _run_quickstart(
            {"LOOPWRIGHT_SERVER_URI": url, "LOOPWRIGHT_HOME": str(tmp_path / "client-home"), **log}
        )
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    from loopwright.client import Client
    from loopwright.config import resolve_settings

    with Client(resolve_settings(home=tmp_path / "server-home")) as client:
        first = client.registry.get_version("breast-cancer-classifier", 1)
        assert first.created_by == "ada"  # as quickstart.py registered it
        version = client.registry.resolve("breast-cancer-classifier", "champion")
        assert version.version == 3  # the loop's retrained version, promoted
        (iteration,) = client.loops.iterations("breast-cancer-loop")
        assert iteration.state == "promoted" and iteration.model_version == 3
