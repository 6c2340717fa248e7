"""Executors: in-process (sequential and threaded), process (killed on timeout); the step's
run is active in the call, so ``lw.log_metric`` reaches it from a worker process too."""

from __future__ import annotations

import os
import sys
import threading
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
from loopwright.pipelines.executors import (
    EXECUTORS,
    Executor,
    InProcessExecutor,
    ProcessExecutor,
    StepContext,
    get_executor,
)

# --- step functions, at module level so worker processes import them by reference ---------


def add(a: int, b: int = 0) -> int:
    return a + b


def where() -> tuple[int, int, str | None]:
    run = lw.active_run()
    return os.getpid(), threading.get_ident(), None if run is None else run.id


def log_and_double(x: float) -> float:
    lw.log_metric("x", x)
    return x * 2


def sleep_then_return(seconds: float, pid_file: str | None = None) -> int:
    if pid_file is not None:
        Path(pid_file).write_text(str(os.getpid()))
    time.sleep(seconds)
    return os.getpid()


def fit_and_log_model(name: str) -> str:
    from sklearn.linear_model import LinearRegression

    run = lw.active_run()
    assert run is not None
    model = LinearRegression().fit([[0.0], [1.0]], [0.0, 2.0])
    run.log_model(model, "model", registered_model_name=name)
    return run.id


def make_generator() -> object:
    return (i for i in range(3))


def fail_deep(message: str) -> None:
    def inner() -> None:
        raise ValueError(message)

    inner()


_gauge_lock = threading.Lock()
_gauge = {"now": 0, "most": 0}


def count_concurrency(seconds: float) -> int:
    with _gauge_lock:
        _gauge["now"] += 1
        _gauge["most"] = max(_gauge["most"], _gauge["now"])
    time.sleep(seconds)
    with _gauge_lock:
        _gauge["now"] -= 1
    return _gauge["most"]


# --- fixtures ------------------------------------------------------------------------------


@pytest.fixture
def context(client: Client) -> Iterator[StepContext]:
    with client.start_run("executors", "step") as run:
        yield StepContext(client.settings, run.id, "step")


@pytest.fixture
def process_executor() -> Iterator[ProcessExecutor]:
    executor = ProcessExecutor(max_parallel=2)
    yield executor
    executor.close()


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in state  # a zombie is dead, waiting for its parent to reap it


# --- choosing ------------------------------------------------------------------------------


def test_get_executor_by_name() -> None:
    inprocess = get_executor("inprocess")
    assert (inprocess.name, inprocess.inline, inprocess.max_parallel) == ("inprocess", True, 1)
    process = get_executor("process", max_parallel=3)
    assert (process.name, process.inline, process.max_parallel) == ("process", False, 3)
    assert get_executor("process").max_parallel == (os.cpu_count() or 1)
    for executor in (inprocess, process):
        executor.close()


def test_get_executor_refuses_unknown_names_and_bad_bounds() -> None:
    with pytest.raises(InvalidInput, match="inprocess, process, ray"):
        get_executor("dask")
    with pytest.raises(InvalidInput, match="max_parallel"):
        get_executor("inprocess", max_parallel=0)


# --- in-process ----------------------------------------------------------------------------


def test_inprocess_runs_in_the_callers_thread_with_the_steps_run_active(
    context: StepContext,
) -> None:
    executor = InProcessExecutor()
    outer = lw.active_run()
    future = executor.submit(where, (), {}, timeout=None, context=context)
    assert future.done()  # sequential: no thread, done on return
    assert future.result() == (os.getpid(), threading.get_ident(), context.run_id)
    assert lw.active_run() is outer  # the step's run is no longer active, and not ended
    executor.close()


def test_inprocess_uses_the_run_handle_given(client: Client, context: StepContext) -> None:
    with client.start_run("executors", "other", nested=True) as handle:
        given = StepContext(client.settings, handle.id, "other", run=handle)
        executor = InProcessExecutor()
        assert executor.submit(where, (), {}, timeout=None, context=given).result()[2] == handle.id
        executor.close()


def test_inprocess_metrics_reach_the_run(client: Client, context: StepContext) -> None:
    executor = InProcessExecutor(max_parallel=2)
    futures = [
        executor.submit(log_and_double, (x,), {}, timeout=None, context=context) for x in (1, 2)
    ]
    assert [f.result() for f in futures] == [2, 4]
    executor.close()
    client.tracking.writer.flush()
    assert sorted(m.value for m in client.get_metric_history(context.run_id, "x")) == [1, 2]


def test_inprocess_threads_are_bounded_by_max_parallel(context: StepContext) -> None:
    _gauge.update(now=0, most=0)
    executor = InProcessExecutor(max_parallel=2)
    started = time.monotonic()
    futures = [
        executor.submit(count_concurrency, (0.2,), {}, timeout=None, context=context)
        for _ in range(5)
    ]
    assert max(f.result() for f in futures) == 2
    assert time.monotonic() - started >= 0.55  # three rounds of 0.2 s
    executor.close()


def test_inprocess_errors_are_the_steps_own(context: StepContext) -> None:
    executor = InProcessExecutor()
    future = executor.submit(fail_deep, ("bad row 7",), {}, timeout=None, context=context)
    with pytest.raises(ValueError, match="bad row 7"):
        future.result()
    executor.close()


def test_inprocess_timeout_fails_the_future_and_leaves_the_thread(context: StepContext) -> None:
    executor = InProcessExecutor()
    started = time.monotonic()
    future = executor.submit(sleep_then_return, (1.5,), {}, timeout=0.2, context=context)
    with pytest.raises(StepTimeout, match=r"step step ran past its timeout of 0.2 s"):
        future.result(timeout=5)
    assert time.monotonic() - started < 1.0
    # The next call is not held up by the abandoned thread.
    assert executor.submit(add, (1,), {"b": 2}, timeout=5, context=context).result() == 3
    executor.close()


@pytest.mark.parametrize("max_parallel", [1, 2])
def test_a_closed_executor_refuses_calls(context: StepContext, max_parallel: int) -> None:
    executor = InProcessExecutor(max_parallel=max_parallel)
    executor.close()
    with pytest.raises(InvalidInput, match="closed"):
        executor.submit(add, (1,), {}, timeout=None, context=context)


# --- process -------------------------------------------------------------------------------


def test_process_runs_in_a_worker_with_the_steps_run_active(
    client: Client, context: StepContext, process_executor: ProcessExecutor
) -> None:
    pid, _, run_id = process_executor.submit(where, (), {}, timeout=None, context=context).result()
    assert pid != os.getpid() and run_id == context.run_id
    assert (
        process_executor.submit(log_and_double, (1.5,), {}, timeout=None, context=context).result()
        == 3.0
    )
    # The worker flushed before returning: the metric is stored already.
    assert [m.value for m in client.get_metric_history(context.run_id, "x")] == [1.5]


@pytest.mark.slow  # the worker imports scikit-learn and skops
def test_a_model_logged_in_a_worker_is_registered(
    client: Client, context: StepContext, process_executor: ProcessExecutor
) -> None:
    future = process_executor.submit(
        fit_and_log_model, ("churn",), {}, timeout=None, context=context
    )
    assert future.result() == context.run_id
    assert client.load_model("models:/churn/1").predict([[2.0]])[0] == pytest.approx(4.0)


def test_process_fans_out_over_its_workers(
    context: StepContext, process_executor: ProcessExecutor
) -> None:
    futures = [
        process_executor.submit(add, (i,), {"b": 100}, timeout=None, context=context)
        for i in range(6)
    ]
    assert [f.result() for f in futures] == [100, 101, 102, 103, 104, 105]
    pids = [
        process_executor.submit(sleep_then_return, (0.3,), {}, timeout=None, context=context)
        for _ in range(2)
    ]
    assert len({f.result() for f in pids}) == 2  # two workers at once


def test_process_timeout_kills_the_worker(
    tmp_path: Path, context: StepContext, process_executor: ProcessExecutor
) -> None:
    pid_file = tmp_path / "pid"
    future = process_executor.submit(
        sleep_then_return, (60, str(pid_file)), {}, timeout=1.0, context=context
    )
    with pytest.raises(StepTimeout, match="timeout of 1 s"):
        future.result(timeout=30)
    pid = int(pid_file.read_text())
    deadline = time.monotonic() + 5
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(pid)
    # A new worker takes the killed one's place.
    assert process_executor.submit(add, (2, 3), {}, timeout=10, context=context).result() == 5


def test_process_errors_carry_the_workers_traceback(
    context: StepContext, process_executor: ProcessExecutor
) -> None:
    future = process_executor.submit(fail_deep, ("bad row 7",), {}, timeout=None, context=context)
    with pytest.raises(ValueError, match="bad row 7") as caught:
        future.result()
    text = "".join(traceback.format_exception(caught.value))
    assert "worker traceback" in text and "in inner" in text and "in fail_deep" in text


def test_process_says_when_a_return_value_cannot_come_back(
    context: StepContext, process_executor: ProcessExecutor
) -> None:
    future = process_executor.submit(make_generator, (), {}, timeout=None, context=context)
    with pytest.raises(InvalidInput, match=r"step step returned a value .* cannot send back"):
        future.result()
    assert process_executor.submit(add, (1, 1), {}, timeout=None, context=context).result() == 2


def test_process_refuses_functions_it_cannot_send(
    context: StepContext, process_executor: ProcessExecutor
) -> None:
    def local(x: int) -> int:
        return x

    with pytest.raises(InvalidInput, match="define it at module level"):
        process_executor.submit(local, (1,), {}, timeout=None, context=context)
    with pytest.raises(InvalidInput, match="define it at module level"):
        process_executor.submit(lambda: 1, (), {}, timeout=None, context=context)


def test_close_cancels_calls_not_started(context: StepContext) -> None:
    executor = ProcessExecutor(max_parallel=1)
    first = executor.submit(sleep_then_return, (0.5,), {}, timeout=None, context=context)
    queued = executor.submit(add, (1,), {}, timeout=None, context=context)
    executor.close()
    assert queued.cancelled()
    assert first.result() > 0  # the running call finished before close returned


def test_inprocess_close_waits_for_running_calls_but_not_timed_out_ones(
    context: StepContext,
) -> None:
    executor = InProcessExecutor(max_parallel=2)
    running = executor.submit(sleep_then_return, (0.3,), {}, timeout=None, context=context)
    hung = executor.submit(sleep_then_return, (30,), {}, timeout=0.1, context=context)
    started = time.monotonic()
    executor.close()
    assert running.done() and running.result() == os.getpid()
    assert isinstance(hung.exception(), StepTimeout)
    assert time.monotonic() - started < 5


# --- what every executor does (the conformance suite) ---------------------------------------


@pytest.fixture(params=EXECUTORS)
def any_executor(request: pytest.FixtureRequest) -> Iterator[Executor]:
    if request.param == "ray":
        request.getfixturevalue("ray_local")
    executor = get_executor(request.param, max_parallel=2)
    yield executor
    executor.close()


def test_conformance_results_in_order(any_executor: Executor, context: StepContext) -> None:
    futures = [
        any_executor.submit(add, (i,), {"b": 10}, timeout=None, context=context) for i in range(5)
    ]
    assert [f.result(timeout=120) for f in futures] == [10, 11, 12, 13, 14]


def test_conformance_the_steps_run_is_active(
    client: Client, any_executor: Executor, context: StepContext
) -> None:
    assert any_executor.submit(where, (), {}, timeout=None, context=context).result()[2] == (
        context.run_id
    )
    any_executor.submit(log_and_double, (4.0,), {}, timeout=None, context=context).result()
    client.tracking.writer.flush()
    assert [m.value for m in client.get_metric_history(context.run_id, "x")] == [4.0]


def test_conformance_errors_are_the_steps_own(any_executor: Executor, context: StepContext) -> None:
    future = any_executor.submit(fail_deep, ("bad row 7",), {}, timeout=None, context=context)
    with pytest.raises(ValueError, match="bad row 7"):
        future.result(timeout=120)


def test_conformance_timeouts(any_executor: Executor, context: StepContext) -> None:
    future = any_executor.submit(sleep_then_return, (60,), {}, timeout=1.0, context=context)
    with pytest.raises(StepTimeout, match=f"{any_executor.name} executor"):
        future.result(timeout=60)


def test_conformance_closed_executors_refuse_calls(
    any_executor: Executor, context: StepContext
) -> None:
    any_executor.close()
    with pytest.raises(InvalidInput, match="closed"):
        any_executor.submit(add, (1,), {}, timeout=1, context=context)


def test_a_failing_deadline_callback_does_not_stop_later_deadlines(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from loopwright.pipelines._dispatch import _Deadlines

    deadlines = _Deadlines()
    fired = threading.Event()

    def broken() -> None:
        raise OSError("kill failed")

    deadlines.add(0.01, broken)
    deadlines.add(0.05, fired.set)
    assert fired.wait(5)
    assert "past its timeout failed" in caplog.text


def test_a_call_sent_to_a_worker_that_died_idle_goes_to_a_new_one(
    context: StepContext,
) -> None:
    executor = ProcessExecutor(max_parallel=1)
    first = executor.submit(sleep_then_return, (0,), {}, timeout=None, context=context).result()
    os.kill(first, 9)  # the idle worker dies (the OOM killer, an operator)
    deadline = time.monotonic() + 5
    while _alive(first) and time.monotonic() < deadline:
        time.sleep(0.05)
    second = executor.submit(sleep_then_return, (0,), {}, timeout=None, context=context)
    assert second.result(timeout=60) not in (first, os.getpid())
    executor.close()
