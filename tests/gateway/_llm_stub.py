"""A stub OpenAI-compatible upstream on 127.0.0.1 for the gateway's tests and its benchmark.

Several upstreams share one server: ``/<name>/v1/...`` is upstream ``name`` (``/v1/...`` is
``default``), each with its own request count and failure script, so a test can point a route's
primary at one name and its fallback at another.

Answers are deterministic: a chat or completion answers ``"You said: <last input>"``; prompt
tokens are the words of every input text, completion tokens the words of the answer (split on
whitespace), so a test knows the usage to expect. Streams send one SSE chunk per word and, when
``stream_options.include_usage`` is set, a final chunk with ``usage`` and no choices (OpenAI's
shape), unless the upstream is told to leave it out.

Example:
    >>> with run_stub() as stub:
    ...     import httpx
    ...     httpx.post(stub.url + "/v1/chat/completions", json={"model": "m", "messages": [
    ...         {"role": "user", "content": "hi there"}]}).json()["usage"]
    {'prompt_tokens': 2, 'completion_tokens': 4, 'total_tokens': 6}
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections import Counter, defaultdict, deque
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

__all__ = ["Stub", "answer_of", "run_stub", "words"]

CREATED = 1_700_000_000


def words(text: str) -> int:
    """The stub's token count of ``text``: its whitespace-separated words."""
    return len(text.split())


def answer_of(prompt: str) -> str:
    """What the stub answers to ``prompt``."""
    return f"You said: {prompt}".strip()


@dataclass
class Stub:
    """The running stub: its URL and the switches tests turn.

    ``script[name]`` is a queue of statuses the next requests to upstream ``name`` answer
    (429, 500, or 0 for "hang past any timeout"); ``always[name]`` answers every request so;
    ``no_usage`` names upstreams whose streams leave out the usage chunk; ``replies[name]``
    overrides the answer text.
    """

    url: str = ""
    calls: Counter[str] = field(default_factory=Counter)
    bodies: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    headers: dict[str, list[dict[str, str]]] = field(default_factory=lambda: defaultdict(list))
    script: dict[str, deque[int]] = field(default_factory=lambda: defaultdict(deque))
    always: dict[str, int] = field(default_factory=dict)
    no_usage: set[str] = field(default_factory=set)
    replies: dict[str, str] = field(default_factory=dict)
    hang_s: float = 2.0
    pace_s: float = 0.0  # seconds between streamed chunks
    keep: bool = False  # keep bodies and headers (tests); the benchmark leaves it off

    def base(self, name: str = "default") -> str:
        """The base URL (…/v1) of upstream ``name``."""
        return f"{self.url}/v1" if name == "default" else f"{self.url}/{name}/v1"

    def reset(self) -> None:
        for part in (self.calls, self.bodies, self.headers, self.script, self.always):
            part.clear()
        self.pace_s, self.hang_s = 0.0, 2.0
        self.no_usage.clear()
        self.replies.clear()


def _prompt_text(body: dict[str, Any]) -> tuple[str, str]:
    """(every input text joined, the last one) of a chat or completion request."""
    if "messages" in body:
        texts = []
        for message in body["messages"]:
            content = message.get("content")
            if isinstance(content, list):
                content = " ".join(p.get("text", "") for p in content if isinstance(p, dict))
            texts.append(str(content or ""))
        return " ".join(texts), texts[-1] if texts else ""
    prompt = body.get("prompt", "")
    prompt = " ".join(prompt) if isinstance(prompt, list) else str(prompt)
    return prompt, prompt


def _usage(prompt: int, completion: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def _app(stub: Stub) -> Starlette:
    async def failure(name: str) -> Response | None:
        queued = stub.script.get(name)
        status = queued.popleft() if queued else stub.always.get(name)
        if status is None:
            return None
        if status == 0:
            await asyncio.sleep(stub.hang_s)
            status = 504
        error = {"error": {"message": f"stub upstream {name} answers {status}", "type": "stub"}}
        headers = {"Retry-After": "0"} if status == 429 else None
        return JSONResponse(error, status_code=status, headers=headers)

    async def prepare(request: Request) -> tuple[str, dict[str, Any], Response | None]:
        name = request.path_params.get("name", "default")
        stub.calls[name] += 1
        body = json.loads(await request.body())
        if stub.keep:
            stub.bodies[name].append(body)
            stub.headers[name].append(dict(request.headers))
        return name, body, await failure(name)

    async def chat(request: Request) -> Response:
        name, body, failed = await prepare(request)
        if failed is not None:
            return failed
        everything, last = _prompt_text(body)
        answer = stub.replies.get(name, answer_of(last))
        usage = _usage(words(everything), words(answer))
        model = body.get("model", "stub")
        chat_kind = request.url.path.endswith("/chat/completions")
        if body.get("stream"):
            include = bool((body.get("stream_options") or {}).get("include_usage"))
            include = include and name not in stub.no_usage
            return StreamingResponse(
                _chunks(answer, model, usage if include else None, chat_kind, stub.pace_s),
                media_type="text/event-stream",
            )
        if chat_kind:
            choice: dict[str, Any] = {
                "index": 0,
                "message": {"role": "assistant", "content": answer},
                "finish_reason": "stop",
            }
            kind = "chat.completion"
        else:
            choice = {"index": 0, "text": answer, "finish_reason": "stop", "logprobs": None}
            kind = "text_completion"
        return JSONResponse(
            {
                "id": "stub-1",
                "object": kind,
                "created": CREATED,
                "model": model,
                "choices": [choice],
                "usage": usage,
            }
        )

    async def embeddings(request: Request) -> Response:
        _name, body, failed = await prepare(request)
        if failed is not None:
            return failed
        items = body.get("input", "")
        items = items if isinstance(items, list) else [items]
        data = [
            {"object": "embedding", "index": i, "embedding": [float(len(str(t))), 1.0, 0.5]}
            for i, t in enumerate(items)
        ]
        tokens = sum(words(str(t)) for t in items)
        return JSONResponse(
            {
                "object": "list",
                "data": data,
                "model": body.get("model", "stub"),
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            }
        )

    async def models(request: Request) -> Response:
        name = request.path_params.get("name", "default")
        stub.calls[name] += 1
        return JSONResponse(
            {
                "object": "list",
                "data": [
                    {"id": "stub-model", "object": "model", "created": CREATED, "owned_by": "stub"}
                ],
            }
        )

    routes = []
    for prefix in ("", "/{name}"):
        routes += [
            Route(prefix + "/v1/chat/completions", chat, methods=["POST"]),
            Route(prefix + "/v1/completions", chat, methods=["POST"]),
            Route(prefix + "/v1/embeddings", embeddings, methods=["POST"]),
            Route(prefix + "/v1/models", models, methods=["GET"]),
        ]
    return Starlette(routes=routes)


async def _chunks(
    answer: str, model: str, usage: dict[str, int] | None, chat_kind: bool, pace_s: float
) -> AsyncIterator[bytes]:
    pieces = answer.split(" ")
    for i, piece in enumerate(pieces):
        if pace_s and i:
            await asyncio.sleep(pace_s)
        text = piece if i == 0 else " " + piece
        last = i == len(pieces) - 1
        if chat_kind:
            delta: dict[str, Any] = {"content": text}
            if i == 0:
                delta["role"] = "assistant"
            choice: dict[str, Any] = {
                "index": 0,
                "delta": delta,
                "finish_reason": "stop" if last else None,
            }
            kind = "chat.completion.chunk"
        else:
            choice = {"index": 0, "text": text, "finish_reason": "stop" if last else None}
            kind = "text_completion"
        chunk = {
            "id": "stub-1",
            "object": kind,
            "created": CREATED,
            "model": model,
            "choices": [choice],
        }
        yield f"data: {json.dumps(chunk)}\n\n".encode()
    if usage is not None:
        final = {
            "id": "stub-1",
            "object": "chat.completion.chunk",
            "created": CREATED,
            "model": model,
            "choices": [],
            "usage": usage,
        }
        yield f"data: {json.dumps(final)}\n\n".encode()
    yield b"data: [DONE]\n\n"


@contextmanager
def run_stub(*, keep: bool = True) -> Iterator[Stub]:
    """A stub upstream served by uvicorn in a background thread until the block ends."""
    import uvicorn

    stub = Stub(keep=keep)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    config = uvicorn.Config(
        _app(stub),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="off",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="llm-stub", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the stub did not start"
        time.sleep(0.01)
    stub.url = f"http://127.0.0.1:{port}"
    try:
        yield stub
    finally:
        server.should_exit = True
        thread.join(timeout=10)
