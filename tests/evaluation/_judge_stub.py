"""A judge model stub: an OpenAI-compatible ``/v1/chat/completions`` on 127.0.0.1 whose answer
is computed from the prompt by a function the test sets (``stub.decide``), so each row's verdict
(or an unreadable one) is scripted."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

__all__ = ["JudgeStub", "run_judge_stub", "serve_in_thread"]


@dataclass
class JudgeStub:
    url: str = ""
    decide: Callable[[str], str] = lambda prompt: '{"score": 3, "rationale": "default"}'
    prompts: list[str] = field(default_factory=list)
    models: list[str] = field(default_factory=list)

    @property
    def base(self) -> str:
        return f"{self.url}/v1"


def _app(stub: JudgeStub) -> Starlette:
    async def chat(request: Request) -> JSONResponse:
        body = await request.json()
        prompt = body["messages"][-1]["content"]
        stub.prompts.append(prompt)
        stub.models.append(body["model"])
        answer = stub.decide(prompt)
        return JSONResponse(
            {
                "id": "judge-1",
                "object": "chat.completion",
                "model": body["model"],
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": answer},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
            }
        )

    return Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"])])


@contextmanager
def serve_in_thread(app: Any) -> Iterator[str]:
    """Serve an ASGI app with uvicorn on a free 127.0.0.1 port until the block ends."""
    import uvicorn

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="eval-test-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@contextmanager
def run_judge_stub() -> Iterator[JudgeStub]:
    stub = JudgeStub()
    with serve_in_thread(_app(stub)) as url:
        stub.url = url
        yield stub
