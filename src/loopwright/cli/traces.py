"""``loopwright traces``: list, show (a span tree) and export LLM traces.

Example:
    $ loopwright traces list --experiment chat --filter "status = 'ERROR'"
    $ loopwright traces show 4bf92f3577b34da6a3ce929d0e0e4736
    $ loopwright traces export --output traces.jsonl
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ._context import state
from ._output import JSON_OPTION, console, emit_json, format_ms, handle_errors, print_table

if TYPE_CHECKING:
    from ..client import Client
    from ..tracing.entities import Span, Trace

__all__ = ["app"]

app = typer.Typer(
    help="LLM traces: what @lw.trace, OTLP exporters and MLflow clients recorded.",
    no_args_is_help=True,
)

_EXPERIMENT = typer.Option("--experiment", "-e", help="Only this experiment's traces (a name).")
_FILTER = typer.Option(
    "--filter", help="MLflow's syntax: status = 'ERROR', tags.team = 'x', timestamp_ms > N."
)
_PAGE = 1000


def _experiment_ids(client: Client, name: str | None) -> list[str] | None:
    if name is None:
        return None
    return [client.tracking.get_experiment_by_name(name).id]


def _tokens(trace: Trace) -> str:
    usage = trace.token_usage
    return "" if usage is None else f"{usage.input_tokens}/{usage.output_tokens}"


@app.command("list")
def list_traces(
    ctx: typer.Context,
    experiment: Annotated[str | None, _EXPERIMENT] = None,
    filter_text: Annotated[str | None, _FILTER] = None,
    limit: Annotated[int, typer.Option("--limit", help="At most this many.", min=1)] = 50,
    json_output: bool = JSON_OPTION,
) -> None:
    """Traces, newest first."""
    from ..tracing.codec import trace_json

    with handle_errors(), state(ctx).client() as client:
        page = client.tracing.search(
            _experiment_ids(client, experiment), filter_text, min(limit, _PAGE)
        )
    if json_output:
        emit_json([trace_json(trace) for trace in page.traces])
        return
    print_table(
        "Traces",
        ["trace id", "state", "at (UTC)", "duration", "spans", "tokens in/out", "request"],
        [
            [
                t.trace_id,
                t.state,
                format_ms(t.request_time),
                "" if t.duration_ms is None else f"{t.duration_ms} ms",
                t.span_count,
                _tokens(t),
                t.request_preview[:60],
            ]
            for t in page.traces
        ],
    )


@app.command("show")
def show(
    ctx: typer.Context,
    trace_id: Annotated[str, typer.Argument(help="The trace's id (32 hex digits).")],
    json_output: bool = JSON_OPTION,
) -> None:
    """One trace as a span tree, with its links and assessments."""
    from rich.tree import Tree

    from ..tracing.codec import assessment_json, trace_json

    with handle_errors(), state(ctx).client() as client:
        trace = client.tracing.get(trace_id)
        assessments = client.tracing.assessments(trace_id)
    if json_output:
        emit_json({**trace_json(trace), "assessments": [assessment_json(a) for a in assessments]})
        return
    head = f"trace {trace.trace_id}  {trace.state}  {trace.duration_ms} ms"
    if trace.token_usage is not None:
        head += f"  tokens {_tokens(trace)}"
    if trace.cost_usd is not None:
        head += f"  ${trace.cost_usd:.6f}"
    tree = Tree(head)
    children: dict[str | None, list[Span]] = {}
    ids = {span.span_id for span in trace.spans}
    for span in trace.spans:
        parent = span.parent_id if span.parent_id in ids else None
        children.setdefault(parent, []).append(span)

    def grow(node: Any, parent: str | None) -> None:
        for span in sorted(children.get(parent, []), key=lambda s: s.start_ns):
            took = "" if span.duration_ns is None else f" {span.duration_ns / 1e6:.1f} ms"
            status = "" if span.status != "ERROR" else f"  ERROR {span.status_message}"
            grow(node.add(f"{span.name} [{span.kind}]{took}{status}"), span.span_id)

    grow(tree, None)
    out = console()
    out.print(tree)
    for kind, target in trace.links.pairs():
        out.print(f"link {kind}: {target}")
    for a in assessments:
        mark = "" if a.valid else " (overridden)"
        out.print(
            f"{a.kind} {a.name} = {json.dumps(a.value)} by {a.source_type}:{a.source_id}{mark}"
        )


@app.command("export")
def export(
    ctx: typer.Context,
    output: Annotated[Path, typer.Option("--output", "-o", help="The JSON Lines file to write.")],
    experiment: Annotated[str | None, _EXPERIMENT] = None,
    filter_text: Annotated[str | None, _FILTER] = None,
    limit: Annotated[
        int, typer.Option("--limit", help="At most this many traces.", min=1)
    ] = 100_000,
) -> None:
    """Write traces with their spans, one JSON object per line (newest first)."""
    from ..tracing.codec import trace_json

    written = 0
    with handle_errors(), state(ctx).client() as client, output.open("w") as sink:
        experiments = _experiment_ids(client, experiment)
        token = None
        while written < limit:
            page = client.tracing.search(
                experiments,
                filter_text,
                min(_PAGE, limit - written),
                None,
                token,
                include_spans=True,
            )
            for trace in page.traces:
                sink.write(json.dumps(trace_json(trace), ensure_ascii=False) + "\n")
            written += len(page.traces)
            token = page.next_page_token
            if token is None:
                break
    console().print(f"wrote {written} trace(s) to {output}")
