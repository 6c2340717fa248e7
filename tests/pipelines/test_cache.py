"""The cross-run cache: hits, and misses that say what changed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from _pipeline_project import Project

from loopwright.client import Client
from loopwright.pipelines import PipelineRun, StepRun

FLOW = """
import loopwright as lw

def scale(x):
    return x * {factor}

@lw.step
def load(n: int) -> list:
    return list(range(n))

@lw.step
def transform(rows: list) -> list:
    return [scale(r) for r in rows]

@lw.step(cache={cache})
def total(rows: list, offset: int = 0) -> tuple:
    return sum(rows) + offset, len(rows)

@lw.pipeline
def flow(n: int = 4, offset: int = 0) -> tuple:
    return total(transform(load(n)), offset=offset)
"""


def _write(project: Project, factor: int = 2, cache: bool = True) -> object:
    return project.write("cached_flow", FLOW.format(factor=factor, cache=cache))


def _steps(run: PipelineRun) -> dict[str, StepRun]:
    assert run.status == "completed", run.error
    return {s.invocation: s for s in run.steps}


def test_a_second_run_is_served_from_the_cache_with_the_same_values(
    client: Client, project: Project
) -> None:
    mod = _write(project)
    first = mod.flow.run(client=client)  # type: ignore[attr-defined]
    assert {s.cache_reason for s in first.steps} == {"no earlier run"}

    second = mod.flow.run(client=client)  # type: ignore[attr-defined]
    steps = _steps(second)
    assert {s.status for s in steps.values()} == {"cached"}
    before = _steps(first)
    for name, served in steps.items():
        assert served.cached_from == before[name].id
        assert served.run_id is None
        assert served.cache_key == before[name].cache_key
        assert served.cache_reason == (
            f"cache hit: step run {before[name].id} of pipeline run {first.id}"
        )
        assert [o.digest for o in served.outputs] == [o.digest for o in before[name].outputs]
    # the tuple output comes back as a tuple, from the store as from memory
    from loopwright.pipelines import load_result

    assert load_result(second, client=client) == [12, 4]  # a JSON result: tuples as lists
    from loopwright.pipelines import load_output

    assert load_output(steps["total"].outputs[1], client=client) == 4
    assert mod.flow.run(client=client, params={"n": 4}).status == "completed"  # type: ignore[attr-defined]


def test_a_change_in_a_helper_the_step_calls_reruns_it_and_what_follows(
    client: Client, project: Project
) -> None:
    first = _write(project, factor=2).flow.run(client=client)  # type: ignore[attr-defined]
    second = _write(project, factor=3).flow.run(client=client)  # type: ignore[attr-defined]
    steps = _steps(second)
    assert steps["load"].status == "cached"
    assert steps["transform"].status == "completed"
    assert steps["transform"].cache_reason.startswith("code changed: ")
    assert "scale" in steps["transform"].cache_reason
    assert _steps(first)["transform"].id in steps["transform"].cache_reason
    # total's code is the same, its input is not
    assert steps["total"].status == "completed"
    assert steps["total"].cache_reason == "input changed: rows"


def test_a_parameter_change_names_the_parameter_and_both_values(
    client: Client, project: Project
) -> None:
    mod = _write(project)
    mod.flow.run(client=client)  # type: ignore[attr-defined]
    steps = _steps(mod.flow.run(client=client, params={"offset": "5"}))  # type: ignore[attr-defined]
    assert steps["load"].status == steps["transform"].status == "cached"
    assert steps["total"].status == "completed"
    assert steps["total"].cache_reason == "parameter changed: offset 0 -> 5"
    steps = _steps(mod.flow.run(client=client, params={"n": 5}))  # type: ignore[attr-defined]
    assert steps["load"].cache_reason == "parameter changed: n 4 -> 5"
    assert steps["transform"].cache_reason == "input changed: rows"


def test_cache_off_always_runs_and_says_so(client: Client, project: Project) -> None:
    mod = _write(project, cache=False)
    mod.flow.run(client=client)  # type: ignore[attr-defined]
    steps = _steps(mod.flow.run(client=client))  # type: ignore[attr-defined]
    assert steps["transform"].status == "cached"
    assert steps["total"].status == "completed"
    assert steps["total"].cache_reason == "cache off"


def test_a_hit_whose_outputs_are_gone_runs_the_step(
    client: Client, project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    mod = _write(project)
    first = mod.flow.run(client=client)  # type: ignore[attr-defined]
    # the cached outputs are read from the store, not from this process's memory
    from loopwright.pipelines import _outputs

    monkeypatch.setattr(_outputs, "_recent", _outputs._Recent(8))
    load_run = _steps(first)["load"]
    client.tracking.set_lifecycle(load_run.run_id or "", "deleted")
    steps = _steps(mod.flow.run(client=client))  # type: ignore[attr-defined]
    assert steps["load"].status == "completed"
    assert steps["load"].cache_reason == (
        f"no cached outputs: step run {load_run.id} failed or its run was deleted"
    )
    assert steps["transform"].status == "cached"


MODEL_FLOW = """
import numpy as np
import loopwright as lw
from sklearn.linear_model import LogisticRegression

@lw.step
def data(n: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.normal(size=(n, 3))

@lw.step
def train(x: np.ndarray) -> LogisticRegression:
    return LogisticRegression().fit(x, (x[:, 0] > 0).astype(int))

@lw.step
def evaluate(model: LogisticRegression, x: np.ndarray) -> float:
    return float(model.score(x, (x[:, 0] > 0).astype(int)))

@lw.pipeline
def flow(n: int = 60) -> float:
    x = data(n)
    return evaluate(train(x), x)
"""


def test_a_model_output_is_cached_as_a_package_and_loads_back(
    client: Client, project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    from loopwright.pipelines import _outputs, load_output, load_result

    mod = project.write("model_flow", MODEL_FLOW)
    first = mod.flow.run(client=client)
    steps = _steps(first)
    assert steps["train"].outputs[0].materializer == "model"
    assert steps["data"].outputs[0].materializer == "numpy"
    monkeypatch.setattr(_outputs, "_recent", _outputs._Recent(8))  # read back from the store
    again = _steps(mod.flow.run(client=client))
    assert {s.status for s in again.values()} == {"cached"}
    assert load_result(first, client=client) > 0.9
    model = load_output(again["train"].outputs[0], client=client)
    assert type(model).__name__ == "LogisticRegression"


def test_miss_reasons_name_what_changed_and_stay_short() -> None:
    from loopwright.pipelines._keys import cache_key, miss_reason

    before = {"code": {"f": "1"}, "params": {"a": "x", "b": "y"}, "values": {"a": "1"}}
    now = {"code": {"f": "1"}, "params": {"a": "z", "c": "w"}, "values": {"a": "2"}}
    assert miss_reason(now, before, "S") == (
        "parameter changed: a 1 -> 2; parameter removed: b; parameter added: c"
    )
    assert miss_reason(now, None, "") == "no earlier run"
    # the shown values do not make the key: only code, params and inputs do
    assert cache_key({**now, "values": {}}) == cache_key(now) != cache_key(before)
    many = miss_reason(
        {"code": {f"f{i}": "a" for i in range(50)}},
        {"code": {f"f{i}": "b" for i in range(50)}},
        "S",
    )
    assert many.endswith("and 40 more since S") and len(many) < 200


def test_a_path_output_loads_as_a_copy_that_lives_as_long_as_the_process(
    tmp_path: Path, project: Project
) -> None:
    import os
    import subprocess
    import sys
    import textwrap

    project.write(
        "path_flow",
        """
        from pathlib import Path
        import loopwright as lw

        @lw.step
        def report(folder: str) -> Path:
            out = Path(folder) / "report.txt"
            out.write_text("auc 0.9")
            return out

        @lw.pipeline
        def flow(folder: str) -> Path:
            return report(folder)
        """,
    )
    script = textwrap.dedent(
        f"""
        import loopwright as lw
        from loopwright.pipelines import _outputs, load_output, load_pipeline

        client = lw.connect(home={str(tmp_path / "home")!r})
        run = load_pipeline("path_flow:flow").run(
            client=client, params={{"folder": {str(tmp_path)!r}}}
        )
        _outputs._recent = _outputs._Recent(8)
        copy = load_output(run.steps[0].outputs[0], client=client)
        assert copy.read_text() == "auc 0.9" and copy != {str(tmp_path / "report.txt")!r}
        print(copy)
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
    assert done.returncode == 0, done.stderr
    copy = Path(done.stdout.strip().splitlines()[-1])
    assert copy.name == "report.txt" and not copy.exists()  # removed when the process ended


MUTATING = """
import loopwright as lw

@lw.step
def load() -> list:
    return [3, 1, 2]

@lw.step
def sort_in_place(rows: list) -> int:
    rows.sort()  # changes its input: the stored output of load stays [3, 1, 2]
    return rows[0]

@lw.step
def first(rows: list) -> int:
    return rows[0] * {scale}

@lw.pipeline
def flow() -> int:
    rows = load()
    sort_in_place(rows)
    return first(rows)
"""


def test_a_cache_hit_serves_the_stored_value_not_one_changed_in_place(
    client: Client, project: Project
) -> None:
    from loopwright.pipelines import load_result

    run = project.write("mutating_flow", MUTATING.format(scale=1)).flow.run(client=client)
    assert load_result(run, client=client) == 1  # plain Python: first saw the sorted list
    again = project.write("mutating_flow", MUTATING.format(scale=10)).flow.run(client=client)
    steps = _steps(again)
    assert steps["load"].status == steps["sort_in_place"].status == "cached"
    # load is served as stored, not as the list sort_in_place changed in this process
    assert load_result(again, client=client) == 30


def test_a_hit_whose_stored_bytes_are_lost_runs_the_step_again(
    client: Client, project: Project, caplog: pytest.LogCaptureFixture
) -> None:
    mod: Any = _write(project)
    first = _steps(mod.flow.run(client=client))
    (output,) = first["load"].outputs
    assert client.store.blobs.delete(output.digest)  # the blob is gone, its records are not

    again = _steps(mod.flow.run(client=client))
    assert again["load"].status == "completed"  # run again, and stored again
    assert again["load"].cache_reason.startswith(
        f"outputs of step run {first['load'].id} unreadable ("
    )
    assert again["transform"].status == again["total"].status == "cached"
    assert f"outputs of step run {first['load'].id} unreadable" in caplog.text
    third = _steps(mod.flow.run(client=client))
    assert third["load"].status == "cached" and third["load"].cached_from == again["load"].id


def test_a_completed_steps_outputs_are_its_runs_artifacts_with_durable_blobs(
    client: Client, project: Project
) -> None:
    mod: Any = _write(project)
    steps = _steps(mod.flow.run(client=client))
    for step in steps.values():  # committed with the step's end, as log_artifacts would
        listed = {a.path: a for a in client.tracking.list_artifacts(step.run_id or "")}
        assert sorted(listed) == sorted(ref.path or "" for ref in step.outputs)
        for ref in step.outputs:
            assert listed[ref.path or ""].blob_hash == ref.digest
            assert client.store.blobs.exists(ref.digest)


def test_a_step_whose_output_blob_cannot_be_written_is_failed_without_artifacts(
    client: Client, project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    mod: Any = _write(project)
    blobs = client.store.blobs
    real = blobs.put_file

    def full_disk(path: object, **kwargs: object) -> object:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(blobs, "put_file", full_disk)
    run = mod.flow.run(client=client)
    assert run.status == "failed" and [s.status for s in run.steps] == ["failed"]
    assert "No space left on device" in (run.steps[0].error or "")
    assert client.tracking.list_artifacts(run.steps[0].run_id or "") == []

    monkeypatch.setattr(blobs, "put_file", real)
    again = _steps(mod.flow.run(client=client))  # nothing completed to serve: it runs
    assert again["load"].status == "completed"
    assert client.tracking.list_artifacts(again["load"].run_id or "") != []


def test_an_experiment_with_its_own_artifact_folder_still_gets_the_copies(
    tmp_path: Path, project: Project
) -> None:
    from loopwright.config import resolve_settings

    settings = resolve_settings(
        home=tmp_path / "home", default_artifact_root=str(tmp_path / "artifacts")
    )
    with Client(settings) as client:
        location = str(tmp_path / "artifacts" / "flows")
        client.tracking._create_experiment("flows", artifact_location=location)  # type: ignore[attr-defined]
        mod = project.write(
            "located_flow",
            FLOW.format(factor=2, cache=True).replace(
                "@lw.pipeline", '@lw.pipeline(experiment="flows")'
            ),
        )
        steps = _steps(mod.flow.run(client=client))
        load = steps["load"]
        copied = list(Path(location).rglob("output.json"))
        assert copied and any((load.run_id or "?") in str(p) for p in copied)
        assert client.tracking.list_artifacts(load.run_id or "")[0].path == "outputs/output.json"
