"""The lineage tree's wording, on a graph built by hand: each line reads as a sentence (an edge's
name is not repeated by its node's kind, an approval request says what it would change, its end
and who opened it; a drift trigger says when and by which schedule it fired, leaving the alert's
figures to the alert's line), figures are rounded, and the JSON form keeps every attribute."""

from __future__ import annotations

import io

from rich.console import Console

from loopwright.cli.lineage import render
from loopwright.loop._lineage_graph import Edge, LineageGraph, Node

AT = 1_796_450_000_000
DETAIL = (
    "drift alert psi:input.age>0.2 of monitor churn-drift (value 0.3870967741935484, alert "
    "a1): psi is 0.3871 (> 0.2) on monitor 'churn-drift' of deployment 'churn-api'"
)


def _graph() -> LineageGraph:
    version = Node("model_version:churn/3", "model_version", "models:/churn/3", {})
    iteration = Node(
        "iteration:i1", "iteration", "ct #2: comparing",
        {"reason": None, "waiting": "promotion waits for approval request r2 (alias champion "
         "-> version 3)"},
    )  # fmt: skip
    trigger = Node(
        "trigger:i1", "trigger", "drift:churn-drift",
        {"trigger": "drift:churn-drift", "detail": DETAIL, "schedule": "loop:ct:1",
         "event_key": "a1", "fired_at": AT},
    )  # fmt: skip
    alert = Node(
        "alert:a1", "alert", "churn-drift: psi:input.age>0.2 (open)",
        {"value": 0.3870967741935484, "threshold": 0.2, "message": "psi is 0.3871",
         "opened_at": AT},
    )  # fmt: skip
    traffic = Node(
        "approval_request:r1", "approval_request", "r1 (traffic for version 3)",
        {"status": "approved", "requested_by": "root", "decisions": [
            {"actor": "bob", "decision": "approve", "comment": "ok"}]},
    )  # fmt: skip
    champion = Node(
        "approval_request:r2", "approval_request", "r2 (alias champion for version 3)",
        {"status": "pending", "requested_by": "root", "decisions": []},
    )  # fmt: skip
    rejected = Node(
        "approval_request:r3", "approval_request", "r3 (stage Production for version 3)",
        {"status": "rejected", "requested_by": "root", "decisions": [
            {"actor": "eve", "decision": "reject", "comment": "not in the freeze"}]},
    )  # fmt: skip
    graph = LineageGraph("churn@3", version.id)
    graph.nodes += [version, iteration, trigger, alert, traffic, champion, rejected]
    graph.edges += [
        Edge(version.id, iteration.id, "produced_by"),
        Edge(iteration.id, trigger.id, "triggered_by"),
        Edge(trigger.id, alert.id, "alert"),
        Edge(version.id, traffic.id, "approval"),
        Edge(version.id, champion.id, "approval"),
        Edge(version.id, rejected.id, "approval"),
    ]
    return graph


def _text(graph: LineageGraph) -> str:
    out = io.StringIO()
    Console(file=out, width=400, color_system=None).print(render(graph))
    return out.getvalue()


def test_each_line_reads_as_a_sentence() -> None:
    lines = [line.lstrip("│├└─ ") for line in _text(_graph()).splitlines()]
    assert "approval request r1 (traffic for version 3): approved by bob; opened by root" in lines
    assert "approval request r2 (alias champion for version 3): pending; opened by root" in lines
    assert (
        "approval request r3 (stage Production for version 3): rejected by eve "
        "(not in the freeze); opened by root"
    ) in lines
    (trigger,) = [line for line in lines if "trigger drift:churn-drift" in line]
    assert trigger.startswith("triggered_by trigger drift:churn-drift fired ")
    assert trigger.endswith(" by schedule loop:ct:1")
    (alert,) = [line for line in lines if line.startswith("alert ")]
    assert alert.startswith("alert churn-drift: psi:input.age>0.2 (open) value 0.3871, opened ")
    text = "\n".join(lines)
    assert "0.38709" not in text and text.count("psi is") == 0
    assert "approval approval" not in text and "alert alert" not in text
    assert (
        "produced_by iteration ct #2: comparing (promotion waits for approval request r2 (alias "
        "champion -> version 3))"
    ) in lines


def test_a_manual_trigger_keeps_its_detail_and_json_keeps_everything() -> None:
    graph = _graph()
    graph.nodes[2] = Node("trigger:i1", "trigger", "manual", {"detail": "after the fix"})
    assert "trigger manual (after the fix)" in _text(graph)
    document = _graph().to_dict()
    (trigger,) = [n for n in document["nodes"] if n["kind"] == "trigger"]
    assert trigger["attrs"]["detail"] == DETAIL  # --json is complete
    (alert,) = [n for n in document["nodes"] if n["kind"] == "alert"]
    assert alert["attrs"]["value"] == 0.3870967741935484
