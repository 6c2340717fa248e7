"""Migration 0009: models stored with the implicit default policy keep the rules they had."""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa

from loopwright.registry.entities import ApprovalPolicy, ApprovalRule
from loopwright.store.database import Database
from loopwright.store.migrate import upgrade


def test_models_created_before_keep_their_policy_and_new_ones_protect_traffic(
    db_uri: str,
) -> None:
    db = Database.open(db_uri)
    try:
        assert upgrade(db, "0008") == "0008"
        rows: list[dict[str, Any]] = [
            {"id": "a" * 32, "name": "old", "policy": None},
            {"id": "b" * 32, "name": "explicit", "policy": json.dumps({"rules": []})},
        ]
        with db.write() as conn:
            for row in rows:
                conn.execute(
                    sa.text(
                        "INSERT INTO registered_models (id, name, approval_policy_json, "
                        "created_at, updated_at) VALUES (:id, :name, :policy, 0, 0)"
                    ),
                    row,
                )
        upgrade(db)
        with db.read() as conn:
            stored: dict[str, str] = {
                name: policy
                for name, policy in conn.execute(
                    sa.text("SELECT name, approval_policy_json FROM registered_models")
                ).all()
            }
    finally:
        db.dispose()
    old = ApprovalPolicy.from_dict(json.loads(stored["old"]))
    assert old.rules == (ApprovalRule("stage:Production"), ApprovalRule("alias:champion"))
    assert old.rule_for("traffic") is None
    assert json.loads(stored["explicit"]) == {"rules": []}
    assert ApprovalPolicy().rule_for("traffic") == ApprovalRule("traffic")  # the new default


def test_downgrade_to_0008_drops_the_deployment_tables_and_upgrade_restores_them(
    db_uri: str,
) -> None:
    """Models keep the policy written out for them (0008's code reads it as it read NULL)."""
    from alembic import command

    from loopwright.store.migrate import _alembic_config, current_revision

    db = Database.open(db_uri)
    try:
        upgrade(db, "0008")
        with db.write() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO registered_models (id, name, approval_policy_json, "
                    "created_at, updated_at) VALUES (:id, 'old', NULL, 0, 0)"
                ),
                {"id": "c" * 32},
            )
        head = upgrade(db)
        with db.engine.connect() as conn:
            command.downgrade(_alembic_config(conn), "0008")
            conn.commit()
        assert current_revision(db) == "0008"
        with db.read() as conn:
            tables = set(sa.inspect(conn).get_table_names())
            policy = conn.execute(
                sa.text("SELECT approval_policy_json FROM registered_models")
            ).scalar_one()
        assert not tables & {"deployments", "deployment_revisions", "deployment_instances"}
        assert ApprovalPolicy.from_dict(json.loads(policy)).rule_for("traffic") is None
        assert upgrade(db) == head
        with db.read() as conn:
            assert {"deployments", "deployment_revisions", "deployment_instances"} <= set(
                sa.inspect(conn).get_table_names()
            )
    finally:
        db.dispose()
