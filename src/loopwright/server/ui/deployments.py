"""``/ui/deployments``: deployments and their traffic split; a deployment's page with live
figures per variant (P50/P95/P99 latency, throughput, error rate) from the prediction log, their
charts over time and the newest requests. The figures block reloads itself every 10 s (htmx)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from ...errors import InvalidInput
from ...serving.entities import SHADOW, Deployment, Variant
from ...serving.prediction_log import log_location
from ..api._deps import State, Viewer
from ..auth import UI_PREFIX
from . import _serving_figures as live
from ._page import render, secure

__all__ = ["router"]

router = APIRouter(prefix=UI_PREFIX, include_in_schema=False)

_PINNED = re.compile(r"models:/(?P<model>[^/@]+)/(?P<version>\d+)")
_ALIASED = re.compile(r"models:/(?P<model>[^/@]+)@(?P<alias>.+)")


@dataclass(frozen=True)
class Share:
    """A variant as the traffic split shows it."""

    variant: Variant
    role: str  # primary, canary, A/B, shadow
    percent: float
    model: str | None  # the registered model the URI names
    version: str | None  # its pinned version, or None when it follows an alias
    alias: str | None


def _role(deployment: Deployment, variant: Variant) -> str:
    if variant.role == SHADOW:
        return "shadow"
    if deployment.strategy == "ab":
        return "A/B"
    return "canary" if variant.name == "canary" else "primary"


def shares(deployment: Deployment) -> list[Share]:
    found = []
    for variant in deployment.variants:
        pinned, aliased = (
            _PINNED.fullmatch(variant.model_uri),
            _ALIASED.fullmatch(variant.model_uri),
        )
        match = pinned or aliased
        found.append(
            Share(
                variant=variant,
                role=_role(deployment, variant),
                percent=round(variant.weight * 100, 2),
                model=match["model"] if match else None,
                version=pinned["version"] if pinned else None,
                alias=aliased["alias"] if aliased else None,
            )
        )
    return found


def _serving(state: State) -> dict[str, int]:
    """Deployment name -> its serving processes that reported themselves recently (one query:
    ``DeploymentService.instances`` reads one deployment at a time)."""
    import sqlalchemy as sa

    from ..._ids import now_ms
    from ...serving.deployments import HEARTBEAT_TIMEOUT_S
    from ...store import schema as t

    d, i = t.deployments.c, t.deployment_instances.c
    since = now_ms() - HEARTBEAT_TIMEOUT_S * 1000
    query = (
        sa.select(d.name, sa.func.count())
        .join(t.deployment_instances, i.deployment_id == d.id)
        .where(i.seen_at >= since)
        .group_by(d.name)
    )
    with state.store.db.read() as conn:
        return {name: count for name, count in conn.execute(query).all()}


@router.get("/deployments")
def deployments(request: Request, state: State, caller: Viewer) -> Response:
    found = state.deployments(caller).list()
    return render(
        request,
        "deployments/list.html",
        deployments=[(d, shares(d)) for d in found],
        serving=_serving(state),
    )


@router.get("/deployments/{name}")
def deployment(
    request: Request, name: str, state: State, caller: Viewer, window: str = "1h"
) -> Response:
    service = state.deployments(caller)
    found = service.get(name)
    live.window_of(window)
    figures = live.figures(log_location(state.settings), found.name, window)
    return render(
        request,
        "deployments/detail.html",
        deployment=found,
        shares=shares(found),
        instances=service.instances(found.name),
        figures=figures,
        windows=list(live.WINDOWS),
    )


@router.get("/deployments/{name}/live")
def live_block(
    request: Request,
    name: str,
    state: State,
    caller: Viewer,
    window: str = "1h",
    part: str = "figures",
) -> Response:
    """One live part alone (``figures`` or ``recent``): what the page's htmx swaps in every
    10 s."""
    if part not in ("figures", "recent"):
        raise InvalidInput(f"part {part[:40]!r} is not one of figures, recent")
    found = state.deployments(caller).get(name)
    figures = live.figures(log_location(state.settings), found.name, window)
    return render(request, "deployments/_live.html", deployment=found, figures=figures, part=part)


@router.get("/deployments/{name}/series.json")
def series(
    request: Request,
    name: str,
    state: State,
    caller: Viewer,
    window: str = "1h",
    what: str = "latency",
) -> Response:
    """A chart spec (``lw.js``): latency percentiles or throughput per time bucket."""
    found = state.deployments(caller).get(name)
    spec = live.series(log_location(state.settings), found.name, window, what)
    return secure(JSONResponse(spec, headers={"Cache-Control": "no-store"}))
