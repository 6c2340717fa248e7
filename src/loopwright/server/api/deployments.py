"""``/api/v1/deployments``: named endpoints and their traffic policies.

Reading is open to viewers; changes (and serving processes' heartbeats) need an editor. A change
giving an unapproved model version live traffic is refused with 403 naming the approval request
it opened, as embedded (``serving.deployments``).
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Response
from pydantic import Field

from ...serving.entities import Variant
from ...store import limits
from ._deps import PREFIX, Editor, State, Viewer
from ._schemas import Body, Number, Out

__all__ = ["router"]

router = APIRouter(prefix=PREFIX, tags=["deployments"])


class VariantIn(Body):
    name: str = Field(min_length=1, max_length=64)
    model_uri: str = Field(min_length=1, max_length=1000)
    weight: Number
    role: Literal["live", "shadow"] = "live"


class DeploymentIn(Body):
    name: str = Field(min_length=1, max_length=limits.DEPLOYMENT_NAME)
    model_uri: str = Field(min_length=1, max_length=1000)
    description: str | None = None


class TrafficIn(Body):
    variants: list[VariantIn] = Field(max_length=100)
    strategy: Literal["primary", "canary", "ab"] | None = None
    sticky_header: str | None = Field(default=None, max_length=100)
    expect_revision: int | None = Field(default=None, ge=1, le=limits.INT32_MAX)


class RollbackIn(Body):
    to_revision: int | None = Field(default=None, ge=1, le=limits.INT32_MAX)


class HeartbeatIn(Body):
    url: str = Field(min_length=1, max_length=500)
    pid: int = Field(ge=0, le=2**31 - 1)
    host: str = Field(max_length=255)


class VariantOut(Out):
    name: str
    model_uri: str
    weight: float
    role: str


class DeploymentOut(Out):
    name: str
    strategy: str
    variants: list[VariantOut]
    sticky_header: str | None
    revision: int
    description: str | None
    created_by: str
    created_at: int
    updated_by: str
    updated_at: int


class DeploymentRevisionOut(Out):
    deployment: str
    revision: int
    strategy: str
    variants: list[VariantOut]
    sticky_header: str | None
    action: str
    actor: str
    created_at: int


class ServingInstanceOut(Out):
    deployment: str
    url: str
    pid: int
    host: str
    started_at: int
    seen_at: int


@router.get("/deployments")
def list_deployments(state: State, caller: Viewer) -> list[DeploymentOut]:
    """Every deployment, by name."""
    return [DeploymentOut.of(d) for d in state.deployments(caller).list()]


@router.post("/deployments", status_code=201)
def create_deployment(body: DeploymentIn, state: State, caller: Editor) -> DeploymentOut:
    """A new deployment sending all traffic to ``model_uri``."""
    created = state.deployments(caller).create(
        body.name, body.model_uri, description=body.description
    )
    return DeploymentOut.of(created)


@router.get("/deployments/{name}")
def get_deployment(name: str, state: State, caller: Viewer) -> DeploymentOut:
    return DeploymentOut.of(state.deployments(caller).get(name))


@router.delete("/deployments/{name}", status_code=204)
def delete_deployment(name: str, state: State, caller: Editor) -> Response:
    """Remove the deployment; its history stays in the audit log."""
    state.deployments(caller).delete(name)
    return Response(status_code=204)


@router.put("/deployments/{name}/traffic")
def set_traffic(name: str, body: TrafficIn, state: State, caller: Editor) -> DeploymentOut:
    """Replace the traffic policy (a new revision)."""
    # The weight as sent: the service refuses one past the float range (float() would raise).
    variants = [Variant(v.name, v.model_uri, v.weight, v.role) for v in body.variants]
    changed = state.deployments(caller).set_traffic(
        name,
        variants,
        strategy=body.strategy,
        sticky_header=body.sticky_header,
        expect_revision=body.expect_revision,
    )
    return DeploymentOut.of(changed)


@router.post("/deployments/{name}/promote")
def promote(name: str, state: State, caller: Editor) -> DeploymentOut:
    """Make the canary the primary."""
    return DeploymentOut.of(state.deployments(caller).promote(name))


@router.post("/deployments/{name}/rollback")
def rollback(name: str, body: RollbackIn, state: State, caller: Editor) -> DeploymentOut:
    """Restore an earlier revision's policy (default: the one before the current)."""
    return DeploymentOut.of(state.deployments(caller).rollback(name, body.to_revision))


@router.get("/deployments/{name}/history")
def history(name: str, state: State, caller: Viewer) -> list[DeploymentRevisionOut]:
    """Every revision, oldest first."""
    return [DeploymentRevisionOut.of(r) for r in state.deployments(caller).history(name)]


@router.get("/deployments/{name}/instances")
def instances(name: str, state: State, caller: Viewer) -> list[ServingInstanceOut]:
    """Serving processes that reported themselves recently."""
    return [ServingInstanceOut.of(i) for i in state.deployments(caller).instances(name)]


@router.post("/deployments/{name}/heartbeat")
def heartbeat(name: str, body: HeartbeatIn, state: State, caller: Editor) -> ServingInstanceOut:
    """A serving process reports that it serves the deployment now."""
    seen = state.deployments(caller).heartbeat(name, body.url, body.pid, body.host)
    return ServingInstanceOut.of(seen)
