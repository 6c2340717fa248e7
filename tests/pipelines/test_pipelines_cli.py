"""``loopwright pipelines``: run / list / show / resume end to end on a project folder, embedded
and through ``--server``; bad arguments refused in one line without a traceback."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from _pipeline_project import Project
from typer.testing import CliRunner

from loopwright.cli.app import app
from loopwright.client import Client
from loopwright.config import resolve_settings
from test_public_api import live_server

WIDE = {"COLUMNS": "400"}

# ``train`` fails while the flag file exists; ``load`` prints (stdout must stay JSON).
FLOW = """
from pathlib import Path
import loopwright as lw

FLAG = Path(__file__).with_name("flag")

@lw.step
def load(n: int) -> list:
    print("loading", n)
    return list(range(n))

@lw.step
def train(rows: list, lr: float) -> dict:
    if FLAG.exists():
        raise ValueError("the source is flaky today")
    lw.log_metric("rows", len(rows))
    return {"weights": sum(rows) * lr}

@lw.step
def score(i: int, model: dict) -> float:
    return model["weights"] + i

@lw.pipeline
def flow(n: int = 3, lr: float = 0.5) -> list:
    model = train(load(n), lr)
    return score.map([0, 1], model=model)
"""


@pytest.fixture
def home(tmp_path: Path) -> list[str]:
    return ["--home", str(tmp_path / "home"), "--user", "ada"]


def lw(options: list[str], *args: str) -> Any:
    return CliRunner().invoke(app, [*options, *args], env=WIDE)


def ok(options: list[str], *args: str) -> Any:
    result = lw(options, *args)
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    return result


def one_line_error(result: Any, *fragments: str, json_out: bool = False) -> None:
    assert result.exit_code == 1, (result.stdout, result.stderr, result.exception)
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    # The run's JSON holds the step's traceback as recorded; the error line never does.
    assert "Traceback" not in result.stderr + ("" if json_out else result.stdout)


def _run(options: list[str], project: Project, *args: str) -> Any:
    return lw(options, "pipelines", "run", "cli_flow:flow", "--cwd", str(project.folder), *args)


def test_run_list_show_and_cached_rerun(home: list[str], project: Project) -> None:
    project.write("cli_flow", FLOW)
    first = _run(home, project, "--param", "n=4", "--param", "lr=0.25")
    assert first.exit_code == 0, (first.stdout, first.stderr, first.exception)
    assert "completed" in first.stdout and "0 served from earlier runs" in first.stdout
    for invocation in ("load", "train", "score[0]", "score[1]"):
        assert f" {invocation} " in first.stderr, first.stderr  # a line per finished step
    assert "no earlier run" in first.stderr and "loading 4" in first.stdout

    again = _run(home, project, "--param", "n=4", "--param", "lr=0.25", "--json")
    assert again.exit_code == 0, (again.stdout, again.stderr, again.exception)
    run = json.loads(again.stdout)  # only the JSON on stdout: the step's print went to stderr
    assert run["status"] == "completed" and run["params"] == {"n": 4, "lr": 0.25}
    assert [s["status"] for s in run["steps"]] == ["cached"] * 4
    assert run["pipeline"] == "cli_flow:flow" and len(run["id"]) == 32

    listed = json.loads(ok(home, "pipelines", "list", "--json").stdout)
    assert listed[0]["id"] == run["id"] and len(listed) == 2
    assert json.loads(ok(home, "pipelines", "list", "--status", "failed", "--json").stdout) == []
    table = ok(home, "pipelines", "list", "--pipeline", "cli_flow:flow").stdout
    assert run["id"] in table and "2 pipeline run(s)" in table

    shown = json.loads(ok(home, "pipelines", "show", run["id"], "--json").stdout)
    assert shown == run
    text = ok(home, "pipelines", "show", run["id"]).stdout
    source = run["steps"][1]["cached_from"]
    assert f"cached from step run {source}" in text
    assert "cache hit" in text and "output (json," in text and "result: result (json" in text
    assert "params: n=4, lr=0.25" in text


def test_a_failed_run_exits_1_naming_the_step_and_resume_finishes_it(
    home: list[str], project: Project
) -> None:
    project.write("cli_flow", FLOW)
    (project.folder / "flag").write_text("")
    failed = _run(home, project, "--json")
    one_line_error(
        failed, "step train failed", "ValueError: the source is flaky today", json_out=True
    )
    record = json.loads(failed.stdout)
    assert record["status"] == "failed" and record["steps"][1]["status"] == "failed"

    shown = ok(home, "pipelines", "show", record["id"]).stdout
    assert "train failed:" in shown and "the source is flaky today" in shown

    (project.folder / "flag").unlink()
    resumed = lw(home, "pipelines", "resume", record["id"], "--cwd", str(project.folder))
    assert resumed.exit_code == 0, (resumed.stdout, resumed.stderr, resumed.exception)
    assert "1 served from earlier runs" in resumed.stdout
    listed = json.loads(ok(home, "pipelines", "list", "--json").stdout)
    assert listed[0]["resumed_from"] == record["id"]
    assert [s["status"] for s in listed[0]["steps"]] == []  # listings carry no steps
    newest = json.loads(ok(home, "pipelines", "show", listed[0]["id"], "--json").stdout)
    assert [s["status"] for s in newest["steps"]] == [
        "resumed",
        "completed",
        "completed",
        "completed",
    ]

    again = lw(home, "pipelines", "resume", listed[0]["id"], "--cwd", str(project.folder))
    one_line_error(again, "is completed", "run the pipeline again instead")


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (("show", "0" * 32), ("pipeline run '000", "does not exist")),
        (("resume", "nope"), ("pipeline run 'nope' does not exist",)),
        (("run", "no-colon"), ("is not MODULE:PIPELINE",)),
        (("run", "no_such_module:flow"), ("no module 'no_such_module'",)),
        (("run", "cli_flow:nothing"), ("has no 'nothing'",)),
        (("run", "cli_flow:FLAG"), ("not a @pipeline",)),
        (("run", "cli_flow:flow", "--param", "n"), ("--param 'n' is not NAME=VALUE",)),
        (("run", "cli_flow:flow", "--param", "=1"), ("is not NAME=VALUE",)),
        (("run", "cli_flow:flow", "--param", "n=1", "--param", "n=2"), ("given twice",)),
        (("run", "cli_flow:flow", "--param", "n=many"), ("parameter 'n' expects int",)),
        (("run", "cli_flow:flow", "--param", "depth=3"), ("has no parameter 'depth'",)),
        (("run", "cli_flow:flow", "--executor", "gpu"), ("--executor 'gpu' is not one of",)),
        (("list", "--status", "done"), ("--status 'done' is not one of",)),
    ],
)
def test_bad_arguments_are_one_line(
    home: list[str], project: Project, args: tuple[str, ...], fragments: tuple[str, ...]
) -> None:
    project.write("cli_flow", FLOW)
    ok(home, "init")  # the store exists: errors are about the arguments
    extra = ["--cwd", str(project.folder)] if args[0] == "run" else []
    one_line_error(lw(home, "pipelines", *args, *extra), *fragments)


def test_run_and_show_through_a_server(tmp_path: Path, project: Project) -> None:
    from loopwright.governance.tokens import TokenService
    from loopwright.governance.users import UserService

    settings = resolve_settings(home=tmp_path / "server-home")
    with Client(resolve_settings(home=tmp_path / "server-home", user="root")) as local:
        UserService(local.store, actor="root").add("root", "admin")
        UserService(local.store, actor="root").add("ed", "editor")
        token = TokenService(local.store, actor="root").create("ed").secret
    project.write("cli_flow", FLOW)
    with live_server(settings) as url:
        remote = ["--server", url, "--token", token, "--home", str(tmp_path / "ed-home")]
        done = _run(remote, project, "--json")
        assert done.exit_code == 0, (done.stdout, done.stderr, done.exception)
        run = json.loads(done.stdout)
        assert run["created_by"] == "ed" and run["status"] == "completed"
        shown = json.loads(ok(remote, "pipelines", "show", run["id"], "--json").stdout)
        assert shown == run
        with Client(resolve_settings(home=tmp_path / "server-home")) as local:
            assert local.pipelines.get_run(run["id"]).steps[1].invocation == "train"
            tracked = local.tracking.get_run(run["steps"][1]["run_id"])
            assert tracked.metrics["rows"].value == 3.0  # logged in the step, through HTTP


def _git_repo(folder: Path) -> str:
    """Make ``folder`` a git repository with one commit; its commit id."""
    import subprocess

    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", *args],
            cwd=folder,
            check=True,
            capture_output=True,
            text=True,
        )
        return done.stdout.strip()

    git("init", "-q", "-b", "pipelines-branch")
    git("add", "-A")
    git("commit", "-q", "-m", "the project")
    return git("rev-parse", "HEAD")


def _assert_project_code(local: Client, run: dict[str, Any], commit: str, dirty: bool) -> None:
    tracked = local.tracking.get_run(run["run_id"])
    assert (tracked.git_commit, tracked.git_branch) == (commit, "pipelines-branch")
    assert tracked.git_dirty is dirty
    assert tracked.entry_point == "cli_flow:flow (cli_flow.py)"
    for step in run["steps"]:  # the step runs that ran copy it (a cached one has no run)
        if step["run_id"] is None:
            continue
        nested = local.tracking.get_run(step["run_id"])
        assert (nested.git_commit, nested.entry_point) == (commit, tracked.entry_point)


def test_a_run_records_the_pipeline_modules_repository_not_the_callers(
    home: list[str], project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project.write("cli_flow", FLOW)
    commit = _git_repo(project.folder)
    elsewhere = tmp_path / "elsewhere"  # not the project, and the CLI itself sits in another repo
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)

    run = json.loads(
        ok(home, "pipelines", "run", "cli_flow:flow", "--cwd", str(project.folder), "--json").stdout
    )
    with Client(resolve_settings(home=Path(home[1]))) as local:
        _assert_project_code(local, run, commit, dirty=False)

    # An edit to a tracked file (no step's code: all cached): still that commit, now dirty.
    (project.folder / "cli_flow.py").write_text(FLOW + "\n# tuned\n")
    import loopwright.tracking.capture as capture

    capture._code_cache.clear()  # run capture caches the code version a few seconds
    run = json.loads(
        ok(home, "pipelines", "run", "cli_flow:flow", "--cwd", str(project.folder), "--json").stdout
    )
    with Client(resolve_settings(home=Path(home[1]))) as local:
        _assert_project_code(local, run, commit, dirty=True)


def test_a_run_through_a_server_records_the_pipeline_modules_repository(
    tmp_path: Path, project: Project
) -> None:
    from loopwright.governance.tokens import TokenService
    from loopwright.governance.users import UserService

    settings = resolve_settings(home=tmp_path / "server-home")
    with Client(resolve_settings(home=tmp_path / "server-home", user="root")) as local:
        UserService(local.store, actor="root").add("root", "admin")
        UserService(local.store, actor="root").add("ed", "editor")
        token = TokenService(local.store, actor="root").create("ed").secret
    project.write("cli_flow", FLOW)
    commit = _git_repo(project.folder)
    with live_server(settings) as url:
        remote = ["--server", url, "--token", token, "--home", str(tmp_path / "ed-home")]
        run = json.loads(_run(remote, project, "--json").stdout)
    with Client(resolve_settings(home=tmp_path / "server-home")) as local:
        _assert_project_code(local, run, commit, dirty=False)
