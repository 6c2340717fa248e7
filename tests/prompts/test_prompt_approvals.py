"""Protected prompt aliases move only through approval requests, under the registry's rules:
quorum, roles, separation of duties, rejection, expiry, audit; model requests stay apart."""

from __future__ import annotations

import pytest
from _prompt_world import AsUser, Clock

from loopwright.errors import (
    ApprovalExpired,
    ApprovalNotAllowed,
    Conflict,
    InvalidInput,
    NotFound,
    PermissionDenied,
)
from loopwright.prompts.service import PromptService
from loopwright.registry.entities import ApprovalPolicy, ApprovalRule
from loopwright.registry.service import RegistryService
from loopwright.store.audit import events, verify_chain
from loopwright.store.home import Store

POLICY = ApprovalPolicy(
    rules=(ApprovalRule("alias:production", approvals=2, role="approver"),),
    expires_after_s=3600,
)


@pytest.fixture
def registered(as_user: AsUser) -> PromptService:
    """``support`` v1 and v2 by ada under POLICY (two approvers move ``production``)."""
    ada: PromptService = as_user("ada")  # mypy reads the bare-name helper import as Any
    ada.create("support", policy=POLICY)
    ada.register("support", "v1 {{ q }}")
    ada.register("support", "v2 {{ q }}")
    return ada


def test_a_protected_move_waits_for_the_quorum_then_moves_audited(
    registered: PromptService, as_user: AsUser, store: Store
) -> None:
    change = registered.set_alias("support", "production", 2, comment="eval passed")
    assert not change.applied and change.request is not None
    request = change.request
    assert (request.model, request.version, request.subject_kind) == ("support", 2, "prompt")
    assert registered.get("support").aliases == {}
    # Asking again returns the same pending request.
    again = registered.set_alias("support", "production", 2).request
    assert again is not None and again.id == request.id
    assert as_user("bea").approve(request.id).status == "pending"
    assert registered.get("support").aliases == {}
    done = as_user("cyd").approve(request.id, "ok")
    assert done.status == "approved" and done.approvals == 2
    assert registered.get("support").aliases == {"production": 2}
    assert registered.load("prompts:/support@production").version == 2
    actions = [e.action for e in events(store.db) if e.action.startswith(("approval", "prompt_a"))]
    assert actions == [
        "approval.request",
        "approval.approve",
        "approval.approve",
        "prompt_alias.set",
    ]
    moved = next(e for e in events(store.db) if e.action == "prompt_alias.set")
    assert moved.actor == "cyd"
    assert moved.after["comment"] == f"approved request {request.id}"
    assert verify_chain(store.db).ok


def test_separation_of_duties_roles_and_one_decision_each(
    registered: PromptService, as_user: AsUser
) -> None:
    request = as_user("bea").set_alias("support", "production", 1).request
    assert request is not None
    with pytest.raises(ApprovalNotAllowed, match="registered version 1"):
        as_user("ada").approve(request.id)  # registered the version (and is only an editor)
    with pytest.raises(ApprovalNotAllowed, match="opened request"):
        as_user("bea").approve(request.id)  # asked for the move
    with pytest.raises(ApprovalNotAllowed, match="role 'viewer'"):
        as_user("dan").approve(request.id)
    with pytest.raises(ApprovalNotAllowed, match="disabled"):
        as_user("eve").approve(request.id)
    with pytest.raises(ApprovalNotAllowed, match="not a registered user"):
        as_user("zed").approve(request.id)
    as_user("cyd").approve(request.id)
    with pytest.raises(Conflict, match="already decided"):
        as_user("cyd").approve(request.id)
    assert registered.get_request(request.id).status == "pending"


def test_a_rejection_says_why_and_moves_nothing(registered: PromptService, as_user: AsUser) -> None:
    request = registered.set_alias("support", "production", 2).request
    assert request is not None
    with pytest.raises(InvalidInput, match="needs a comment"):
        as_user("bea").reject(request.id, " ")
    rejected = as_user("bea").reject(request.id, "eval regressed on refunds")
    assert rejected.status == "rejected"
    assert registered.get("support").aliases == {}
    with pytest.raises(Conflict, match="is rejected"):
        as_user("cyd").approve(request.id)


def test_an_expired_request_cannot_be_decided(
    registered: PromptService, as_user: AsUser, clock: Clock
) -> None:
    request = registered.set_alias("support", "production", 2).request
    assert request is not None
    clock.now += 3600 * 1000 + 1
    with pytest.raises(ApprovalExpired, match="ask again"):
        as_user("bea").approve(request.id)
    assert registered.get_request(request.id).status == "expired"
    fresh = registered.set_alias("support", "production", 2).request
    assert fresh is not None and fresh.id != request.id
    assert [r.id for r in registered.requests()] == [fresh.id]
    assert [r.status for r in registered.requests(None, "support")] == ["expired", "pending"]


def test_unprotected_aliases_move_at_once_and_protected_ones_are_deleted_by_admins(
    registered: PromptService, as_user: AsUser
) -> None:
    assert registered.set_alias("support", "staging", 1).applied
    request = registered.set_alias("support", "production", 1).request
    assert request is not None
    as_user("bea").approve(request.id)
    as_user("cyd").approve(request.id)
    with pytest.raises(PermissionDenied, match="only an enabled admin"):
        registered.delete_alias("support", "production")
    with pytest.raises(PermissionDenied, match="holds protected aliases"):
        registered.delete("support")
    registered.delete_alias("support", "staging")
    as_user("fay").delete_alias("support", "production")
    assert registered.get("support").aliases == {}


def test_an_editor_cannot_delete_a_prompt_to_shed_its_policy_or_requests(
    registered: PromptService, as_user: AsUser
) -> None:
    # Its own policy, no alias held yet: deleting and recreating would fall back to the default.
    with pytest.raises(PermissionDenied, match="has an approval policy of its own"):
        registered.delete("support")
    assert registered.get("support").policy == POLICY
    # The default policy but a pending request: deleting would drop the request unseen.
    registered.create("plain")
    registered.register("plain", "v1")
    request = registered.set_alias("plain", "production", 1).request
    assert request is not None
    with pytest.raises(PermissionDenied, match="1 pending approval request"):
        registered.delete("plain")
    assert registered.get_request(request.id).status == "pending"
    # Nothing to protect: an editor may delete; an admin may delete the others.
    registered.create("scratch")
    registered.register("scratch", "v1")
    registered.delete("scratch")
    admin = as_user("fay")
    admin.delete("support")
    admin.delete("plain")
    assert [p.name for p in registered.search()] == []


def test_the_default_policy_protects_production_and_champion(as_user: AsUser) -> None:
    ada = as_user("ada")
    ada.register("p", "hi")
    assert not ada.set_alias("p", "production", 1).applied
    assert not ada.set_alias("p", "champion", 1).applied
    assert ada.set_alias("p", "candidate", 1).applied


def test_prompt_policies_protect_aliases_only(registered: PromptService) -> None:
    for target in ("stage:Production", "traffic"):
        with pytest.raises(InvalidInput, match="protects aliases only"):
            registered.set_policy("support", ApprovalPolicy(rules=(ApprovalRule(target),)))
    relaxed = registered.set_policy("support", ApprovalPolicy(rules=()))
    assert relaxed.policy.rules == ()
    assert registered.set_alias("support", "production", 1).applied


def test_model_and_prompt_requests_stay_apart(
    registered: PromptService, as_user: AsUser, store: Store
) -> None:
    request = registered.set_alias("support", "production", 2).request
    assert request is not None
    registry = RegistryService(store, actor="bea")
    assert registry.requests(None) == []
    with pytest.raises(NotFound, match="is about a prompt"):
        registry.approve(request.id)
    with pytest.raises(NotFound, match="not about a prompt version"):
        registered.get_request("0" * 32)
