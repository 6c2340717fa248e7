"""Relaying one upstream SSE stream to the caller, event by event, checking and counting.

Each event is forwarded as it arrives, whole (a chunk may carry several or part of one), with
its line ends as LF whatever the upstream used (CRLF, CR); a last event the upstream did not
end with a blank line is forwarded at the end of the stream. The answer's new text (with the
last ``OVERLAP`` characters before it, for a match across chunks) is checked by the route's
incremental post-call guardrails at each event: a block replaces the event with an error
event and ``[DONE]``, and closes the upstream. At the end the other post-call checks run on the
whole text before ``[DONE]`` goes out; annotations go out as SSE comments, which clients
ignore. The usage chunk the gateway asked for is kept from a caller who did not ask for it.
When the relay ends (done, blocked, broken or the caller gone), the call's usage and trace are
queued.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from ._openai import chunk_text, error_body, usage_of
from .guardrails import INCREMENTAL, OVERLAP, PATTERN_CHECKS, Decision, run_check_async

if TYPE_CHECKING:
    import httpx

    from .proxy import Call, Gateway

__all__ = ["Relay", "estimate_tokens"]


class Relay:
    """Relays one upstream SSE stream to the caller, checking and counting as it goes."""

    def __init__(
        self, gateway: Gateway, call: Call, response: httpx.Response, text: str, config: Any,
        asked_usage: bool,
    ) -> None:  # fmt: skip
        self.gateway, self.call, self.response = gateway, call, response
        self.text, self.asked_usage = text, asked_usage
        self.post = [g for g in config.guardrails if g.stage == "post"]
        self.incremental = [g for g in self.post if g.check in INCREMENTAL]
        self.output: list[str] = []
        self.length = 0
        self.tail = ""  # the answer's last OVERLAP characters checked so far
        self.chunks = 0
        self.usage: tuple[int, int] | None = None
        self.decisions: dict[str, Decision] = {}
        self.status, self.error = 200, ""

    async def events(self) -> AsyncIterator[bytes]:
        buffer = b""
        done: bytes | None = None
        finished = False  # False at the end: the caller went away before the stream did
        try:
            async for raw in _normalised(self.response.aiter_raw()):
                if raw is None:  # the end: a last event without its blank line still counts
                    buffer = buffer.rstrip(b"\n") + b"\n\n" if buffer.strip() else b""
                else:
                    buffer += raw
                if len(buffer) > self.gateway.max_answer_bytes:
                    self.status = 502
                    self.error = (
                        f"the upstream sent an event over {self.gateway.max_answer_bytes} bytes"
                    )
                    finished = True
                    yield b"data: " + error_body(self.error, "upstream_error") + b"\n\n"
                    return
                out: list[bytes] = []
                while True:
                    end = buffer.find(b"\n\n")
                    if end < 0:
                        break
                    event, buffer = buffer[: end + 2], buffer[end + 2 :]
                    kept, stop = await self._event(event)
                    if stop == "done":
                        done = kept
                        continue
                    if kept:
                        out.append(kept)
                    if stop == "block":
                        finished = True
                        yield b"".join(out)
                        return
                if out:
                    yield b"".join(out)
            final = await self._final()
            if final:
                yield final
            if done is not None and self.status != 422:  # a block at the end sent its own
                yield done
            finished = True
        except Exception as exc:
            import httpx

            if not isinstance(exc, httpx.HTTPError):
                raise
            self.status, self.error = 502, f"the upstream stream broke: {type(exc).__name__}"
            finished = True
            yield b"data: " + error_body(self.error, "upstream_error") + b"\n\n"
        finally:
            if not finished and self.status == 200:
                self.status, self.error = 499, "the caller closed the stream before its end"
            self._close()
            # The caller may have gone away mid-stream, and the upstream with it.
            with contextlib.suppress(Exception):
                await self.response.aclose()

    async def _event(self, event: bytes) -> tuple[bytes, str | None]:
        """(bytes to send on, "block"/"done"/None) for one SSE event."""
        data = b"".join(
            line[5:].strip() for line in event.split(b"\n") if line.startswith(b"data:")
        )
        if not data:
            return event, None
        if data == b"[DONE]":
            return event, "done"
        try:
            chunk = json.loads(data)
        except (ValueError, RecursionError):
            return event, None
        if not isinstance(chunk, dict):
            return event, None
        if "error" in chunk:
            self.status, self.error = 502, "the upstream sent an error event"
        usage = usage_of(chunk)
        if usage is not None:
            self.usage = usage
        piece = chunk_text(chunk)
        if piece:
            self.output.append(piece)
            self.chunks += 1
            self.length += len(piece)
            recent, self.tail = self.tail + piece, (self.tail + piece)[-OVERLAP:]
            for spec in self.incremental:
                if spec.label in self.decisions:
                    continue  # decided (annotated) already: the first reason stands
                if spec.check in PATTERN_CHECKS:
                    seen = recent
                elif self._within(spec):
                    continue
                else:  # length or tokens: over the limit now, checked once on the whole
                    seen = "".join(self.output)
                decision = await run_check_async(spec, inputs=self.text, outputs=seen)
                if decision.action != "pass":
                    self.decisions.setdefault(spec.label, decision)
                if decision.blocked:
                    return self._blocked(decision), "block"
        if usage is not None and not chunk.get("choices") and not self.asked_usage:
            return b"", None  # the usage chunk the gateway asked for, not the caller
        return event, None

    def _within(self, spec: Any) -> bool:
        """Whether the answer so far is within a length or tokens check's limit."""
        if spec.check == "length":
            return bool(self.length <= spec.params["max_chars"])
        if spec.check == "tokens":
            return bool(estimate_tokens_of(self.length) <= spec.params["max_tokens"])
        return False

    def _blocked(self, decision: Decision) -> bytes:
        self.status = 422
        self.error = f"guardrail {decision.check!r} blocked the answer: {decision.reason}"
        return b"data: " + error_body(self.error, "guardrail_blocked") + b"\n\ndata: [DONE]\n\n"

    async def _final(self) -> bytes:
        """Checks on the whole answer (and notes of annotations) before ``[DONE]``."""
        whole = "".join(self.output)
        notes = []
        for spec in self.post:
            if spec.check in INCREMENTAL:
                if spec.label not in self.decisions:
                    self.decisions[spec.label] = Decision(spec.label, "post", "pass")
                continue
            decision = await run_check_async(spec, inputs=self.text, outputs=whole)
            self.decisions[spec.label] = decision
            if decision.blocked:
                return self._blocked(decision)
        for decision in self.decisions.values():
            if decision.action == "annotate":
                notes.append(f": guardrail {decision.check} annotate: {decision.reason}\n\n")
        return "".join(notes).encode() if notes else b""

    def _close(self) -> None:
        call, gateway = self.call, self.gateway
        estimated = self.usage is None
        usage = self.usage or (estimate_tokens(self.text), self.chunks)
        call.record.outputs = "".join(self.output)
        call.record.decisions = (*call.record.decisions, *self.decisions.values())
        gateway._account(call, self.status, usage, estimated)
        gateway._finish(call, self.status, self.error)


async def _normalised(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes | None]:
    """The stream's bytes with SSE's three line ends (CRLF, CR, LF) as LF, then None at its
    end. A CR ending a chunk is held until the next byte shows whether an LF follows."""
    held = b""
    async for raw in chunks:
        raw = held + raw
        held = b"\r" if raw.endswith(b"\r") else b""
        if held:
            raw = raw[:-1]
        if raw:
            yield raw.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    if held:
        yield b"\n"
    yield None


def estimate_tokens(text: str) -> int:
    """Tokens of ``text`` when no upstream counted them: characters / 4, OpenAI's rule of thumb."""
    return estimate_tokens_of(len(text))


def estimate_tokens_of(characters: int) -> int:
    """:func:`estimate_tokens` of a text of ``characters`` characters."""
    return -(-characters // 4)
