"""The quickstart's LLM part: a prompt goes to production the way a model does, then serves.

"ada" registers a support prompt whose ``production`` alias requires an evaluation gate and an
approver. She evaluates the version on a small evaluation dataset with a code scorer (the
answers come from a stub OpenAI-compatible model started here, in-process), checks the gate,
asks to move the alias, and "bob" approves. The prompt is then served through Loopwright's
gateway (the server's ``/v1/chat/completions``, also started here) from a route that follows
``@production``; every request is a trace linked to the prompt version it rendered. The last
line printed is one such trace's id, for ``loopwright lineage``.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx

import loopwright as lw
from loopwright.errors import AlreadyExists, NotFound
from loopwright.evaluation import PromptTarget
from loopwright.registry.entities import ApprovalPolicy, ApprovalRule

PROMPT, ROUTE, DATASET, GATE = "support-answer", "support", "support-questions", "support-quality"
QUESTIONS = ("Where is my order?", "How do I reset my password?", "Can I pay by card?")


@lw.scorer
def cites_the_question(*, inputs: dict[str, Any], outputs: Any) -> bool:
    """The answer must be about what was asked (the stub echoes what it was sent)."""
    return inputs["question"] in str(outputs)


def stub_model() -> Any:
    """A stand-in for a vLLM/TGI server: it answers ``You said: <last message>``."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def chat(request: Request) -> JSONResponse:
        body = await request.json()
        said = str(body["messages"][-1]["content"])
        words = sum(len(str(m["content"]).split()) for m in body["messages"])
        return JSONResponse({
            "id": "stub", "object": "chat.completion", "model": body["model"],
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": f"You said: {said}"}}],
            "usage": {"prompt_tokens": words, "completion_tokens": len(said.split()) + 2,
                      "total_tokens": words + len(said.split()) + 2},
        })  # fmt: skip

    return Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"])])


@contextlib.contextmanager
def serving(app: Any) -> Iterator[str]:
    """``app`` under uvicorn on a free 127.0.0.1 port, in a thread, until the block ends."""
    import uvicorn

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            sys.exit("an in-process server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@contextlib.contextmanager
def gateway() -> Iterator[str]:
    """The server whose gateway serves the route: the team server this quickstart talks to
    (``LOOPWRIGHT_SERVER_URI``), else one started here over the local store."""
    team_server = os.environ.get("LOOPWRIGHT_SERVER_URI")
    if team_server:
        yield team_server.rstrip("/")
        return
    from loopwright.config import resolve_settings
    from loopwright.server.app import create_app

    with serving(create_app(resolve_settings(), auth=False)) as url:
        yield url


def stored_trace(client: lw.Client, trace_id: str) -> Any:
    """The trace once stored: a server started here stored it before it stopped; a team
    server's gateway writes its traces in batches, a moment after answering."""
    deadline = time.monotonic() + 30
    while True:
        try:
            return client.tracing.get(trace_id, spans=False)
        except NotFound:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def main() -> str:
    ada, bob = lw.connect(user="ada"), lw.connect(user="bob")
    policy = ApprovalPolicy((ApprovalRule("alias:production", 1, "approver", gate=GATE),))
    with contextlib.suppress(AlreadyExists):  # a second quickstart in the same home
        ada.prompts.create(PROMPT, description="Answers a support question.", policy=policy)
    version = ada.prompts.register(
        PROMPT,
        [{"role": "system", "content": "You answer support questions in one sentence."},
         {"role": "user", "content": "{{ question }}"}],
        model_config={"temperature": 0.2, "max_tokens": 80},
        commit_message="first support prompt",
    )  # fmt: skip
    print(f"registered prompt {version.uri} (variables {', '.join(version.variables)})")
    with contextlib.suppress(AlreadyExists):
        ada.evaluation.create_dataset(DATASET)
    ada.evaluation.upsert_records(DATASET, [{"inputs": {"question": q}} for q in QUESTIONS])
    dataset = ada.evaluation.get_dataset(DATASET)
    with serving(stub_model()) as model_url:
        target = PromptTarget(version, endpoint=f"{model_url}/v1", model="stub")
        evaluated = ada.evaluation.evaluate(target, DATASET, [cites_the_question])
        share = evaluated.aggregates["cites_the_question/mean"]
        digest = str(evaluated.dataset_digest)[:16]
        print(f"evaluated {version.uri} on {dataset.ref} (content hash {digest}...): "
              f"cites_the_question {share:.0%}")  # fmt: skip
        spec = {"name": GATE, "kind": "evaluation", "dataset": DATASET,
                "rules": ["evaluation.cites_the_question/mean >= 0.9",
                          "evaluation.failed_rows <= 0"]}  # fmt: skip
        result = ada.gates.check_evaluation(spec, version.uri, evaluated.run_id)
        print(f"gate {GATE}: {'passed' if result.passed else 'failed: ' + result.reason}")
        change = ada.prompts.set_alias(PROMPT, "production", version.version)
        if change.request is not None:  # production is protected: the gate passed, ask bob
            bob.prompts.approve(change.request.id, comment="Evaluation gate passed.")
            print(f"bob approved: {PROMPT}@production -> v{version.version}")
        with gateway() as server_url:
            primary = {"name": "primary", "base_url": f"{model_url}/v1", "model": "stub",
                       "prompt": f"prompts:/{PROMPT}@production"}  # fmt: skip
            route = {"targets": [primary]}
            if ROUTE in {r.name for r in ada.gateway.list_routes()}:  # a second quickstart
                ada.gateway.update_route(ROUTE, route)  # the stub's port changed
            else:
                ada.gateway.create_route(ROUTE, route)
            trace_id = ""
            for question in QUESTIONS:
                answer = httpx.post(
                    f"{server_url}/v1/chat/completions",
                    json={"model": ROUTE, "prompt_variables": {"question": question}},
                    timeout=30,
                )
                answer.raise_for_status()
                trace_id = answer.headers["x-loopwright-trace-id"]
                said = answer.json()["choices"][0]["message"]["content"]
                print(f"gateway route {ROUTE} answered {said!r} (trace {trace_id[:12]}...)")
    trace = stored_trace(ada, trace_id)
    versions = ", ".join(trace.links.prompt_versions)
    print(f"trace {trace_id[:12]}... links prompt version {versions} "
          f"and route {trace.links.gateway_route}")  # fmt: skip
    ada.close()
    bob.close()
    return trace_id


if __name__ == "__main__":
    print(main())
