"""Every registry change appends its audit event in the same transaction; the chain verifies, and
editing a row by hand breaks it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from _fake_package import make_package

from loopwright.config import resolve_settings
from loopwright.errors import Conflict
from loopwright.governance.users import UserService
from loopwright.registry.entities import ApprovalPolicy, ApprovalRequest, ApprovalRule
from loopwright.registry.service import RegistryService
from loopwright.store import schema as t
from loopwright.store.audit import events, verify_chain
from loopwright.store.home import Store, open_store

POLICY = ApprovalPolicy(rules=(ApprovalRule("alias:champion"),), expires_after_s=60)


@pytest.fixture
def store(tmp_path: Path, db_uri: str) -> Iterator[Store]:
    with open_store(resolve_settings(home=tmp_path / "home", db_uri=db_uri)) as s:
        users = UserService(s, actor="root")
        users.add("root", "admin")
        users.add("cyd", "approver")
        yield s


def _package(folder: Path) -> Path:
    return make_package(folder)


def test_each_change_yields_its_event_and_the_chain_verifies(store: Store, tmp_path: Path) -> None:
    now = [1_800_000_000_000]
    ada = RegistryService(store, actor="ada", clock=lambda: now[0])
    cyd = RegistryService(store, actor="cyd", clock=lambda: now[0])
    package = _package(tmp_path / "pkg")
    start = len(events(store.db))

    model = ada.create_model("churn", description="d", policy=POLICY)
    ada.set_model_tag("churn", "team", "risk")
    ada.delete_model_tag("churn", "team")
    ada.update_model("churn", description="new")
    ada.set_policy("churn", POLICY)
    ada.set_card_info("churn", intended_use="offers")
    v1 = ada.register("churn", package)
    ada.register("churn", package)
    ada.update_version("churn", 1, description="first")
    ada.set_version_tag("churn", 1, "ok", "yes")
    ada.set_alias("churn", "candidate", 1)
    ada.set_alias("churn", "candidate", 2)
    ada.delete_alias("churn", "candidate")
    ada.transition_stage("churn", 1, "Staging")
    ada.transition_stage("churn", 2, "Staging", archive_existing=True)
    approved = ada.set_alias("churn", "champion", 1).request
    assert isinstance(approved, ApprovalRequest)
    cyd.approve(approved.id)
    rejected = ada.set_alias("churn", "champion", 2).request
    assert isinstance(rejected, ApprovalRequest)
    cyd.reject(rejected.id, "not yet")
    expired = ada.set_alias("churn", "champion", 2).request
    assert isinstance(expired, ApprovalRequest)
    now[0] += 61_000
    ada.requests()
    ada.delete_version("churn", 2)
    RegistryService(store, actor="root").delete_alias("churn", "champion")
    ada.delete_model("churn")

    log = events(store.db)[start:]
    assert [e.action for e in log] == [
        "registered_model.create",
        "registered_model.tag",
        "registered_model.tag",
        "registered_model.update",
        "registered_model.policy",
        "registered_model.card",
        "model_version.create",
        "model_version.create",
        "model_version.update",
        "model_version.tag",
        "model_alias.set",
        "model_alias.set",
        "model_alias.delete",
        "model_version.stage",
        "model_version.stage",  # version 2 to Staging
        "model_version.stage",  # version 1 archived by archive_existing
        "approval.request",
        "approval.approve",
        "model_alias.set",  # applied with the last approval
        "approval.request",
        "approval.reject",
        "approval.request",
        "approval.expire",
        "model_version.delete",
        "model_alias.delete",
        "registered_model.delete",
    ]
    assert all(e.actor == "ada" for e in log[:17])
    assert (log[17].actor, log[18].actor) == ("cyd", "cyd")
    assert log[0].subject_type == "registered_model" and log[0].subject_id == model.id
    assert log[6].subject_id == v1.id and log[6].after["version"] == 1
    assert log[1].before == {"team": None} and log[1].after == {"team": "risk"}
    assert log[3].before == {"description": "d"} and log[3].after == {"description": "new"}
    moved = log[11]
    assert (moved.before["version"], moved.after["version"]) == (1, 2)
    assert log[15].before["stage"] == "Staging" and log[15].after["stage"] == "Archived"
    assert log[22].subject_id == expired.id and log[22].after["status"] == "expired"
    assert log[-1].before == {"name": "churn", "versions": 2}

    report = verify_chain(store.db)
    assert report.ok and report.checked == len(events(store.db))


def test_a_failed_change_leaves_no_event(store: Store, tmp_path: Path) -> None:
    ada = RegistryService(store, actor="ada")
    ada.create_model("churn", policy=ApprovalPolicy(rules=()))
    ada.register("churn", _package(tmp_path / "pkg"))
    ada.transition_stage("churn", 1, "Production")
    before = len(events(store.db))
    with pytest.raises(Conflict):
        ada.delete_version("churn", 1)
    assert len(events(store.db)) == before


def test_editing_an_audit_row_breaks_verification(store: Store, tmp_path: Path) -> None:
    ada = RegistryService(store, actor="ada")
    version = ada.register("churn", _package(tmp_path / "pkg"))
    ada.set_alias("churn", "candidate", 1)
    created = next(e for e in events(store.db) if e.action == "model_version.create")
    assert created.subject_id == version.id
    with store.db.write() as conn:  # someone rewrites history: another registrant
        conn.execute(
            t.audit_events.update()
            .where(t.audit_events.c.seq == created.seq)
            .values(actor="mallory")
        )
    report = verify_chain(store.db)
    assert not report.ok and report.broken_seq == created.seq
    assert "edited" in (report.reason or "")
