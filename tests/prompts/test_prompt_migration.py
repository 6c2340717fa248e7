"""Revision 0013 on a store with model approvals: SQLite rebuilds approval_requests to make
version_id nullable, and every approval decision survives (the rebuild's DROP would cascade)."""

from __future__ import annotations

import sqlalchemy as sa

from loopwright.store.database import Database
from loopwright.store.migrate import HEAD_REVISION, upgrade


def test_upgrading_past_0013_keeps_requests_and_decisions(db_uri: str) -> None:
    db = Database.open(db_uri)
    try:
        assert upgrade(db, "0012") == "0012"
        with db.write() as conn:
            for statement in (
                "INSERT INTO registered_models (id, name, created_at, updated_at) "
                "VALUES ('m', 'churn', 1, 1)",
                "INSERT INTO model_versions (id, model_id, version, created_at, updated_at) "
                "VALUES ('v', 'm', 1, 1, 1)",
                "INSERT INTO approval_requests (id, version_id, action, target, status, "
                "requested_by, created_at) VALUES ('r', 'v', 'alias', 'champion', 'pending', "
                "'ada', 1)",
                "INSERT INTO approval_decisions (id, request_id, actor, decision, created_at) "
                "VALUES ('d', 'r', 'bea', 'approve', 2)",
            ):
                conn.exec_driver_sql(statement)
        assert upgrade(db) == HEAD_REVISION
        with db.read() as conn:
            decisions = conn.execute(sa.text("SELECT id, request_id FROM approval_decisions"))
            assert decisions.all() == [("d", "r")]
            request = conn.execute(
                sa.text("SELECT version_id, subject_kind, prompt_version_id FROM approval_requests")
            ).one()
            assert tuple(request) == ("v", "model", None)
            assert conn.execute(sa.text("SELECT count(*) FROM prompts")).scalar() == 0
    finally:
        db.dispose()
