"""Retries with backoff, and timeouts per attempt."""

from __future__ import annotations

import time

import pytest
from _pipeline_project import Project

from loopwright.client import Client
from loopwright.pipelines import load_result, step

FLAKY = """
from pathlib import Path
import loopwright as lw

COUNTER = Path(__file__).with_name("attempts")

@lw.step(retries={retries}, retry_backoff=0.1, cache=False)
def flaky(fail_times: int) -> str:
    seen = int(COUNTER.read_text()) if COUNTER.exists() else 0
    COUNTER.write_text(str(seen + 1))
    if seen < fail_times:
        raise ConnectionError(f"try {{seen + 1}} failed")
    return f"ok after {{seen + 1}}"

@lw.pipeline
def flow(fail_times: int = 2) -> str:
    return flaky(fail_times)
"""

SLOW = """
import time
import loopwright as lw

@lw.step(timeout={timeout}, retries={retries}, retry_backoff=0.0, cache=False)
def slow(seconds: float) -> float:
    time.sleep(seconds)
    return seconds

@lw.pipeline
def flow(seconds: float = 30.0) -> float:
    return slow(seconds)
"""


def test_a_step_failing_twice_then_passing_takes_three_attempts_with_backoff(
    client: Client, project: Project
) -> None:
    mod = project.write("flaky_flow", FLAKY.format(retries=3))
    started = time.monotonic()
    run = mod.flow.run(client=client)
    elapsed = time.monotonic() - started
    assert run.status == "completed", run.error
    (flaky,) = run.steps
    assert flaky.attempts == 3
    assert load_result(run, client=client) == "ok after 3"
    assert elapsed >= 0.1 + 0.2  # waits of 0.1 s then 0.2 s (doubling)


def test_a_step_out_of_retries_fails_with_every_attempt_counted(
    client: Client, project: Project
) -> None:
    mod = project.write("flaky_out", FLAKY.format(retries=1))
    run = mod.flow.run(client=client, params={"fail_times": 5})
    assert run.status == "failed"
    (flaky,) = run.steps
    assert flaky.status == "failed" and flaky.attempts == 2
    assert "ConnectionError: try 2 failed" in (flaky.error or "")
    assert "step flaky failed after 2 attempt(s): ConnectionError: try 2 failed" in (
        run.error or ""
    )


def test_backoff_doubles_and_is_capped_at_a_minute() -> None:
    s = step(retries=10, retry_backoff=5.0)(lambda: None)
    assert [s.backoff(n) for n in (1, 2, 3, 4, 5)] == [5.0, 10.0, 20.0, 40.0, 60.0]


# A process worker's clock starts when it is up, but its first call also imports the project
# and connects: its timeout leaves room for that.
@pytest.mark.parametrize(("executor", "timeout"), [("inprocess", 0.5), ("process", 4.0)])
def test_an_attempt_past_its_timeout_fails_the_step(
    client: Client, project: Project, executor: str, timeout: float
) -> None:
    mod = project.write(f"slow_flow_{executor}", SLOW.format(retries=1, timeout=timeout))
    started = time.monotonic()
    run = mod.flow.run(client=client, executor=executor)
    elapsed = time.monotonic() - started
    assert run.status == "failed"
    (slow,) = run.steps
    assert slow.attempts == 2
    assert "StepTimeout" in (slow.error or "")
    assert elapsed < 25  # two attempts of at most 4 s each, not two of 30 s

    fast = mod.flow.run(client=client, executor=executor, params={"seconds": 0.01})
    assert fast.status == "completed", fast.error
    assert load_result(fast, client=client) == 0.01
