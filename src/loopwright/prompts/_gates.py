"""The evaluation gate a protected prompt alias may require before its move is even requested.

A prompt's policy rule can name a gate (``ApprovalRule("alias:production", gate="support-q")``):
moving the alias to a version then needs that version's latest result of the gate to have
passed (``client.gates.check_evaluation``) before the approval request opens; the request
records the result's id, so its approvers and the lineage see which evaluation cleared it.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from ..errors import Conflict
from ..store import schema as t

__all__ = ["require_passed_gate"]

_g = t.gate_results.c


def require_passed_gate(conn: sa.Connection, name: str, version: Any, gate: str) -> str:
    """The id of version ``version``'s latest result of ``gate`` if it passed; ``Conflict``
    naming the failed rules (or the missing check) otherwise."""
    row = conn.execute(
        sa.select(_g.id, _g.passed, _g.reason, _g.evaluation_run_id)
        .where(_g.prompt_version_id == version.id, _g.gate == gate)
        .order_by(_g.created_at.desc(), _g.id.desc())
        .limit(1)
    ).first()
    if row is None:
        raise Conflict(
            f"prompt {name!r} version {version.version} has no result of gate {gate!r}, which "
            f"its policy requires; evaluate it and check the gate first "
            f"(client.gates.check_evaluation(spec, 'prompts:/{name}/{version.version}', run_id))"
        )
    if not row.passed:
        raise Conflict(
            f"prompt {name!r} version {version.version} failed gate {gate!r} (result {row.id}, "
            f"evaluation run {row.evaluation_run_id}): {row.reason}; the alias cannot move to "
            "it until a new evaluation passes"
        )
    return str(row.id)
