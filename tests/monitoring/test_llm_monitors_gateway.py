"""Quality monitoring end to end through the LLM gateway (SQLite and PostgreSQL): a real server
with auth on and a stub OpenAI-compatible upstream on 127.0.0.1. The route's target renders
``prompts:/support@production``; the stub answers ``You said: <rendered prompt>``, so version 2's
long template gives long answers. A trace monitor of ``support@production`` sees the drift
against version 1's traffic, its alert rolls the alias back, and the gateway's next requests
are rendered with version 1 again: the loop closed through production traffic."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "gateway"))
from _llm_stub import Stub

from _llm_team_server import team_server
from loopwright._ids import now_ms
from loopwright.client import Client
from loopwright.monitoring import AlertAction, TraceSelection
from loopwright.registry.entities import ApprovalPolicy

USERS = (("boss", "admin"), ("ed", "editor"), ("vic", "viewer"))
SHORT = "Answer: {{ question }}"
LONG = (
    "Answer at length, restating the question word by word and adding every detail you "
    "know about it: {{ question }}"
)
QUESTIONS = [f"where is my order number {i}" for i in range(15)]


@dataclass
class World:
    url: str
    stub: Stub
    tokens: dict[str, str]
    clients: dict[str, Client]

    def chat(self, question: str) -> str:
        """One request through the gateway as the viewer; the trace id it was recorded as."""
        answer = httpx.post(
            f"{self.url}/v1/chat/completions",
            headers={"Authorization": f"Bearer {self.tokens['vic']}"},
            json={"model": "support-chat", "prompt_variables": {"question": question}},
            timeout=30,
        )
        assert answer.status_code == 200, answer.text
        return str(answer.headers["x-loopwright-trace-id"])

    def version_of(self, trace_id: str) -> tuple[str, ...]:
        """The prompt versions the stored trace links (waits for the exporter)."""
        deadline = time.monotonic() + 20
        while True:
            found = self.clients["vic"].tracing.search(filter=f"trace_id = '{trace_id}'")
            if found.traces:
                return found.traces[0].links.prompt_versions
            assert time.monotonic() < deadline, f"trace {trace_id} was never stored"
            time.sleep(0.05)

    def serve(self, version: str) -> None:
        """Wait until the gateway renders ``version`` (it follows the alias at each refresh)."""
        deadline = time.monotonic() + 20
        while self.version_of(self.chat("warm up")) != (version,):
            assert time.monotonic() < deadline, f"the gateway never served {version}"
            time.sleep(0.1)


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


def test_a_drifting_prompt_version_is_rolled_back_through_the_gateway(world: World) -> None:
    ed, boss = world.clients["ed"], world.clients["boss"]
    boss.prompts.create("support", policy=ApprovalPolicy(rules=()))  # a policy is an admin's
    ed.prompts.register("support", SHORT)
    ed.prompts.register("support", LONG)
    ed.prompts.set_alias("support", "production", 1)
    boss.gateway.create_route(  # so are routes
        "support-chat",
        {"targets": [{"name": "primary", "base_url": world.stub.base(), "model": "m",
                      "prompt": "prompts:/support@production"}]},
    )  # fmt: skip
    world.serve("support/1")
    start = now_ms()
    first = [world.chat(q) for q in QUESTIONS]
    assert {world.version_of(t) for t in first} == {("support/1",)}
    end = now_ms() + 1

    ed.prompts.set_alias("support", "production", 2)
    world.serve("support/2")
    second = [world.chat(q) for q in QUESTIONS]
    assert {world.version_of(t) for t in second} == {("support/2",)}

    ed.monitoring.create_trace_monitor(
        "support-quality",
        traces=TraceSelection(prompt="support@production"),
        scorers=['builtin:max_length:{"limit": 80}'],
        baseline=f"window:{start}/{end}",
        tests=["psi"],
        alerts=["score.max_length<0.5", "psi:output_chars>0.2"],
        actions=[AlertAction("rollback", on="score.max_length<0.5")],
    )
    done = ed.monitoring.run_trace_monitor("support-quality")
    assert done.run.status == "ok", done.run.error
    assert done.run.model_versions == ("prompts:/support/2",)
    assert done.run.rows == len(QUESTIONS) + 1  # with the warm-up request that saw version 2
    assert done.figures["score.max_length"] == 0.0
    assert done.figures["score.max_length.delta"] == -1.0  # version 1's answers all passed
    assert done.run.drift is not None and "output_chars" in done.run.drift.drifted_columns
    assert [(a.status, a.from_version, a.to_version) for a in done.actions] == [("applied", 2, 1)]
    # The gateway follows the alias: production traffic is rendered with version 1 again.
    world.serve("support/1")
    assert ed.prompts.get("support").aliases["production"] == 1
    rule = {a.rule for a in world.clients["vic"].monitoring.alerts(monitor="support-quality")}
    assert rule == {"score.max_length<0.5", "psi:output_chars>0.2"}
    # Each sampled trace holds the scorer's assessment, with the trace's gateway route.
    (assessment,) = world.clients["vic"].tracing.assessments(second[0])
    assert assessment.value is False and assessment.metadata["loopwright.monitor"] == (
        "support-quality"
    )
