"""The LLMOps part of the dashboard tests' world (imported by bare name): something on each
LLM page, built through the embedded client as a user would.

- prompt ``support``: version 1 (text) and 2 (chat), ``staging`` -> v1, and a pending request
  (by ``eve``) to point the protected ``production`` alias at v2;
- a trace of three spans linked to ``support/2`` and gateway route ``chat``, with a human
  assessment;
- gateway route ``chat`` (a canary split, a fallback, a guardrail) with two usage rows;
- evaluation dataset ``qa-eval``, an evaluation run ``exact-match`` over it, and a judge
  ``polite`` with a measured agreement.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import loopwright as lw
from loopwright._ids import new_id
from loopwright.config import Settings
from loopwright.evaluation.judges import Judge
from loopwright.registry.entities import ApprovalPolicy, ApprovalRule
from loopwright.store import schema as t
from loopwright.tracing.entities import Span, TraceLinks

PROMPT, ROUTE, EVAL_DATASET = "support", "chat", "qa-eval"
TRACE_ID = "f" * 31 + "1"
UPSTREAM = "http://127.0.0.1:9/v1"  # never called: nothing is sent through the gateway here


@dataclass(frozen=True)
class LlmWorld:
    trace_id: str
    prompt_request_id: str
    evaluation_run_id: str


def _spans() -> list[Span]:
    start, ms = time.time_ns(), 1_000_000
    root, llm, tool = "1" * 16, "2" * 16, "3" * 16
    return [
        Span(TRACE_ID, root, None, "answer", "CHAIN", start, start + 80 * ms,
             attributes={"lw.inputs": {"question": "Where is my order?"},
                         "lw.outputs": "It ships tomorrow."}),
        Span(TRACE_ID, llm, root, "chat", "LLM", start + 5 * ms, start + 70 * ms,
             attributes={"gen_ai.usage.input_tokens": 21, "gen_ai.usage.output_tokens": 9,
                         "lw.cost_usd": 0.0004, "gen_ai.request.model": "small"}),
        Span(TRACE_ID, tool, llm, "orders.lookup", "TOOL", start + 10 * ms, start + 30 * ms),
    ]  # fmt: skip


def seed_llm(settings: Settings) -> LlmWorld:
    def client(user: str) -> lw.Client:
        return lw.connect(settings.db_uri, home=settings.home, user=user)

    with client("eve") as eve, client("ada") as ada:
        eve.prompts.register(PROMPT, "Answer {{ question }} briefly.", commit_message="first")
        eve.prompts.register(
            PROMPT,
            [{"role": "system", "content": "You answer customers' questions."},
             {"role": "user", "content": "{{ question }}"}],
            commit_message="as chat",
            model_config={"temperature": 0.1},
        )  # fmt: skip
        ada.prompts.set_policy(PROMPT, ApprovalPolicy((ApprovalRule("alias:production"),)))
        eve.prompts.set_alias(PROMPT, "staging", 1)
        request = eve.prompts.set_alias(PROMPT, "production", 2).request
        assert request is not None, "production is not protected"

        links = TraceLinks(prompt_versions=(f"{PROMPT}/2",), gateway_route=ROUTE)
        experiment = eve.tracking.create_experiment("support-bot").id
        eve.tracing.record(_spans(), experiment_id=experiment, links=links)
        eve.tracing.log_assessment(TRACE_ID, "helpful", True, source_type="HUMAN", source_id="vic")

        target = {"base_url": UPSTREAM, "price": {"input_per_1m": 0.5, "output_per_1m": 1.5}}
        eve.gateway.create_route(
            ROUTE,
            {
                "targets": [{"name": "primary", "model": "small", **target},
                            {"name": "canary", "model": "large", "weight": 0.1, **target}],
                "fallbacks": [{"name": "backup", "model": "tiny", "base_url": UPSTREAM}],
                "guardrails": [{"check": "length", "stage": "post", "mode": "annotate",
                                "params": {"max_chars": 2000}}],
            },
        )  # fmt: skip
        now = int(time.time() * 1000)
        rows = [
            {"id": new_id(), "route": ROUTE, "target": target_name, "user_name": "eve",
             "endpoint": "chat", "status": 200, "prompt_tokens": 21, "completion_tokens": 9,
             "estimated": False, "cost_usd": 0.0004, "latency_ms": 4.0, "stream": False,
             "trace_id": TRACE_ID, "created_at": now - minutes * 60_000}
            for minutes, target_name in ((2, "primary"), (50, "canary"))
        ]  # fmt: skip
        with eve.store.db.write() as conn:
            conn.execute(t.gateway_usage.insert(), rows)

        eve.evaluation.create_dataset(EVAL_DATASET)
        eve.evaluation.upsert_records(
            EVAL_DATASET,
            [{"inputs": {"question": f"q{i}"}, "outputs": f"a{i}",
              "expectations": {"answer": f"a{i}"}} for i in range(5)],
        )  # fmt: skip

        @lw.scorer
        def exact(*, inputs: Any, outputs: Any, expectations: Any, trace: Any) -> bool:
            return bool(outputs == expectations.get("answer"))

        result = eve.evaluation.evaluate(None, EVAL_DATASET, [exact], name="exact-match")
        judge = eve.evaluation.register_scorer(
            Judge("polite", rubric="Is {outputs} polite?", model="judge-small",
                  endpoint=UPSTREAM, output="bool")
        )  # fmt: skip
        version = eve.evaluation.get_dataset(EVAL_DATASET).version_id
        assert version is not None
        eve.evaluation.record_agreement(
            judge.id, version, "polite", {"accuracy": 0.8, "cohen_kappa": 0.6, "n": 5}
        )
    return LlmWorld(TRACE_ID, request.id, result.run_id)
