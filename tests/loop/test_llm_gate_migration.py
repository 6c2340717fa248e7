"""Revision 0017 on a store with loop iterations: SQLite rebuilds gate_results to make
model_version_id nullable, and every iteration keeps its gate result (the rebuild's DROP would
set them NULL) and every result its row."""

from __future__ import annotations

import sqlalchemy as sa

from loopwright.store.database import Database
from loopwright.store.migrate import HEAD_REVISION, upgrade


def test_upgrading_past_0017_keeps_gate_results_and_iteration_links(db_uri: str) -> None:
    db = Database.open(db_uri)
    try:
        assert upgrade(db, "0016") == "0016"
        with db.write() as conn:
            for statement in (
                "INSERT INTO registered_models (id, name, created_at, updated_at) "
                "VALUES ('m', 'churn', 1, 1)",
                "INSERT INTO model_versions (id, model_id, version, created_at, updated_at) "
                "VALUES ('v', 'm', 1, 1, 1)",
                "INSERT INTO gate_results (id, gate, model_version_id, dataset, passed, "
                "outcomes_json, reason, spec_json, created_by, created_at) VALUES ('g', 'rel', "
                "'v', 'holdout@v1', TRUE, '[]', '', '{}', 'ada', 1)",
                "INSERT INTO loops (id, name, deployment, model, pipeline, spec_json, status, "
                "created_by, created_at, updated_at) VALUES ('l', 'nightly', 'churn', 'churn', "
                "'p:f', '{}', 'active', 'ada', 1, 1)",
                "INSERT INTO loop_iterations (id, loop_id, number, state, trigger, "
                "gate_result_id, created_at, updated_at) VALUES ('i', 'l', 1, 'gated', "
                "'manual', 'g', 1, 1)",
            ):
                conn.exec_driver_sql(statement)
        assert upgrade(db) == HEAD_REVISION
        with db.read() as conn:
            link = conn.execute(sa.text("SELECT gate_result_id FROM loop_iterations")).scalar()
            assert link == "g"
            row = conn.execute(
                sa.text(
                    "SELECT model_version_id, prompt_version_id, evaluation_run_id, "
                    "evidence_json FROM gate_results"
                )
            ).one()
            assert tuple(row) == ("v", None, None, None)
    finally:
        db.dispose()
