"""The gateway's data plane: one OpenAI-compatible request in, an upstream's answer out.

:class:`Gateway` is what a server process holds (``server/gateway_routes.py`` serves it). Per
request, with no database I/O on the way: the route from a cache refreshed every
``refresh_s`` seconds (off the event loop), the caller's limits from in-memory counters, the
pre-call guardrails, a live target by the route's split, then the upstream call through one
keep-alive ``httpx.AsyncClient`` per upstream origin, with retries (429, 5xx, connect errors,
timeouts; exponential backoff, an upstream's short ``Retry-After`` honoured) and the fallbacks in
order. A stream is relayed event by event as it arrives; the answer's text is checked by the
post-call guardrails at each event and at the end. Usage goes to a batched writer, the trace to
tracing's exporter; both are queued, never awaited.

Streamed usage comes from the upstream's final usage chunk: the gateway asks for it
(``stream_options.include_usage``) and passes it on only to callers who asked too. An upstream
that sends none has its tokens estimated (prompt: characters / 4; completion: the text chunks
streamed) and the usage row says so (``estimated``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import anyio

from .._ids import new_id, now_ms
from ..errors import InvalidInput
from ..governance.users import role_at_least
from ._openai import answer_text, error_body, request_text, usage_of
from ._quota import Quota
from ._relay import Relay, estimate_tokens
from ._split import Split
from ._tracing import CallRecord, new_trace_id, trace_call
from ._usage import UsageStats, UsageWriter
from .entities import GatewayRoute, Target, UsageRecord
from .guardrails import Decision, run_check_async
from .prompt_targets import PromptUnavailable, bind, resolve_prompts, variables_text

if TYPE_CHECKING:
    import httpx

    from ..tracing.exporter import ExporterStats, TraceExporter
    from .service import GatewayService

__all__ = ["Gateway", "Reply"]

_logger = logging.getLogger("loopwright.gateway")
MAX_RETRY_WAIT_S = 2.0  # a longer Retry-After moves on to the next target instead of waiting
_PATHS = {"chat": "/chat/completions", "completions": "/completions", "embeddings": "/embeddings"}
_HOP_HEADERS = ("content-type", "x-request-id", "openai-processing-ms")
_SEED_FLUSH_S = 2.0  # the longest a first request of the day waits for queued usage rows


@dataclass
class Reply:
    """An answer for the server to send: a whole body, or ``stream`` (SSE) after the headers."""

    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    stream: AsyncIterator[bytes] | None = None
    media_type: str = "application/json"


@dataclass
class _Cached:
    route: GatewayRoute
    split: Split


@dataclass
class Call:
    """One request on its way through (what its usage row and trace record)."""

    route: str
    endpoint: str
    user: str
    stream: bool
    record: CallRecord
    started: float
    target: Target | None = None


def _refusal(status: int, message: str, kind: str, headers: dict[str, str] | None = None) -> Reply:
    return Reply(status, error_body(message, kind), headers or {})


class Gateway:
    """Routes, limits, guardrails, upstream calls, usage and traces of one server process.

    Args:
        service: the control plane (routes and secrets are read through it, usage written).
        exporter: where traces go (None: not traced).
        refresh_s: how stale the route cache may get (changes made through this process's
            API apply at once: :meth:`invalidate`).
        transport: an httpx transport for every upstream client (tests).
        max_answer_bytes: the largest upstream answer read (a larger one is a 502; a stream's
            single event too): the server passes its ``max_request_bytes``.
    """

    def __init__(
        self,
        service: GatewayService,
        *,
        exporter: TraceExporter | None = None,
        refresh_s: float = 2.0,
        usage_interval: float = 0.5,
        uniform: Callable[[], float] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        max_answer_bytes: int = 32 << 20,
    ) -> None:
        self._service = service
        self._exporter = exporter
        self._refresh_s = refresh_s
        self._uniform = uniform
        self._transport = transport
        self.max_answer_bytes = max_answer_bytes
        self._routes: dict[str, _Cached] = {}
        self._secrets: dict[str, str] = {}
        self._prompts: dict[str, Any] = {}  # prompt URI -> version, or why not (prompt_targets)
        self._loaded_at = float("-inf")
        self._reload_lock: asyncio.Lock | None = None
        self._clients: dict[str, httpx.AsyncClient] = {}
        self.quota = Quota()
        self.usage = UsageWriter(service._record_usage, interval=usage_interval)

    # --- the route cache ---------------------------------------------------------------------

    def invalidate(self) -> None:
        """Read routes and secrets again before the next request."""
        self._loaded_at = float("-inf")

    async def _fresh(self) -> dict[str, _Cached]:
        if time.monotonic() - self._loaded_at < self._refresh_s:
            return self._routes
        if self._reload_lock is None:
            self._reload_lock = asyncio.Lock()
        async with self._reload_lock:
            if time.monotonic() - self._loaded_at >= self._refresh_s:
                routes, secrets = await anyio.to_thread.run_sync(self._service._routes_and_secrets)
                old = self._routes
                self._routes = {
                    name: old[name]
                    if name in old and old[name].route.revision == route.revision
                    and old[name].route.updated_at == route.updated_at
                    else _Cached(route, Split(name, route.config, uniform=self._uniform))
                    for name, route in routes.items()
                }  # fmt: skip
                self._secrets = secrets
                # Prompt versions and aliases are followed at each refresh, route changed or not.
                self._prompts = await anyio.to_thread.run_sync(
                    resolve_prompts, self._service.store, routes.values()
                )
                self._loaded_at = time.monotonic()
        return self._routes

    async def models(self, role: str) -> list[GatewayRoute]:
        """The routes a caller with ``role`` may call (``GET /v1/models``)."""
        routes = await self._fresh()
        return [c.route for c in routes.values() if role_at_least(role, c.route.config.min_role)]

    # --- a request -----------------------------------------------------------------------------

    async def handle(
        self, endpoint: str, raw: bytes, *, user: str, role: str, headers: Mapping[str, str]
    ) -> Reply:
        """Answer one ``POST /v1/{chat/completions,completions,embeddings}`` body."""
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            return _refusal(400, f"the request body is not JSON: {exc}", "invalid_request_error")
        except RecursionError:
            return _refusal(400, "the request body nests too deeply", "invalid_request_error")
        if not isinstance(body, dict):
            return _refusal(400, "the request body must be a JSON object", "invalid_request_error")
        name = body.get("model")
        if not isinstance(name, str) or not name:
            return _refusal(
                400, "'model' must name a gateway route (GET /v1/models lists them)",
                "invalid_request_error",
            )  # fmt: skip
        stream = body.get("stream", False)
        if not isinstance(stream, bool) or (stream and endpoint == "embeddings"):
            return _refusal(400, "'stream' must be true or false (embeddings do not stream)",
                            "invalid_request_error")  # fmt: skip
        routes = await self._fresh()
        cached = routes.get(name)
        if cached is None:
            known = ", ".join(sorted(routes)[:20]) or "none"
            return Reply(
                404,
                error_body(
                    f"gateway route {name!r} does not exist; routes: {known}",
                    "not_found_error",
                    "model_not_found",
                ),
            )
        config = cached.route.config
        if not role_at_least(role, config.min_role):
            return _refusal(
                403, f"user {user!r} is {role}; gateway route {name!r} needs the "
                f"{config.min_role} role", "permission_error",
            )  # fmt: skip
        limits = config.limits
        ticket = self.quota.needs_seed(name, user, limits)
        if ticket is not None:
            if ticket.charged_before:  # so the rows of those charges are in the sum
                await anyio.to_thread.run_sync(self.usage.flush, _SEED_FLUSH_S)
            tokens, usd = await anyio.to_thread.run_sync(
                self._service._day_totals, name, user, ticket.day_start_ms, ticket.at_ms
            )
            self.quota.seed(name, user, ticket, tokens, usd)
        trace_id = new_trace_id()
        text = request_text(endpoint, body) + variables_text(body)
        call = Call(
            name, endpoint, user, stream,
            CallRecord(trace_id, name, endpoint, user, time.time_ns(), 0, 0, stream,
                       inputs=body.get("messages", body.get("prompt", body.get("input")))),
            time.perf_counter(),
        )  # fmt: skip
        refused = self.quota.admit(name, user, limits)
        if refused is not None:
            # Counted as usage (status 429, no tokens): throttled callers show in the sums.
            wait = max(1, int(refused.retry_after + 0.999))
            message = f"{refused.reason} for user {user!r} on route {name!r}; retry in {wait} s"
            reply = self._finish_refused(call, 429, message, "rate_limit_error")
            reply.headers["Retry-After"] = str(wait)
            return reply
        decisions: list[Decision] = []
        for spec in config.guardrails:
            if spec.stage == "pre":
                decision = await run_check_async(spec, inputs=text)
                decisions.append(decision)
                if decision.blocked:
                    call.record.decisions = tuple(decisions)
                    message = f"guardrail {decision.check!r} blocked the request: {decision.reason}"
                    return self._finish_refused(call, 400, message, "guardrail_blocked")
        call.record.decisions = tuple(decisions)
        target = cached.split.choose(headers)
        candidates = [target, *config.fallbacks]
        asked_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        if stream:
            body = {**body, "stream_options": {**(body.get("stream_options") or {}),
                                               "include_usage": True}}  # fmt: skip
        return await self._call(call, cached, candidates, body, text, asked_usage, headers)

    async def _call(
        self, call: Call, cached: _Cached, candidates: list[Target], body: dict[str, Any],
        text: str, asked_usage: bool, headers: Mapping[str, str],
    ) -> Reply:  # fmt: skip
        import httpx

        config = cached.route.config
        status, message, kind = 502, "no upstream answered", "upstream_error"
        wait: float | None = None
        for target in candidates:
            call.target = target
            try:
                sent, call.record.prompt_version = await _bound(
                    call.endpoint, body, target, self._prompts
                )
            except PromptUnavailable as exc:
                status, message, kind = 502, str(exc), "upstream_error"
                continue  # the route's fallbacks answer instead
            except InvalidInput as exc:
                return self._finish_refused(call, 400, str(exc), "invalid_request_error")
            payload = json.dumps({**sent, "model": target.model}).encode()
            for attempt in range(config.retries + 1):
                call.record.attempts += 1
                try:
                    response = await self._send(target, call.endpoint, payload, call.stream)
                except httpx.TimeoutException:
                    status = 504
                    message = f"upstream {target.name!r} timed out after {target.timeout_s} s"
                    kind, wait = "upstream_timeout", 0.0
                except httpx.TransportError as exc:
                    status = 502
                    message = f"upstream {target.name!r} is unreachable ({type(exc).__name__})"
                    kind, wait = "upstream_error", 0.0
                else:
                    if response.status_code < 400:
                        return await self._answer(call, response, text, config, asked_usage)
                    content = await self._read(response)
                    if content is None:
                        return self._too_large(call)
                    if response.status_code != 429 and response.status_code < 500:
                        # The caller's mistake: another attempt or target would refuse it too.
                        return self._finish_upstream_error(call, response.status_code, content)
                    # After the retries and fallbacks: 429 stays 429 (the caller may retry
                    # later), an upstream's 5xx is the gateway's 502.
                    status = 429 if response.status_code == 429 else 502
                    message = f"upstream {target.name!r} answered {response.status_code}"
                    kind = "rate_limit_error" if status == 429 else "upstream_error"
                    wait = _retry_after(response.headers.get("retry-after"))
                    if wait is not None and wait > MAX_RETRY_WAIT_S:
                        break  # the next target rather than a long wait
                if attempt < config.retries:
                    backoff = config.backoff_s * 2**attempt
                    await asyncio.sleep(min(max(backoff, wait or 0.0), MAX_RETRY_WAIT_S))
        tried = ", ".join(t.name for t in candidates)
        message = f"{message}; tried {tried} ({call.record.attempts} attempts)"
        return self._finish_refused(call, status, message, kind)

    async def _send(self, target: Target, endpoint: str, payload: bytes, stream: bool) -> Any:
        import httpx

        client = self._client(target.base_url)
        headers = {"content-type": "application/json"}
        secret = target.secret and self._secrets.get(target.secret)
        if secret:
            headers["authorization"] = f"Bearer {secret}"
        request = client.build_request(
            "POST", target.base_url + _PATHS[endpoint], content=payload, headers=headers,
            timeout=httpx.Timeout(target.timeout_s),
        )  # fmt: skip
        return await client.send(request, stream=True)

    def _client(self, base_url: str) -> httpx.AsyncClient:
        import httpx

        parts = urlsplit(base_url)
        origin = f"{parts.scheme}://{parts.netloc}"
        client = self._clients.get(origin)
        if client is None:
            client = httpx.AsyncClient(
                transport=self._transport,
                limits=httpx.Limits(max_connections=1000, max_keepalive_connections=100),
                follow_redirects=False,  # a redirect would carry the secret elsewhere
                trust_env=False,
            )
            self._clients[origin] = client
        return client

    # --- answers -------------------------------------------------------------------------------

    async def _answer(
        self, call: Call, response: httpx.Response, text: str, config: Any, asked_usage: bool
    ) -> Reply:
        headers = self._headers(call)
        if call.stream and response.headers.get("content-type", "").startswith("text/event-stream"):
            relay = Relay(self, call, response, text, config, asked_usage)
            headers["cache-control"] = "no-cache"
            return Reply(200, headers=headers, stream=relay.events(),
                         media_type="text/event-stream")  # fmt: skip
        content = await self._read(response)
        if content is None:
            return self._too_large(call)
        try:
            answer = json.loads(content)
        except (ValueError, RecursionError):
            answer = None
        if not isinstance(answer, dict):
            return self._finish_refused(
                call, 502, f"upstream {call.target.name!r} answered no JSON object",  # type: ignore[union-attr]
                "upstream_error",
            )  # fmt: skip
        output = answer_text(call.endpoint, answer)
        usage = usage_of(answer)
        estimated = usage is None
        if usage is None:
            usage = (estimate_tokens(text), estimate_tokens(output))
        call.record.outputs = output
        decisions = list(call.record.decisions)
        blocked = None
        for spec in config.guardrails:
            if spec.stage == "post":
                decision = await run_check_async(spec, inputs=text, outputs=output)
                decisions.append(decision)
                if decision.blocked and blocked is None:
                    blocked = decision
        call.record.decisions = tuple(decisions)
        self._account(call, response.status_code, usage, estimated)
        if blocked is not None:
            message = f"guardrail {blocked.check!r} blocked the answer: {blocked.reason}"
            self._finish(call, 422, message)
            return Reply(422, error_body(message, "guardrail_blocked"), headers)
        self._finish(call, response.status_code, "")
        notes = [f"{d.check}: {d.reason}" for d in decisions if d.action == "annotate"]
        if notes:
            headers["x-loopwright-guardrails"] = (
                "; ".join(notes)[:2000].encode("ascii", "replace").decode()
            )
        return Reply(response.status_code, content, headers)

    async def _read(self, response: httpx.Response) -> bytes | None:
        """The answer's body, or None past ``max_answer_bytes`` (read no further)."""
        parts: list[bytes] = []
        size = 0
        try:
            async for part in response.aiter_bytes():
                size += len(part)
                if size > self.max_answer_bytes:
                    return None
                parts.append(part)
        finally:
            await response.aclose()
        return b"".join(parts)

    def _too_large(self, call: Call) -> Reply:
        message = (
            f"upstream {call.target.name!r} answered over {self.max_answer_bytes} bytes, "  # type: ignore[union-attr]
            "the gateway's cap (the server's max_request_bytes)"
        )
        return self._finish_refused(call, 502, message, "upstream_error")

    def _headers(self, call: Call) -> dict[str, str]:
        return {
            "x-loopwright-route": call.route,
            "x-loopwright-target": call.target.name if call.target else "",
            "x-loopwright-trace-id": call.record.trace_id,
        }

    def _account(self, call: Call, status: int, usage: tuple[int, int], estimated: bool) -> None:
        """Usage and cost of an answered call, counted against the caller's limits."""
        record = call.record
        record.prompt_tokens, record.completion_tokens = usage
        record.estimated = estimated
        price = call.target.price if call.target else None
        record.cost_usd = None if price is None else price.cost(*usage)
        self.quota.charge(call.route, call.user, sum(usage), record.cost_usd)

    def _finish(self, call: Call, status: int, error: str) -> None:
        """The call's usage row and trace, queued."""
        record = call.record
        record.status, record.error = status, error
        record.end_ns = time.time_ns()
        record.target = call.target.name if call.target else None
        record.model = call.target.model if call.target else None
        latency = (time.perf_counter() - call.started) * 1000
        self.usage.submit(
            UsageRecord(
                new_id(), call.route, record.target or "", call.user, call.endpoint, status,
                record.prompt_tokens, record.completion_tokens, record.estimated,
                record.cost_usd, latency, call.stream, record.trace_id, now_ms(),
            )
        )  # fmt: skip
        if self._exporter is not None:
            try:
                trace_call(self._exporter, record)
            except Exception:  # a trace must never fail the answer
                _logger.exception("gateway: tracing the call on route %r failed", call.route)

    def _finish_refused(self, call: Call, status: int, message: str, kind: str) -> Reply:
        self._finish(call, status, message)
        return Reply(status, error_body(message, kind), self._headers(call))

    def _finish_upstream_error(self, call: Call, status: int, content: bytes) -> Reply:
        self._finish(call, status, f"upstream answered {status}")
        return Reply(status, content, self._headers(call))

    # --- life ----------------------------------------------------------------------------------

    @property
    def usage_stats(self) -> UsageStats:
        return self.usage.stats

    @property
    def trace_stats(self) -> ExporterStats | None:
        """The trace exporter's counts (None: this gateway does not trace)."""
        return None if self._exporter is None else self._exporter.stats

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until queued usage rows and traces are stored."""
        done = self.usage.flush(timeout)
        if self._exporter is not None:
            done = self._exporter.flush(timeout) and done
        return done

    async def aclose(self) -> None:
        for client in self._clients.values():
            await client.aclose()
        self._clients.clear()
        await anyio.to_thread.run_sync(self.close_writers)

    def close_writers(self) -> None:
        self.usage.close()
        if self._exporter is not None:
            self._exporter.close()


async def _bound(
    endpoint: str, body: dict[str, Any], target: Target, prompts: dict[str, Any]
) -> tuple[dict[str, Any], str | None]:
    """:func:`bind`, rendering a prompt (a Jinja2 loop may take its whole budget) off the loop."""
    if target.prompt is None:
        return bind(endpoint, body, target, prompts)
    return await anyio.to_thread.run_sync(bind, endpoint, body, target, prompts)


def _retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        return None  # an HTTP date: treated as unknown
