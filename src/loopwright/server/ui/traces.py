"""``/ui/traces``: traces found by MLflow's filter syntax (and by experiment, gateway route,
prompt and status), and one trace: its span tree on a timeline, inputs and outputs, token
usage and cost, what it links to, and its assessments.

The list reads one page of ids through tracing's search SQL (no count: a "next" link when one
more row exists) and their summaries in one batch, never spans. A trace page reads the trace
whole; it draws at most :data:`MAX_SPANS` spans and shows each value capped at
:data:`VALUE_CHARS` characters (escaped by the template like all text).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from fastapi import APIRouter, Request
from fastapi.responses import Response

from ..._numbers import is_number
from ...errors import InvalidInput
from ...store import schema as t
from ..api._deps import State, Viewer
from ..auth import UI_PREFIX
from ._filter_text import link_filter, quoted
from ._page import render
from ._paging import paging

if TYPE_CHECKING:
    from ...tracing.entities import Span, Trace

__all__ = ["MAX_SPANS", "VALUE_CHARS", "SpanRow", "router", "span_rows", "trace_filter"]

router = APIRouter(prefix=UI_PREFIX, include_in_schema=False)

MAX_SPANS = 1000  # a trace page draws this many spans at most (a note says how many exist)
VALUE_CHARS = 4000  # a shown input, output or attribute value, at most
PREVIEW_CHARS = 160
MAX_FILTER = 4000
MAX_CHOICES = 200  # experiments and routes offered in the list's selects
STATUSES = ("OK", "ERROR", "IN_PROGRESS")
_DEPTHS = 12  # indentation levels drawn (deeper spans stay at the last)
# Attributes a span's Inputs and Outputs already show (not listed again among its attributes).
_SHOWN = frozenset({"lw.inputs", "lw.outputs", "mlflow.spanInputs", "mlflow.spanOutputs"})


def trace_filter(text: str, *, route: str = "", prompt: str = "", status: str = "") -> str | None:
    """The filter the list searches by: the reader's own text and the choices, joined by AND.
    ``prompt`` is a name (any of its versions) or ``name/3``."""
    terms = [text.strip()] if text.strip() else []
    if route:
        terms.append(link_filter("gateway_route", route))
    if prompt:
        name, _, number = prompt.rpartition("/")
        if name and is_number(number):
            terms.append(link_filter("prompt_version", prompt))
        else:
            like = prompt.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            terms.append(f"link.prompt_version LIKE {quoted(like + '/%')}")
    if status:
        if status not in STATUSES:
            raise InvalidInput(f"status {status!r} is not one of {', '.join(STATUSES)}")
        terms.append(f"status = {quoted(status)}")
    return " AND ".join(terms) or None


def _choice(request: Request, key: str, limit: int = 500) -> str:
    value = request.query_params.get(key, "").strip()
    if len(value) > limit:
        raise InvalidInput(f"{key} is {len(value)} characters long; at most {limit}")
    return value


@router.get("/traces")
def traces(request: Request, state: State, caller: Viewer) -> Response:
    """One page of traces, newest first, matching the filter and choices."""
    from ...tracing._search import search_rows
    from ...tracing.service import TracingService

    text = _choice(request, "filter", MAX_FILTER)
    experiment, route = _choice(request, "experiment", 64), _choice(request, "route")
    prompt, status = _choice(request, "prompt"), _choice(request, "status", 20)
    page = paging(request.query_params.get("offset"), request.query_params.get("limit"))
    combined = trace_filter(text, route=route, prompt=prompt, status=status)
    service = TracingService(state.store, reader=(caller.user, caller.role))
    with state.store.db.read() as conn:
        ids = search_rows(
            conn,
            experiment_ids=[experiment] if experiment else None,
            filter=combined,
            order_by=None,
            limit=page.limit + 1,
            offset=page.offset,
            visible=service._visible(),  # a viewer: only their own gateway traces
        )
        experiments, routes = _choices(conn)
    found = service.get_many(ids[: page.limit], spans=False)
    params = {
        "filter": text or None,
        "experiment": experiment or None,
        "route": route or None,
        "prompt": prompt or None,
        "status": status or None,
        "limit": page.limit if page.limit != 50 else None,
    }
    return render(
        request,
        "traces/list.html",
        traces=found,
        more=len(ids) > page.limit,
        offset=page.offset,
        limit=page.limit,
        params=params,
        text=text,
        experiment=experiment,
        route=route,
        prompt=prompt,
        selected_status=status,
        statuses=STATUSES,
        experiments=experiments,
        routes=routes,
        preview_chars=PREVIEW_CHARS,
    )


def _choices(conn: sa.Connection) -> tuple[list[tuple[str, str]], list[str]]:
    """The experiments that hold traces (id, name) and the gateway routes traces link to."""
    e, tr, links = t.experiments.c, t.traces.c, t.trace_links.c
    holding = sa.select(tr.experiment_id).where(tr.experiment_id.is_not(None)).distinct()
    experiments = conn.execute(
        sa.select(e.id, e.name).where(e.id.in_(holding)).order_by(e.name).limit(MAX_CHOICES)
    ).all()
    routes = conn.execute(
        sa.select(links.target)
        .where(links.kind == "gateway_route")
        .distinct()
        .order_by(links.target)
        .limit(MAX_CHOICES)
    ).scalars()
    return [(str(i), str(n)) for i, n in experiments], list(routes)


@dataclass(frozen=True)
class SpanRow:
    """One span as the trace page draws it: its place in the tree and on the timeline (in
    percent of the trace's span of time), and its values as capped text."""

    span: Span
    depth: int
    offset_pct: float
    width_pct: float
    start_ms: float
    duration_ms: float | None
    inputs: str | None
    outputs: str | None
    attributes: list[tuple[str, str]]


def shown(value: Any, limit: int = VALUE_CHARS) -> str:
    """``value`` as text for a page: strings as they are, anything else as JSON; cut at
    ``limit`` characters with a note saying how long it was."""
    text = value if isinstance(value, str) else json.dumps(value, indent=2, default=str)
    if len(text) > limit:
        return f"{text[:limit]}… ({len(text):,} characters; the first {limit:,} shown)"
    return text


def span_rows(spans: tuple[Span, ...] | list[Span]) -> list[SpanRow]:
    """The spans depth-first (children by start time under their parent; a span whose parent
    is missing is a root), with their bars on the trace's timeline."""
    from ...tracing.summary import inputs_of, outputs_of

    if not spans:
        return []
    ids = {s.span_id for s in spans}
    children: dict[str | None, list[Span]] = {}
    for s in spans:
        parent = s.parent_id if s.parent_id in ids else None
        children.setdefault(parent, []).append(s)
    for group in children.values():
        group.sort(key=lambda s: (s.start_ns, s.span_id))
    start = min(s.start_ns for s in spans)
    end = max(max(s.end_ns or s.start_ns, s.start_ns) for s in spans)
    total = max(end - start, 1)
    rows: list[SpanRow] = []
    stack: list[tuple[Span, int]] = [(s, 0) for s in reversed(children.get(None, []))]
    while stack:
        span, depth = stack.pop()
        duration = None if span.end_ns is None else max(span.end_ns - span.start_ns, 0)
        rows.append(
            SpanRow(
                span=span,
                depth=min(depth, _DEPTHS),
                offset_pct=round((span.start_ns - start) / total * 100, 3),
                width_pct=round(max((duration or 0) / total * 100, 0.4), 3),
                start_ms=(span.start_ns - start) / 1e6,
                duration_ms=None if duration is None else duration / 1e6,
                inputs=_maybe(inputs_of(span.attributes)),
                outputs=_maybe(outputs_of(span.attributes)),
                attributes=[
                    (k, shown(v)) for k, v in sorted(span.attributes.items()) if k not in _SHOWN
                ],
            )
        )
        stack.extend((c, depth + 1) for c in reversed(children.get(span.span_id, [])))
    return rows


def _maybe(value: Any) -> str | None:
    return None if value is None else shown(value)


@router.get("/traces/{trace_id}")
def trace(request: Request, trace_id: str, state: State, caller: Viewer) -> Response:
    """One trace whole: summary, links, tags, span tree, assessments."""
    from ...tracing.service import TracingService

    service = TracingService(state.store, reader=(caller.user, caller.role))
    found: Trace = service.get(trace_id)
    spans = sorted(found.spans, key=lambda s: s.start_ns)[:MAX_SPANS]
    rows = span_rows(spans)
    links = found.links
    return render(
        request,
        "traces/trace.html",
        trace=found,
        rows=rows,
        span_total=len(found.spans),
        max_spans=MAX_SPANS,
        assessments=service.assessments(trace_id),
        prompt_links=[_prompt_link(v) for v in links.prompt_versions],
        model_link=_model_link(links.model_version),
        shown=shown,
    )


def _prompt_link(ref: str) -> tuple[str, str]:
    """(label, dashboard path) of a linked prompt version ``name/3``."""
    from urllib.parse import quote

    name, _, number = ref.rpartition("/")
    if not name or not is_number(number):
        return ref, f"{UI_PREFIX}/prompts/{quote(ref, safe='')}"
    return ref, f"{UI_PREFIX}/prompts/{quote(name, safe='')}/versions/{number}"


def _model_link(ref: str | None) -> tuple[str, str] | None:
    from urllib.parse import quote

    if not ref:
        return None
    name, _, number = ref.rpartition("/")
    if not name or not is_number(number):
        return ref, f"{UI_PREFIX}/models/{quote(ref, safe='')}"
    return ref, f"{UI_PREFIX}/models/{quote(name, safe='')}/versions/{number}"
