"""Issue 19's "done when": a prompt change goes through an evaluation gate, approval, a canary
through the gateway and promotion; the lineage walk from a production trace then reaches the
prompt version, the evaluation dataset's content hash and the approver.

A real server with auth on (SQLite and PostgreSQL) and a stub OpenAI-compatible upstream on
127.0.0.1, driven through the public client (one per user: an editor asks, an approver decides)
and the gateway's OpenAI-compatible endpoint. The stub answers ``You said: <last message>``, so
each answer shows which prompt version the gateway rendered.
"""

from __future__ import annotations

import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "gateway"))
from _llm_stub import Stub

import loopwright as lw
from _llm_team_server import team_server
from loopwright.client import Client
from loopwright.errors import Conflict, InvalidInput, NotFound
from loopwright.evaluation import PromptTarget
from loopwright.loop.lineage import lineage
from loopwright.registry.entities import ApprovalPolicy, ApprovalRule

USERS = (("boss", "admin"), ("ada", "editor"), ("bea", "approver"), ("vic", "viewer"))
OLD = "Answer: {{ question }}"
NEW = "Answer politely: {{ question }}"
QUESTIONS = ("where is my order", "how do I reset my password", "can I pay by card")


@lw.scorer
def polite(*, outputs: Any) -> bool:
    """The change under test: answers should be polite."""
    return "politely" in str(outputs)


def gate_spec(name: str, dataset: str) -> dict[str, Any]:
    return {
        "name": name,
        "kind": "evaluation",
        "dataset": dataset,
        "rules": ["evaluation.polite/mean >= 0.9", "evaluation.failed_rows <= 0"],
    }


@dataclass
class World:
    url: str
    stub: Stub
    tokens: dict[str, str]
    clients: dict[str, Client]

    def chat(
        self, route: str, question: str, user: str = "vic", variable: str = "question"
    ) -> httpx.Response:
        """One request through the gateway, the prompt's values in ``prompt_variables``."""
        return httpx.post(
            f"{self.url}/v1/chat/completions",
            headers={"Authorization": f"Bearer {self.tokens[user]}"},
            json={"model": route, "prompt_variables": {variable: question}},
            timeout=30,
        )

    def trace(self, trace_id: str) -> Any:
        """The request's trace once stored (the gateway exports traces off the request path)."""
        deadline = time.monotonic() + 20
        while True:
            try:
                return self.clients["vic"].tracing.get(trace_id, spans=False)
            except NotFound:
                assert time.monotonic() < deadline, f"trace {trace_id} was never stored"
                time.sleep(0.05)


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def world(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    pg_database: Callable[..., Any],
) -> Iterator[World]:
    with team_server(World, request, tmp_path_factory, pg_database, USERS) as world:
        yield world


def _evaluate(world: World, prompt: str, version: int, dataset: str) -> Any:
    ada = world.clients["ada"]
    target = PromptTarget(
        ada.prompts.load(f"prompts:/{prompt}/{version}"), endpoint=world.stub.base(), model="m"
    )
    return ada.evaluation.evaluate(target, dataset, [polite], name=f"{prompt} v{version}")


def _prompt_in_production(world: World, name: str, gate: str) -> str:
    """A prompt whose v1 serves as @production, then protected: moving the alias needs the
    gate and one approver. Returns the evaluation dataset's name."""
    boss, ada = world.clients["boss"], world.clients["ada"]
    boss.prompts.create(name, policy=ApprovalPolicy(rules=()))
    ada.prompts.register(name, OLD, commit_message="first answer")
    assert ada.prompts.set_alias(name, "production", 1).applied
    boss.prompts.set_policy(
        name, ApprovalPolicy((ApprovalRule("alias:production", 1, "approver", gate=gate),))
    )
    dataset = f"{name}-eval"
    ada.evaluation.create_dataset(dataset)
    ada.evaluation.upsert_records(
        dataset, [{"inputs": {"question": q}, "expectations": {"polite": True}} for q in QUESTIONS]
    )
    return dataset


def test_a_prompt_change_goes_through_gate_approval_canary_promotion_and_lineage(
    world: World,
) -> None:
    name, gate = f"support-{uuid.uuid4().hex[:6]}", "support-polite"
    ada, bea, boss = world.clients["ada"], world.clients["bea"], world.clients["boss"]
    dataset = _prompt_in_production(world, name, gate)
    candidate = ada.prompts.register(name, NEW, commit_message="be polite")
    assert candidate.version == 2

    # 1. Evaluation gate: v2 evaluated on the dataset, checked where the results are stored.
    evaluated = _evaluate(world, name, 2, dataset)
    assert evaluated.aggregates["polite/mean"] == 1.0
    result = ada.gates.check_evaluation(gate_spec(gate, dataset), f"prompts:/{name}/2",
                                        evaluated.run_id)  # fmt: skip
    assert result.passed and result.subject_uri == f"prompts:/{name}/2"
    eval_dataset = ada.evaluation.get_dataset(dataset)
    assert result.dataset_digest == eval_dataset.digest == evaluated.dataset_digest
    assert result.evaluation_run_id == evaluated.run_id
    assert "polite" in result.scorers
    assert ada.prompts.get_version(name, 2).tags[f"loopwright.gate.{gate}"] == "passed"

    # 2. Canary through the gateway: 10% to the candidate version, 90% to @production.
    route = f"{name}-route"
    boss.gateway.create_route(route, {"targets": [
        {"name": "primary", "base_url": world.stub.base(), "model": "m", "weight": 0.9,
         "prompt": f"prompts:/{name}@production"},
        {"name": "canary", "base_url": world.stub.base(), "model": "m", "weight": 0.1,
         "prompt": f"prompts:/{name}/2"},
    ]})  # fmt: skip
    used: Counter[str] = Counter()
    checked = 0
    for i in range(120):
        answer = world.chat(route, QUESTIONS[i % 3])
        assert answer.status_code == 200, answer.text
        text = answer.json()["choices"][0]["message"]["content"]
        version = 2 if "politely" in text else 1
        used[answer.headers["x-loopwright-target"]] += 1
        assert answer.headers["x-loopwright-target"] == ("canary" if version == 2 else "primary")
        if checked < 6 or version == 2:  # each canary request's trace and a few primaries
            trace = world.trace(answer.headers["x-loopwright-trace-id"])
            assert trace.links.prompt_versions == (f"{name}/{version}",)
            assert trace.links.gateway_route == route
            checked += 1
    assert 1 <= used["canary"] <= 40 and used["primary"] >= 80, used

    # 3. Promotion: the alias move opens a request (the gate passed), an approver approves.
    assert ada.prompts.get(name).policy.rules[0].gate == gate
    change = ada.prompts.set_alias(name, "production", 2, comment="canary looked good")
    assert not change.applied and change.request is not None
    assert change.request.rule.gate == gate
    [opened] = boss.audit.events(subject_type="approval_request", subject_id=change.request.id)
    assert (opened.action, opened.after["gate_result_id"]) == ("approval.request", result.id)
    [gated] = boss.audit.events(subject_type="gate_result", subject_id=result.id)
    assert gated.after["dataset_digest"] == eval_dataset.digest
    assert ada.prompts.get(name).aliases["production"] == 1
    decided = bea.prompts.approve(change.request.id, comment="polite wins")
    assert decided.status == "approved"
    assert ada.prompts.get(name).aliases["production"] == 2
    # ... and the route back to one target, following @production.
    boss.gateway.update_route(route, {"targets": [
        {"name": "primary", "base_url": world.stub.base(), "model": "m",
         "prompt": f"prompts:/{name}@production"},
    ]})  # fmt: skip
    production = world.chat(route, "is the shop open")
    assert production.status_code == 200, production.text
    said = production.json()["choices"][0]["message"]["content"]
    assert "Answer politely: is the shop open" in said
    trace_id = production.headers["x-loopwright-trace-id"]
    assert world.trace(trace_id).links.prompt_versions == (f"{name}/2",)

    # 4. Lineage from the production trace: version, gate, evaluation run, dataset hash, approver.
    graph = lineage(world.clients["vic"], trace_id)
    assert graph.root == f"trace:{trace_id}"
    kinds = {node.kind for node in graph.nodes}
    assert {"trace", "prompt_version", "gate_result", "evaluation_run", "dataset_version",
            "approval_request", "gateway_route"} <= kinds  # fmt: skip
    version_node = f"prompt_version:{name}/2"
    assert (f"trace:{trace_id}", version_node, "rendered_with") in _edges(graph)
    gate_node = f"gate_result:{result.id}"
    assert (version_node, gate_node, "gated_by") in _edges(graph)
    run_node = f"evaluation_run:{evaluated.run_id}"
    assert (gate_node, run_node, "evidence") in _edges(graph)
    [data] = [e.dst for e in graph.edges if e.src == run_node and e.relation == "evaluated_on"]
    assert graph.node(data).attrs["content_hash"] == eval_dataset.digest
    [request] = [n for n in graph.of_kind("approval_request") if n.attrs["version"] == 2]
    assert [d["actor"] for d in request.attrs["decisions"]] == ["bea"]
    assert request.attrs["requested_by"] == "ada"
    assert (request.id, gate_node, "cleared_by") in _edges(graph)
    assert (f"trace:{trace_id}", f"gateway_route:{route}", "served_by") in _edges(graph)


def test_a_failing_gate_blocks_the_alias_move_naming_the_failed_rule(world: World) -> None:
    name, gate = f"faq-{uuid.uuid4().hex[:6]}", "faq-polite"
    ada, boss = world.clients["ada"], world.clients["boss"]
    dataset = _prompt_in_production(world, name, gate)
    ada.prompts.register(name, "Reply: {{ question }}", commit_message="terser")
    with pytest.raises(Conflict, match=f"version 2 has no result of gate '{gate}'"):
        ada.prompts.set_alias(name, "production", 2)
    evaluated = _evaluate(world, name, 2, dataset)
    result = ada.gates.check_evaluation(gate_spec(gate, dataset), f"prompts:/{name}/2",
                                        evaluated.run_id)  # fmt: skip
    assert not result.passed
    assert result.reason.startswith("evaluation.polite/mean >= 0.9 failed (0")
    with pytest.raises(Conflict, match=r"failed gate 'faq-polite'.*evaluation.polite/mean >= 0.9"):
        ada.prompts.set_alias(name, "production", 2)
    assert ada.prompts.get(name).aliases["production"] == 1
    assert ada.prompts.requests(prompt=name) == []  # nothing was opened
    assert ada.prompts.get_version(name, 2).tags[f"loopwright.gate.{gate}"] == "failed"
    # The run of another version is no evidence for this one; the gate's dataset is checked.
    with pytest.raises(Conflict, match=f"evaluated 'prompts:/{name}/2', not prompts:/{name}/1"):
        ada.gates.check_evaluation(gate_spec(gate, dataset), f"prompts:/{name}/1",
                                   evaluated.run_id)  # fmt: skip
    with pytest.raises(Conflict, match="asks for 'other-eval'"):
        ada.gates.check_evaluation(gate_spec(gate, "other-eval"), f"prompts:/{name}/2",
                                   evaluated.run_id)  # fmt: skip
    # A viewer may not record a gate result.
    with pytest.raises(PermissionError):
        world.clients["vic"].gates.check_evaluation(
            gate_spec(gate, dataset), f"prompts:/{name}/2", evaluated.run_id
        )
    # An admin cannot make a model's policy name a gate (the loop gates models).
    with pytest.raises(InvalidInput, match="a model's policy names no gate"):
        boss.registry.create_model(
            f"m-{name}", policy=ApprovalPolicy((ApprovalRule("alias:champion", gate=gate),))
        )


def test_a_canary_with_an_unknown_prompt_version_is_refused(world: World) -> None:
    name = f"greet-{uuid.uuid4().hex[:6]}"
    boss, ada = world.clients["boss"], world.clients["ada"]
    ada.prompts.register(name, "Hello {{ who }}")
    targets = [
        {"name": "primary", "base_url": world.stub.base(), "model": "m", "weight": 0.9,
         "prompt": f"prompts:/{name}/1"},
        {"name": "canary", "base_url": world.stub.base(), "model": "m", "weight": 0.1,
         "prompt": f"prompts:/{name}/7"},
    ]  # fmt: skip
    with pytest.raises(NotFound, match=f"prompts:/{name}/7.*has no version 7"):
        boss.gateway.create_route(f"{name}-route", {"targets": targets})
    with pytest.raises(InvalidInput, match="names no version"):
        boss.gateway.create_route(
            f"{name}-route", {"targets": [{**targets[0], "prompt": f"prompts:/{name}"}]}
        )
    boss.gateway.create_route(f"{name}-route", {"targets": targets[:1]})
    missing = world.chat(f"{name}-route", "x")  # the template's variable is 'who'
    assert missing.status_code == 400 and "who" in missing.json()["error"]["message"]
    answer = httpx.post(
        f"{world.url}/v1/chat/completions",
        headers={"Authorization": f"Bearer {world.tokens['vic']}"},
        json={"model": f"{name}-route", "prompt_variables": ["Ada"]},
        timeout=30,
    )
    assert answer.status_code == 400 and "prompt_variables" in answer.json()["error"]["message"]


def _edges(graph: Any) -> set[tuple[str, str, str]]:
    return {(e.src, e.dst, e.relation) for e in graph.edges}


def test_prompt_targets_stream_fill_model_config_and_fall_back(world: World) -> None:
    name = f"tips-{uuid.uuid4().hex[:6]}"
    boss, ada = world.clients["boss"], world.clients["ada"]
    ada.prompts.register(
        name,
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Tip on {{ x }}"}],
        model_config={"temperature": 0.3, "max_tokens": 20, "model_name": "not-sent"},
    )
    route = f"{name}-route"
    boss.gateway.create_route(route, {
        "targets": [{"name": "primary", "base_url": world.stub.base("a"), "model": "m",
                     "prompt": f"prompts:/{name}/1"}],
        "fallbacks": [{"name": "plain", "base_url": world.stub.base("b"), "model": "m"}],
    })  # fmt: skip
    world.stub.reset()
    streamed = httpx.post(
        f"{world.url}/v1/chat/completions",
        headers={"Authorization": f"Bearer {world.tokens['vic']}"},
        json={"model": route, "stream": True, "prompt_variables": {"x": "tea"},
              "messages": [{"role": "user", "content": "and be kind"}], "max_tokens": 5},
        timeout=30,
    )  # fmt: skip
    assert streamed.status_code == 200 and "data: [DONE]" in streamed.text
    [sent] = world.stub.bodies["a"]
    assert sent["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Tip on tea"},
        {"role": "user", "content": "and be kind"},
    ]
    assert (sent["temperature"], sent["max_tokens"]) == (0.3, 5)  # the caller's value wins
    assert "prompt_variables" not in sent and "model_name" not in sent
    trace = world.trace(streamed.headers["x-loopwright-trace-id"])
    assert trace.links.prompt_versions == (f"{name}/1",)
    # The prompt is deleted: its target answers nothing, the fallback does (a plain target)
    # once the gateway's cache has refreshed (every 2 s).
    boss.prompts.delete(name)
    deadline = time.monotonic() + 10
    while True:
        answer = world.chat(route, "tea", variable="x")
        assert answer.status_code == 200, answer.text
        if answer.headers["x-loopwright-target"] == "plain":
            break
        assert time.monotonic() < deadline, "the deleted prompt's target kept answering"
        time.sleep(0.1)
    fell_back = world.trace(answer.headers["x-loopwright-trace-id"])
    assert fell_back.links.prompt_versions == ()
    assert "prompt_variables" not in world.stub.bodies["b"][-1]


def test_the_evaluation_gate_route_refuses_bad_bodies(world: World) -> None:
    headers = {"Authorization": f"Bearer {world.tokens['ada']}"}

    def post(body: Any, **extra: Any) -> httpx.Response:
        return httpx.post(
            f"{world.url}/api/v1/gates/evaluations", headers=headers, timeout=30,
            **({"content": body} if isinstance(body, bytes) else {"json": body}), **extra,
        )  # fmt: skip

    good = {"spec": gate_spec("g", "d"), "subject": "prompts:/x/1", "evaluation_run_id": "r"}
    assert post(b"{not json").status_code in (400, 422)
    assert post({**good, "subject": 7}).status_code in (400, 422)
    assert post({**good, "subject": "prompts:/" + "x" * 700}).status_code in (400, 422)
    assert post({**good, "evaluation_run_id": ""}).status_code in (400, 422)
    assert post({**good, "extra": 1}).status_code in (400, 422)
    unknown = post(good)
    assert unknown.status_code == 404 and "prompt 'x' does not exist" in unknown.text
    bad_spec = post({**good, "spec": {**gate_spec("g", "d"), "rules": ["metrics.auc >= 1"]}})
    assert bad_spec.status_code == 400 and "is not an evaluation rule" in bad_spec.text
    holdout = post({**good, "spec": {"name": "h", "dataset": "d", "target": "y",
                                     "rules": ["metrics.auc >= 0.5"]}})  # fmt: skip
    assert holdout.status_code == 400 and "is a holdout gate" in holdout.text
    nobody = httpx.post(f"{world.url}/api/v1/gates/evaluations", json=good, timeout=30)
    assert nobody.status_code == 401
