"""The ``default_approval_policy`` setting: ``protect`` (the default) gives a model created
without a policy the protective one; ``none`` gives it an empty one, so a team coming from MLflow
moves champion and Production at once. A model keeps the policy it was created with."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from _fake_package import make_package

from loopwright.config import resolve_settings
from loopwright.registry.entities import ApprovalPolicy, ApprovalRequest, ApprovalRule, Stage
from loopwright.registry.service import RegistryService
from loopwright.store import schema as t
from loopwright.store.home import Store, open_store

PROTECTIVE = ApprovalPolicy()


def _registry_at(tmp_path: Path, db_uri: str, policy: str | None) -> tuple[Store, RegistryService]:
    settings = resolve_settings(
        home=tmp_path / "home", db_uri=db_uri, user="ed", default_approval_policy=policy
    )
    store = open_store(settings)
    return store, RegistryService(store)


def test_protect_is_the_default(tmp_path: Path, db_uri: str) -> None:
    store, registry = _registry_at(tmp_path, db_uri, None)
    with store:
        assert registry.create_model("churn").policy == PROTECTIVE
        registry.register("churn", make_package(tmp_path / "pkg", b"w"))
        assert isinstance(registry.transition_stage("churn", 1, "Production"), ApprovalRequest)
        assert registry.set_alias("churn", "champion", 1).request is not None


def test_none_moves_champion_and_production_at_once(tmp_path: Path, db_uri: str) -> None:
    store, registry = _registry_at(tmp_path, db_uri, "none")
    with store:
        registry.register("churn", make_package(tmp_path / "pkg", b"w"))  # creates the model
        assert registry.get_model("churn").policy == ApprovalPolicy(rules=())
        moved = registry.transition_stage("churn", 1, "Production")
        assert not isinstance(moved, ApprovalRequest) and moved.stage is Stage.PRODUCTION
        assert registry.set_alias("churn", "champion", 1).applied
        explicit = ApprovalPolicy((ApprovalRule("alias:gold"),))
        assert registry.create_model("kept", policy=explicit).policy == explicit
        with store.db.read() as conn:
            created = conn.execute(
                sa.select(t.audit_events.c.after_json).where(
                    t.audit_events.c.action == "registered_model.create"
                )
            ).scalars()
            policies = [json.loads(after)["policy"] for after in created]
        assert policies == [{"rules": [], "expires_after_s": 7 * 24 * 3600}, explicit.to_dict()]


@pytest.mark.parametrize(("first", "then"), [("none", "protect"), ("protect", "none")])
def test_a_model_keeps_the_policy_it_was_created_with(
    tmp_path: Path, db_uri: str, first: str, then: str
) -> None:
    store, registry = _registry_at(tmp_path, db_uri, first)
    with store:
        before = registry.create_model("old").policy
    store, registry = _registry_at(tmp_path, db_uri, then)
    with store:
        assert registry.get_model("old").policy == before
        after = registry.create_model("new").policy
    assert {before, after} == {PROTECTIVE, ApprovalPolicy(rules=())}
