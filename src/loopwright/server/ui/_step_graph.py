"""A pipeline run's step graph laid out for SVG: steps as boxes in topological layers (left to
right), an edge from the step that produced a value to each step that took it.

Dependencies are not stored as such: a step's inputs are the artifacts it took, with the digest
of their content, so a step depends on the earlier step whose outputs hold an input's digest
(literal parameters have no producer). Equal outputs of two steps go to the one that started
last before the consumer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ...pipelines.entities import StepRun

__all__ = ["BOX_H", "BOX_W", "Box", "Edge", "Graph", "layout"]

BOX_W, BOX_H = 190, 62
GAP_X, GAP_Y, MARGIN = 70, 22, 12


@dataclass(frozen=True)
class Box:
    step: StepRun
    layer: int
    x: int
    y: int


@dataclass(frozen=True)
class Edge:
    path: str  # an SVG path from the producer's right side to the consumer's left side
    label: str  # what passed along it (the producer's output name -> the input name)


@dataclass(frozen=True)
class Graph:
    boxes: tuple[Box, ...]
    edges: tuple[Edge, ...]
    width: int
    height: int


def _producers(steps: Sequence[StepRun]) -> dict[str, list[tuple[StepRun, str]]]:
    """step id -> the (producer, label) pairs of its inputs."""
    made: dict[str, list[tuple[StepRun, str]]] = {}
    for step in steps:
        for output in step.outputs:
            made.setdefault(output.digest, []).append((step, output.name))
    found: dict[str, list[tuple[StepRun, str]]] = {}
    for step in steps:
        pairs: dict[str, tuple[StepRun, str]] = {}
        for value in step.inputs:
            earlier = [
                (p, name)
                for p, name in made.get(value.digest, ())
                if p.id != step.id and p.started_at <= step.started_at
            ]
            if earlier:
                producer, name = max(earlier, key=lambda pair: (pair[0].started_at, pair[0].id))
                pairs.setdefault(producer.id, (producer, f"{name} → {value.name}"))
        found[step.id] = list(pairs.values())
    return found


def layout(steps: Sequence[StepRun]) -> Graph:
    """The boxes and edges of ``steps`` (in the order they started)."""
    ordered = sorted(steps, key=lambda s: (s.started_at, s.id))
    producers = _producers(ordered)
    layer: dict[str, int] = {}
    for step in ordered:  # a producer started first, so its layer is known
        above = [layer[p.id] for p, _ in producers[step.id] if p.id in layer]
        layer[step.id] = 1 + max(above) if above else 0
    rows: dict[int, int] = {}
    boxes: dict[str, Box] = {}
    for step in ordered:
        column = layer[step.id]
        row = rows.get(column, 0)
        rows[column] = row + 1
        x = MARGIN + column * (BOX_W + GAP_X)
        y = MARGIN + row * (BOX_H + GAP_Y)
        boxes[step.id] = Box(step, column, x, y)
    edges = []
    for step in ordered:
        to = boxes[step.id]
        for producer, label in producers[step.id]:
            start = boxes[producer.id]
            x1, y1 = start.x + BOX_W, start.y + BOX_H // 2
            x2, y2 = to.x - 6, to.y + BOX_H // 2
            bend = (x2 - x1) // 2
            path = f"M{x1},{y1} C{x1 + bend},{y1} {x2 - bend},{y2} {x2},{y2}"
            edges.append(Edge(path, label))
    columns = max(layer.values(), default=-1) + 1
    height = max(rows.values(), default=0)
    return Graph(
        boxes=tuple(boxes.values()),
        edges=tuple(edges),
        width=max(2 * MARGIN + columns * BOX_W + max(columns - 1, 0) * GAP_X, 200),
        height=max(2 * MARGIN + height * BOX_H + max(height - 1, 0) * GAP_Y, 60),
    )
