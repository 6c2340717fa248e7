"""Renaming a registered model: versions, aliases, stages and open requests move with it, the old
name is free, the change is audited, and a model whose policy protects something in use is
renamed only by an admin (a rename re-points models:/<name>@champion as surely as an alias move).
Also MLflow's names (spaces allowed) and alias names (stage names allowed; @alias is only an
alias)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from _fake_package import make_package

from loopwright.config import resolve_settings
from loopwright.errors import AlreadyExists, InvalidInput, NotFound, PermissionDenied
from loopwright.governance.users import UserService
from loopwright.registry.entities import ApprovalPolicy, ApprovalRequest
from loopwright.registry.service import RegistryService
from loopwright.store import schema as t
from loopwright.store.home import Store, open_store

OPEN = ApprovalPolicy(rules=())


@pytest.fixture
def store(tmp_path: Path, db_uri: str) -> Iterator[Store]:
    with open_store(resolve_settings(home=tmp_path / "home", db_uri=db_uri, user="ed")) as opened:
        users = UserService(opened, actor="root")
        for name, role in (("root", "admin"), ("ed", "editor"), ("bob", "approver")):
            users.add(name, role)
        yield opened


@pytest.fixture
def package(tmp_path: Path) -> Path:
    return make_package(tmp_path / "pkg", b"weights")


def test_versions_aliases_stages_and_requests_move_with_the_model(
    store: Store, package: Path
) -> None:
    ed = RegistryService(store, actor="ed")
    ed.create_model("churn", description="d", tags={"team": "risk"}, policy=OPEN)
    for _ in range(3):
        ed.register("churn", package)
    ed.set_alias("churn", "candidate", 2)
    ed.transition_stage("churn", 3, "Staging")
    renamed = ed.rename_model("churn", "churn v2")
    assert (renamed.name, renamed.description, dict(renamed.tags)) == (
        "churn v2",
        "d",
        {"team": "risk"},
    )
    assert renamed.aliases == {"candidate": 2} and renamed.latest_version == 3
    assert [v.ref for v in ed.list_versions("churn v2")] == [
        "models:/churn v2/1",
        "models:/churn v2/2",
        "models:/churn v2/3",
    ]
    assert ed.resolve("churn v2", "@candidate").version == 2
    assert ed.resolve("churn v2", "Staging").version == 3
    with pytest.raises(NotFound, match="registered model 'churn' does not exist"):
        ed.get_model("churn")
    assert ed.create_model("churn", policy=OPEN).latest_version is None  # the old name is free
    with store.db.read() as conn:
        event = conn.execute(
            sa.select(t.audit_events)
            .where(t.audit_events.c.action == "registered_model.rename")
            .order_by(t.audit_events.c.seq.desc())
        ).first()
    assert event is not None and event.actor == "ed" and event.subject_id == renamed.id
    assert '"churn"' in event.before_json and '"churn v2"' in event.after_json


def test_an_open_request_follows_the_model(store: Store, package: Path) -> None:
    ed, bob = RegistryService(store, actor="ed"), RegistryService(store, actor="bob")
    ed.create_model("churn")  # the default policy: champion and Production need an approver
    ed.register("churn", package)
    request = ed.set_alias("churn", "champion", 1).request
    assert request is not None
    ed.rename_model("churn", "churn-2")  # nothing protected is in use yet: an editor may
    approved = bob.approve(request.id)
    assert isinstance(approved, ApprovalRequest) and approved.model == "churn-2"
    assert ed.get_model("churn-2").aliases == {"champion": 1}


def test_a_model_with_a_protected_alias_or_stage_in_use_is_renamed_by_an_admin(
    store: Store, package: Path
) -> None:
    ed, bob = RegistryService(store, actor="ed"), RegistryService(store, actor="bob")
    root = RegistryService(store, actor="root")
    ed.create_model("churn")
    ed.register("churn", package)
    request = ed.transition_stage("churn", 1, "Production")
    assert isinstance(request, ApprovalRequest)
    bob.approve(request.id)
    with pytest.raises(PermissionDenied, match=r"'churn' has stage Production protected .* admin"):
        ed.rename_model("churn", "other")
    assert ed.get_model("churn").name == "churn"
    assert root.rename_model("churn", "other").name == "other"


def test_a_rename_is_checked(store: Store, package: Path) -> None:
    ed = RegistryService(store, actor="ed")
    ed.create_model("a", policy=OPEN)
    ed.create_model("b", policy=OPEN)
    with pytest.raises(AlreadyExists, match="'b' already exists"):
        ed.rename_model("a", "b")
    with pytest.raises(NotFound, match="'nope' does not exist"):
        ed.rename_model("nope", "c")
    with pytest.raises(InvalidInput, match="model name 'a/b'"):
        ed.rename_model("a", "a/b")
    assert ed.rename_model("a", "a").name == "a"  # the same name: nothing to do
    assert [m.name for m in ed.list_models()] == ["a", "b"]


@pytest.mark.parametrize("name", ["UpdateRMTest 2", "Modèle-ü", "a.b_c-d", "x" * 256, "(x)"])
def test_mlflow_s_model_names_are_accepted(store: Store, name: str) -> None:
    assert RegistryService(store).create_model(name, policy=OPEN).name == name


@pytest.mark.parametrize(
    "name",
    ["", " lead", "trail ", "a/b", "a:b", "a@b", "a?b", "a#b", "a%b", "..", "a\nb", "x" * 257],
)
def test_names_that_would_read_as_a_path_or_uri_part_are_refused(store: Store, name: str) -> None:
    with pytest.raises(InvalidInput, match="model name"):
        RegistryService(store).create_model(name, policy=OPEN)


@pytest.mark.parametrize(
    "alias", ["staging", "Production", "none", "archived", "v1x", "v", "champion"]
)
def test_stage_names_are_aliases_like_any_other(store: Store, package: Path, alias: str) -> None:
    ed = RegistryService(store, actor="ed")
    ed.create_model("churn", policy=OPEN)
    ed.register("churn", package)
    ed.register("churn", package)
    ed.transition_stage("churn", 2, "Staging")
    assert ed.set_alias("churn", alias, 1).applied
    assert ed.resolve("churn", f"@{alias}").version == 1  # models:/churn@staging: the alias
    assert ed.get_model("churn").aliases == {alias: 1}


def test_a_stage_and_an_alias_of_the_same_name_stay_apart(store: Store, package: Path) -> None:
    ed = RegistryService(store, actor="ed")
    ed.create_model("churn", policy=OPEN)
    ed.register("churn", package)
    ed.register("churn", package)
    ed.transition_stage("churn", 2, "Staging")
    ed.set_alias("churn", "staging", 1)
    assert ed.resolve("churn", "staging").version == 2  # models:/churn/staging: the stage
    assert ed.resolve("churn", "@staging").version == 1  # models:/churn@staging: the alias
    with pytest.raises(NotFound, match="no alias 'gold'"):
        ed.resolve("churn", "@gold")


@pytest.mark.parametrize("alias", ["latest", "LATEST", "v3", "V12", "3", "a b", "", "x" * 101])
def test_mlflow_s_reserved_aliases_are_refused(store: Store, package: Path, alias: str) -> None:
    ed = RegistryService(store, actor="ed")
    ed.create_model("churn", policy=OPEN)
    ed.register("churn", package)
    with pytest.raises(InvalidInput, match="alias"):
        ed.set_alias("churn", alias, 1)
