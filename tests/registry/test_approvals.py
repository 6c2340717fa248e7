"""Approval flows on real databases: quorum, roles, separation of duties, rejection, expiry."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from _fake_package import make_package

from loopwright.config import resolve_settings
from loopwright.errors import (
    ApprovalExpired,
    ApprovalNotAllowed,
    Conflict,
    InvalidInput,
    NotFound,
    PermissionDenied,
)
from loopwright.governance.users import UserService
from loopwright.registry.entities import (
    AliasChange,
    ApprovalPolicy,
    ApprovalRequest,
    ApprovalRule,
    ModelVersion,
    Stage,
)
from loopwright.registry.service import RegistryService
from loopwright.store import schema as t
from loopwright.store.audit import events, verify_chain
from loopwright.store.home import Store, open_store

AsUser = Callable[[str], RegistryService]
POLICY = ApprovalPolicy(
    rules=(
        ApprovalRule("stage:Production", approvals=2, role="approver"),
        ApprovalRule("alias:champion", approvals=1, role="approver"),
    ),
    expires_after_s=3600,
)


class Clock:
    """A settable clock in milliseconds, shared by the services of one test."""

    def __init__(self) -> None:
        self.now = 1_800_000_000_000

    def __call__(self) -> int:
        return self.now


@pytest.fixture
def store(tmp_path: Path, db_uri: str) -> Iterator[Store]:
    with open_store(resolve_settings(home=tmp_path / "home", db_uri=db_uri)) as s:
        users = UserService(s, actor="root")
        users.add("root", "admin")
        for name, role in [
            ("ada", "approver"),  # registers the versions
            ("bea", "approver"),
            ("cyd", "approver"),
            ("dan", "viewer"),
            ("eve", "approver"),
            ("fay", "admin"),
            ("gus", "approver"),
        ]:
            users.add(name, role)
        users.disable("eve")
        yield s


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def as_user(store: Store, clock: Clock) -> AsUser:
    """A registry service acting as the named user (all on one store and one clock)."""
    return lambda name: RegistryService(store, actor=name, clock=clock)


def _package(folder: Path) -> Path:
    return make_package(folder)


@pytest.fixture
def registered(as_user: AsUser, tmp_path: Path) -> RegistryService:
    """``churn`` v1 and v2, registered by ada under POLICY; returns ada's service."""
    ada: RegistryService = as_user("ada")
    ada.create_model("churn", policy=POLICY)
    package = _package(tmp_path / "pkg")
    ada.register("churn", package)
    ada.register("churn", package)
    return ada


def _request(result: ModelVersion | ApprovalRequest | AliasChange) -> ApprovalRequest:
    if isinstance(result, AliasChange):
        assert not result.applied and result.request is not None, result
        return result.request
    assert isinstance(result, ApprovalRequest), result
    return result


def test_production_needs_two_approvers_and_neither_registrant_nor_requester(
    registered: RegistryService, as_user: AsUser, store: Store
) -> None:
    bea: RegistryService = as_user("bea")
    request = _request(bea.transition_stage("churn", 1, "Production", comment="ship it"))
    assert (request.status, request.action, request.target, request.requested_by) == (
        "pending",
        "stage",
        "Production",
        "bea",
    )
    assert request.rule == ApprovalRule("stage:Production", 2, "approver")
    assert _request(registered.transition_stage("churn", 1, "Production")).id == request.id

    refusals = {
        "ada": "registered version 1 and cannot approve",
        "bea": "opened request .* cannot approve it",
        "dan": "has role 'viewer'; deciding request .* needs role 'approver'",
        "eve": "user 'eve' is disabled",
        "zed": "'zed' is not a registered user",
    }
    for name, message in refusals.items():
        with pytest.raises(ApprovalNotAllowed, match=message):
            as_user(name).approve(request.id)

    after_one = as_user("cyd").approve(request.id, comment="metrics fine")
    assert after_one.status == "pending" and after_one.approvals == 1
    assert registered.get_version("churn", 1).stage is Stage.NONE
    with pytest.raises(Conflict, match="'cyd' already decided"):
        as_user("cyd").approve(request.id)

    done = as_user("fay").approve(request.id)  # admin outranks approver
    assert done.status == "approved" and done.resolved_at is not None
    assert [(d.actor, d.role, d.decision) for d in done.decisions] == [
        ("cyd", "approver", "approve"),
        ("fay", "admin", "approve"),
    ]
    assert registered.get_version("churn", 1).stage is Stage.PRODUCTION
    assert registered.requests() == []
    assert [r.id for r in registered.requests(status="approved", model="churn")] == [request.id]
    with pytest.raises(Conflict, match="is approved; only pending requests"):
        as_user("gus").approve(request.id)
    assert verify_chain(store.db).ok


def test_a_protected_alias_moves_on_approval(registered: RegistryService, as_user: AsUser) -> None:
    pending = registered.set_alias("churn", "champion", 2)
    request = _request(pending)
    assert pending.version.version == 2 and pending.version.aliases == ()  # the target, unmoved
    assert registered.get_model("churn").aliases == {}
    approved = as_user("cyd").approve(request.id)
    assert approved.status == "approved"
    assert registered.get_model("churn").aliases == {"champion": 2}
    unchanged = registered.set_alias("churn", "champion", 2)  # no-op
    assert unchanged.applied and unchanged.version.aliases == ("champion",)
    unprotected = registered.set_alias("churn", "challenger", 1)
    assert unprotected.applied and unprotected.version.aliases == ("challenger",)


def test_a_rejection_needs_a_reason_and_changes_nothing(
    registered: RegistryService, as_user: AsUser
) -> None:
    request = _request(registered.set_alias("churn", "champion", 1))
    cyd: RegistryService = as_user("cyd")
    with pytest.raises(InvalidInput, match="needs a comment"):
        cyd.reject(request.id, "  ")
    with pytest.raises(ApprovalNotAllowed, match="role 'viewer'"):
        as_user("dan").reject(request.id, "no")
    rejected = cyd.reject(request.id, "calibration is off")
    assert rejected.status == "rejected"
    assert rejected.decisions[0].comment == "calibration is off"
    assert registered.get_model("churn").aliases == {}
    with pytest.raises(Conflict, match="is rejected"):
        as_user("gus").approve(request.id)
    again = _request(registered.set_alias("churn", "champion", 1))
    assert again.id != request.id and again.status == "pending"


def test_an_expired_request_cannot_be_decided(
    registered: RegistryService, as_user: AsUser, clock: Clock, store: Store
) -> None:
    request = _request(registered.set_alias("churn", "champion", 1))
    assert request.expires_at == request.created_at + 3600 * 1000
    clock.now += 3600 * 1000 + 1
    with pytest.raises(ApprovalExpired, match="expired; ask again"):
        as_user("cyd").approve(request.id)
    assert registered.get_request(request.id).status == "expired"
    assert registered.get_model("churn").aliases == {}
    with pytest.raises(Conflict, match="is expired"):
        as_user("gus").approve(request.id)
    expiries = [e for e in events(store.db) if e.action == "approval.expire"]
    assert [e.subject_id for e in expiries] == [request.id]


def test_listing_marks_overdue_requests_expired_and_a_new_request_replaces_them(
    registered: RegistryService, clock: Clock
) -> None:
    first = _request(registered.transition_stage("churn", 1, "Production"))
    clock.now += 3600 * 1000 + 1
    assert registered.requests() == []
    assert [r.status for r in registered.requests(status=None)] == ["expired"]
    second = _request(registered.transition_stage("churn", 1, "Production"))
    assert second.id != first.id
    with pytest.raises(InvalidInput, match="status 'open'"):
        registered.requests(status="open")
    with pytest.raises(NotFound, match="approval request 'nope' does not exist"):
        registered.get_request("nope")


def test_approving_fails_if_the_version_changed_meanwhile(
    registered: RegistryService, as_user: AsUser, store: Store
) -> None:
    alias_request = _request(registered.set_alias("churn", "champion", 1))
    stage_request = _request(registered.transition_stage("churn", 2, "Production"))
    registered.delete_version("churn", 1)
    with pytest.raises(Conflict, match="was deleted after request"):
        as_user("cyd").approve(alias_request.id)
    registered.transition_stage("churn", 2, "Archived")  # Archived -> Production is not allowed
    with pytest.raises(Conflict, match=r"can no longer be applied.*cannot move to Production"):
        as_user("cyd").approve(stage_request.id)
    for request in (alias_request, stage_request):
        current = registered.get_request(request.id)
        assert current.status == "pending" and current.decisions == ()
    assert registered.get_model("churn").aliases == {}
    with store.db.read() as conn:
        assert (
            conn.execute(sa.select(sa.func.count()).select_from(t.approval_decisions)).scalar() == 0
        )
    assert as_user("cyd").reject(alias_request.id, "version gone").status == "rejected"


def test_an_approved_stage_request_honours_archive_existing(
    registered: RegistryService, as_user: AsUser
) -> None:
    cyd: RegistryService = as_user("cyd")
    gus: RegistryService = as_user("gus")
    first = _request(registered.transition_stage("churn", 1, "Production"))
    cyd.approve(first.id)
    gus.approve(first.id)
    second = _request(registered.transition_stage("churn", 2, "Production", archive_existing=True))
    assert second.archive_existing
    cyd.approve(second.id)
    gus.approve(second.id)
    stages = [v.stage for v in registered.list_versions("churn")]
    assert stages == [Stage.ARCHIVED, Stage.PRODUCTION]


def test_requests_keep_the_rule_they_were_opened_under(
    registered: RegistryService, as_user: AsUser
) -> None:
    request = _request(registered.transition_stage("churn", 1, "Production"))
    registered.set_policy("churn", ApprovalPolicy(rules=(ApprovalRule("stage:Production"),)))
    assert as_user("cyd").approve(request.id).status == "pending"
    later = _request(registered.transition_stage("churn", 2, "Production"))
    assert later.rule.approvals == 1


@pytest.mark.parametrize("seconds", [0, 100 * 365 * 24 * 3600 + 1, 2**63])
def test_a_policy_expiry_past_what_a_request_can_store_is_refused(
    registered: RegistryService, seconds: int
) -> None:
    rules = (ApprovalRule("stage:Production"),)
    with pytest.raises(InvalidInput, match="expires_after_s must be seconds from 1 to"):
        registered.set_policy("churn", ApprovalPolicy(rules=rules, expires_after_s=seconds))
    registered.set_policy("churn", ApprovalPolicy(rules=rules, expires_after_s=100 * 365 * 86400))
    request = _request(registered.transition_stage("churn", 1, "Production"))
    assert (request.expires_at or 0) > request.created_at  # a 100-year expiry fits its column


def test_a_protected_alias_is_deleted_only_by_an_admin(
    registered: RegistryService, as_user: AsUser
) -> None:
    request = _request(registered.set_alias("churn", "champion", 1))
    as_user("cyd").approve(request.id)
    with pytest.raises(PermissionDenied, match="only an enabled admin may delete it"):
        as_user("cyd").delete_alias("churn", "champion")
    as_user("fay").delete_alias("churn", "champion")
    assert registered.get_model("churn").aliases == {}


def test_the_default_policy_protects_production_and_champion(
    as_user: AsUser, tmp_path: Path
) -> None:
    ada: RegistryService = as_user("ada")
    ada.register("fresh", _package(tmp_path / "p"))
    assert isinstance(ada.transition_stage("fresh", 1, "Staging"), ModelVersion)
    assert _request(ada.transition_stage("fresh", 1, "Production")).rule.approvals == 1
    assert _request(ada.set_alias("fresh", "champion", 1)).target == "champion"
