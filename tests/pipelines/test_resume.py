"""Resume: a failed or killed run runs again from where it stopped."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from _pipeline_project import Project

from loopwright.client import Client
from loopwright.errors import Conflict
from loopwright.pipelines import load_result, resume

# Step 3 fails (or kills its own process) while the flag file exists; no step caches, so only
# resume can serve steps 1 and 2.
FLOW = """
import os, signal
from pathlib import Path
import loopwright as lw

FLAG = Path(__file__).with_name("flag")

@lw.step(cache=False)
def one() -> int:
    return 1

@lw.step(cache=False)
def two(x: int) -> int:
    return x + 1

@lw.step(cache=False)
def three(x: int) -> int:
    if FLAG.exists():
        if FLAG.read_text() == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        raise RuntimeError("flaky source")
    return x * 10

@lw.step(cache=False)
def four(x: int) -> int:
    return x + 4

@lw.pipeline
def flow(start: int = 0) -> int:
    return four(three(two(one() + start)))
"""


def test_resume_after_a_failure_serves_the_completed_steps(
    db_client: Client, project: Project
) -> None:
    client = db_client
    mod = project.write("resumable_flow", FLOW)
    (project.folder / "flag").write_text("fail")
    failed = mod.flow.run(client=client, params={"start": 1})
    assert failed.status == "failed"
    assert [s.status for s in failed.steps] == ["completed", "completed", "failed"]

    (project.folder / "flag").unlink()
    run = resume(failed.id, client=client, cwd=str(project.folder))
    assert run.status == "completed", run.error
    assert run.resumed_from == failed.id
    assert run.params == {"start": 1}
    statuses = {s.invocation: s.status for s in run.steps}
    assert statuses == {
        "one": "resumed",
        "two": "resumed",
        "three": "completed",
        "four": "completed",
    }
    assert run.steps[0].cached_from == failed.steps[0].id
    assert run.steps[0].cache_reason == (
        f"resumed: step run {failed.steps[0].id} of pipeline run {failed.id}"
    )
    assert load_result(run, client=client) == 34

    with pytest.raises(Conflict, match="is completed: only a failed or killed run can be resumed"):
        resume(run.id, client=client, cwd=str(project.folder))


def test_resume_reruns_a_step_whose_code_changed(client: Client, project: Project) -> None:
    mod = project.write("resumable_changed", FLOW)
    (project.folder / "flag").write_text("fail")
    failed = mod.flow.run(client=client)
    (project.folder / "flag").unlink()
    # the code of `one` changes between the failure and the resume: it is not served
    mod = project.write("resumable_changed", FLOW.replace("return 1\n", "return 2\n"))
    run = resume(failed.id, client=client, cwd=str(project.folder))
    statuses = {s.invocation: s.status for s in run.steps}
    assert statuses["one"] == "completed" and statuses["two"] == "completed"
    assert load_result(run, client=client) == 34


def test_resume_after_sigkill_in_step_three(
    db_client: Client, db_uri: str, project: Project, tmp_path: Path
) -> None:
    client = db_client
    project.write("killed_flow", FLOW)
    (project.folder / "flag").write_text("kill")
    script = textwrap.dedent(
        f"""
        import loopwright as lw
        from loopwright.pipelines import load_pipeline

        client = lw.connect({db_uri!r}, home={str(tmp_path / "home")!r})
        load_pipeline("killed_flow:flow").run(client=client)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=project.folder,
        env={**os.environ, "PYTHONPATH": str(project.folder)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == -9, done.stderr
    (killed_id,) = [r.id for r in client.pipelines.list_runs(pipeline="killed_flow:flow")]
    killed = client.pipelines.get_run(killed_id)
    assert killed.status == "killed"  # its pid is gone on this host
    assert [s.status for s in killed.steps][:2] == ["completed", "completed"]

    (project.folder / "flag").unlink()
    run = resume(killed.id, client=client, cwd=str(project.folder))
    assert run.status == "completed", run.error
    statuses = [(s.invocation, s.status) for s in run.steps]
    assert statuses == [
        ("one", "resumed"),
        ("two", "resumed"),
        ("three", "completed"),
        ("four", "completed"),
    ]
    assert load_result(run, client=client) == 24


def test_resume_of_an_unknown_or_running_run_is_refused(client: Client) -> None:
    from loopwright.errors import NotFound

    with pytest.raises(NotFound):
        resume("0" * 32, client=client)
    running = client.pipelines.start_run("mod:flow", pid=os.getpid(), host=socket.gethostname())
    with pytest.raises(Conflict, match="is running: only a failed or killed run"):
        resume(running.id, client=client)


def test_a_failed_resume_can_be_resumed_again(client: Client, project: Project) -> None:
    mod = project.write("resumed_twice", FLOW)
    (project.folder / "flag").write_text("fail")
    first = mod.flow.run(client=client)
    second = resume(first.id, client=client, cwd=str(project.folder))
    assert second.status == "failed" and second.resumed_from == first.id
    assert [s.status for s in second.steps] == ["resumed", "resumed", "failed"]

    (project.folder / "flag").unlink()
    third = resume(second.id, client=client, cwd=str(project.folder))
    assert third.status == "completed", third.error
    assert [s.status for s in third.steps] == ["resumed", "resumed", "completed", "completed"]
    assert third.steps[0].cached_from == second.steps[0].id
    assert third.steps[0].outputs[0].run_id == first.steps[0].run_id  # stored once, in the first
    assert load_result(third, client=client) == 24
