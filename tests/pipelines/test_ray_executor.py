"""The ray executor on a real local Ray (started once per test session): runs, fans out,
cancels a call past its timeout, and a step's ``lw.log_metric`` reaches its run."""

from __future__ import annotations

import os
import sys
import time
import traceback
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "serving"))  # the session's Ray fixture

from _ray_cluster import ray_local  # noqa: F401  (the session fixture, used by name)

import loopwright as lw
from loopwright.client import Client
from loopwright.errors import InvalidInput, StepTimeout
from loopwright.pipelines.executors import StepContext, get_executor

pytestmark = pytest.mark.usefixtures("ray_local")


def square(x: int) -> int:
    return x * x


def pid_after(seconds: float) -> int:
    time.sleep(seconds)
    return os.getpid()


def log_and_double(x: float) -> float:
    lw.log_metric("x", x)
    return x * 2


def fail_deep(message: str) -> None:
    raise KeyError(message)


@pytest.fixture
def context(client: Client) -> Iterator[StepContext]:
    with client.start_run("ray", "step") as run:
        yield StepContext(client.settings, run.id, "train[3]")


def test_ray_runs_a_call_in_a_ray_worker(context: StepContext) -> None:
    executor = get_executor("ray")
    assert (executor.name, executor.inline) == ("ray", False)
    assert executor.max_parallel == 2  # the session's local Ray has two CPUs
    assert executor.submit(square, (7,), {}, timeout=None, context=context).result() == 49
    assert executor.submit(pid_after, (0,), {}, timeout=None, context=context).result() != (
        os.getpid()
    )
    executor.close()


def test_ray_fans_out_within_max_parallel(context: StepContext) -> None:
    executor = get_executor("ray", max_parallel=2)
    futures = [executor.submit(square, (i,), {}, timeout=None, context=context) for i in range(8)]
    assert [f.result(timeout=120) for f in futures] == [i * i for i in range(8)]
    # At most two tasks in flight: the others wait in the executor, not in Ray's queue.
    slow = [executor.submit(pid_after, (0.5,), {}, timeout=None, context=context) for _ in range(4)]
    assert sum(not f.running() for f in slow) == 2
    assert all(f.result(timeout=120) > 0 for f in slow)
    executor.close()


def test_ray_timeout_cancels_the_task(context: StepContext) -> None:
    executor = get_executor("ray")
    started = time.monotonic()
    future = executor.submit(pid_after, (120,), {}, timeout=2.0, context=context)
    with pytest.raises(StepTimeout, match=r"train\[3\] ran past its timeout of 2 s"):
        future.result(timeout=60)
    assert time.monotonic() - started < 30
    # The cancelled task's place is free again.
    assert executor.submit(square, (3,), {}, timeout=30, context=context).result(timeout=60) == 9
    executor.close()


def test_ray_step_metrics_reach_the_run(client: Client, context: StepContext) -> None:
    executor = get_executor("ray")
    assert executor.submit(log_and_double, (2.5,), {}, timeout=None, context=context).result() == 5
    assert [m.value for m in client.get_metric_history(context.run_id, "x")] == [2.5]
    executor.close()


def test_ray_errors_are_the_steps_own_with_the_worker_traceback(context: StepContext) -> None:
    executor = get_executor("ray")
    future = executor.submit(fail_deep, ("no column 'age'",), {}, timeout=None, context=context)
    with pytest.raises(KeyError, match="no column 'age'") as caught:
        future.result(timeout=60)
    text = "".join(traceback.format_exception(caught.value))
    assert "worker traceback" in text and "in fail_deep" in text
    executor.close()


def test_ray_refuses_local_functions(context: StepContext) -> None:
    executor = get_executor("ray")
    with pytest.raises(InvalidInput, match="module level"):
        executor.submit(lambda: 1, (), {}, timeout=None, context=context)
    executor.close()
