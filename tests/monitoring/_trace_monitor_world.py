"""LLM traffic for the trace-monitor tests: traces recorded through the tracing service as the
gateway records them (one LLM span: messages in, text out, tokens, cost), a stub
OpenAI-compatible model on 127.0.0.1 (what re-evaluations call), and module-level scorers a
test registers by reference."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

import loopwright as lw
from loopwright.tracing.entities import Span, TraceLinks
from loopwright.tracing.service import TracingService

HOUR_MS = 3_600_000
T0 = 1_780_000_000_000  # a fixed moment (2026-05-28), windows are placed after it


def record_calls(
    tracing: TracingService,
    *,
    start_ms: int,
    answers: Sequence[str],
    latency_ms: int = 800,
    prompt_version: str = "support/2",
    route: str = "support-chat",
    cost_usd: float = 0.0004,
    step_ms: int = 1_000,
) -> list[str]:
    """One trace per answer, ``step_ms`` apart from ``start_ms``, linked to the prompt version
    and the gateway route."""
    spans = []
    for i, answer in enumerate(answers):
        begin = (start_ms + i * step_ms) * 1_000_000
        spans.append(
            Span(
                os.urandom(16).hex(),
                os.urandom(8).hex(),
                None,
                f"chat {route}",
                "LLM",
                begin,
                begin + (latency_ms + i % 7) * 1_000_000,
                attributes={
                    "gen_ai.operation.name": "chat",
                    "gen_ai.request.model": route,
                    "gen_ai.usage.input_tokens": 20 + i % 5,
                    "gen_ai.usage.output_tokens": max(1, len(answer.split())),
                    "lw.cost_usd": cost_usd,
                    "lw.inputs": [{"role": "user", "content": f"question {i}: capital of France?"}],
                    "lw.outputs": answer,
                },
            )
        )
    links = TraceLinks(prompt_versions=(prompt_version,), gateway_route=route)
    return tracing.record(spans, links=links)


GOOD = [f"Paris is the capital of France ({i})." for i in range(40)]
BAD = [
    "Well, it depends on how you look at it; many cities have claimed that role over the "
    f"centuries and the answer is not at all simple, variant {i}. " * 3
    for i in range(40)
]


@lw.scorer
def concise(*, outputs: Any) -> bool:
    """True when the answer is at most 60 characters."""
    return len(str(outputs)) <= 60


@lw.scorer
def picky(*, outputs: Any) -> float:
    """Fails on answers mentioning '(3)' (a scorer's own bug, per trace)."""
    if "(3)" in str(outputs):
        raise RuntimeError("cannot score answer 3")
    return 1.0


def stub_app(answer: str) -> Starlette:
    """Answers ``answer`` with ``{n}`` replaced by the call's number (0, 1, ...)."""
    calls = []

    async def chat(request: Request) -> JSONResponse:
        body = await request.json()
        calls.append(1)
        return JSONResponse(
            {
                "id": "stub-1",
                "object": "chat.completion",
                "model": body["model"],
                "choices": [
                    {
                        "index": 0,
                        "message": {
                            "role": "assistant",
                            "content": answer.replace("{n}", str(len(calls) - 1)),
                        },
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 20, "completion_tokens": 7, "total_tokens": 27},
            }
        )

    return Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"])])


@contextmanager
def serve_stub(answer: str) -> Iterator[str]:
    """A stub OpenAI-compatible model answering ``answer`` on 127.0.0.1; yields its /v1 URL."""
    import uvicorn

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    config = uvicorn.Config(stub_app(answer), host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="llm-monitor-stub", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the stub did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
