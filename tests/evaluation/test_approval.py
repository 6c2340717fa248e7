"""Judge versions are approved through a request, by an approver who neither registered nor
asked; over HTTP each role is checked (viewer reads, editor changes, approver approves)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from _judge_stub import serve_in_thread

from loopwright import ApprovalNotAllowed, Conflict, PermissionDenied
from loopwright.client import Client
from loopwright.config import resolve_settings
from loopwright.evaluation import Judge
from loopwright.evaluation.service import EvaluationService
from loopwright.store.home import Store, acting_as, open_store

JUDGE = Judge("tone", rubric="Rate {outputs}", model="m", endpoint="http://127.0.0.1:9/v1")
USERS = (
    ("boss", "admin"),
    ("ada", "editor"),
    ("bob", "approver"),
    ("cy", "approver"),
    ("vic", "viewer"),
)


def _with_users(store: Store) -> dict[str, str]:
    from loopwright.governance.tokens import TokenService
    from loopwright.governance.users import UserService

    users = UserService(store, actor="boss")
    tokens = {}
    for user, role in USERS:
        users.add(user, role)
        tokens[user] = TokenService(store, actor="boss").create(user).secret
    return tokens


@pytest.fixture
def store(tmp_path: Path, db_uri: str) -> Iterator[Store]:
    with open_store(resolve_settings(home=tmp_path / "home", db_uri=db_uri)) as opened:
        _with_users(opened)
        yield opened


@pytest.fixture
def service(store: Store) -> EvaluationService:
    return EvaluationService(store)


def test_separation_of_duties_and_roles(service: EvaluationService) -> None:
    with acting_as("ada"):
        version = service.register_scorer(JUDGE)
        with pytest.raises(Conflict, match="no approval request"):
            service.approve_scorer("tone", version.version)
    with acting_as("bob"):
        asked = service.request_approval("tone", version.version)
        assert asked.approval_requested_by == "bob"
        with pytest.raises(ApprovalNotAllowed, match="asked scorer tone/1"):
            service.approve_scorer("tone", 1)
    for user, message in (("ada", "registered scorer tone/1"), ("vic", "approver role")):
        with acting_as(user), pytest.raises(ApprovalNotAllowed, match=message):
            service.approve_scorer("tone", 1)
    with acting_as("cy"):
        approved = service.approve_scorer("tone", 1)
        assert (approved.approved, approved.approved_by) == (True, "cy")
        with pytest.raises(Conflict, match="already approved"):
            service.approve_scorer("tone", 1)
    # A changed judge is a new version and needs approving again.
    with acting_as("ada"):
        changed = Judge("tone", rubric="Rate {outputs}!", model="m", endpoint=JUDGE.endpoint)
        swapped = service.register_scorer(changed)
    assert swapped.version == 2 and not swapped.approved


def test_approvals_are_audited(service: EvaluationService, store: Store) -> None:
    from loopwright.governance.audit import AuditLog

    with acting_as("ada"):
        service.register_scorer(JUDGE)
        service.request_approval("tone", 1)
    with acting_as("bob"):
        service.approve_scorer("tone", 1)
    events = AuditLog(store).events(subject_type="scorer_version")
    assert [(e.action, e.actor) for e in events][-3:] == [
        ("scorer_version.create", "ada"),
        ("scorer_version.request_approval", "ada"),
        ("scorer_version.approve", "bob"),
    ]


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    from loopwright.server.app import create_app

    root = tmp_path_factory.mktemp("eval-auth")
    settings = resolve_settings(home=root / "home", db_uri=f"sqlite:///{root / 'db'}", user="boss")
    with open_store(settings) as store:
        tokens = _with_users(store)
    with serve_in_thread(create_app(settings, auth=True)) as url:
        yield url, tokens


def _as(server: tuple[str, dict[str, str]], user: str, tmp_path: Path) -> Client:
    url, tokens = server
    return Client(resolve_settings(home=tmp_path / user, server_uri=url, token=tokens[user]))


def test_roles_over_http(auth_server: tuple[str, dict[str, str]], tmp_path: Path) -> None:
    with (
        _as(auth_server, "ada", tmp_path) as ada,
        _as(auth_server, "bob", tmp_path) as bob,
        _as(auth_server, "vic", tmp_path) as vic,
    ):
        with pytest.raises(PermissionDenied):
            vic.evaluation.register_scorer(JUDGE)
        with pytest.raises(PermissionDenied):
            vic.evaluation.create_dataset("vic-data")
        version = ada.evaluation.register_scorer(JUDGE, name="http-tone")
        assert version.created_by == "ada"
        ada.evaluation.request_approval("http-tone", 1)
        with pytest.raises(PermissionDenied):
            ada.evaluation.approve_scorer("http-tone", 1)  # an editor: the route refuses
        bob.evaluation.register_scorer(JUDGE, name="bobs")
        ada.evaluation.request_approval("bobs", 1)
        with pytest.raises(ApprovalNotAllowed, match="registered scorer bobs/1"):
            bob.evaluation.approve_scorer("bobs", 1)
        assert bob.evaluation.approve_scorer("http-tone", 1).approved_by == "bob"
        assert vic.evaluation.get_scorer("http-tone").approved  # a viewer reads
