"""Evaluation gates on the embedded store (SQLite and PostgreSQL): what a result keeps, judges
that must be approved, evidence that does not fit the subject or the gate, and bad specs."""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "gateway"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "evaluation"))
from _judge_stub import JudgeStub, run_judge_stub
from _llm_stub import Stub, run_stub

import loopwright as lw
from loopwright.client import Client
from loopwright.config import resolve_settings
from loopwright.errors import Conflict, InvalidInput, NotFound
from loopwright.evaluation import Judge, PromptTarget
from loopwright.loop.entities import RuleOutcome
from loopwright.loop.gates import evaluate_gate, load_gate_spec


@lw.scorer
def answered(*, outputs: Any) -> bool:
    return str(outputs).startswith("You said:")


@dataclass
class World:
    ada: Client
    bob: Client
    stub: Stub
    judge: JudgeStub
    cli: list[str]  # the CLI's global options for this store, as ada

    def prompt(self, template: str = "Q: {{ question }}") -> tuple[str, str]:
        """A new prompt with one version and a versioned evaluation dataset of two records."""
        name = f"p-{uuid.uuid4().hex[:8]}"
        self.ada.prompts.register(name, template)
        self.ada.evaluation.create_dataset(f"{name}-eval")
        self.ada.evaluation.upsert_records(
            f"{name}-eval", [{"inputs": {"question": q}} for q in ("a b", "c d")]
        )
        return name, f"{name}-eval"

    def target(self, name: str, version: int = 1) -> PromptTarget:
        loaded = self.ada.prompts.load(f"prompts:/{name}/{version}")
        return PromptTarget(loaded, endpoint=self.stub.base(), model="m")


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def world(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    pg_database: Callable[..., Any],
) -> Iterator[World]:
    from loopwright.governance.users import UserService
    from loopwright.store.home import open_store

    root = tmp_path_factory.mktemp("llm-gates")
    with ExitStack() as stack:
        db_uri = (
            stack.enter_context(pg_database())
            if request.param == "postgres"
            else f"sqlite:///{root / 'store.db'}"
        )
        home = root / "home"
        with open_store(resolve_settings(home=home, db_uri=db_uri, user="root")) as store:
            users = UserService(store, actor="root")
            users.add("root", "admin")
            users.add("ada", "editor")
            users.add("bob", "approver")

        def client(user: str) -> Client:
            return stack.enter_context(
                Client(resolve_settings(home=home, db_uri=db_uri, user=user))
            )

        yield World(
            client("ada"),
            client("bob"),
            stack.enter_context(run_stub()),
            stack.enter_context(run_judge_stub()),
            ["--home", str(home), "--db-uri", db_uri, "--user", "ada"],
        )


def _spec(dataset: str, *rules: str, name: str = "quality") -> dict[str, Any]:
    return {"name": name, "kind": "evaluation", "dataset": dataset, "rules": list(rules)}


def test_a_result_keeps_the_run_the_dataset_hash_and_the_scorers(world: World) -> None:
    name, dataset = world.prompt()
    run = world.ada.evaluation.evaluate(world.target(name), dataset, [answered])
    result = world.ada.gates.check_evaluation(
        _spec(dataset, "evaluation.answered/mean >= 1", "evaluation.failed_rows <= 0"),
        f"prompts:/{name}@latest",
        run.run_id,
    )
    assert result.passed and result.reason == ""
    assert (result.subject, result.model, result.version) == ("prompt", name, 1)
    assert [o.rule for o in result.outcomes] == [
        "evaluation.answered/mean >= 1",
        "evaluation.failed_rows <= 0",
        "judges approved",
    ]
    assert result.outcomes[0] == RuleOutcome(
        "evaluation.answered/mean >= 1", 1.0, True, "2 rows, 0 failed"
    )
    assert result.evaluation_run_id == run.run_id
    assert result.dataset_version_id == run.dataset_version_id
    assert result.dataset_digest == run.dataset_digest is not None
    assert result.dataset == f"{dataset}@v1"
    assert set(result.scorers) == {"answered"}
    assert world.ada.gates.get(result.id) == result
    assert world.ada.gates.results(prompt=name) == [result]
    assert world.ada.gates.results(prompt=name, version=2) == []
    assert world.ada.prompts.get_version(name, 1).tags["loopwright.gate.quality"] == "passed"
    # A rule naming an aggregate the run does not have fails, naming what it has.
    missing = world.ada.gates.check_evaluation(
        _spec(dataset, "evaluation.tone/mean >= 3"), f"prompts:/{name}/1", run.run_id
    )
    assert not missing.passed
    assert "has no aggregate 'tone/mean'; it has answered/errors, answered/mean" in missing.reason
    assert world.ada.prompts.get_version(name, 1).tags["loopwright.gate.quality"] == "failed"


def test_judges_must_be_registered_approved_versions(world: World) -> None:
    name, dataset = world.prompt()
    world.judge.decide = lambda prompt: '{"score": 4, "rationale": "fine"}'
    judge = Judge(
        f"tone{uuid.uuid4().hex[:6]}", rubric="Rate {outputs}", model="j",
        endpoint=world.judge.base, scale=(1, 5),
    )  # fmt: skip
    registered = world.ada.evaluation.register_scorer(judge)
    spec = _spec(dataset, f"evaluation.{judge.name}/mean >= 3")
    by_name = world.ada.evaluation.evaluate(world.target(name), dataset, [registered.ref])
    refused = world.ada.gates.check_evaluation(spec, f"prompts:/{name}/1", by_name.run_id)
    assert not refused.passed
    assert refused.reason == f"judges approved failed (1: not approved: {registered.ref})"
    world.ada.evaluation.request_approval(judge.name, registered.version)
    world.bob.evaluation.approve_scorer(judge.name, registered.version)
    cleared = world.ada.gates.check_evaluation(spec, f"prompts:/{name}/1", by_name.run_id)
    assert cleared.passed, cleared.reason
    # A judge passed as an object has no approved version to show.
    as_object = world.ada.evaluation.evaluate(world.target(name), dataset, [judge])
    unversioned = world.ada.gates.check_evaluation(spec, f"prompts:/{name}/1", as_object.run_id)
    assert f"not approved: {judge.name} (not registered)" in unversioned.reason


def test_evidence_must_fit_the_subject_and_the_gate(world: World) -> None:
    name, dataset = world.prompt()
    spec = _spec(dataset, "evaluation.answered/mean >= 1")
    called = world.ada.evaluation.evaluate(lambda question: f"You said: {question}", dataset,
                                           [answered])  # fmt: skip
    with pytest.raises(Conflict, match=r"evaluated .callable:.*loopwright\.eval\.subject"):
        world.ada.gates.check_evaluation(spec, f"prompts:/{name}/1", called.run_id)
    # A callable's run tagged with the version it ran counts as that version's evidence.
    world.ada.tracking.set_tags(called.run_id, {"loopwright.eval.subject": f"prompts:/{name}/1"})
    assert world.ada.gates.check_evaluation(spec, f"prompts:/{name}/1", called.run_id).passed
    records = [{"inputs": {"question": "a"}, "outputs": "You said: a"}]
    loose = world.ada.evaluation.evaluate(world.target(name), records, [answered])
    with pytest.raises(Conflict, match="unversioned records"):
        world.ada.gates.check_evaluation(spec, f"prompts:/{name}/1", loose.run_id)
    ran = world.ada.evaluation.evaluate(world.target(name), dataset, [answered])
    with pytest.raises(Conflict, match=rf"ran on {dataset}@v1; gate 'quality' asks for"):
        world.ada.gates.check_evaluation(
            _spec(f"{dataset}@v9", "evaluation.rows >= 1"), f"prompts:/{name}/1", ran.run_id
        )
    with pytest.raises(NotFound, match="is not an evaluation run"):
        world.ada.gates.check_evaluation(spec, f"prompts:/{name}/1", uuid.uuid4().hex)
    with pytest.raises(NotFound, match="has no version 5"):
        world.ada.gates.check_evaluation(spec, f"prompts:/{name}/5", ran.run_id)
    with pytest.raises(NotFound):
        world.ada.gates.check_evaluation(spec, "models:/no-such-model/1", ran.run_id)
    with pytest.raises(InvalidInput, match="checked on a version"):
        world.ada.gates.check_evaluation(spec, name, ran.run_id)
    assert world.ada.gates.results(prompt=name) and all(
        r.evaluation_run_id == called.run_id for r in world.ada.gates.results(prompt=name)
    )


def test_specs_say_which_kind_of_gate_they_are(world: World) -> None:
    holdout = {"name": "h", "dataset": "d", "target": "y", "rules": ["metrics.auc >= 0.8"]}
    with pytest.raises(InvalidInput, match="is a holdout gate"):
        world.ada.gates.check_evaluation(holdout, "prompts:/x/1", "r")
    with pytest.raises(InvalidInput, match="is not an evaluation rule"):
        load_gate_spec(_spec("d", "metrics.auc >= 0.8"))
    with pytest.raises(InvalidInput, match="put evaluation rules in a gate of 'kind: evaluation'"):
        load_gate_spec({**holdout, "rules": ["evaluation.x/mean >= 1"]})
    with pytest.raises(InvalidInput, match="unknown keys \\['target'\\]"):
        load_gate_spec({**_spec("d", "evaluation.rows >= 1"), "target": "y"})
    with pytest.raises(InvalidInput, match="kind 'judge' must be holdout or evaluation"):
        load_gate_spec({**_spec("d", "evaluation.rows >= 1"), "kind": "judge"})
    with pytest.raises(InvalidInput, match="not a finite number"):
        load_gate_spec(_spec("d", "evaluation.rows >= nan"))
    spec = load_gate_spec(_spec("d", "evaluation.correct/mean >= 0.9"))
    assert (spec.kind, spec.target, spec.rules[0].name) == ("evaluation", "", "correct/mean")
    assert load_gate_spec(spec.to_dict()) == spec
    with pytest.raises(InvalidInput, match="is an evaluation gate"):
        evaluate_gate(spec, "models:/m/1", client=world.ada)
    with pytest.raises(InvalidInput, match="check_evaluation"):
        world.ada.gates.record(
            spec, model="m", version=1, dataset_version_id="d",
            outcomes=[RuleOutcome("evaluation.rows >= 1", 2.0, True)],
        )  # fmt: skip
    with pytest.raises(InvalidInput, match="model=NAME or prompt=NAME, not both"):
        world.ada.gates.results(model="m", prompt="p")


def test_the_cli_checks_an_evaluation_gate_and_lists_a_prompts_results(
    world: World, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from loopwright.cli.app import app

    name, dataset = world.prompt()
    run = world.ada.evaluation.evaluate(world.target(name), dataset, [answered])
    spec = tmp_path / "gate.yaml"
    spec.write_text(
        f"name: quality\nkind: evaluation\ndataset: {dataset}\nrules:\n"
        "  - evaluation.answered/mean >= 1\n  - evaluation.rows >= 5\n"
    )

    def cli(*args: str) -> Any:
        return CliRunner().invoke(app, [*world.cli, *args], env={"COLUMNS": "300"})

    failed = cli("gates", "check", str(spec), "--prompt", f"prompts:/{name}/1",
                 "--evaluation-run", run.run_id)  # fmt: skip
    assert failed.exit_code == 1, failed.output
    assert f"Gate quality on prompts:/{name}/1 ({dataset}@v1)" in failed.output
    assert "gate quality failed: evaluation.rows >= 5 failed (2: 2 rows, 0 failed)" in failed.output
    no_run = cli("gates", "check", str(spec), "--prompt", f"prompts:/{name}/1")
    assert no_run.exit_code != 0 and "--evaluation-run RUN_ID" in no_run.output
    listed = cli("gates", "results", "--prompt", name, "--json")
    assert listed.exit_code == 0, listed.output
    [row] = json.loads(listed.output)
    assert (row["subject"], row["evaluation_run_id"]) == (f"prompts:/{name}/1", run.run_id)
    assert row["dataset_digest"] == run.dataset_digest


def test_a_model_version_can_be_gated_on_its_evaluation_too(world: World) -> None:
    pytest.importorskip("sklearn")
    from _gate_fixtures import MODEL, frames, populate

    from loopwright.loop.lineage import lineage

    populate(world.ada, only=1)
    holdout = frames()[1][:40]
    dataset = f"churn-eval-{uuid.uuid4().hex[:6]}"
    world.ada.evaluation.create_dataset(dataset)
    world.ada.evaluation.upsert_records(dataset, [
        {"inputs": {"x1": float(r.x1), "x2": float(r.x2)}, "expectations": {"churned": r.churned}}
        for r in holdout.itertuples()
    ])  # fmt: skip
    model = world.ada.load_model(f"models:/{MODEL}/1")

    def predict(x1: float, x2: float) -> int:
        import pandas as pd

        return int(model.predict(pd.DataFrame({"x1": [x1], "x2": [x2]}))[0])

    @lw.scorer
    def correct(*, outputs: Any, expectations: Any) -> bool:
        return bool(outputs == expectations["churned"])

    run = world.ada.evaluation.evaluate(predict, dataset, [correct])
    world.ada.tracking.set_tags(run.run_id, {"loopwright.eval.subject": f"models:/{MODEL}/1"})
    result = world.ada.gates.check_evaluation(
        _spec(dataset, "evaluation.correct/mean >= 0.8", name="churn-eval"),
        f"models:/{MODEL}/1",
        run.run_id,
    )
    assert result.passed, result.reason
    assert (result.subject, result.model, result.version) == ("model", MODEL, 1)
    assert world.ada.registry.get_version(MODEL, 1).tags["loopwright.gate.churn-eval"] == "passed"
    assert result in world.ada.gates.results(model=MODEL, version=1)
    graph = lineage(world.ada, f"models:/{MODEL}/1")
    edges = {(e.src, e.dst, e.relation) for e in graph.edges}
    assert (f"gate_result:{result.id}", f"evaluation_run:{run.run_id}", "evidence") in edges


def test_an_approval_is_refused_when_the_gate_failed_since_the_request_opened(
    world: World,
) -> None:
    from loopwright.registry.entities import ApprovalPolicy, ApprovalRule

    name, dataset = world.prompt()
    world.ada.prompts.set_policy(
        name, ApprovalPolicy((ApprovalRule("alias:production", gate="quality"),))
    )
    run = world.ada.evaluation.evaluate(world.target(name), dataset, [answered])
    spec = _spec(dataset, "evaluation.answered/mean >= 1")
    assert world.ada.gates.check_evaluation(spec, f"prompts:/{name}/1", run.run_id).passed
    request = world.ada.prompts.set_alias(name, "production", 1).request
    assert request is not None and request.status == "pending"
    stricter = _spec(dataset, "evaluation.rows >= 100")  # checked again: now it fails
    assert not world.ada.gates.check_evaluation(stricter, f"prompts:/{name}/1", run.run_id).passed
    with pytest.raises(Conflict, match=r"failed gate 'quality'.*evaluation\.rows >= 100 failed"):
        world.bob.prompts.approve(request.id)
    assert world.ada.prompts.get_request(request.id).status == "pending"  # no decision stored
    assert "production" not in world.ada.prompts.get(name).aliases


def test_loopwright_lineage_walks_from_a_trace_on_the_embedded_store(world: World) -> None:
    import os
    import time as clock

    from typer.testing import CliRunner

    from loopwright.cli.app import app
    from loopwright.tracing.entities import Span, TraceLinks

    name, dataset = world.prompt()
    run = world.ada.evaluation.evaluate(world.target(name), dataset, [answered])
    result = world.ada.gates.check_evaluation(
        _spec(dataset, "evaluation.answered/mean >= 1"), f"prompts:/{name}/1", run.run_id
    )
    trace_id, now = os.urandom(16).hex(), clock.time_ns()
    span = Span(trace_id, os.urandom(8).hex(), None, "chat", "LLM", now, now + 2_000_000)
    links = TraceLinks(prompt_versions=(f"{name}/1",), gateway_route="no-such-route")
    world.ada.tracing.record([span], links=links)

    def cli(*args: str) -> Any:
        return CliRunner().invoke(app, [*world.cli, *args], env={"COLUMNS": "300"})

    shown = cli("lineage", trace_id)
    assert shown.exit_code == 0, shown.output
    lines = shown.output.splitlines()
    assert lines[0].startswith(f"trace {trace_id[:12]} (OK)")
    assert f"rendered_with prompt version prompts:/{name}/1" in shown.output
    assert "gated_by gate result quality: passed" in shown.output
    assert f"evidence evaluation run eval {dataset}@v1" in shown.output
    assert f"hash {str(run.dataset_digest)[:16]}" in shown.output
    assert "served_by gateway route no-such-route" in shown.output  # deleted: named anyway
    as_json = cli("lineage", trace_id, "--kind", "trace", "--json")
    graph = json.loads(as_json.output)
    assert graph["root"] == f"trace:{trace_id}"
    assert {"src": f"gate_result:{result.id}", "dst": f"evaluation_run:{run.run_id}",
            "relation": "evidence"} in graph["edges"]  # fmt: skip
    by_version = cli("lineage", f"prompts:/{name}/1", "--json")
    assert json.loads(by_version.output)["root"] == f"prompt_version:{name}/1"
    unknown = cli("lineage", os.urandom(16).hex(), "--kind", "trace")
    assert unknown.exit_code != 0 and "does not exist" in unknown.output
