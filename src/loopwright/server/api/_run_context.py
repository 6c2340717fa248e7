"""What a remote run records about the client's machine, and its heartbeat.

A run created over HTTP executes on the client: its host, entry point, git state and Python
environment are the client's, sent with the request, not the server's. The environment's id is
recomputed here from its content (the same BLAKE3 of canonical JSON that capture uses), so a
client cannot attach another environment's id to its packages.
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from blake3 import blake3

from ..._ids import now_ms
from ...errors import NotFound
from ...store import schema as t
from ...store.home import Store
from ...store.upsert import insert_ignore
from ._schemas import RunContextIn

__all__ = ["beat", "record_context"]


def _environment(context: RunContextIn, now: int) -> dict[str, Any] | None:
    if context.python_version is None or context.packages is None:
        return None
    packages = dict(sorted(context.packages.items()))
    document = json.dumps(
        {"packages": packages, "python_version": context.python_version},
        sort_keys=True,
        separators=(",", ":"),
    )
    return {
        "id": blake3(document.encode("utf-8")).hexdigest(),
        "python_version": context.python_version,
        "packages_json": json.dumps(packages, sort_keys=True, separators=(",", ":")),
        "created_at": now,
    }


def record_context(store: Store, run_id: str, context: RunContextIn) -> None:
    """Replace the run's captured context with the client's."""
    environment = _environment(context, now_ms())
    values: dict[str, Any] = {
        "host": context.host,
        "entry_point": context.entry_point,
        "git_commit": context.git_commit,
        "git_branch": context.git_branch,
        "git_dirty": context.git_dirty,
        "git_diff_blob": None,
        "environment_id": None if environment is None else environment["id"],
    }
    with store.db.write() as conn:
        if environment is not None:
            insert_ignore(conn, t.environments, [environment])
        conn.execute(t.runs.update().where(t.runs.c.id == run_id).values(**values))


def beat(store: Store, run_id: str) -> None:
    """Mark a remote run alive now (its client sends this while the run is open)."""
    r = t.runs.c
    with store.db.write() as conn:
        done = conn.execute(
            t.runs.update()
            .where(r.id == run_id, r.status == "RUNNING")
            .values(heartbeat_at=now_ms())
        )
        if done.rowcount == 0 and conn.execute(sa.select(r.id).where(r.id == run_id)).first():
            return  # ended meanwhile: nothing to keep alive
        if done.rowcount == 0:
            raise NotFound(f"run {run_id!r} does not exist")
