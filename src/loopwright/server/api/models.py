"""``/api/v1/models``: registered models, their tags, approval policies, cards and aliases.

Registry calls act as the caller (``state.registry(identity)``), so audit events, separation of
duties and the admin-only deletion of protected aliases all see the real user.
"""

from __future__ import annotations

from fastapi import APIRouter, Response

from ...registry.entities import ApprovalPolicy, ApprovalRequest, ApprovalRule, ModelVersion
from ._deps import PREFIX, Admin, Editor, State, Viewer
from ._schemas import (
    AliasIn,
    ApprovalPolicyOut,
    ApprovalRequestOut,
    CardIn,
    ChangeOut,
    DescriptionIn,
    ModelIn,
    ModelVersionOut,
    PolicyIn,
    RegisteredModelOut,
    RenameIn,
    TagIn,
)

__all__ = ["change_out", "router"]

router = APIRouter(prefix=PREFIX, tags=["models"])


def change_out(result: ModelVersion | ApprovalRequest, response: Response) -> ChangeOut:
    """A move applied at once (200) or an approval request opened instead (202)."""
    if isinstance(result, ApprovalRequest):
        response.status_code = 202
        return ChangeOut(applied=False, request=ApprovalRequestOut.of(result))
    return ChangeOut(applied=True, version=ModelVersionOut.of(result))


@router.get("/models")
def list_models(state: State, caller: Viewer, filter: str = "") -> list[RegisteredModelOut]:
    """Every registered model by name, or those matching ``filter``
    (e.g. ``name LIKE 'churn%' AND tags.team = 'risk'``)."""
    registry = state.registry(caller)
    found = registry.search_models(filter) if filter else registry.list_models()
    return [RegisteredModelOut.of(m) for m in found]


@router.post("/models", status_code=201)
def create_model(body: ModelIn, state: State, caller: Editor) -> RegisteredModelOut:
    """Register a model name under the server's default approval policy (the
    ``default_approval_policy`` setting: ``protect`` or ``none``)."""
    created = state.registry(caller).create_model(
        body.name, description=body.description, tags=body.tags
    )
    return RegisteredModelOut.of(created)


@router.get("/models/{name}")
def get_model(name: str, state: State, caller: Viewer) -> RegisteredModelOut:
    return RegisteredModelOut.of(state.registry(caller).get_model(name))


@router.patch("/models/{name}")
def update_model(
    name: str, body: DescriptionIn, state: State, caller: Editor
) -> RegisteredModelOut:
    updated = state.registry(caller).update_model(name, description=body.description)
    return RegisteredModelOut.of(updated)


@router.post("/models/{name}/rename")
def rename_model(name: str, body: RenameIn, state: State, caller: Editor) -> RegisteredModelOut:
    """Rename the model; its versions, aliases, stages and requests move with it. While the
    policy protects an alias it has or a stage in use, only an enabled admin may."""
    return RegisteredModelOut.of(state.registry(caller).rename_model(name, body.new_name))


@router.delete("/models/{name}", status_code=204)
def delete_model(name: str, state: State, caller: Editor) -> None:
    """Delete the model and its versions; refused while aliases or Production versions remain."""
    state.registry(caller).delete_model(name)


@router.put("/models/{name}/tags/{key:path}")
def set_model_tag(
    name: str, key: str, body: TagIn, state: State, caller: Editor
) -> RegisteredModelOut:
    return RegisteredModelOut.of(state.registry(caller).set_model_tag(name, key, body.value))


@router.delete("/models/{name}/tags/{key:path}")
def delete_model_tag(name: str, key: str, state: State, caller: Editor) -> RegisteredModelOut:
    return RegisteredModelOut.of(state.registry(caller).delete_model_tag(name, key))


@router.get("/models/{name}/policy")
def get_policy(name: str, state: State, caller: Viewer) -> ApprovalPolicyOut:
    return ApprovalPolicyOut.of(state.registry(caller).get_model(name).policy)


@router.put("/models/{name}/policy")
def set_policy(name: str, body: PolicyIn, state: State, caller: Admin) -> ApprovalPolicyOut:
    """Replace the approval policy; open requests keep the rule they were opened under."""
    policy = ApprovalPolicy(
        tuple(ApprovalRule(r.target, r.approvals, r.role, r.gate) for r in body.rules),
        body.expires_after_s,
    )
    return ApprovalPolicyOut.of(state.registry(caller).set_policy(name, policy).policy)


@router.patch("/models/{name}/card")
def set_card_info(name: str, body: CardIn, state: State, caller: Editor) -> RegisteredModelOut:
    """Set model-card sections (``intended_use``, ``limitations`` …; null removes one)."""
    return RegisteredModelOut.of(state.registry(caller).set_card_info(name, **body.fields))


@router.put("/models/{name}/aliases/{alias}", responses={202: {"model": ChangeOut}})
def set_alias(
    name: str, alias: str, body: AliasIn, response: Response, state: State, caller: Editor
) -> ChangeOut:
    """Point ``alias`` at a version, or open an approval request if the policy protects it."""
    change = state.registry(caller).set_alias(name, alias, body.version, comment=body.comment)
    return change_out(change.version if change.request is None else change.request, response)


@router.delete("/models/{name}/aliases/{alias}", status_code=204)
def delete_alias(name: str, alias: str, state: State, caller: Editor) -> None:
    """Remove ``alias``; a protected one only by an enabled admin."""
    state.registry(caller).delete_alias(name, alias)
