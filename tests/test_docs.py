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


def test_quickstart_runs_end_to_end(tmp_path: Path) -> None:
    bin_dir = Path(sys.executable).parent
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "LOOPWRIGHT_HOME": str(tmp_path / "home"),
    }
    done = subprocess.run(
        ["bash", str(ROOT / "examples" / "quickstart.sh")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    for name in ("logistic-regression", "random-forest", "gradient-boosting"):
        assert name in done.stdout
    assert "test_roc_auc" in done.stdout and "Run comparison" in done.stdout
    assert "model/model.skops" in done.stdout
    assert "breast-cancer@v1" in done.stdout and "used by runs" in done.stdout
    assert "validation breast-cancer-checks v1: passed" in done.stdout
