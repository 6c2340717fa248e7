"""Pipeline records on the store (SQLite and PostgreSQL): runs as tracked runs, steps as nested
runs, the cache lookups, killed detection, and what is refused."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from loopwright.client import Client
from loopwright.config import resolve_settings
from loopwright.errors import Conflict, InvalidInput, NotFound
from loopwright.pipelines.entities import HEARTBEAT_STALE_MS, ArtifactRef
from loopwright.pipelines.service import PipelineService

REF = "flows.train:training"


@pytest.fixture
def client(tmp_path: Path, db_uri: str) -> Iterator[Client]:
    settings = resolve_settings(
        home=tmp_path / "home", db_uri=db_uri, blob_uri=str(tmp_path / "blobs"), user="ada"
    )
    with Client(settings) as made:
        yield made


def _output(run_id: str | None, name: str = "output", digest: str = "ab") -> ArtifactRef:
    return ArtifactRef(name, digest * 32, "json", run_id, f"outputs/{name}.json", 12, "dict")


def _step(client: Client, run_id: str, invocation: str, key: str, **extra: object) -> str:
    """A completed step run of ``invocation`` with cache key ``key``; its id."""
    started = client.pipelines.start_step(
        run_id,
        invocation=invocation,
        step=invocation.split("[")[0],
        cache_key=key,
        cache_reason="no earlier run",
        **extra,  # type: ignore[arg-type]
    )
    client.pipelines.finish_step(started.id, "completed", outputs=[_output(started.run_id)])
    return started.id


def test_a_run_is_a_tracked_run_and_its_steps_nested_runs(client: Client) -> None:
    run = client.pipelines.start_run(
        REF,
        params={"n": 3, "lr": 0.5, "cols": ["a", "b"], "note": "x"},
        executor="process",
        code_digest="c" * 64,
        host="builder",
        pid=123,
    )
    assert (run.status, run.pipeline, run.executor, run.created_by) == (
        "running",
        REF,
        "process",
        "ada",
    )
    assert run.params == {"n": 3, "lr": 0.5, "cols": ["a", "b"], "note": "x"}
    assert run.name.startswith("training-") and run.run_id is not None
    tracked = client.tracking.get_run(run.run_id)
    assert tracked.status.value == "RUNNING" and tracked.host == "builder"
    assert tracked.params == {"n": "3", "lr": "0.5", "cols": '["a", "b"]', "note": "x"}
    assert tracked.tags["loopwright.pipeline"] == REF
    assert tracked.tags["loopwright.pipeline_run"] == run.id
    assert client.tracking.get_experiment(tracked.experiment_id).name == "training"

    inputs = [ArtifactRef("rows", "cd" * 32, "json", None, None, 0, "list")]
    parts = {"code": {"flows.train.load": "d1"}, "params": {"n": "p1"}, "inputs": {}}
    load = client.pipelines.start_step(
        run.id,
        invocation="load",
        step="load",
        cache_key="k" * 64,
        cache_reason="no earlier run",
        inputs=inputs,
        key_parts=parts,
    )
    assert (load.status, load.attempts, load.finished_at, load.outputs) == ("running", 0, None, ())
    nested = client.tracking.get_run(load.run_id or "")
    assert nested.parent_run_id == run.run_id and nested.name == "load"
    assert nested.experiment_id == tracked.experiment_id and nested.host == "builder"
    assert nested.tags["loopwright.step"] == "load"
    assert nested.tags["loopwright.cache_key"] == "k" * 64
    client.tracking.log_metrics(nested.id, {"loss": 0.25})  # buffered: the end writes it

    done = client.pipelines.finish_step(
        load.id, "completed", outputs=[_output(load.run_id)], attempts=3
    )
    assert (done.status, done.attempts, done.outputs) == ("completed", 3, (_output(load.run_id),))
    assert done.inputs == tuple(inputs) and done.key_parts == parts
    assert done.duration_ms is not None and done.duration_ms >= 0
    with Client(client.settings) as other:  # another process's view: the points are durable
        ended = other.tracking.get_run(nested.id)
    assert ended.status.value == "FINISHED" and ended.metrics["loss"].value == 0.25

    second = client.pipelines.start_step(
        run.id, invocation="train", step="train", cache_key="t1", cache_reason="cache off"
    )
    client.pipelines.finish_step(second.id, "failed", error="ValueError: bad rows", attempts=2)
    result = _output(load.run_id, "result")
    finished = client.pipelines.finish_run(run.id, "failed", result=result, error="train failed")
    assert (finished.status, finished.error, finished.result) == ("failed", "train failed", result)
    assert [(s.invocation, s.status) for s in finished.steps] == [
        ("load", "completed"),
        ("train", "failed"),
    ]
    assert finished.steps[1].error == "ValueError: bad rows"
    assert client.tracking.get_run(run.run_id).status.value == "FAILED"
    assert client.tracking.get_run(second.run_id or "").status.value == "FAILED"
    assert client.pipelines.get_run(run.id) == finished


def test_runs_list_newest_first_and_filter(client: Client) -> None:
    first = client.pipelines.start_run(REF, experiment="exp-a", name="first")
    client.pipelines.finish_run(first.id, "completed")
    other = client.pipelines.start_run(
        "flows.score:scoring", pid=os.getpid(), host=socket.gethostname()
    )
    third = client.pipelines.start_run(REF, resumed_from=first.id)

    assert [r.id for r in client.pipelines.list_runs()] == [third.id, other.id, first.id]
    assert [r.id for r in client.pipelines.list_runs(pipeline=REF)] == [third.id, first.id]
    assert [r.id for r in client.pipelines.list_runs(status="completed")] == [first.id]
    assert [r.id for r in client.pipelines.list_runs(limit=1)] == [third.id]
    assert all(r.steps == () for r in client.pipelines.list_runs())
    assert third.resumed_from == first.id and first.name == "first"
    tracked = client.tracking.get_run(first.run_id or "")
    assert client.tracking.get_experiment(tracked.experiment_id).name == "exp-a"
    assert client.tracking.get_run(third.run_id or "").tags["loopwright.resumed_from"] == first.id


def test_find_cached_takes_the_newest_completed_step_whose_run_is_kept(client: Client) -> None:
    run = client.pipelines.start_run(REF)
    older = _step(client, run.id, "load", "key-1")
    newer = _step(client, run.id, "load#2", "key-1")
    failed = client.pipelines.start_step(
        run.id, invocation="load#3", step="load", cache_key="key-1", cache_reason="cache off"
    )
    client.pipelines.finish_step(failed.id, "failed", error="boom")
    assert client.pipelines.find_cached("key-2") is None
    hit = client.pipelines.find_cached("key-1")
    assert hit is not None and hit.id == newer

    served = client.pipelines.record_served(
        run.id,
        invocation="load#4",
        step="load",
        cache_key="key-1",
        cache_reason=f"cache hit: step run {hit.id}",
        source=hit,
    )
    assert (served.status, served.run_id, served.cached_from) == ("cached", None, hit.id)
    assert served.outputs == hit.outputs and served.attempts == 0
    assert served.finished_at == served.started_at
    assert client.pipelines.find_cached("key-1").id == newer  # type: ignore[union-attr]

    client.tracking.set_lifecycle(hit.run_id or "", "deleted")  # its outputs went with it
    fallback = client.pipelines.find_cached("key-1")
    assert fallback is not None and fallback.id == older

    resumed = client.pipelines.record_served(
        run.id,
        invocation="load#5",
        step="load",
        cache_key="key-1",
        cache_reason="resumed",
        source=fallback,
        status="resumed",
    )
    assert resumed.status == "resumed"
    steps = client.pipelines.get_run(run.id).steps
    assert [s.invocation for s in steps] == ["load", "load#2", "load#3", "load#4", "load#5"]


def test_previous_step_is_the_newest_finished_call_of_the_pipeline(client: Client) -> None:
    assert client.pipelines.previous_step(REF, "train") is None
    first = client.pipelines.start_run(REF)
    old = _step(client, first.id, "train", "a", key_parts={"params": {"lr": "1"}})
    client.pipelines.finish_run(first.id, "completed")
    other = client.pipelines.start_run("flows.other:training")
    _step(client, other.id, "train", "b")
    second = client.pipelines.start_run(REF)
    running = client.pipelines.start_step(
        second.id, invocation="train", step="train", cache_key="c", cache_reason="x"
    )
    found = client.pipelines.previous_step(REF, "train")
    assert found is not None and found.id == old and found.key_parts == {"params": {"lr": "1"}}
    client.pipelines.finish_step(running.id, "failed", error="x")
    assert client.pipelines.previous_step(REF, "train").id == running.id  # type: ignore[union-attr]
    assert client.pipelines.previous_step(REF, "load") is None


_DIES = """
import os, signal, socket, sys
from loopwright.client import Client
from loopwright.config import resolve_settings

settings = resolve_settings(home=sys.argv[1], db_uri=sys.argv[2], blob_uri=sys.argv[3])
client = Client(settings)
run = client.pipelines.start_run(
    "flows.train:training", host=socket.gethostname(), pid=os.getpid()
)
done = client.pipelines.start_step(
    run.id, invocation="load", step="load", cache_key="k1", cache_reason="no earlier run"
)
client.pipelines.finish_step(done.id, "completed")
step = client.pipelines.start_step(
    run.id, invocation="train", step="train", cache_key="k2", cache_reason="no earlier run"
)
print(run.id, step.id, flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_run_whose_process_died_reads_killed(client: Client, tmp_path: Path) -> None:
    settings = client.settings
    answer = subprocess.run(
        [
            sys.executable,
            "-c",
            textwrap.dedent(_DIES),
            str(settings.home),
            settings.db_uri,
            settings.blob_uri,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert answer.returncode == -9, answer.stderr
    run_id, step_id = answer.stdout.split()

    run = client.pipelines.get_run(run_id)  # the heartbeat is fresh: the dead pid tells
    assert run.status == "killed" and run.error is not None and "is gone" in run.error
    assert run.finished_at == run.heartbeat_at
    assert [(s.invocation, s.status) for s in run.steps] == [
        ("load", "completed"),
        ("train", "failed"),
    ]
    assert "ended while this step was running" in (run.steps[1].error or "")
    assert client.tracking.get_run(run.run_id or "").status.value == "KILLED"
    assert client.tracking.get_run(run.steps[1].run_id or "").status.value == "KILLED"
    assert client.tracking.get_run(run.steps[0].run_id or "").status.value == "FINISHED"
    assert client.pipelines.list_runs(status="killed")[0].id == run_id

    with pytest.raises(Conflict, match=r"killed.*resume"):
        client.pipelines.heartbeat(run_id)
    with pytest.raises(Conflict, match="killed"):
        client.pipelines.start_step(
            run_id, invocation="x", step="x", cache_key="k", cache_reason="r"
        )
    with pytest.raises(Conflict, match="already failed"):
        client.pipelines.finish_step(step_id, "completed")


def test_a_silent_run_reads_killed_and_a_live_one_running(client: Client) -> None:
    now = [1_800_000_000_000]
    service = PipelineService(client.store, tracking=client.tracking, clock=lambda: now[0])
    here = {"host": socket.gethostname(), "pid": os.getpid()}
    live = service.start_run(REF, **here)  # type: ignore[arg-type]
    elsewhere = service.start_run(REF, host="another-host", pid=os.getpid())
    unknown = service.start_run(REF)  # no pid: only the heartbeat tells
    now[0] += HEARTBEAT_STALE_MS - 1
    assert {r.status for r in service.list_runs()} == {"running"}
    step = service.start_step(live.id, invocation="a", step="a", cache_key="k", cache_reason="r")
    service.heartbeat(live.id)  # keeps its tracked run and its running step's run alive too
    for run_id in (live.run_id, step.run_id):
        assert client.tracking.get_run(run_id or "").heartbeat_at == now[0]
    now[0] += 2
    statuses = {r.id: r.status for r in service.list_runs()}
    assert statuses == {live.id: "running", elsewhere.id: "killed", unknown.id: "killed"}
    killed = service.get_run(elsewhere.id)
    assert killed.error is not None and "no heartbeat for 60 s" in killed.error
    assert service.list_runs(status="running")[0].id == live.id

    # A process that was only paused finishes anyway: its own end is the truth.
    back = service.finish_run(unknown.id, "completed")
    assert back.status == "completed" and back.error is None
    assert client.tracking.get_run(back.run_id or "").status.value == "FINISHED"
    with pytest.raises(Conflict, match="is completed"):
        service.finish_run(unknown.id, "failed")


def test_unknown_ids_and_finished_records_are_refused(client: Client) -> None:
    with pytest.raises(NotFound, match="pipeline run 'nope' does not exist"):
        client.pipelines.get_run("nope")
    with pytest.raises(NotFound, match="'nope'"):
        client.pipelines.heartbeat("nope")
    with pytest.raises(NotFound, match="'nope'"):
        client.pipelines.start_step(
            "nope", invocation="a", step="a", cache_key="k", cache_reason="r"
        )
    with pytest.raises(NotFound, match="step run 'nope'"):
        client.pipelines.finish_step("nope", "completed")
    with pytest.raises(NotFound, match="'nope'"):
        client.pipelines.finish_run("nope", "completed")
    with pytest.raises(NotFound, match="'nope'"):
        client.pipelines.start_run(REF, resumed_from="nope")

    run = client.pipelines.start_run(REF)
    step = client.pipelines.start_step(
        run.id, invocation="a", step="a", cache_key="k", cache_reason="r"
    )
    with pytest.raises(Conflict, match="is running, so its outputs cannot be served"):
        client.pipelines.record_served(
            run.id, invocation="b", step="b", cache_key="k", cache_reason="r", source=step
        )
    client.pipelines.finish_step(step.id, "completed")
    with pytest.raises(Conflict, match="already completed"):
        client.pipelines.finish_step(step.id, "failed")
    client.pipelines.finish_run(run.id, "completed")
    for call in (
        lambda: client.pipelines.start_step(
            run.id, invocation="b", step="b", cache_key="k", cache_reason="r"
        ),
        lambda: client.pipelines.record_served(
            run.id, invocation="b", step="b", cache_key="k", cache_reason="r", source=step
        ),
        lambda: client.pipelines.heartbeat(run.id),
    ):
        with pytest.raises(Conflict, match="is completed"):
            call()


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda p: p.start_run("no_colon"), "pipeline 'no_colon' is not MODULE:FUNCTION"),
        (lambda p: p.start_run("a:b:c"), "is not MODULE:FUNCTION"),
        (lambda p: p.start_run("a b:c"), "is not MODULE:FUNCTION"),
        (lambda p: p.start_run("m:" + "f" * 300), "the limit is 300"),
        (lambda p: p.start_run(REF, params={"x": float("nan")}), "param 'x' is not plain JSON"),
        (lambda p: p.start_run(REF, params={"x": object()}), "param 'x' is not plain JSON"),
        (lambda p: p.start_run(REF, params={"x": "v" * 6001}), "the limit is 6,000"),
        (lambda p: p.start_run(REF, params={"": 1}), "param key must not be empty"),
        (lambda p: p.start_run(REF, params={"../x": 1}), "must not start with '/' or hold '..'"),
        (lambda p: p.start_run(REF, params=[1]), "params must be a mapping"),
        (lambda p: p.start_run(REF, pid=-1), "pid -1"),
        (lambda p: p.start_run(REF, name="n" * 251), "name 'nnn"),
        (lambda p: p.start_run(REF, host="h\x00"), "NUL"),
        (lambda p: p.list_runs(status="done"), "status 'done' must be one of"),
        (lambda p: p.list_runs(limit=0), "limit 0"),
        (lambda p: p.list_runs(limit=True), "limit True"),
        (lambda p: p.find_cached("k" * 65), "cache_key 'kkk"),
        (lambda p: p.find_cached("k\x00"), "NUL"),
        (lambda p: p.previous_step(REF, ""), "invocation must not be empty"),
        (lambda p: p.get_run("x" * 101), "pipeline run id 'xxx"),
    ],
)
def test_bad_input_is_refused_naming_the_field(client: Client, call: object, message: str) -> None:
    with pytest.raises(InvalidInput, match=message.replace("(", r"\(")):
        call(client.pipelines)  # type: ignore[operator]


def test_bad_step_input_is_refused_before_anything_is_written(client: Client) -> None:
    run = client.pipelines.start_run(REF)
    step = client.pipelines.start_step(
        run.id, invocation="a", step="a", cache_key="k", cache_reason="r"
    )
    bad_ref = ArtifactRef("output", "ab" * 32, "json", size=-1)
    cases = [
        (dict(invocation="i" * 251), "invocation 'iii"),
        (dict(cache_key=""), "cache_key must not be empty"),
        (dict(inputs=[{"name": "x"}]), "inputs must be an ArtifactRef, not dict"),
        (dict(inputs=[bad_ref]), "size -1 must not be negative"),
        (dict(inputs="abc"), "inputs must be a sequence of ArtifactRef"),
        (dict(key_parts={"x": {1, 2}}), "key_parts is not plain JSON"),
        (dict(key_parts=[1]), "key_parts must be a mapping"),
    ]
    for extra, message in cases:
        args: dict[str, Any] = {
            "invocation": "b",
            "step": "b",
            "cache_key": "k",
            "cache_reason": "r",
        }
        args.update(extra)  # type: ignore[call-overload]
        with pytest.raises(InvalidInput, match=message):
            client.pipelines.start_step(run.id, **args)
    with pytest.raises(InvalidInput, match="status 'cached' must be one of: completed, failed"):
        client.pipelines.finish_step(step.id, "cached")
    with pytest.raises(InvalidInput, match="attempts -1"):
        client.pipelines.finish_step(step.id, "completed", attempts=-1)
    with pytest.raises(InvalidInput, match="outputs must be an ArtifactRef"):
        client.pipelines.finish_step(step.id, "completed", outputs=["x"])  # type: ignore[list-item]
    with pytest.raises(InvalidInput, match="status 'running' must be one of"):
        client.pipelines.finish_run(run.id, "running")
    with pytest.raises(InvalidInput, match="source must be a StepRun"):
        client.pipelines.record_served(
            run.id,
            invocation="c",
            step="c",
            cache_key="k",
            cache_reason="r",
            source=step.id,  # type: ignore[arg-type]
        )
    assert [s.id for s in client.pipelines.get_run(run.id).steps] == [step.id]

    # An error is never refused (a failure must be recorded): cut to its end, NUL replaced.
    long_error = "x" * 200_000 + "\x00 ValueError: the cause"
    failed = client.pipelines.finish_step(step.id, "failed", error=long_error)
    assert failed.error is not None and len(failed.error) == 100_000
    assert failed.error.endswith("\ufffd ValueError: the cause")
    assert json.dumps(failed.key_parts) == "{}"
