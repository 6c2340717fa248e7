"""Migration 0009: models stored with the implicit default policy keep the rules they had."""

from __future__ import annotations

import json

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
        rows = [
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
            stored = dict(
                conn.execute(
                    sa.text("SELECT name, approval_policy_json FROM registered_models")
                ).all()
            )
    finally:
        db.dispose()
    old = ApprovalPolicy.from_dict(json.loads(stored["old"]))
    assert old.rules == (ApprovalRule("stage:Production"), ApprovalRule("alias:champion"))
    assert old.rule_for("traffic") is None
    assert json.loads(stored["explicit"]) == {"rules": []}
    assert ApprovalPolicy().rule_for("traffic") == ApprovalRule("traffic")  # the new default
