"""``/api/v1/prompts``: prompts, immutable versions, aliases, tags, diffs; and
``/api/v1/prompt-approvals``: the requests protected alias moves open.

Reading needs a viewer; registering, tagging and moving aliases an editor; deciding a request
an approver (the service checks the users table and separation of duties, as embedded);
replacing a policy an admin. The service acts as the caller, so the audit log names them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import Field

from ..._numbers import is_number
from ...registry.entities import ApprovalPolicy, ApprovalRule
from ...store import limits
from ._deps import PREFIX, Admin, Approver, Editor, State, VersionNumber, Viewer
from ._schemas import (
    ApprovalPolicyOut,
    ApprovalRequestOut,
    Body,
    DecisionIn,
    Out,
    PolicyIn,
    RejectIn,
)

if TYPE_CHECKING:
    from ...governance.tokens import Identity
    from ...prompts.service import PromptService

__all__ = ["router"]

router = APIRouter(prefix=PREFIX, tags=["prompts"])

_NAME = Field(min_length=1, max_length=limits.PROMPT_NAME)
_MAX_VERSION = limits.INT32_MAX  # versions are INTEGER columns
Status = Literal["pending", "approved", "rejected", "expired", "cancelled", "any"]


class MessageIn(Body):
    role: str = Field(min_length=1, max_length=100)
    content: str = Field(max_length=limits.PROMPT_TEMPLATE)


class PromptIn(Body):
    name: str = _NAME
    description: str | None = Field(default=None, max_length=limits.REGISTRY_TAG_VALUE)
    tags: dict[str, str] = Field(default_factory=dict, max_length=1000)


class VersionIn(Body):
    template: str | list[MessageIn]  # the service caps its size and says so
    commit_message: str | None = Field(default=None, max_length=limits.REGISTRY_TAG_VALUE)
    config: dict[str, Any] | None = Field(default=None, alias="model_config")
    response_format: dict[str, Any] | None = None
    tags: dict[str, str] = Field(default_factory=dict, max_length=1000)
    description: str | None = Field(default=None, max_length=limits.REGISTRY_TAG_VALUE)
    skip_if_unchanged: bool = False


class DescriptionIn(Body):
    description: str | None = Field(max_length=limits.REGISTRY_TAG_VALUE)


class TagValueIn(Body):
    value: str = Field(max_length=limits.REGISTRY_TAG_VALUE)


class AliasIn(Body):
    version: int = Field(ge=1, le=_MAX_VERSION)
    comment: str | None = Field(default=None, max_length=10_000)


class PromptOut(Out):
    id: str
    name: str
    description: str | None
    created_by: str | None
    created_at: int
    updated_at: int
    policy: ApprovalPolicyOut
    tags: dict[str, str]
    aliases: dict[str, int]
    latest_version: int | None


class PromptVersionOut(Out):
    id: str
    name: str
    version: int
    kind: str
    template: str | list[dict[str, Any]]
    variables: list[str]
    digest: str
    config: dict[str, Any] | None = Field(
        validation_alias="model_config", serialization_alias="model_config"
    )
    response_format: dict[str, Any] | None
    commit_message: str | None
    created_by: str | None
    created_at: int
    tags: dict[str, str]
    aliases: list[str]


class PromptRequestOut(ApprovalRequestOut):
    subject_kind: str


class AliasChangeOut(Out):
    applied: bool
    version: PromptVersionOut
    request: PromptRequestOut | None = None


class DiffOut(Out):
    diff: str


def _service(state: State, caller: Identity) -> PromptService:
    from ...prompts.service import PromptService

    return PromptService(state.store, actor=caller.user)


def _ref(ref: str) -> int | str:
    return int(ref) if is_number(ref) else ref


# --- prompts ---------------------------------------------------------------------------------


@router.get("/prompts")
def search(
    state: State,
    caller: Viewer,
    query: Annotated[str | None, Query(max_length=limits.PROMPT_NAME)] = None,
    tag: Annotated[list[str] | None, Query(max_length=50)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=limits.INT32_MAX)] = 0,
) -> list[PromptOut]:
    """Prompts whose name contains ``query``, with every ``tag=key=value``, by name."""
    tags = dict(item.partition("=")[::2] for item in tag or ())
    found = _service(state, caller).search(query, tags=tags, limit=limit, offset=offset)
    return [PromptOut.of(p) for p in found]


@router.post("/prompts", status_code=201)
def create(body: PromptIn, state: State, caller: Editor) -> PromptOut:
    """A new prompt without versions, under the server's default approval policy."""
    prompt = _service(state, caller).create(body.name, description=body.description, tags=body.tags)
    return PromptOut.of(prompt)


@router.get("/prompts/{name}")
def get(name: str, state: State, caller: Viewer) -> PromptOut:
    return PromptOut.of(_service(state, caller).get(name))


@router.patch("/prompts/{name}")
def update(name: str, body: DescriptionIn, state: State, caller: Editor) -> PromptOut:
    return PromptOut.of(_service(state, caller).update(name, description=body.description))


@router.delete("/prompts/{name}", status_code=204)
def delete(name: str, state: State, caller: Editor) -> None:
    """Delete the prompt with its versions (an admin's call when it holds a protected alias)."""
    _service(state, caller).delete(name)


@router.put("/prompts/{name}/policy")
def set_policy(name: str, body: PolicyIn, state: State, caller: Admin) -> PromptOut:
    """Replace the approval policy (alias rules); open requests keep their rule."""
    policy = ApprovalPolicy(
        tuple(ApprovalRule(r.target, r.approvals, r.role, r.gate) for r in body.rules),
        body.expires_after_s,
    )
    return PromptOut.of(_service(state, caller).set_policy(name, policy))


@router.put("/prompts/{name}/tags/{key}", status_code=204)
def set_tag(name: str, key: str, body: TagValueIn, state: State, caller: Editor) -> None:
    _service(state, caller).set_tag(name, key, body.value)


@router.delete("/prompts/{name}/tags/{key}", status_code=204)
def delete_tag(name: str, key: str, state: State, caller: Editor) -> None:
    _service(state, caller).delete_tag(name, key)


# --- versions --------------------------------------------------------------------------------


@router.post("/prompts/{name}/versions", status_code=201)
def register(name: str, body: VersionIn, state: State, caller: Editor) -> PromptVersionOut:
    """A new immutable version (the prompt is created if missing)."""
    template = (
        body.template if isinstance(body.template, str) else [m.model_dump() for m in body.template]
    )
    version = _service(state, caller).register(
        name,
        template,
        commit_message=body.commit_message,
        model_config=body.config,
        response_format=body.response_format,
        tags=body.tags,
        description=body.description,
        skip_if_unchanged=body.skip_if_unchanged,
    )
    return PromptVersionOut.of(version)


@router.get("/prompts/{name}/versions")
def versions(name: str, state: State, caller: Viewer) -> list[PromptVersionOut]:
    return [PromptVersionOut.of(v) for v in _service(state, caller).versions(name)]


@router.get("/prompts/{name}/versions/{ref}")
def resolve(name: str, ref: str, state: State, caller: Viewer) -> PromptVersionOut:
    """The version ``ref`` names: a number, an alias or ``latest``."""
    return PromptVersionOut.of(_service(state, caller).resolve(name, _ref(ref)))


@router.put("/prompts/{name}/versions/{version}/tags/{key}", status_code=204)
def set_version_tag(
    name: str, version: VersionNumber, key: str, body: TagValueIn, state: State, caller: Editor
) -> None:
    _service(state, caller).set_version_tag(name, version, key, body.value)


@router.delete("/prompts/{name}/versions/{version}/tags/{key}", status_code=204)
def delete_version_tag(
    name: str, version: VersionNumber, key: str, state: State, caller: Editor
) -> None:
    _service(state, caller).delete_version_tag(name, version, key)


@router.get("/prompts/{name}/diff")
def diff(
    name: str,
    state: State,
    caller: Viewer,
    v1: Annotated[str, Query(min_length=1, max_length=limits.ALIAS)],
    v2: Annotated[str, Query(min_length=1, max_length=limits.ALIAS)],
) -> DiffOut:
    return DiffOut(diff=_service(state, caller).diff(name, _ref(v1), _ref(v2)))


# --- aliases and approvals -------------------------------------------------------------------


@router.put("/prompts/{name}/aliases/{alias}")
def set_alias(name: str, alias: str, body: AliasIn, state: State, caller: Editor) -> AliasChangeOut:
    """Move the alias, or open an approval request if the policy protects it."""
    change = _service(state, caller).set_alias(name, alias, body.version, comment=body.comment)
    return AliasChangeOut.of(change)


@router.delete("/prompts/{name}/aliases/{alias}", status_code=204)
def delete_alias(name: str, alias: str, state: State, caller: Editor) -> None:
    """Remove the alias (a protected one: admins only)."""
    _service(state, caller).delete_alias(name, alias)


@router.get("/prompt-approvals")
def requests(
    state: State,
    caller: Viewer,
    status: Status = "pending",
    prompt: Annotated[str | None, Query(max_length=limits.PROMPT_NAME)] = None,
) -> list[PromptRequestOut]:
    """Requests about prompt versions with ``status`` (``any``: all), oldest first."""
    found = _service(state, caller).requests(None if status == "any" else status, prompt)
    return [PromptRequestOut.of(r) for r in found]


@router.get("/prompt-approvals/{request_id}")
def get_request(request_id: str, state: State, caller: Viewer) -> PromptRequestOut:
    return PromptRequestOut.of(_service(state, caller).get_request(request_id))


@router.post("/prompt-approvals/{request_id}/approve")
def approve(request_id: str, body: DecisionIn, state: State, caller: Approver) -> PromptRequestOut:
    """Approve as the caller; the last approval needed moves the alias."""
    return PromptRequestOut.of(_service(state, caller).approve(request_id, body.comment))


@router.post("/prompt-approvals/{request_id}/reject")
def reject(request_id: str, body: RejectIn, state: State, caller: Approver) -> PromptRequestOut:
    """Reject as the caller, saying why; nothing moves."""
    return PromptRequestOut.of(_service(state, caller).reject(request_id, body.comment))
