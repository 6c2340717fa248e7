"""A trace's summary, derived from its spans: state, times, previews, token usage and cost.

The root span (no parent, or a parent not in the trace) gives the state and the previews; its
inputs and outputs are read from our keys, MLflow's, OpenInference's or the GenAI semconv's
messages, whichever is present, so OTLP GenAI traces get previews too. Usage and cost add up
over the spans that report them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .caps import PREVIEW_CHARS, cap_text
from .entities import COST_KEY, INPUT_TOKENS_KEY, INPUTS_KEY, OUTPUT_TOKENS_KEY, OUTPUTS_KEY, Span

__all__ = ["Summary", "inputs_of", "outputs_of", "summarize"]

_INPUT_KEYS = (
    INPUTS_KEY,
    "mlflow.spanInputs",
    "input.value",
    "gen_ai.input.messages",
    "gen_ai.prompt",
)
_OUTPUT_KEYS = (
    OUTPUTS_KEY,
    "mlflow.spanOutputs",
    "output.value",
    "gen_ai.output.messages",
    "gen_ai.completion",
)


@dataclass(frozen=True)
class Summary:
    request_time: int  # ms
    duration_ms: int | None
    state: str
    request_preview: str
    response_preview: str
    input_tokens: int | None
    output_tokens: int | None
    cost_usd: float | None
    span_count: int


def inputs_of(attributes: Mapping[str, Any]) -> Any:
    return _first(attributes, _INPUT_KEYS)


def outputs_of(attributes: Mapping[str, Any]) -> Any:
    return _first(attributes, _OUTPUT_KEYS)


def _first(attributes: Mapping[str, Any], keys: Sequence[str]) -> Any:
    for key in keys:
        if key in attributes:
            return attributes[key]
    return None


def summarize(spans: Sequence[Span]) -> Summary:
    """The summary of a trace made of ``spans`` (at least one)."""
    ids = {span.span_id for span in spans}
    roots = [span for span in spans if span.parent_id is None or span.parent_id not in ids]
    root = min(roots or spans, key=lambda span: span.start_ns)
    start = min(span.start_ns for span in spans)
    ends = [span.end_ns for span in spans]
    if root.end_ns is None:
        state, duration = "IN_PROGRESS", None
    else:
        state = "ERROR" if root.status == "ERROR" else "OK"
        finished = [end for end in ends if end is not None]
        duration = (max(finished) - start) // 1_000_000
    input_tokens = _total(spans, (INPUT_TOKENS_KEY, "llm.token_count.prompt"))
    output_tokens = _total(spans, (OUTPUT_TOKENS_KEY, "llm.token_count.completion"))
    costs = [span.attributes[COST_KEY] for span in spans if _number(span.attributes.get(COST_KEY))]
    return Summary(
        request_time=start // 1_000_000,
        duration_ms=duration,
        state=state,
        request_preview=preview(inputs_of(root.attributes)),
        response_preview=preview(outputs_of(root.attributes)),
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cost_usd=float(sum(costs)) if costs else None,
        span_count=len(spans),
    )


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _total(spans: Sequence[Span], keys: Sequence[str]) -> int | None:
    found = [int(value) for span in spans if _number(value := _first(span.attributes, keys))]
    return sum(found) if found else None


def preview(value: Any) -> str:
    """A short text for listings: strings as they are, anything else as compact JSON."""
    if value is None:
        return ""
    text = value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False)
    return cap_text(text, PREVIEW_CHARS)
