"""The pipeline engine: runs, records, outputs, typed parameters, loading by reference."""

from __future__ import annotations

from pathlib import Path

import pytest
from _pipeline_project import Project

import loopwright as lw
from loopwright.client import Client
from loopwright.config import Settings
from loopwright.errors import Conflict, InvalidInput, NotFound, StepFailed
from loopwright.pipelines import (
    Pipeline,
    PipelineRun,
    Step,
    load_output,
    load_pipeline,
    load_result,
    pipeline,
    resume,
    step,
)

BASIC = """
import loopwright as lw

@lw.step
def load(n: int) -> list:
    return list(range(n))

@lw.step
def split(rows: list) -> tuple:
    half = len(rows) // 2
    return rows[:half], rows[half:]

@lw.step
def train(rows: list, lr: float = 0.1) -> dict:
    lw.log_metric("loss", 1.0 / (1 + len(rows)))
    return {"weights": sum(rows) * lr, "n": len(rows)}

@lw.pipeline(experiment="basic-exp")
def flow(n: int = 6, lr: float = 0.5, tags: list[str] | None = None, fast: bool = False) -> dict:
    rows = load(n)
    a, b = split(rows)
    model = train(a, lr=lr)
    return {"model": model, "rest": len(b), "tags": tags, "fast": fast}
"""


def test_a_run_records_each_step_with_outputs_and_the_result(
    client: Client, project: Project
) -> None:
    mod = project.write("basic_flow", BASIC)
    run = mod.flow.run(client=client, params={"n": 6})

    assert run.status == "completed", run.error
    assert run.pipeline == "basic_flow:flow"
    assert run.params == {"n": 6, "lr": 0.5, "tags": None, "fast": False}
    assert [s.invocation for s in run.steps] == ["load", "split", "train"]
    assert all(s.status == "completed" and s.attempts == 1 for s in run.steps)
    assert run.steps[0].cache_reason == "no earlier run"
    split_outputs = {o.name: o for o in run.steps[1].outputs}
    assert sorted(split_outputs) == ["output.0", "output.1"]
    # train took split's first output: recorded as an input with split's stored digest
    (rows_input,) = [i for i in run.steps[2].inputs if i.name == "rows"]
    assert rows_input.digest == split_outputs["output.0"].digest
    assert rows_input.run_id == run.steps[1].run_id
    lr_input = next(i for i in run.steps[2].inputs if i.name == "lr")
    assert lr_input.run_id is None and lr_input.materializer == "json"

    assert load_result(run, client=client) == {
        "model": {"weights": 1.5, "n": 3},
        "rest": 3,
        "tags": None,
        "fast": False,
    }
    assert load_output(run.steps[1].outputs[0], client=client) in ([0, 1, 2], [3, 4, 5])
    # each step is a nested run of the pipeline's tracked run; metrics logged inside land there
    train_run = client.get_run(run.steps[2].run_id or "")
    assert train_run.parent_run_id == run.run_id
    assert train_run.metrics["loss"].value == pytest.approx(0.25)
    assert client.get_run(run.run_id or "").status.value == "FINISHED"


def test_typed_parameters_convert_strings_from_the_command_line(
    client: Client, project: Project
) -> None:
    mod = project.write("typed_flow", BASIC)
    run = mod.flow.run(
        client=client, params={"n": "4", "lr": "0.25", "tags": '["a", "b"]', "fast": "yes"}
    )
    assert run.status == "completed", run.error
    assert run.params == {"n": 4, "lr": 0.25, "tags": ["a", "b"], "fast": True}
    assert mod.flow.run(client=client, params={"tags": "null"}).params["tags"] is None


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"n": "six"}, r"parameter 'n' expects int, got 'six'.*--param n=3"),
        ({"fast": "maybe"}, r"parameter 'fast' expects bool"),
        ({"tags": '{"a": 1}'}, r"parameter 'tags' expects .*not a JSON list"),
        ({"epochs": "3"}, r"has no parameter 'epochs'; its parameters: n, lr, tags, fast"),
        ({"n": object()}, r"parameter 'n' is a object, not a JSON value"),
    ],
)
def test_bad_parameters_are_refused_before_anything_is_recorded(
    client: Client, project: Project, params: dict[str, object], message: str
) -> None:
    mod = project.write("bad_params_flow", BASIC)
    with pytest.raises(InvalidInput, match=message):
        mod.flow.run(client=client, params=params)
    assert client.pipelines.list_runs() == []


def test_a_missing_parameter_names_it(client: Client, project: Project) -> None:
    mod = project.write(
        "needs_param",
        """
        import loopwright as lw

        @lw.pipeline
        def flow(n: int) -> int:
            return n
        """,
    )
    with pytest.raises(InvalidInput, match=r"needs parameter 'n': pass it \(--param n=...\)"):
        mod.flow.run(client=client)


def test_a_failed_step_fails_the_run_with_its_error(client: Client, project: Project) -> None:
    mod = project.write(
        "failing_flow",
        """
        import loopwright as lw

        @lw.step
        def ok() -> int:
            return 1

        @lw.step
        def boom(x: int) -> int:
            raise ValueError(f"bad row {x}")

        @lw.pipeline
        def flow() -> int:
            return boom(ok())
        """,
    )
    run = mod.flow.run(client=client)
    assert run.status == "failed"
    assert run.error is not None and "step boom failed after 1 attempt(s)" in run.error
    assert "ValueError: bad row 1" in run.error
    boom_run = run.steps[1]
    assert boom_run.status == "failed" and "ValueError: bad row 1" in (boom_run.error or "")
    assert client.get_run(run.run_id or "").status.value == "FAILED"
    with pytest.raises(Conflict, match="is failed: it has no result"):
        load_result(run, client=client)


def test_calling_a_pipeline_runs_it_on_the_default_client(
    default_client: Client, project: Project
) -> None:
    mod = project.write(
        "called_flow",
        """
        import loopwright as lw

        @lw.step
        def add(a: int, b: int) -> int:
            return a + b

        @lw.step
        def fail() -> None:
            raise RuntimeError("nope")

        @lw.pipeline
        def flow(a: int = 1) -> int:
            return add(a, add(a, 1))

        @lw.pipeline
        def broken() -> None:
            fail()
        """,
    )
    assert mod.flow(a=2) == 5
    (run,) = default_client.pipelines.list_runs(pipeline="called_flow:flow")
    assert run.status == "completed"
    with pytest.raises(StepFailed, match="step fail failed after 1 attempt"):
        mod.broken()


def test_steps_outside_a_pipeline_are_plain_calls_and_the_top_level_names_are_real() -> None:
    assert lw.step is step
    # lw.pipeline is pipelines.pipeline handing down the default client (pipelines sit below it)
    from loopwright._active import default_client

    assert lw.pipeline(lambda: 1).client_factory is default_client
    assert pipeline(lambda: 1).client_factory is None

    @lw.step(name="twice", retries=1)
    def double(x: int) -> int:
        return 2 * x

    assert isinstance(double, Step) and double.name == "twice"
    assert double(4) == 8
    assert double.map([1, 2]) == [2, 4]
    assert isinstance(pipeline(lambda: 1), Pipeline)


def test_load_pipeline_errors_name_the_fix(project: Project) -> None:
    project.write(
        "refs_mod",
        """
        import loopwright as lw

        def plain() -> None: ...

        @lw.pipeline
        def flow() -> None: ...
        """,
    )
    assert load_pipeline("refs_mod:flow", cwd=str(project.folder)).name == "flow"
    with pytest.raises(InvalidInput, match="is not MODULE:PIPELINE"):
        load_pipeline("refs_mod.flow")
    with pytest.raises(NotFound, match="no module 'nowhere_mod' importable from"):
        load_pipeline("nowhere_mod:flow", cwd=str(project.folder))
    with pytest.raises(NotFound, match=r"module 'refs_mod' .* has no 'missing'"):
        load_pipeline("refs_mod:missing")
    with pytest.raises(InvalidInput, match="is a function, not a @pipeline"):
        load_pipeline("refs_mod:plain")
    with pytest.raises(InvalidInput, match="defined inside a function, so it cannot be imported"):
        load_pipeline("refs_mod:make.<locals>.flow")


def test_step_options_are_checked() -> None:
    with pytest.raises(InvalidInput, match="retries must be an int >= 0"):
        step(retries=-1)(lambda: None)
    with pytest.raises(InvalidInput, match="timeout must be > 0"):
        step(timeout=0)(lambda: None)
    with pytest.raises(InvalidInput, match="holds '#'"):
        step(name="a#b")(lambda: None)


def test_a_pipeline_runs_the_same_through_a_server(tmp_path: Path, project: Project) -> None:
    from loopwright.config import resolve_settings
    from loopwright.governance.tokens import TokenService
    from loopwright.governance.users import UserService
    from test_public_api import live_server

    def settings(user: str | None = None) -> Settings:
        return resolve_settings(
            home=tmp_path / "server-home", blob_uri=str(tmp_path / "blobs"), user=user
        )

    with Client(settings("root")) as local:
        UserService(local.store, actor="root").add("root", "admin")
        UserService(local.store, actor="root").add("ed", "editor")
        secret = TokenService(local.store, actor="root").create("ed").secret
        mod = project.write("remote_flow", BASIC)
        with (
            live_server(settings()) as url,
            lw.connect(url, token=secret, home=tmp_path / "ed-home") as remote,
        ):
            run = mod.flow.run(client=remote, params={"n": "4"})
            assert run.status == "completed", run.error
            assert load_result(run, client=remote)["model"] == {"weights": 0.5, "n": 2}
            again = mod.flow.run(client=remote, params={"n": 4})
            assert {s.status for s in again.steps} == {"cached"}
        # the records and outputs are the server's: the embedded client reads them too
        stored = local.pipelines.get_run(run.id)
        assert [s.invocation for s in stored.steps] == ["load", "split", "train"]
        assert load_output(stored.steps[0].outputs[0], client=local) == [0, 1, 2, 3]
        assert local.get_run(stored.steps[2].run_id or "").metrics["loss"].value == 1 / 3


def test_a_running_pipeline_beats_and_reports_its_start(
    client: Client, project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys
    import threading

    # `loopwright.pipelines.pipeline` is the decorator; the module is in sys.modules
    monkeypatch.setattr(sys.modules["loopwright.pipelines.pipeline"], "HEARTBEAT_INTERVAL_MS", 50)
    mod = project.write(
        "beating_flow",
        """
        import time
        import loopwright as lw

        @lw.step
        def wait(seconds: float) -> float:
            time.sleep(seconds)
            return seconds

        @lw.pipeline
        def flow() -> float:
            return wait(0.6)
        """,
    )
    seen: dict[str, int] = {}

    def on_start(run: PipelineRun) -> None:
        seen["started"] = run.heartbeat_at
        assert run.status == "running"

        def look() -> None:
            seen["later"] = client.pipelines.get_run(run.id).heartbeat_at

        threading.Timer(0.4, look).start()

    run = mod.flow.run(client=client, on_start=on_start)
    assert run.status == "completed", run.error
    assert seen["later"] > seen["started"]


def test_an_interrupt_records_the_run_killed_and_propagates(
    client: Client, project: Project
) -> None:
    mod = project.write(
        "interrupted_flow",
        """
        import loopwright as lw

        @lw.step
        def stop() -> None:
            raise KeyboardInterrupt

        @lw.pipeline
        def flow() -> None:
            stop()
        """,
    )
    with pytest.raises(KeyboardInterrupt):
        mod.flow.run(client=client)
    (run,) = client.pipelines.list_runs(pipeline="interrupted_flow:flow")
    run = client.pipelines.get_run(run.id)
    assert run.status == "killed" and run.error == "interrupted (KeyboardInterrupt)"
    assert run.steps[0].status == "failed"
    assert (run.steps[0].error or "").startswith("interrupted")


PICKLING = """
import loopwright as lw

class Model:
    def __init__(self, w: float) -> None:
        self.w = w

@lw.step
def plain() -> Model:
    return Model(1.0)

@lw.step(pickle=True)
def opted_in(w: float) -> Model:
    return Model(w)

@lw.step
def use(model: Model) -> float:
    return model.w * 2

@lw.pipeline
def refused() -> Model:
    return plain()

@lw.pipeline
def allowed(w: float = 2.0) -> float:
    return use(opted_in(w))
"""


def test_outputs_are_never_pickled_unless_the_step_opts_in(
    client: Client, project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    from loopwright.errors import UntrustedModel
    from loopwright.pipelines import _outputs

    mod = project.write("pickling_flow", PICKLING)
    run = mod.refused.run(client=client)
    assert run.status == "failed"
    assert "Model" in (run.steps[0].error or "") and "pickle=True" in (run.steps[0].error or "")

    first = mod.allowed.run(client=client)
    assert first.status == "completed", first.error
    assert first.steps[0].outputs[0].materializer == "pickle"
    monkeypatch.setattr(_outputs, "_recent", _outputs._Recent(8))  # read back from the store
    again = mod.allowed.run(client=client)
    assert again.status == "completed", again.error
    assert [s.status for s in again.steps] == ["cached", "cached"]
    # outside the step that opted in, loading a pickle needs trusted=True
    with pytest.raises((UntrustedModel, PermissionError)):
        load_output(again.steps[0].outputs[0], client=client)
    assert load_output(again.steps[0].outputs[0], client=client, trusted=True).w == 2.0


def test_without_a_client_the_low_level_api_says_to_pass_one(project: Project) -> None:
    low = pipeline(lambda: 1)
    with pytest.raises(InvalidInput, match=r"has no client: pass client=lw.connect\(...\)"):
        low()
    with pytest.raises(InvalidInput, match="resume needs a client"):
        resume("0" * 32)


def test_an_on_start_callback_that_raises_ends_the_run_failed(
    client: Client, project: Project
) -> None:
    mod = project.write("callback_flow", BASIC)

    def on_start(run: PipelineRun) -> None:
        raise RuntimeError("could not note the run")

    run = mod.flow.run(client=client, on_start=on_start)
    assert run.status == "failed" and run.steps == ()
    assert "RuntimeError: could not note the run" in (run.error or "")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"executor": "dask"}, "unknown executor 'dask'; choose one of inprocess, process, ray"),
        ({"max_parallel": 0}, "max_parallel must be a whole number of at least 1, not 0"),
    ],
)
def test_bad_run_options_are_refused_before_recording(
    client: Client, project: Project, options: dict[str, object], message: str
) -> None:
    mod = project.write("options_flow", BASIC)
    with pytest.raises(InvalidInput, match=message):
        mod.flow.run(client=client, **options)
    assert client.pipelines.list_runs() == []


def test_a_step_logs_and_registers_a_model_on_its_own_run(client: Client, project: Project) -> None:
    mod = project.write(
        "registering_flow",
        """
        import numpy as np
        import loopwright as lw
        from sklearn.linear_model import LogisticRegression

        @lw.step
        def train(n: int) -> str:
            x = np.random.default_rng(0).normal(size=(n, 2))
            model = LogisticRegression().fit(x, (x[:, 0] > 0).astype(int))
            info = lw.active_run().log_model(model, registered_model_name="churn")
            return info.model_uri

        @lw.pipeline
        def flow(n: int = 40) -> str:
            return train(n)
        """,
    )
    run = mod.flow.run(client=client)
    assert run.status == "completed", run.error
    (version,) = client.registry.list_versions("churn")
    assert version.run_id == run.steps[0].run_id


COMPOSED = """
import loopwright as lw

@lw.step
def combine(*parts: int, **weights: float) -> float:
    return sum(parts) + sum(weights.values())

@lw.step
def double(x: int) -> int:
    return 2 * x

@lw.pipeline
def inner(x: int = 1) -> int:
    return double(x)

@lw.pipeline
def outer(x: int = 1) -> float:
    nothing = double.map([])
    return combine(inner(x=x), inner(x=x + 1), len(nothing), a=0.5, b=0.25)
"""


def test_sub_pipelines_varargs_and_an_empty_map(client: Client, project: Project) -> None:
    mod = project.write("composed_flow", COMPOSED)
    run = mod.outer.run(client=client, params={"x": 2})
    assert run.status == "completed", run.error
    assert load_result(run, client=client) == 4 + 6 + 0 + 0.75
    # the sub-pipeline's steps join the running pipeline; the empty map records nothing
    assert [s.invocation for s in run.steps] == ["double#2", "double#3", "combine"]
    combine_run = run.steps[-1]
    assert set(combine_run.key_parts["params"]) == {"parts[0]", "parts[1]", "parts[2]", "a", "b"}
    again = mod.outer.run(client=client, params={"x": 2})
    assert {s.status for s in again.steps} == {"cached"}
    changed = mod.outer.run(client=client, params={"x": 3})
    assert next(s for s in changed.steps if s.invocation == "combine").cache_reason == (
        "parameter changed: parts[0] 4 -> 6; parameter changed: parts[1] 6 -> 8"
    )


def test_runs_get_distinct_default_names_and_keep_a_given_one(
    client: Client, project: Project
) -> None:
    mod = project.write("named_flow", BASIC)
    first = mod.flow.run(client=client, params={"n": 2})
    second = mod.flow.run(client=client, params={"n": 2})
    given = mod.flow.run(client=client, params={"n": 2}, name="nightly")

    for run in (first, second):
        prefix, _, suffix = run.name.rpartition("-")
        assert prefix == "flow" and len(suffix) == 4 and int(suffix, 16) >= 0
    assert first.name != second.name  # 1 in 65536 to collide
    assert given.name == "nightly"
    assert client.tracking.get_run(first.run_id).name == first.name
