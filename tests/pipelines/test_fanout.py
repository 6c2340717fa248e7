"""Fan-out: map and sweeps, their order, parallelism, failures and the join."""

from __future__ import annotations

import pytest
from _pipeline_project import Project

from loopwright.client import Client
from loopwright.errors import InvalidInput
from loopwright.pipelines import PipelineRun, load_result, resume
from loopwright.pipelines.sweeps import grid_points, random_points

FLOW = """
import time
from pathlib import Path
import loopwright as lw

FLAG = Path(__file__).with_name("flag")

@lw.step
def square(x: int, pause: float = 0.0) -> int:
    time.sleep(pause)
    if FLAG.exists() and x == 3:
        raise ValueError("three is bad today")
    return x * x

@lw.step
def join(values: list) -> int:
    return sum(values)

@lw.step
def score(depth: int, lr: float, base: int = 0) -> float:
    return base + depth * lr

@lw.pipeline
def fan(n: int = 6, pause: float = 0.0) -> int:
    squares = square.map(range(n), pause=pause)
    return join(squares)

@lw.pipeline
def grid() -> dict:
    points = score.sweep(grid={"depth": [1, 2], "lr": [0.5, 1.0]}, base=1)
    best = max(points, key=lambda p: p.value)
    return {"best": best.params, "values": [p.value for p in points]}
"""


def test_map_results_come_in_item_order_with_indexed_invocations(
    client: Client, project: Project
) -> None:
    mod = project.write("fan_order", FLOW)
    run = mod.fan.run(client=client, max_parallel=3)
    assert run.status == "completed", run.error
    assert load_result(run, client=client) == sum(x * x for x in range(6))
    names = [s.invocation for s in run.steps]
    assert sorted(names[:6]) == [f"square[{i}]" for i in range(6)] and names[6] == "join"
    # the join took the map's results: each is an input with its stored digest
    join_run = run.steps[6]
    by_item = {s.invocation: s.outputs[0].digest for s in run.steps[:6]}
    assert [i.name for i in join_run.inputs] == [f"values[{i}]" for i in range(6)]
    assert [i.digest for i in join_run.inputs] == [by_item[f"square[{i}]"] for i in range(6)]

    again = mod.fan.run(client=client, max_parallel=3)
    assert {s.status for s in again.steps} == {"cached"}


def test_map_runs_items_in_parallel_up_to_max_parallel(db_client: Client, project: Project) -> None:
    client = db_client
    mod = project.write("fan_parallel", FLOW)
    run = mod.fan.run(client=client, max_parallel=3, params={"n": 6, "pause": 0.4})
    assert run.status == "completed", run.error
    assert 2 <= _peak(run) <= 3
    one_by_one = mod.fan.run(client=client, max_parallel=1, params={"n": 3, "pause": 0.1})
    assert _peak(one_by_one) == 1


def _peak(run: PipelineRun) -> int:
    """The most map items open at one time, from their step runs' recorded start and end."""
    items = [s for s in run.steps if s.invocation.startswith("square[")]
    events = sorted(
        [(s.started_at, 1) for s in items] + [(s.finished_at or 0, -1) for s in items],
        key=lambda e: (e[0], e[1]),
    )
    open_now = peak = 0
    for _, change in events:
        open_now += change
        peak = max(peak, open_now)
    return peak


def test_a_failed_item_fails_the_map_after_the_others_and_resume_reruns_only_it(
    db_client: Client, project: Project
) -> None:
    client = db_client
    mod = project.write("fan_failing", FLOW)
    (project.folder / "flag").write_text("")
    failed = mod.fan.run(client=client, max_parallel=2)
    assert failed.status == "failed"
    assert "1 of 6 items of square.map failed (square[3])" in (failed.error or "")
    assert "ValueError: three is bad today" in (failed.error or "")
    statuses = {s.invocation: s.status for s in failed.steps}
    assert statuses == {f"square[{i}]": "failed" if i == 3 else "completed" for i in range(6)}

    (project.folder / "flag").unlink()
    run = resume(failed.id, client=client, cwd=str(project.folder))
    assert run.status == "completed", run.error
    statuses = {s.invocation: s.status for s in run.steps}
    assert statuses.pop("square[3]") == "completed"
    assert statuses.pop("join") == "completed"
    assert set(statuses.values()) == {"resumed"}
    assert load_result(run, client=client) == 55


def test_a_grid_sweep_joins_its_points(client: Client, project: Project) -> None:
    mod = project.write("fan_grid", FLOW)
    run = mod.grid.run(client=client, max_parallel=2)
    assert run.status == "completed", run.error
    assert load_result(run, client=client) == {
        "best": {"depth": 2, "lr": 1.0},
        "values": [1.5, 2.0, 2.0, 3.0],
    }
    assert sorted(s.invocation for s in run.steps) == [f"score[{i}]" for i in range(4)]


def test_sweep_points_grid_and_seeded_random() -> None:
    assert grid_points({"a": [1, 2], "b": ["x", "y"]}) == [
        {"a": 1, "b": "x"},
        {"a": 1, "b": "y"},
        {"a": 2, "b": "x"},
        {"a": 2, "b": "y"},
    ]
    space = {"depth": (2, 8), "lr": (0.01, 0.1), "kind": ["rf", "gbm"]}
    first = random_points(space, samples=5, seed=7)
    assert first == random_points(space, samples=5, seed=7)
    assert first != random_points(space, samples=5, seed=8)
    for point in first:
        assert isinstance(point["depth"], int) and 2 <= point["depth"] <= 8
        assert 0.01 <= point["lr"] <= 0.1 and point["kind"] in ("rf", "gbm")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "needs grid="),
        ({"grid": {"a": []}}, "non-empty list"),
        ({"grid": {"a": "abc"}}, "non-empty list"),
        ({"random": {"a": (5, 1)}}, "low 5 > high 1"),
        ({"random": {"a": "x"}}, "list of choices or a .low, high. tuple"),
        ({"random": {"a": [1]}, "samples": 0}, "samples must be an int >= 1"),
        ({"grid": {"a": [1]}, "a": 2}, "a both swept and given"),
    ],
)
def test_bad_sweeps_are_refused(kwargs: dict[str, object], message: str) -> None:
    from loopwright.pipelines import step

    @step
    def noop(a: int = 0) -> int:
        return a

    with pytest.raises(InvalidInput, match=message):
        noop.sweep(**kwargs)  # type: ignore[arg-type]


def test_a_map_result_changed_before_the_join_is_hashed_by_value(
    client: Client, project: Project
) -> None:
    mod = project.write(
        "fan_changed",
        FLOW
        + """
@lw.pipeline
def changed(extra: int = 100) -> int:
    squares = square.map(range(3))
    squares.append(extra)
    return join(squares)
""",
    )
    first = mod.changed.run(client=client)
    assert load_result(first, client=client) == 105
    join_run = first.steps[-1]
    assert [i.name for i in join_run.inputs] == ["values"]  # a plain list now, not the map's
    second = mod.changed.run(client=client, params={"extra": 200})
    assert load_result(second, client=client) == 205
    assert second.steps[-1].cache_reason.startswith("parameter changed: values")


def test_a_map_on_the_process_executor_runs_in_worker_processes(
    client: Client, project: Project
) -> None:
    import os

    mod = project.write(
        "fan_process",
        """
        import os
        import loopwright as lw

        @lw.step
        def where(x: int) -> list:
            lw.log_metric("x", x)
            return [x, os.getpid()]

        @lw.pipeline
        def fan(n: int = 4) -> list:
            return where.map(range(n))
        """,
    )
    run = mod.fan.run(client=client, executor="process", max_parallel=2)
    assert run.status == "completed", run.error
    values = load_result(run, client=client)
    assert [v[0] for v in values] == [0, 1, 2, 3]
    assert os.getpid() not in {v[1] for v in values}
    item = next(s for s in run.steps if s.invocation == "where[2]")
    assert client.get_run(item.run_id or "").metrics["x"].value == 2


BAD_ARGUMENTS = """
import loopwright as lw

@lw.step
def pair(a: int, b: int = 0) -> int:
    return a + b

@lw.pipeline
def clash() -> list:
    return pair.map([1, 2], a=5)  # each item is also given as a: multiple values for 'a'

@lw.pipeline
def single() -> int:
    return pair(1, 2, 3)  # too many positional arguments
"""


def test_a_mapped_step_called_with_bad_arguments_is_recorded_as_failed(
    client: Client, project: Project
) -> None:
    mod = project.write("fan_bad_arguments", BAD_ARGUMENTS)
    run = mod.clash.run(client=client)

    assert run.status == "failed"
    assert "2 of 2 items of pair.map failed" in (run.error or "")
    assert [s.invocation for s in run.steps] == ["pair[0]", "pair[1]"]
    for item in run.steps:
        assert item.status == "failed" and item.attempts == 0
        assert "bad arguments" in (item.error or "") and "multiple values" in (item.error or "")
        assert item.cache_reason == "not run: its arguments did not bind"
        assert item.run_id is not None
        assert client.tracking.get_run(item.run_id).status.value == "FAILED"

    plain = mod.single.run(client=client)
    assert plain.status == "failed" and [s.status for s in plain.steps] == ["failed"]
    assert "too many positional arguments" in (plain.steps[0].error or "")


SHARED = """
import loopwright as lw

@lw.step
def weigh(x: int, weights: dict) -> float:
    return x * weights["w"]

@lw.pipeline
def shared(n: int = 5) -> list:
    weights = {"w": 2.0, "table": list(range(1000))}
    return weigh.map(range(n), weights=weights)
"""


def test_a_value_every_map_item_shares_is_hashed_once(
    client: Client, project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    from loopwright.pipelines import materializers

    hashed: list[object] = []
    digest = materializers.digest

    def counting(value: object, **kwargs: bool) -> str:
        if isinstance(value, dict):
            hashed.append(value)
        return digest(value, **kwargs)

    monkeypatch.setattr(materializers, "digest", counting)
    mod = project.write("fan_shared", SHARED)
    run = mod.shared.run(client=client)
    assert run.status == "completed", run.error
    assert load_result(run, client=client) == [2.0 * x for x in range(5)]
    assert len(hashed) == 1  # not once per item
    keys = {s.key_parts["params"]["weights"] for s in run.steps}
    assert len(keys) == 1  # every item's key still holds the shared value's digest
