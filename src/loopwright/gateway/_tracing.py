"""Every gateway request as one trace: an LLM span, and a GUARDRAIL span per check that ran.

The gateway hands finished calls to :func:`trace_call`, which builds the spans (OTel GenAI
attributes: ``gen_ai.operation.name``, ``gen_ai.request.model``, ``gen_ai.usage.*``; our cost
and inputs/outputs keys) and submits them to tracing's :class:`~loopwright.tracing.exporter.
TraceExporter`, which stores them in batches on its own thread. The exporter waits at most
``BLOCK_S`` when its queue is full (it counts what it then refuses): the event loop must not
stall behind the database.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..store.home import Store
    from ..tracing.exporter import TraceExporter
    from .guardrails import Decision

__all__ = ["BLOCK_S", "CallRecord", "new_trace_id", "open_exporter", "trace_call"]

BLOCK_S = 0.05
PREVIEW_CHARS = 8_000  # inputs and outputs kept on the span (tracing caps them again)
_OPERATION = {"chat": "chat", "completions": "text_completion", "embeddings": "embeddings"}


def new_trace_id() -> str:
    return os.urandom(16).hex()


@dataclass
class CallRecord:
    """What one gateway request did, for its trace."""

    trace_id: str
    route: str
    endpoint: str
    user: str
    start_ns: int
    end_ns: int
    status: int
    stream: bool
    target: str | None = None
    model: str | None = None
    error: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    estimated: bool = False
    cost_usd: float | None = None
    attempts: int = 0
    inputs: Any = None
    outputs: str | None = None
    decisions: tuple[Decision, ...] = ()
    prompt_version: str | None = None  # "name/N" the target rendered (prompt_targets.py)


def open_exporter(store: Store) -> TraceExporter:
    """The exporter the gateway submits to, recording through the embedded tracing service."""
    from ..tracing.exporter import TraceExporter
    from ..tracing.service import TracingService

    # Recorded as the gateway's: those traces are never rewritten through ingest.
    record = TracingService(store)._record_gateway
    return TraceExporter(record, block_timeout=BLOCK_S, name="loopwright-gateway-traces")


def trace_call(exporter: TraceExporter, call: CallRecord) -> bool:
    """Submit ``call`` as one trace; False when the exporter refused it (counted there)."""
    from ..tracing.entities import Span, TraceLinks

    root_id = os.urandom(8).hex()
    attributes: dict[str, Any] = {
        "gen_ai.operation.name": _OPERATION.get(call.endpoint, call.endpoint),
        "gen_ai.provider.name": "openai",  # the upstreams speak OpenAI's API
        "gen_ai.request.model": call.model or call.route,
        "gen_ai.request.stream": call.stream,
        "gen_ai.usage.input_tokens": call.prompt_tokens,
        "gen_ai.usage.output_tokens": call.completion_tokens,
        "http.response.status_code": call.status,
        "lw.gateway.route": call.route,
        "lw.gateway.target": call.target or "",
        "lw.gateway.user": call.user,
        "lw.gateway.attempts": call.attempts,
        "lw.gateway.usage_estimated": call.estimated,
        "lw.inputs": _capped(call.inputs),
        "lw.outputs": _capped(call.outputs),
    }
    if call.cost_usd is not None:
        attributes["lw.cost_usd"] = call.cost_usd
    if call.prompt_version is not None:
        attributes["lw.prompt.version"] = call.prompt_version
    failed = call.status >= 400
    spans = [
        Span(
            call.trace_id, root_id, None, f"{attributes['gen_ai.operation.name']} {call.route}",
            "LLM", call.start_ns, call.end_ns, "ERROR" if failed else "OK",
            call.error[:1000] if failed else "", attributes,
        )
    ]  # fmt: skip
    for decision in call.decisions:
        spans.append(
            Span(
                call.trace_id, os.urandom(8).hex(), root_id,
                f"guardrail {decision.check}", "GUARDRAIL", call.start_ns,
                call.start_ns + decision.duration_ns, "OK", "",
                {"lw.guardrail.stage": decision.stage, "lw.guardrail.action": decision.action,
                 "lw.guardrail.reason": decision.reason,
                 "gen_ai.evaluation.name": decision.check,
                 "gen_ai.evaluation.score.label": decision.action},
            )
        )  # fmt: skip
    prompts = () if call.prompt_version is None else (call.prompt_version,)
    return exporter.submit(
        spans, links=TraceLinks(prompt_versions=prompts, gateway_route=call.route)
    )


def _capped(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, str):
        return value[:PREVIEW_CHARS]
    import json

    text = json.dumps(value, default=str)
    return value if len(text) <= PREVIEW_CHARS else text[:PREVIEW_CHARS]
