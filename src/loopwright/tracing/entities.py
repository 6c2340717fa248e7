"""What tracing records: spans, the traces they form, their links and assessments.

A :class:`Span` is one timed step (an LLM call, a retrieval, a tool) with OTel ids; the spans
sharing a ``trace_id`` form a :class:`Trace`, whose summary (state, duration, previews, token
usage, cost) the store derives from its spans when they are recorded. Attribute keys follow the
OpenTelemetry GenAI conventions where one exists (``gen_ai.usage.input_tokens``); the few of our
own are the ``*_KEY`` constants below.

Example:
    >>> span = Span("0" * 31 + "1", "0" * 15 + "1", None, "answer", "CHAIN", 1, 2)
    >>> span.duration_ns
    1
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "ASSESSMENT_KINDS",
    "COST_KEY",
    "INPUTS_KEY",
    "INPUT_TOKENS_KEY",
    "MODEL_KEY",
    "OUTPUTS_KEY",
    "OUTPUT_TOKENS_KEY",
    "SOURCE_TYPES",
    "SPAN_KINDS",
    "SPAN_STATUSES",
    "TRACE_STATES",
    "Assessment",
    "Span",
    "SpanEvent",
    "TokenUsage",
    "Trace",
    "TraceLinks",
    "TracePage",
]

SPAN_KINDS = frozenset(
    {
        "CHAIN",
        "LLM",
        "CHAT_MODEL",
        "RETRIEVER",
        "RERANKER",
        "TOOL",
        "AGENT",
        "EMBEDDING",
        "PARSER",
        "GUARDRAIL",
        "EVALUATOR",
        "UNKNOWN",
    }
)
SPAN_STATUSES = frozenset({"OK", "ERROR", "UNSET"})
TRACE_STATES = frozenset({"OK", "ERROR", "IN_PROGRESS"})
SOURCE_TYPES = frozenset({"HUMAN", "LLM_JUDGE", "CODE"})
ASSESSMENT_KINDS = frozenset({"feedback", "expectation"})

# Attribute keys: the step's inputs and outputs (any JSON-able value), and its usage and cost.
INPUTS_KEY = "lw.inputs"
OUTPUTS_KEY = "lw.outputs"
COST_KEY = "lw.cost_usd"
INPUT_TOKENS_KEY = "gen_ai.usage.input_tokens"
OUTPUT_TOKENS_KEY = "gen_ai.usage.output_tokens"
MODEL_KEY = "gen_ai.request.model"


@dataclass(frozen=True)
class SpanEvent:
    """Something that happened at one instant of a span (an exception, a streamed chunk)."""

    name: str
    time_ns: int
    attributes: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Span:
    """One timed step of a trace; ids are OTel's (32 and 16 lowercase hex digits)."""

    trace_id: str
    span_id: str
    parent_id: str | None
    name: str
    kind: str
    start_ns: int
    end_ns: int | None
    status: str = "OK"
    status_message: str = ""
    attributes: Mapping[str, Any] = field(default_factory=dict)
    events: tuple[SpanEvent, ...] = ()

    @property
    def duration_ns(self) -> int | None:
        return None if self.end_ns is None else self.end_ns - self.start_ns


@dataclass(frozen=True)
class TraceLinks:
    """What a trace was produced by; every field optional (prompt/model versions as "name/3")."""

    prompt_versions: tuple[str, ...] = ()
    run_id: str | None = None
    model_version: str | None = None
    gateway_route: str | None = None
    deployment: str | None = None

    def pairs(self) -> list[tuple[str, str]]:
        """(kind, target) pairs, as stored in ``trace_links``."""
        found = [("prompt_version", version) for version in self.prompt_versions]
        for kind in ("run_id", "model_version", "gateway_route", "deployment"):
            value = getattr(self, kind)
            if value:
                found.append((kind, value))
        return found

    @classmethod
    def from_pairs(cls, pairs: list[tuple[str, str]]) -> TraceLinks:
        values: dict[str, Any] = {}
        prompts = []
        for kind, target in pairs:
            if kind == "prompt_version":
                prompts.append(target)
            else:
                values[kind] = target
        return cls(prompt_versions=tuple(sorted(prompts)), **values)


@dataclass(frozen=True)
class TokenUsage:
    input_tokens: int
    output_tokens: int

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


@dataclass(frozen=True)
class Trace:
    """A recorded trace: its summary, tags, links and (when read whole) its spans."""

    trace_id: str
    experiment_id: str | None
    request_time: int  # ms
    duration_ms: int | None
    state: str
    request_preview: str
    response_preview: str
    tags: Mapping[str, str]
    token_usage: TokenUsage | None
    cost_usd: float | None
    links: TraceLinks
    spans: tuple[Span, ...] = ()
    metadata: Mapping[str, str] = field(default_factory=dict)
    span_count: int = 0


@dataclass(frozen=True)
class TracePage:
    traces: list[Trace]
    next_page_token: str | None


@dataclass(frozen=True)
class Assessment:
    """A judgement on a trace (feedback: a score, label or verdict) or the expected answer
    (expectation), from a human, an LLM judge or code (MLflow's assessment shape)."""

    assessment_id: str
    trace_id: str
    name: str
    kind: str  # feedback | expectation
    value: Any
    source_type: str
    source_id: str
    rationale: str | None = None
    error: Mapping[str, Any] | None = None
    span_id: str | None = None
    valid: bool = True
    overrides: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)
    created_at: int = 0
    updated_at: int = 0
    created_by: str = ""
