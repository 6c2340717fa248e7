"""``loopwright lineage SUBJECT``: what made a prediction, a run, a model or a dataset version.

Prints the graph as a tree from the subject (a prediction → its model version → the loop
iteration and trigger that produced it → the pipeline run → its steps → the commit and the
dataset versions), or ``--json`` the graph itself. Works through the client, so ``--server``
works.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, cast

import typer

from ._context import state
from ._output import (
    JSON_OPTION,
    console,
    emit_json,
    fail,
    format_duration,
    format_ms,
    handle_errors,
)
from .predictions import parse_moment

if TYPE_CHECKING:
    from rich.tree import Tree

    from ..loop.lineage import LineageGraph, Node, SubjectKind

__all__ = ["register"]


def lineage(
    ctx: typer.Context,
    subject: Annotated[
        str,
        typer.Argument(
            help="A prediction's request id, a run or pipeline run id, a model version "
            "(NAME@3, models:/NAME/3) or a dataset version (DATASET@v3)."
        ),
    ],
    kind: Annotated[
        str | None,
        typer.Option(
            "--kind",
            help="Read SUBJECT as this kind: prediction, run, pipeline_run, model_version or "
            "dataset_version (default: from its form and lookups).",
        ),
    ] = None,
    since: Annotated[
        str,
        typer.Option(
            "--since", help="Search the prediction log back this far (7d) or from a time."
        ),
    ] = "7d",
    deployment: Annotated[
        str | None,
        typer.Option("--deployment", help="Search only this deployment's prediction log."),
    ] = None,
    json_output: bool = JSON_OPTION,
) -> None:
    """Show the lineage of SUBJECT: model version, loop iteration, trigger, pipeline run, steps,
    commit and dataset versions."""
    from ..loop.lineage import KINDS
    from ..loop.lineage import lineage as walk

    if kind is not None and kind not in KINDS:
        fail(f"--kind {kind!r} is not one of {', '.join(KINDS)}")
    moment = parse_moment(since, "--since")
    with handle_errors(), state(ctx).client() as client:
        graph = walk(
            client,
            subject,
            kind=cast("SubjectKind | None", kind),
            since=moment,
            deployment=deployment,
        )
    if json_output:
        emit_json(graph.to_dict())
        return
    out = console()
    out.print(render(graph))
    for note in graph.notes:
        out.print(f"[dim]note:[/] {_escape(note)}")


def render(graph: LineageGraph) -> Tree:
    """The graph as a Rich tree from its root. A record reached twice is shown once, then
    named as ``(above)``; a link back to a record on the way from the root is left out."""
    from rich.tree import Tree

    root = graph.node(graph.root)
    tree = Tree(_label(root))
    shown = {root.id}
    stack: list[tuple[str, Tree, frozenset[str]]] = [(root.id, tree, frozenset({root.id}))]
    while stack:
        node_id, branch, path = stack.pop()
        children = []
        for edge, child in graph.out(node_id):
            if child.id in path:
                continue
            if child.id in shown:
                branch.add(f"[dim]{edge.relation}[/] {_label(child)} [dim](above)[/]")
                continue
            shown.add(child.id)
            sub = branch.add(f"[dim]{edge.relation}[/] {_label(child)}")
            children.append((child.id, sub, path | {child.id}))
        stack.extend(reversed(children))
    return tree


_KIND_STYLE = {
    "prediction": "bold cyan",
    "model_version": "bold green",
    "iteration": "bold magenta",
    "pipeline_run": "bold blue",
    "dataset_version": "bold yellow",
}


def _label(node: Node) -> str:
    style = _KIND_STYLE.get(node.kind, "bold")
    kind = node.kind.replace("_", " ")
    detail = _detail(node)
    suffix = f" [dim]{_escape(detail)}[/]" if detail else ""
    return f"{kind} [{style}]{_escape(node.label)}[/]{suffix}"


def _detail(node: Node) -> str:
    """The few attributes worth a glance, per kind."""
    a: dict[str, Any] = dict(node.attrs)
    parts: list[str] = []
    if node.kind == "prediction":
        parts = [format_ms(a.get("timestamp")), f"variant {a.get('variant')}"]
        parts.append(f"status {a.get('status')}, {a.get('rows')} row(s)")
    elif node.kind == "deployment" and "revision_at_prediction" in a:
        parts = [f"revision {a['revision_at_prediction']} then, {a.get('revision')} now"]
    elif node.kind == "model_version":
        parts = [] if a.get("stage") in (None, "None") else [str(a["stage"])]
        if a.get("aliases"):
            parts.append("@" + ", @".join(a["aliases"]))
        parts.append(format_ms(a.get("created_at")))
    elif node.kind == "iteration" and a.get("reason"):
        parts = [str(a["reason"])]
    elif node.kind == "trigger":
        parts = [str(a.get("detail") or "")]
        if a.get("fired_at"):
            parts.append(f"fired {format_ms(a['fired_at'])} by schedule {a.get('schedule')}")
    elif node.kind == "alert":
        parts = [f"value {a.get('value')} vs {a.get('threshold')}", format_ms(a.get("opened_at"))]
    elif node.kind == "pipeline_run":
        parts = [str(a.get("pipeline")), format_ms(a.get("started_at"))]
        if a.get("error"):
            parts.append(str(a["error"]).splitlines()[0])
    elif node.kind == "step":
        parts = [format_duration(a.get("duration_ms"))]
        if a.get("status") in ("cached", "resumed"):
            parts.append(str(a.get("cache_reason") or ""))
        if a.get("error"):
            parts.append(str(a["error"]).splitlines()[0])
    elif node.kind == "run":
        parts = [str(a.get("status")), format_ms(a.get("start_time"))]
    elif node.kind == "commit":
        parts = [str(a.get("branch") or ""), "dirty" if a.get("dirty") else ""]
        parts.append(str(a.get("entry_point") or ""))
    elif node.kind == "dataset_version":
        parts = [f"{a.get('files')} file(s)", str(a.get("message") or "")]
    elif node.kind == "gate_result":
        failed = a.get("failed_rules") or []
        parts = [f"failed: {'; '.join(failed)}" if failed else "", str(a.get("dataset") or "")]
    elif node.kind == "approval_request":
        parts = [f"by {a.get('requested_by')}"]
        parts += [f"{d['decision']} by {d['actor']}" for d in a.get("decisions") or []]
    return ", ".join(part for part in parts if part)


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def register(app: typer.Typer) -> None:
    app.command()(lineage)
