"""Recording a batch of spans: every trace of the batch in one write transaction.

New traces (the common case) go in with multi-row INSERTs: one statement per table per chunk,
whatever the number of traces. Spans for a trace already stored (MLflow sends a trace's info and
its spans in two requests; OTLP exporters send spans as they end) replace spans with the same
id, and the trace's summary is derived again from all its spans.

Who may write to a stored trace: only whoever recorded it (``lw.recorded_by``), and never to a
trace the LLM gateway produced (``lw.gateway.user``: that evidence is the gateway's alone). A
span already stored is replaced only while the trace is IN_PROGRESS (an identical copy, as a
retrying exporter sends, changes nothing and passes); each replacement is audited. Both keys are
the server's: senders' metadata under them is dropped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import sqlalchemy as sa

from .._ids import now_ms
from ..errors import Conflict, PermissionDenied
from ..store import schema as t
from ..store import statements
from ..store.audit import append_event
from . import _rows
from .caps import TRUNCATED_SPANS_TAG, Prepared
from .entities import Span, TraceLinks
from .summary import Summary, summarize

__all__ = [
    "GATEWAY_USER_KEY",
    "RECORDED_BY_KEY",
    "SENDER_PREVIEWS_KEY",
    "TRACE_COLUMNS",
    "add_links",
    "check_writer",
    "lock_traces",
    "own_metadata",
    "write_batch",
]

# Metadata marking previews the sender wrote (MLflow's client, as JSON): spans arriving later
# (MLflow's asynchronous export sends them after the info at times) keep them.
SENDER_PREVIEWS_KEY = "lw.previews"
# The trace metadata the server alone writes: who recorded the trace, and (gateway traces only)
# the gateway user whose call it is.
RECORDED_BY_KEY = "lw.recorded_by"
GATEWAY_USER_KEY = "lw.gateway.user"
_SERVER_KEYS = (RECORDED_BY_KEY, GATEWAY_USER_KEY)

TRACE_COLUMNS = (
    "trace_id",
    "experiment_id",
    "request_time",
    "duration_ms",
    "state",
    "request_preview",
    "response_preview",
    "input_tokens",
    "output_tokens",
    "cost_usd",
    "span_count",
    "created_at",
    "updated_at",
)
_KV = ("trace_id", "key", "value")
_REPLACE_VALUE = ' ON CONFLICT ("trace_id", "key") DO UPDATE SET "value" = excluded."value"'
_KEEP_LINK = ' ON CONFLICT ("trace_id", "kind", "target") DO NOTHING'
_IN_CHUNK = 500


def write_batch(
    conn: sa.Connection,
    prepared: Prepared,
    *,
    experiment_id: str | None,
    tags: Mapping[str, str],
    links: TraceLinks | None,
    metadata: Mapping[str, str],
    actor: str,
    gateway: bool = False,
) -> None:
    """``actor`` records the batch; ``gateway``: the LLM gateway does (its traces are new)."""
    trace_ids = list(prepared.by_trace)
    lock_traces(conn, trace_ids)
    existing = _existing(conn, trace_ids)
    for trace_id in trace_ids:
        if trace_id in existing:
            check_writer(conn, trace_id, actor, gateway=gateway)
    now = now_ms()
    fresh = [trace_id for trace_id in trace_ids if trace_id not in existing]
    trace_rows = [
        _trace_row(trace_id, experiment_id, summarize(prepared.by_trace[trace_id]), now)
        for trace_id in fresh
        if prepared.by_trace[trace_id]
    ]
    statements.insert_many(conn, "traces", TRACE_COLUMNS, trace_rows)
    for trace_id in trace_ids:
        if trace_id in existing:
            _merge(conn, trace_id, prepared.by_trace[trace_id], experiment_id, now, actor)
    span_rows = [_rows.span_row(span) for trace_id in fresh for span in prepared.by_trace[trace_id]]
    statements.insert_many(conn, "spans", _rows.SPAN_COLUMNS, span_rows)
    tag_rows = [(trace_id, key, value) for trace_id in trace_ids for key, value in tags.items()]
    tag_rows += [
        (trace_id, TRUNCATED_SPANS_TAG, str(count))
        for trace_id, count in prepared.truncated.items()
    ]
    statements.insert_many(conn, "trace_tags", _KV, tag_rows, _REPLACE_VALUE)
    metadata = own_metadata(metadata)
    meta_rows = [(trace_id, k, v) for trace_id in trace_ids for k, v in metadata.items()]
    meta_rows += [(trace_id, RECORDED_BY_KEY, actor) for trace_id in fresh]
    if gateway:
        meta_rows += [
            (trace_id, GATEWAY_USER_KEY, _gateway_user(prepared.by_trace[trace_id]))
            for trace_id in fresh
        ]
    statements.insert_many(conn, "trace_metadata", _KV, meta_rows, _REPLACE_VALUE)
    if links is not None:
        add_links(conn, trace_ids, links)


def own_metadata(metadata: Mapping[str, str]) -> dict[str, str]:
    """``metadata`` without the keys only the server writes (a sender's copy is dropped)."""
    return {key: value for key, value in metadata.items() if key not in _SERVER_KEYS}


def check_writer(conn: sa.Connection, trace_id: str, actor: str, *, gateway: bool = False) -> None:
    """Refuse ``actor`` writing to the stored trace unless they recorded it and it is not the
    gateway's."""
    m = t.trace_metadata.c
    found = dict(
        conn.execute(
            sa.select(m.key, m.value).where(m.trace_id == trace_id, m.key.in_(_SERVER_KEYS))
        ).all()
    )
    if gateway or GATEWAY_USER_KEY in found:
        raise PermissionDenied(
            f"trace {trace_id} was produced by the LLM gateway; its record is never rewritten "
            "(record your own spans under a new trace id)"
        )
    recorder = found.get(RECORDED_BY_KEY)
    if recorder != actor:
        who = "someone else" if recorder is None else repr(recorder)
        raise PermissionDenied(
            f"trace {trace_id} was recorded by {who}; only they may change its spans or info "
            "(record your own spans under a new trace id)"
        )


def _gateway_user(spans: Sequence[Span]) -> str:
    for span in spans:
        if span.parent_id is None and GATEWAY_USER_KEY in span.attributes:
            return str(span.attributes[GATEWAY_USER_KEY])
    return ""


def lock_traces(conn: sa.Connection, trace_ids: Sequence[str]) -> None:
    """On PostgreSQL, hold each trace's lock until the transaction ends: a trace's info and its
    spans arrive in concurrent requests (MLflow's async export), and both may find it new.
    SQLite's single writer already serialises them. Taken in sorted order: no deadlock."""
    if conn.dialect.name != "postgresql" or not trace_ids:
        return
    conn.execute(
        sa.text(
            "SELECT pg_advisory_xact_lock(hashtextextended(id, 14)) "
            "FROM (SELECT unnest(CAST(:ids AS text[])) AS id ORDER BY 1) AS ids"
        ),
        {"ids": sorted(set(trace_ids))},
    )


def add_links(conn: sa.Connection, trace_ids: Sequence[str], links: TraceLinks) -> None:
    rows = [(trace_id, kind, target) for trace_id in trace_ids for kind, target in links.pairs()]
    statements.insert_many(conn, "trace_links", ("trace_id", "kind", "target"), rows, _KEEP_LINK)


def _existing(conn: sa.Connection, trace_ids: list[str]) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(trace_ids), _IN_CHUNK):
        chunk = trace_ids[start : start + _IN_CHUNK]
        marks = statements.marks(len(chunk))
        rows = statements.fetch(
            conn,
            f"SELECT trace_id FROM traces WHERE trace_id IN ({marks})",  # noqa: S608
            chunk,
        )
        found.update(row[0] for row in rows)
    return found


def _trace_row(
    trace_id: str, experiment_id: str | None, summary: Summary, now: int
) -> tuple[object, ...]:
    return (
        trace_id,
        experiment_id,
        summary.request_time,
        summary.duration_ms,
        summary.state,
        summary.request_preview,
        summary.response_preview,
        summary.input_tokens,
        summary.output_tokens,
        summary.cost_usd,
        summary.span_count,
        now,
        now,
    )


def _merge(
    conn: sa.Connection,
    trace_id: str,
    spans: list[Span],
    experiment_id: str | None,
    now: int,
    actor: str,
) -> None:
    """Add or replace ``spans`` of a stored trace, then derive its summary again."""
    s = t.spans.c
    spans = _changed(conn, trace_id, spans, actor)
    if spans:
        conn.execute(
            sa.delete(t.spans).where(
                s.trace_id == trace_id, s.span_id.in_([span.span_id for span in spans])
            )
        )
        statements.insert_many(
            conn, "spans", _rows.SPAN_COLUMNS, [_rows.span_row(x) for x in spans]
        )
    stored = [
        _rows.span_of(row) for row in conn.execute(sa.select(t.spans).where(s.trace_id == trace_id))
    ]
    values: dict[str, object] = {"updated_at": now}
    if stored:
        summary = summarize(stored)
        values.update({name: getattr(summary, name) for name in TRACE_COLUMNS[2:11]})
        m = t.trace_metadata.c
        kept = sa.select(m.value).where(m.trace_id == trace_id, m.key == SENDER_PREVIEWS_KEY)
        if conn.execute(kept).first() is not None:
            del values["request_preview"], values["response_preview"]
    if experiment_id is not None:
        values["experiment_id"] = experiment_id
    conn.execute(sa.update(t.traces).where(t.traces.c.trace_id == trace_id).values(**values))


def _changed(conn: sa.Connection, trace_id: str, spans: list[Span], actor: str) -> list[Span]:
    """``spans`` less identical copies of stored ones; replacing a stored span needs the trace
    IN_PROGRESS, and is audited."""
    s = t.spans.c
    stored = {
        row.span_id: _rows.span_row(_rows.span_of(row))
        for row in conn.execute(
            sa.select(t.spans).where(
                s.trace_id == trace_id, s.span_id.in_([span.span_id for span in spans])
            )
        )
    }
    changed = [span for span in spans if stored.get(span.span_id) != _rows.span_row(span)]
    replaced = sorted({span.span_id for span in changed if span.span_id in stored})
    if replaced:
        state = conn.execute(
            sa.select(t.traces.c.state).where(t.traces.c.trace_id == trace_id)
        ).scalar_one()
        if state != "IN_PROGRESS":
            raise Conflict(
                f"trace {trace_id} is {state}: its stored spans ({', '.join(replaced[:5])}) "
                "cannot be replaced once it ended; record new spans under new span ids"
            )
        append_event(
            conn,
            actor=actor,
            action="trace.spans.replace",
            subject_type="trace",
            subject_id=trace_id,
            before={"span_ids": replaced[:100], "count": len(replaced)},
        )
    return changed
