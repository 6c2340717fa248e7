"""``/ui/lineage?subject=&kind=``: the lineage graph of a prediction, run, pipeline run, model
version or dataset version (what ``loopwright lineage`` prints), drawn as a layered SVG with a
table of its nodes and edges.

:func:`loopwright.loop.lineage.lineage` walks through a client's services; here they are the
server's own (:func:`._services.caller_client`), as its API handlers build them for the caller,
so the walk reads the same records without a second connection to the stores.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import Response

from ...errors import InvalidInput, NotFound
from ..api._deps import State, Viewer
from ..auth import UI_PREFIX
from ._lineage_layout import NODE_HEIGHT, NODE_WIDTH, layout
from ._page import render
from ._services import caller_client

if TYPE_CHECKING:
    from ...loop.lineage import Node

__all__ = ["router"]

router = APIRouter(prefix=UI_PREFIX, include_in_schema=False)


def _key(node: Node) -> str:
    return node.id.partition(":")[2]


def page_of(node: Node) -> str | None:
    """The dashboard page of the record ``node`` stands for, if it has one."""
    key, attrs = _key(node), node.attrs
    if attrs.get("deleted"):
        return None
    if node.kind == "run":
        return f"{UI_PREFIX}/runs/{quote(key, safe='')}"
    if node.kind == "pipeline_run":
        return f"{UI_PREFIX}/pipelines/runs/{quote(key, safe='')}"
    if node.kind == "deployment":
        return f"{UI_PREFIX}/deployments/{quote(key, safe='')}"
    if node.kind == "model_version" and "model" in attrs:
        return (
            f"{UI_PREFIX}/models/{quote(str(attrs['model']), safe='')}/versions/{attrs['version']}"
        )
    if node.kind == "dataset_version" and "dataset" in attrs:
        dataset = quote(str(attrs["dataset"]), safe="")
        return f"{UI_PREFIX}/datasets/{dataset}/versions/{attrs['number']}"
    return _llm_page(node.kind, key)


def _llm_page(kind: str, key: str) -> str | None:
    """The LLM pages' records: traces, prompt versions (``name/3``), evaluations, routes."""
    if kind == "prompt_version" and "/" in key:
        name, _, number = key.rpartition("/")
        return f"{UI_PREFIX}/prompts/{quote(name, safe='')}/versions/{quote(number, safe='')}"
    pages = {"trace": "traces", "evaluation_run": "evaluations", "gateway_route": "gateway/routes"}
    return f"{UI_PREFIX}/{pages[kind]}/{quote(key, safe='')}" if kind in pages else None


def subject_of(node: Node) -> tuple[str, str] | None:
    """``(subject, kind)`` to re-centre the graph on ``node``, if lineage starts from its kind."""
    key, attrs = _key(node), node.attrs
    if attrs.get("deleted"):
        return None
    if node.kind in ("run", "pipeline_run", "prediction"):
        return key, node.kind
    if node.kind == "model_version" and "model" in attrs:
        return f"{attrs['model']}@{attrs['version']}", node.kind
    if node.kind == "dataset_version" and "dataset" in attrs:
        return f"{attrs['dataset']}@v{attrs['number']}", node.kind
    if node.kind == "trace":
        return key, node.kind
    if node.kind == "prompt_version":
        return f"prompts:/{key}", node.kind
    return None


@router.get("/lineage")
def lineage_page(
    request: Request,
    state: State,
    caller: Viewer,
    subject: str | None = None,
    kind: str | None = None,
) -> Response:
    from ...loop.lineage import KINDS, lineage

    subject = (subject or "").strip()
    kind = (kind or "").strip() or None
    form = {"subject": subject, "kind": kind or "", "kinds": KINDS}
    if not subject:
        return render(request, "lineage/graph.html", form=form, graph=None, error=None)
    if len(subject) > 1000 or "\x00" in subject:
        raise InvalidInput("the lineage subject is at most 1000 characters, without NUL")
    try:
        graph = lineage(
            caller_client(state, caller),
            subject,
            kind=cast("Any", kind),
        )
    except (NotFound, InvalidInput) as exc:
        status = 404 if isinstance(exc, NotFound) else 400
        return render(
            request, "lineage/graph.html", status=status, form=form, graph=None, error=str(exc)
        )
    placed = layout(graph)
    nodes = {node.id: node for node in graph.nodes}
    return render(
        request,
        "lineage/graph.html",
        form=form,
        graph=graph,
        error=None,
        placed=placed,
        index={n.id: f"n{i}" for i, n in enumerate(placed.nodes)},
        nodes=nodes,
        pages={n.id: page_of(n) for n in graph.nodes},
        subjects={n.id: subject_of(n) for n in graph.nodes},
        node_width=NODE_WIDTH,
        node_height=NODE_HEIGHT,
    )
