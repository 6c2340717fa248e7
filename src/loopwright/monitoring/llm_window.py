"""A trace monitor's window: the selected traces of a time span, and their per-trace figures.

The traces are found through the tracing service's search (MLflow's filter syntax over the
trace summaries and their links), so what a monitor selects is what ``client.tracing.search``
shows for the same filter. Each trace becomes one row: the length of its root span's inputs and
outputs (as text: a string as is, anything else as JSON), its tokens, cost and latency, and the
value of each scorer that assessed it (``score.<name>``; numbers and booleans as numbers,
labels as categories).

Example:
    >>> selection_filter(TraceSelection(gateway_route="chat"), None, 0, 10)
    "timestamp_ms >= 0 AND timestamp_ms < 10 AND link.gateway_route = 'chat'"
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ..store import schema as t
from ..tracing.summary import inputs_of, outputs_of
from .llm_entities import TraceSelection
from .llm_spec import FEATURES, prompt_parts, scorer_column

if TYPE_CHECKING:
    import pyarrow as pa

    from ..store.home import Store
    from ..tracing.entities import Span, Trace
    from ..tracing.service import TracingService

__all__ = [
    "as_text",
    "features_table",
    "load_traces",
    "read_traces",
    "root_io",
    "scored_pairs",
    "scores_of",
    "selection_filter",
    "window_rows",
]

_CHUNK = 500


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def selection_filter(
    selection: TraceSelection, prompt_version: str | None, start: int, end: int
) -> str:
    """The search filter of the selection's traces requested in ``[start, end)``.

    ``prompt_version`` is the selection's prompt resolved to ``name/N`` (an alias is resolved
    by the caller when the pass runs); None selects any version of the prompt's name."""
    terms = [f"timestamp_ms >= {int(start)}", f"timestamp_ms < {int(end)}"]
    if selection.gateway_route:
        terms.append(f"link.gateway_route = {_quote(selection.gateway_route)}")
    if selection.deployment:
        terms.append(f"link.deployment = {_quote(selection.deployment)}")
    if selection.prompt:
        if prompt_version is not None:
            terms.append(f"link.prompt_version = {_quote(prompt_version)}")
        else:
            name = prompt_parts(selection.prompt)[0]
            terms.append(f"link.prompt_version LIKE {_like(name)}")
    return " AND ".join(terms)


def _like(name: str) -> str:
    """A LIKE pattern for ``name/<anything>`` with the name's own ``_`` and ``%`` literal."""
    escaped = name.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return "'" + escaped.replace("'", "\\'") + "/%'"


def read_traces(
    store: Store,
    selection: TraceSelection,
    prompt_version: str | None,
    start: int,
    end: int,
    *,
    limit: int,
) -> tuple[list[str], bool]:
    """The ids of the selection's traces in ``[start, end)``, oldest first, at most ``limit``,
    and whether more were left out. One query through tracing's own search (the same filter
    language and columns as ``client.tracing.search``), reading ids only."""
    from ..tracing._search import search_rows

    query = selection_filter(selection, prompt_version, start, end)
    with store.db.read() as conn:
        ids = search_rows(
            conn,
            experiment_ids=list(selection.experiment_ids) or None,
            filter=query,
            order_by=["timestamp_ms ASC"],
            limit=limit + 1,
            offset=0,
        )
    return ids[:limit], len(ids) > limit


def load_traces(tracing: TracingService, trace_ids: Sequence[str]) -> list[Trace]:
    """The traces with their spans, read in chunks (one query per table and chunk)."""
    found: list[Trace] = []
    for at in range(0, len(trace_ids), _CHUNK):
        found.extend(tracing.get_many(trace_ids[at : at + _CHUNK], spans=True))
    return found


def root_span(spans: Sequence[Span]) -> Span | None:
    """The trace's root: a span without a parent in the trace, the earliest such."""
    ids = {span.span_id for span in spans}
    roots = [span for span in spans if span.parent_id is None or span.parent_id not in ids]
    return min(roots or spans, key=lambda span: span.start_ns) if spans else None


def root_io(trace: Trace) -> tuple[Any, Any]:
    """The trace's inputs and outputs as its root span recorded them (the previews when the
    trace has no spans)."""
    root = root_span(trace.spans)
    if root is None:
        return trace.request_preview or None, trace.response_preview or None
    inputs = inputs_of(root.attributes)
    outputs = outputs_of(root.attributes)
    return (
        trace.request_preview or None if inputs is None else inputs,
        trace.response_preview or None if outputs is None else outputs,
    )


def as_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, default=str)


def scores_of(
    conn: sa.Connection, trace_ids: Sequence[str], sources: Mapping[str, str]
) -> dict[str, dict[str, Any]]:
    """``{trace_id: {scorer name: value}}`` of the valid feedback each scorer version (by its
    assessments' ``source_id``, the keys of ``sources``) left; the newest counts. Errors are
    left out (they have no value)."""
    a = t.assessments.c
    out: dict[str, dict[str, Any]] = {}
    for at in range(0, len(trace_ids), _CHUNK):
        rows = conn.execute(
            sa.select(a.trace_id, a.source_id, a.value_json, a.error_json)
            .where(
                a.trace_id.in_(trace_ids[at : at + _CHUNK]),
                a.source_id.in_(list(sources)),
                a.kind == "feedback",
                a.valid.is_(True),
            )
            .order_by(a.created_at, a.id)
        )
        for row in rows:
            if row.error_json is not None or row.value_json is None:
                continue
            out.setdefault(row.trace_id, {})[sources[row.source_id]] = json.loads(row.value_json)
    return out


def scored_pairs(
    conn: sa.Connection, trace_ids: Sequence[str], sources: Iterable[str]
) -> set[tuple[str, str]]:
    """``(trace_id, source_id)`` of every assessment (errors too) the scorer versions left."""
    a = t.assessments.c
    keys = list(sources)
    found: set[tuple[str, str]] = set()
    for at in range(0, len(trace_ids), _CHUNK):
        rows = conn.execute(
            sa.select(a.trace_id, a.source_id)
            .where(a.trace_id.in_(trace_ids[at : at + _CHUNK]), a.source_id.in_(keys))
            .distinct()
        )
        found.update((row.trace_id, row.source_id) for row in rows)
    return found


def window_rows(conn: sa.Connection, trace_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The per-trace figures (``FEATURES``) of many traces, read lean: the summaries and the
    root spans' attributes only (a root here is a span without a parent; a trace without one
    falls back to its previews)."""
    c, s = t.traces.c, t.spans.c
    out: dict[str, dict[str, Any]] = {}
    for at in range(0, len(trace_ids), _CHUNK):
        chunk = trace_ids[at : at + _CHUNK]
        roots: dict[str, Any] = {}
        query = (
            sa.select(s.trace_id, s.attributes_json)
            .where(s.trace_id.in_(chunk), s.parent_id.is_(None))
            .order_by(s.start_ns.desc())
        )
        for root in conn.execute(query):
            roots[root.trace_id] = root.attributes_json  # the earliest root wins (read last)
        summaries = sa.select(
            c.trace_id, c.duration_ms, c.input_tokens, c.output_tokens, c.cost_usd,
            c.request_preview, c.response_preview,
        ).where(c.trace_id.in_(chunk))  # fmt: skip
        for row in conn.execute(summaries):
            inputs: Any = row.request_preview or None
            outputs: Any = row.response_preview or None
            if row.trace_id in roots:
                attributes = json.loads(roots[row.trace_id])
                found_in, found_out = inputs_of(attributes), outputs_of(attributes)
                inputs = inputs if found_in is None else found_in
                outputs = outputs if found_out is None else found_out
            text_in, text_out = as_text(inputs), as_text(outputs)
            out[row.trace_id] = {
                "input_chars": None if text_in is None else len(text_in),
                "output_chars": None if text_out is None else len(text_out),
                "input_tokens": row.input_tokens,
                "output_tokens": row.output_tokens,
                "cost_usd": row.cost_usd,
                "latency_ms": None if row.duration_ms is None else float(row.duration_ms),
            }
    return out


def features_table(rows: Sequence[Mapping[str, Any]], scorers: Sequence[str]) -> pa.Table:
    """Rows of figures as an Arrow table: the ``FEATURES`` as numbers, each scorer's
    ``score.<name>`` as numbers (booleans as 1/0) or, when any value is a label, as labels."""
    import pyarrow as pa

    columns: dict[str, pa.Array] = {}
    for name in FEATURES:
        columns[name] = pa.array([_number(r.get(name)) for r in rows], pa.float64())
    for scorer in scorers:
        key = scorer_column(scorer)
        values = [r.get(key) for r in rows]
        if any(isinstance(v, str) for v in values):
            columns[key] = pa.array([None if v is None else str(v) for v in values], pa.string())
        else:
            columns[key] = pa.array([_number(v) for v in values], pa.float64())
    return pa.table(columns)


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int | float):
        return float(value)
    return None
