"""The lineage graph: records as nodes, how they relate as edges (see :mod:`.lineage`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

__all__ = ["Edge", "LineageGraph", "Node", "json_attrs"]


@dataclass(frozen=True)
class Node:
    """One record in the graph. ``id`` is ``<kind>:<key>`` (``model_version:churn/3``);
    ``attrs`` holds its fields as JSON values (times in UTC milliseconds)."""

    id: str
    kind: str
    label: str
    attrs: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "label": self.label, "attrs": dict(self.attrs)}


@dataclass(frozen=True)
class Edge:
    """``src`` relates to ``dst`` as ``relation`` says, read from ``src``: a model version
    ``produced_by`` an iteration, a dataset version ``used_by`` a run."""

    src: str
    dst: str
    relation: str

    def to_dict(self) -> dict[str, str]:
        return {"src": self.src, "dst": self.dst, "relation": self.relation}


@dataclass
class LineageGraph:
    """The records reached from ``root`` (the subject's node), in the order they were found.

    ``notes`` say what could not be followed and why (a walk cut at :data:`MAX_NODES`, a
    dataset scan cut short), so a missing link is never silent.
    """

    subject: str
    root: str
    nodes: list[Node] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def node(self, node_id: str) -> Node:
        for node in self.nodes:
            if node.id == node_id:
                return node
        raise KeyError(node_id)

    def out(self, node_id: str) -> list[tuple[Edge, Node]]:
        """The edges leaving ``node_id`` with the nodes they reach, in order."""
        nodes = {node.id: node for node in self.nodes}
        return [(edge, nodes[edge.dst]) for edge in self.edges if edge.src == node_id]

    def of_kind(self, kind: str) -> list[Node]:
        return [node for node in self.nodes if node.kind == kind]

    def to_dict(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "root": self.root,
            "nodes": [node.to_dict() for node in self.nodes],
            "edges": [edge.to_dict() for edge in self.edges],
            "notes": list(self.notes),
        }


def json_attrs(value: Any) -> Any:
    """Attributes as plain JSON values (tuples as lists, datetimes as ISO text)."""
    if isinstance(value, Mapping):
        return {str(key): json_attrs(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_attrs(item) for item in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)
