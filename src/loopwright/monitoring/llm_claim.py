"""One pass of a trace monitor at a time: a claim on the monitor's row.

Scoring reads which (trace, scorer version) pairs are already assessed and then calls the
scorers, a judge being a paid call; two passes of one monitor at the same time would both
read "not scored", both pay and both write. A pass therefore claims its monitor first: in one
short write transaction (the row locked) it sets ``pass_claim`` in the row's ``spec_json``,
unless another pass holds an unexpired claim, and clears it when the pass is stored. A
second pass meanwhile is refused with :class:`~loopwright.errors.Conflict` naming the holder.

A claim expires after :data:`CLAIM_S` so a pass whose process died does not block the monitor
for good; no pass is expected to take that long (``max_scored_per_pass`` bounds its work).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from .._ids import new_id
from ..errors import Conflict
from ..store import schema as t
from ..store.named import named_row

if TYPE_CHECKING:
    from collections.abc import Callable

    from ..store.database import Database

__all__ = ["CLAIM_KEY", "CLAIM_S", "claim_pass"]

CLAIM_KEY = "pass_claim"
CLAIM_S = 3600

_m = t.monitors.c


@contextmanager
def claim_pass(db: Database, name: str, *, clock: Callable[[], int]) -> Iterator[str]:
    """Hold the claim on monitor ``name`` for the ``with`` block; yields the claim's token.

    Raises:
        Conflict: another pass holds an unexpired claim (the message says since when and
            when it lapses).
    """
    token = new_id()
    with db.write() as conn:
        row = _locked(conn, name)
        spec = json.loads(row.spec_json)
        held = spec.get(CLAIM_KEY)
        now = clock()
        if isinstance(held, dict) and int(held.get("until", 0)) > now:
            raise Conflict(
                f"monitor {name!r} has a pass running since {_iso(int(held['since']))}; "
                "wait for it to finish (its scores are shared: this pass would score nothing "
                f"new). If its process died, the claim lapses at {_iso(int(held['until']))}"
            )
        spec[CLAIM_KEY] = {"token": token, "since": now, "until": now + CLAIM_S * 1000}
        _write(conn, row.id, spec)
    try:
        yield token
    finally:
        with db.write() as conn:
            row = _locked(conn, name, missing_ok=True)
            if row is not None:
                spec = json.loads(row.spec_json)
                held = spec.get(CLAIM_KEY)
                if isinstance(held, dict) and held.get("token") == token:
                    del spec[CLAIM_KEY]
                    _write(conn, row.id, spec)


def _locked(conn: sa.Connection, name: str, *, missing_ok: bool = False) -> Any:
    if missing_ok:  # deleted during the pass: nothing to clear
        return conn.execute(sa.select(t.monitors).where(_m.name == name).with_for_update()).first()
    return named_row(
        conn,
        t.monitors,
        name,
        what="monitor",
        hint="create one with create(name, traces=...)",
        lock=True,
    )


def _write(conn: sa.Connection, monitor_id: str, spec: dict[str, object]) -> None:
    conn.execute(
        t.monitors.update()
        .where(_m.id == monitor_id)
        .values(spec_json=json.dumps(spec, separators=(",", ":")))
    )


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="seconds")
