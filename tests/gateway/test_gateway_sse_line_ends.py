"""SSE from upstreams that end lines with CRLF (or CR), or end their last event without a
blank line (review R2): every event reaches the caller and the upstream's usage is counted,
not estimated. The upstream is a real server on 127.0.0.1 sending the bytes split at awkward
places (a CR at the end of one read, its LF at the start of the next)."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.routing import Route

from loopwright.config import resolve_settings
from loopwright.gateway._relay import _normalised
from loopwright.gateway._usage import UsageWriter
from loopwright.gateway.entities import UsageRecord
from loopwright.gateway.proxy import Gateway
from loopwright.gateway.service import GatewayService
from loopwright.store.home import open_store

WORDS = ["Paris", "is", "the", "capital."]


def _events(line_end: bytes, *, last_blank: bool) -> list[bytes]:
    """OpenAI-shaped chunk events, then usage, then [DONE], with ``line_end`` line ends."""
    chunks: list[dict[str, object]] = [
        {"choices": [{"index": 0, "delta": {"content": w + " "}}]} for w in WORDS
    ]
    chunks.append({"choices": [], "usage": {"prompt_tokens": 11, "completion_tokens": 4}})
    events = [b"data: " + json.dumps(c).encode() + line_end + line_end for c in chunks]
    events.append(b"data: [DONE]" + (line_end * 2 if last_blank else b""))
    return events


def _pieces(events: list[bytes]) -> list[bytes]:
    """The events as reads cut inside events and between a CR and its LF."""
    whole = b"".join(events)
    cuts = sorted({i + 1 for i, b in enumerate(whole) if b == ord("\r")} | {7, 40, 41})
    pieces, start = [], 0
    for cut in cuts:
        pieces.append(whole[start:cut])
        start = cut
    return [p for p in (*pieces, whole[start:]) if p]


@contextmanager
def _upstream(line_end: bytes, *, last_blank: bool) -> Iterator[str]:
    import uvicorn

    async def chat(request: Request) -> StreamingResponse:
        async def send() -> AsyncIterator[bytes]:
            for piece in _pieces(_events(line_end, last_blank=last_blank)):
                yield piece
                await asyncio.sleep(0.002)  # separate reads, most of the time

        return StreamingResponse(send(), media_type="text/event-stream")

    app = Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"])])
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        server.should_exit = True
        thread.join(10)


async def _relay(store_home: Path, base_url: str) -> tuple[bytes, list[UsageRecord]]:
    records: list[UsageRecord] = []
    with open_store(resolve_settings(home=store_home, user="ada")) as store:
        service = GatewayService(store)
        service.create_route(
            "chat", {"targets": [{"name": "primary", "base_url": base_url, "model": "m"}]}
        )
        gateway = Gateway(service)
        gateway.usage.close()
        gateway.usage = UsageWriter(records.extend, interval=0.01)
        body = {"model": "chat", "stream": True, "stream_options": {"include_usage": True},
                "messages": [{"role": "user", "content": "capital of France?"}]}  # fmt: skip
        reply = await gateway.handle(
            "chat", json.dumps(body).encode(), user="ada", role="editor", headers={}
        )
        assert reply.status == 200 and reply.stream is not None, reply.body
        relayed = b"".join([piece async for piece in reply.stream])
        gateway.flush(5)
        await gateway.aclose()
    return relayed, records


@pytest.mark.parametrize(
    ("line_end", "last_blank"),
    [(b"\r\n", True), (b"\r\n", False), (b"\r", True), (b"\n", False)],
    ids=["crlf", "crlf-no-final-blank", "cr", "lf-no-final-blank"],
)
def test_every_event_reaches_the_caller_and_usage_is_the_upstreams(
    tmp_path: Path, line_end: bytes, last_blank: bool
) -> None:
    with _upstream(line_end, last_blank=last_blank) as base_url:
        relayed, records = asyncio.run(_relay(tmp_path / "home", base_url))
    assert b"\r" not in relayed
    events = [e for e in relayed.split(b"\n\n") if e]
    data = [e.removeprefix(b"data: ") for e in events]
    assert data[-1] == b"[DONE]"
    chunks = [json.loads(d) for d in data[:-1]]
    text = "".join(c["choices"][0]["delta"]["content"] for c in chunks if c["choices"])
    assert text == "".join(w + " " for w in WORDS)
    assert chunks[-1]["usage"]["prompt_tokens"] == 11  # the caller asked for it
    [record] = records
    assert record.status == 200 and not record.estimated
    assert (record.prompt_tokens, record.completion_tokens) == (11, 4)


async def _collect(pieces: Sequence[bytes]) -> list[bytes | None]:
    async def source() -> AsyncIterator[bytes]:
        for piece in pieces:
            yield piece

    return [out async for out in _normalised(source())]


def test_line_ends_normalised_across_reads() -> None:
    assert asyncio.run(_collect([b"a\r", b"\nb\r", b"\r", b"c\r"])) == [
        b"a",
        b"\nb",
        b"\n",
        b"\nc",
        b"\n",
        None,
    ]
    assert asyncio.run(_collect([b"\r"])) == [b"\n", None]  # a lone CR at the very end
    assert asyncio.run(_collect([])) == [None]
