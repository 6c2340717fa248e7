"""``/ui/lineage?subject=&kind=``: the lineage graph of a prediction, run, pipeline run, model
version or dataset version (what ``loopwright lineage`` prints), drawn as a layered SVG with a
table of its nodes and edges.

:func:`loopwright.loop.lineage.lineage` walks through a client's services; here they are the
server's own (:class:`_ServerServices`), as its API handlers build them for the caller, so the
walk reads the same records without a second connection to the stores.
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

if TYPE_CHECKING:
    from ...client import Client
    from ...governance.tokens import Identity
    from ...loop.lineage import Node
    from .._state import ServerState

__all__ = ["router"]

router = APIRouter(prefix=UI_PREFIX, include_in_schema=False)


class _ServerServices:
    """The services :func:`lineage` reads, on the server's stores and acting for the caller
    (built lazily: most walks touch a few of them)."""

    def __init__(self, state: ServerState, caller: Identity) -> None:
        self._state = state
        self._caller = caller
        self._made: dict[str, Any] = {}

    def _once(self, name: str, make: Any) -> Any:
        if name not in self._made:
            self._made[name] = make()
        return self._made[name]

    @property
    def tracking(self) -> Any:
        return self._state.tracking

    @property
    def datasets(self) -> Any:
        return self._state.datasets

    @property
    def registry(self) -> Any:
        return self._once("registry", lambda: self._state.registry(self._caller))

    @property
    def deployments(self) -> Any:
        return self._once("deployments", lambda: self._state.deployments(self._caller))

    @property
    def features(self) -> Any:
        return self._state.features()

    @property
    def prediction_log(self) -> Any:
        from ...serving.prediction_log import log_location
        from ...serving.predictions import PredictionService

        return self._once(
            "prediction_log", lambda: PredictionService(log_location(self._state.settings))
        )

    @property
    def monitoring(self) -> Any:
        from ...monitoring.service import MonitoringService

        return self._once(
            "monitoring",
            lambda: MonitoringService(
                self._state.store, self.prediction_log, actor=self._caller.user
            ),
        )

    @property
    def pipelines(self) -> Any:
        from ...pipelines.service import PipelineService

        return self._once(
            "pipelines", lambda: PipelineService(self._state.store, tracking=self._state.tracking)
        )

    @property
    def schedules(self) -> Any:
        from ...loop.schedules import ScheduleService

        return self._once(
            "schedules", lambda: ScheduleService(self._state.store, actor=self._caller.user)
        )

    @property
    def gates(self) -> Any:
        from ...loop._gate_records import GateService

        return self._once("gates", lambda: GateService(self._state.store, actor=self._caller.user))

    @property
    def loops(self) -> Any:
        from ...loop.service import LoopService

        return self._once("loops", lambda: LoopService(self._state.store, actor=self._caller.user))


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
    return None


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
            cast("Client", _ServerServices(state, caller)),
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
