"""A lineage graph laid out in layers for SVG: the subject in its own column, what it came from
in the columns to its right (one per step of provenance), what came of it to its left.

Layers: each edge leads one column away from the subject, rightwards when it points at
provenance (``used``, ``produced_by`` ...) and leftwards for ``used_by`` and ``registered``;
a breadth-first pass places each node, then provenance edges push their targets right as far as
the longest path from the subject needs (bounded: the graph may hold cycles). Within a column,
nodes are ordered by the mean row of their neighbours in the previous column (barycenter),
sweeping outwards from the subject a few times.
"""

from __future__ import annotations

from collections import defaultdict, deque
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ...loop.lineage import LineageGraph

__all__ = ["DOWNSTREAM", "Layout", "PlacedEdge", "PlacedNode", "layout"]

DOWNSTREAM = frozenset({"used_by", "registered"})
NODE_WIDTH = 190
NODE_HEIGHT = 44
COLUMN = 260  # distance between column starts
ROW = 64
MARGIN = 16
_SWEEPS = 4


@dataclass(frozen=True)
class PlacedNode:
    id: str
    kind: str
    label: str
    layer: int
    x: int
    y: int
    root: bool


@dataclass(frozen=True)
class PlacedEdge:
    src: str
    dst: str
    relation: str
    path: str  # SVG path data, from the side of src to the side of dst
    label_x: int
    label_y: int


@dataclass(frozen=True)
class Layout:
    nodes: list[PlacedNode]
    edges: list[PlacedEdge]
    width: int
    height: int


def _layers(graph: LineageGraph) -> dict[str, int]:
    step: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for edge in graph.edges:
        sign = -1 if edge.relation in DOWNSTREAM else 1
        step[edge.src].append((edge.dst, sign))
        step[edge.dst].append((edge.src, -sign))
    layer = {graph.root: 0}
    queue = deque([graph.root])
    while queue:
        current = queue.popleft()
        for other, sign in step[current]:
            if other not in layer:
                layer[other] = layer[current] + sign
                queue.append(other)
    for node in graph.nodes:  # not reached from the root (should not happen): a column apart
        layer.setdefault(node.id, max(layer.values(), default=0) + 1)
    # Longest path for provenance, relaxed a bounded number of times (cycles cannot loop).
    for _ in range(len(graph.nodes)):
        moved = False
        for edge in graph.edges:
            if edge.relation in DOWNSTREAM or edge.dst == graph.root:
                continue
            if layer[edge.src] >= 0 and layer[edge.dst] < layer[edge.src] + 1:
                layer[edge.dst] = layer[edge.src] + 1
                moved = True
        if not moved:
            break
    return layer


def _order(graph: LineageGraph, layer: dict[str, int]) -> dict[int, list[str]]:
    columns: dict[int, list[str]] = defaultdict(list)
    for node in graph.nodes:  # the walk's order: a stable first guess
        columns[layer[node.id]].append(node.id)
    neighbours: dict[str, set[str]] = defaultdict(set)
    for edge in graph.edges:
        neighbours[edge.src].add(edge.dst)
        neighbours[edge.dst].add(edge.src)
    right = sorted(k for k in columns if k > 0)
    left = sorted((k for k in columns if k < 0), reverse=True)
    for _ in range(_SWEEPS):
        for sequence, towards in ((right, -1), (left, 1)):
            for column in sequence:
                previous = {n: i for i, n in enumerate(columns[column + towards])}

                def centre(node: str, previous: dict[str, int] = previous) -> float:
                    rows = [previous[n] for n in neighbours[node] if n in previous]
                    return sum(rows) / len(rows) if rows else float("inf")

                columns[column].sort(key=centre)
    return columns


def layout(graph: LineageGraph) -> Layout:
    """Positions for every node and a path for every edge of ``graph``."""
    layer = _layers(graph)
    columns = _order(graph, layer)
    low = min(columns, default=0)
    tallest = max((len(c) for c in columns.values()), default=1)
    height = 2 * MARGIN + tallest * ROW
    kinds = {node.id: node for node in graph.nodes}
    placed: dict[str, PlacedNode] = {}
    for column, members in columns.items():
        top = MARGIN + (tallest - len(members)) * ROW // 2  # centred in the column
        for row, node_id in enumerate(members):
            node = kinds[node_id]
            placed[node_id] = PlacedNode(
                id=node_id,
                kind=node.kind,
                label=node.label,
                layer=column,
                x=MARGIN + (column - low) * COLUMN,
                y=top + row * ROW,
                root=node_id == graph.root,
            )
    edges = []
    linked = {(edge.src, edge.dst) for edge in graph.edges}
    for edge in graph.edges:
        a, b = placed[edge.src], placed[edge.dst]
        # Two records linked both ways (a run registered a model trained in it): the two
        # curves and their labels are drawn apart, one above the other.
        apart = 0 if (edge.dst, edge.src) not in linked else (-6 if edge.src < edge.dst else 6)
        ax = a.x + (NODE_WIDTH if b.x > a.x else 0)
        bx = b.x + (0 if b.x > a.x else NODE_WIDTH)
        if a.x == b.x:  # same column: loop out on the right
            ax = bx = a.x + NODE_WIDTH
        ay, by = a.y + NODE_HEIGHT // 2 + apart, b.y + NODE_HEIGHT // 2 + apart
        bend = max(abs(bx - ax) // 2, 40)
        if a.x == b.x:
            first, second = ax + bend, bx + bend
        elif bx > ax:
            first, second = ax + bend, bx - bend
        else:
            first, second = ax - bend, bx + bend
        path = f"M{ax},{ay} C{first},{ay} {second},{by} {bx},{by}"
        edges.append(
            PlacedEdge(
                edge.src, edge.dst, edge.relation, path, (ax + bx) // 2, (ay + by) // 2 - 4 + apart
            )
        )
    width = 2 * MARGIN + (max(columns, default=0) - low) * COLUMN + NODE_WIDTH
    return Layout(list(placed.values()), edges, width, height)
