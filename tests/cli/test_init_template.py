"""``loopwright init --template tabular-classifier``: the project it writes passes its own CI
workflow, run here step by step on the embedded store; existing files are refused (named)
unless --force; bad templates and folders are refused."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from loopwright.cli.app import app
from loopwright.client import Client
from loopwright.config import resolve_settings

VENV_BIN = Path(sys.executable).parent
TEMPLATE = "tabular-classifier"
FILES = {
    ".github/workflows/ci.yml",
    ".gitignore",
    "Dockerfile",
    "Makefile",
    "README.md",
    "gates.yaml",
    "loopwright.toml",
    "make_data.py",
    "pipeline.py",
}


def _init(*args: str) -> Any:
    return CliRunner().invoke(app, ["init", "--template", TEMPLATE, *args])


def _ci_steps(project: Path) -> list[dict[str, Any]]:
    workflow = yaml.safe_load((project / ".github/workflows/ci.yml").read_text())
    (job,) = workflow["jobs"].values()
    assert workflow["defaults"]["run"]["shell"] == "bash"
    steps: list[dict[str, Any]] = job["steps"]
    return steps


def test_the_project_passes_its_own_ci_workflow(tmp_path: Path) -> None:
    project = tmp_path / "Churn Model"
    written = _init("--dir", str(project), "--json")
    assert written.exit_code == 0, written.output
    document = json.loads(written.stdout)
    assert document["name"] == "churn-model" and set(document["files"]) == FILES
    assert (
        not list(project.rglob("*.tmpl")) and "{{name}}" not in (project / "gates.yaml").read_text()
    )

    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOPWRIGHT_")}
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"  # the repo's loopwright, python
    ran = []
    for step in _ci_steps(project):
        if "uses" in step:  # actions/checkout and setup-python: the test has both already
            continue
        script = step["run"]
        if script.startswith("pip install"):  # the repo's venv holds loopwright and its extras
            continue
        # GitHub runs `shell: bash` steps as `bash --noprofile --norc -eo pipefail {0}`
        done = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
            cwd=project,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, (step.get("name"), done.stdout, done.stderr)
        ran.append(step.get("name"))
    assert ran == [
        "Make the data",
        "Create the store",
        "Version the data",
        "Train",
        "Check the release gate",
    ]

    home = project / ".loopwright"
    with Client(resolve_settings(home=home)) as client:
        (run,) = client.pipelines.list_runs()
        assert (run.pipeline, run.status) == ("pipeline:training", "completed")
        steps = [s.invocation for s in client.pipelines.get_run(run.id).steps]
        assert steps == ["load", "split", "train", "evaluate", "register"]
        candidate = client.registry.resolve("churn-model", "candidate")
        assert candidate.version == 1 and candidate.run_id is not None
        (gate,) = client.gates.results(model="churn-model")
        assert (gate.gate, gate.version, gate.passed) == ("churn-model-release", 1, True)
        assert client.datasets.get_by_id(gate.dataset_version_id).ref == "churn-model-holdout@v1"
        assert {o.rule.split()[0] for o in gate.outcomes} == {
            "metrics.auc",
            "metrics.accuracy",
            "latency.p95_ms",
            "fairness.demographic_parity_ratio",
            "vs_champion.auc",
        }


def test_existing_files_are_refused_by_name_unless_forced(tmp_path: Path) -> None:
    project = tmp_path / "proj"
    project.mkdir()
    (project / "README.md").write_text("mine\n")
    (project / "notes.txt").write_text("keep\n")
    refused = _init("--dir", str(project))
    assert refused.exit_code == 1
    assert "README.md" in refused.output and "--force" in refused.output
    assert sorted(p.name for p in project.iterdir()) == ["README.md", "notes.txt"]
    assert (project / "README.md").read_text() == "mine\n"

    forced = _init("--dir", str(project), "--force")
    assert forced.exit_code == 0, forced.output
    assert (project / "README.md").read_text().startswith("# proj\n")
    assert (project / "notes.txt").read_text() == "keep\n"
    assert {str(p.relative_to(project)) for p in project.rglob("*") if p.is_file()} == (
        FILES | {"notes.txt"}
    )


def test_plain_init_is_unchanged_and_bad_templates_or_folders_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    here = _init()  # the current folder, named after it
    assert here.exit_code == 0, here.output
    assert (tmp_path / "pipeline.py").is_file() and not (tmp_path / ".loopwright").exists()

    plain = runner.invoke(app, ["--home", str(tmp_path / "home"), "init", "--json"])
    assert plain.exit_code == 0 and json.loads(plain.stdout)["created"] is True

    unknown = runner.invoke(app, ["init", "--template", "deep-learning", "--dir", "x"])
    assert unknown.exit_code == 1 and "tabular-classifier" in unknown.output
    assert not (tmp_path / "x").exists()
    (tmp_path / "afile").write_text("")
    on_file = _init("--dir", str(tmp_path / "afile"))
    assert on_file.exit_code == 1 and "not a folder" in on_file.output
    stray = runner.invoke(app, ["init", "--dir", "y"])
    assert stray.exit_code == 1 and "--template" in stray.output
    (tmp_path / "z" / "gates.yaml").mkdir(parents=True)  # a folder where a file goes
    blocked = _init("--dir", str(tmp_path / "z"), "--force")
    assert blocked.exit_code == 1 and "gates.yaml" in blocked.output
    assert not (tmp_path / "z" / "pipeline.py").exists()


def _command_lines(project: Path) -> list[list[str]]:
    """Every ``loopwright ...`` command the project's files show, as tokens (continued lines
    joined; comments, pipes and ``&&`` cut off)."""
    import shlex

    found = []
    for name in ("README.md", "Makefile", "Dockerfile", ".github/workflows/ci.yml"):
        text = (project / name).read_text().replace("\\\n", " ")
        for line in text.splitlines():
            line = line.replace('", "', " ").replace('CMD ["', "").replace('"]', " ")
            line = line.strip().removeprefix("#").strip().removeprefix("run:").strip()
            if line.startswith("loopwright "):
                tokens = shlex.split(line.split(" #")[0].split("&&")[0], posix=True)
                found.append(tokens)
    return found


def test_every_command_the_project_shows_exists_with_its_options(tmp_path: Path) -> None:
    import typer.main

    project = tmp_path / "proj"
    assert _init("--dir", str(project)).exit_code == 0
    root = typer.main.get_command(app)
    lines = _command_lines(project)
    assert len(lines) >= 15, lines
    for tokens in lines:
        command: Any = root
        words = tokens[1:]
        while words and hasattr(command, "commands") and words[0] in command.commands:
            command = command.commands[words.pop(0)]
        if words and words[0] in ("--user", "--server", "--home"):  # a global option first
            words = words[2:]
            while words and hasattr(command, "commands") and words[0] in command.commands:
                command = command.commands[words.pop(0)]
        assert not hasattr(command, "commands"), ("no such command", tokens)
        options = {opt for param in command.params for opt in param.opts}
        used = {word.split("=")[0] for word in words if word.startswith("--")}
        assert used <= options, (tokens, used - options)
