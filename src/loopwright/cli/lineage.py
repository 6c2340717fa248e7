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
            help="A prediction's request id, a run, pipeline run or trace id, a model version "
            "(NAME@3, models:/NAME/3), a prompt version (prompts:/NAME/3) or a dataset "
            "version (DATASET@v3)."
        ),
    ],
    kind: Annotated[
        str | None,
        typer.Option(
            "--kind",
            help="Read SUBJECT as this kind: prediction, run, pipeline_run, model_version, "
            "dataset_version, trace or prompt_version (default: from its form and lookups).",
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
    commit and dataset versions; for a trace, the prompt version, its evaluation gate, run and
    dataset hash, its approvers and the gateway route."""
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
            line = f"{_relation(edge.relation, child)}{_label(child)}"
            if child.id in shown:
                branch.add(f"{line} [dim](above)[/]")
                continue
            shown.add(child.id)
            sub = branch.add(line)
            children.append((child.id, sub, path | {child.id}))
        stack.extend(reversed(children))
    return tree


_KIND_STYLE = {
    "prediction": "bold cyan",
    "model_version": "bold green",
    "iteration": "bold magenta",
    "pipeline_run": "bold blue",
    "dataset_version": "bold yellow",
    "trace": "bold cyan",
    "prompt_version": "bold green",
}
# Trigger kinds whose fire links the event itself (the alert, the dataset version): the
# trigger's detail only repeats that node's line, so it is left to --json.
_EVENT_TRIGGERS = ("drift:", "performance:", "alert:", "dataset:")


def _relation(relation: str, child: Node) -> str:
    """The edge's name before the child, unless the child's kind says it already
    (``approval`` to an approval request, ``alert`` to an alert, ``gate`` to a gate result)."""
    if child.kind.replace("_", " ").startswith(relation.replace("_", " ")):
        return ""
    return f"[dim]{relation}[/] "


def _label(node: Node) -> str:
    style = _KIND_STYLE.get(node.kind, "bold")
    kind = node.kind.replace("_", " ")
    return f"{kind} [{style}]{_escape(node.label)}[/]{_detail(node)}"


def _detail(node: Node) -> str:
    """What follows the node's label: a sentence for an approval request and a trigger, else
    the few attributes worth a glance, per kind (dim)."""
    a: dict[str, Any] = dict(node.attrs)
    if node.kind == "approval_request":
        return f": {_escape(_approval(a))}"
    if node.kind == "trigger":
        return _escape(_trigger(node.label, a))
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
    elif node.kind == "iteration" and (a.get("reason") or a.get("waiting")):
        parts = [f"({a.get('reason') or a.get('waiting')})"]
    elif node.kind == "alert":
        # The rule's key (psi:input.age>0.2) carries the threshold already.
        parts = [f"value {_number(a.get('value'))}", f"opened {format_ms(a.get('opened_at'))}"]
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
        if a.get("content_hash"):
            parts.append(f"hash {str(a['content_hash'])[:16]}")
    elif node.kind == "trace":
        parts = [format_ms(a.get("request_time")), f"{a.get('duration_ms')} ms"]
        if a.get("cost_usd") is not None:
            parts.append(f"${_number(a['cost_usd'])}")
    elif node.kind == "prompt_version":
        parts = ["@" + ", @".join(a["aliases"])] if a.get("aliases") else []
        parts += [str(a.get("commit_message") or ""), format_ms(a.get("created_at"))]
    elif node.kind == "evaluation_run":
        shown = [f"{k} {_number(v)}" for k, v in (a.get("aggregates") or {}).items()]
        parts = [f"{a.get('rows')} rows", *shown[:4]]
    elif node.kind == "gateway_route":
        parts = [f"{a.get('strategy')}, revision {a.get('revision')}"]
    elif node.kind == "gate_result":
        failed = a.get("failed_rules") or []
        parts = [f"failed: {'; '.join(failed)}" if failed else "", str(a.get("dataset") or "")]
    text = ", ".join(part for part in parts if part)
    return f" [dim]{_escape(text)}[/]" if text else ""


def _approval(a: dict[str, Any]) -> str:
    """``approved by bob; opened by root``, ``rejected by bob (too risky); opened by root``,
    ``pending (approved so far by ada); opened by root``."""
    decisions = a.get("decisions") or []
    status = str(a.get("status"))
    approvers = [str(d["actor"]) for d in decisions if d.get("decision") == "approve"]
    rejections = [d for d in decisions if d.get("decision") == "reject"]
    if status == "approved" and approvers:
        said = f"approved by {', '.join(approvers)}"
    elif status == "rejected" and rejections:
        last = rejections[-1]
        said = f"rejected by {last['actor']}" + (f" ({last['comment']})" if last["comment"] else "")
    elif status == "pending" and approvers:
        said = f"pending (approved so far by {', '.join(approvers)})"
    else:
        said = status
    return f"{said}; opened by {a.get('requested_by')}"


def _trigger(label: str, a: dict[str, Any]) -> str:
    """`` fired <time> by schedule <name>`` (a scheduled trigger), after the detail unless the
    fired event has its own node; a manual trigger: its detail."""
    parts = []
    if a.get("detail") and not (a.get("fired_at") and label.startswith(_EVENT_TRIGGERS)):
        parts.append(f" ({a['detail']})")
    if a.get("fired_at"):
        parts.append(f" fired {format_ms(a['fired_at'])} by schedule {a.get('schedule')}")
    return "".join(parts)


def _number(value: Any) -> str:
    """A figure to read: 4 significant digits below 1, else 4 decimals at most."""
    if value is None:
        return "n/a"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if abs(value) < 1:
        return f"{value:.4g}"
    return f"{round(value, 4):.15g}"


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def register(app: typer.Typer) -> None:
    app.command()(lineage)
