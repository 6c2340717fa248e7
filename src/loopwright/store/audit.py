"""The audit log: an append-only, hash-chained record of every state change.

Each event stores the BLAKE3 hash of the previous event and its own hash over its fields and
that link, so editing, deleting or reordering a row breaks the chain from that row on; ``verify``
names the first broken link. The newest event's sequence number and hash are also kept in a
separate one-row table (``audit_head``), so deleting the newest events is found too: the chain
then ends before its head, and the next event links to a hash no longer in the chain. The hashes
are not keyed: someone who can write the database can rebuild the chain and its head, which only
a head copied elsewhere (printed by ``verify``) can reveal.

Events are appended inside the caller's write transaction, so a change and its audit event
commit together or not at all. Appends are serialised (SQLite's write lock; a
transaction-scoped advisory lock on PostgreSQL) so the chain never forks.

Example:
    >>> from loopwright.config import resolve_settings
    >>> from loopwright.store.home import open_store
    >>> store = open_store(resolve_settings(home="lw-doc-audit"))
    >>> with store.db.write() as conn:
    ...     _ = append_event(conn, actor="ada", action="experiment.rename",
    ...                      subject_type="experiment", subject_id="e1",
    ...                      before={"name": "a"}, after={"name": "b"})
    >>> verify_chain(store.db).ok
    True
"""

from __future__ import annotations

import functools
import getpass
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from blake3 import blake3

from .._ids import new_id, now_ms
from ..errors import InvalidInput
from . import schema as t

if TYPE_CHECKING:
    from .database import Database

__all__ = [
    "GENESIS",
    "MAX_EVENTS",
    "AuditEvent",
    "ChainReport",
    "append_event",
    "current_actor",
    "event_of",
    "events",
    "verify_chain",
]

GENESIS = "0" * 64  # the "previous hash" of the first event
MAX_EVENTS = 100_000  # the most events one call may ask for with ``limit``
_PG_LOCK = 727275


@dataclass(frozen=True)
class AuditEvent:
    seq: int
    id: str
    timestamp: int
    actor: str
    action: str
    subject_type: str
    subject_id: str
    before: Any
    after: Any
    prev_hash: str
    hash: str


@dataclass(frozen=True)
class ChainReport:
    """The result of a chain check: ``ok``, how many events, and the first broken one."""

    ok: bool
    checked: int
    broken_seq: int | None = None
    reason: str | None = None
    head_seq: int | None = None  # the newest event the head records (copy it elsewhere)
    head_hash: str | None = None


def current_actor() -> str:
    """The identity recorded for local changes: the operating-system user."""
    return _user_named_by(tuple(os.environ.get(name) for name in _USER_VARIABLES))


_USER_VARIABLES = ("LOGNAME", "USER", "LNAME", "USERNAME")  # what getpass.getuser reads first


@functools.lru_cache(maxsize=8)
def _user_named_by(_variables: tuple[str | None, ...]) -> str:
    # Without those variables getuser looks the uid up in the password database (~80 us, on
    # every run created): the answer is kept per process for the environment that gave it.
    return getpass.getuser()


def _canonical(value: Any) -> str | None:
    return None if value is None else json.dumps(value, sort_keys=True, separators=(",", ":"))


def _event_hash(row: dict[str, Any]) -> str:
    fields = [
        row["id"],
        str(row["timestamp"]),
        row["actor"],
        row["action"],
        row["subject_type"],
        row["subject_id"],
        row["before_json"] or "",
        row["after_json"] or "",
        row["prev_hash"],
    ]
    return str(blake3("\x1f".join(fields).encode()).hexdigest())


def append_event(
    conn: sa.Connection,
    *,
    actor: str,
    action: str,
    subject_type: str,
    subject_id: str,
    before: Any = None,
    after: Any = None,
) -> str:
    """Append one event inside the caller's write transaction; returns its hash."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK})
    head = conn.execute(sa.select(t.audit_head.c.hash).where(t.audit_head.c.id == 1)).scalar()
    # The head, not the newest row, is the link: after a truncation the next event still
    # points at the deleted one, so the gap stays visible.
    last = (
        head
        or conn.execute(
            sa.select(t.audit_events.c.hash).order_by(t.audit_events.c.seq.desc()).limit(1)
        ).scalar()
    )
    row: dict[str, Any] = {
        "id": new_id(),
        "timestamp": now_ms(),
        "actor": actor,
        "action": action,
        "subject_type": subject_type,
        "subject_id": subject_id,
        "before_json": _canonical(before),
        "after_json": _canonical(after),
        "prev_hash": last or GENESIS,
    }
    row["hash"] = _event_hash(row)
    seq = conn.execute(t.audit_events.insert().returning(t.audit_events.c.seq), row).scalar_one()
    _move_head(conn, seq, row["hash"], exists=head is not None)
    return str(row["hash"])


def _move_head(conn: sa.Connection, seq: int, hash_: str, *, exists: bool) -> None:
    if exists:
        conn.execute(
            t.audit_head.update().where(t.audit_head.c.id == 1), {"seq": seq, "hash": hash_}
        )
    else:
        conn.execute(t.audit_head.insert(), {"id": 1, "seq": seq, "hash": hash_})


def events(
    db: Database,
    *,
    subject_type: str | None = None,
    subject_id: str | None = None,
    actor: str | None = None,
    limit: int | None = None,
) -> list[AuditEvent]:
    """Events in order of appending, optionally filtered (newest last); with ``limit``, the
    newest ``limit`` of them (1 to :data:`MAX_EVENTS`)."""
    if limit is not None and (
        type(limit) is not int or not 1 <= limit <= MAX_EVENTS  # a bool is no count
    ):
        raise InvalidInput(
            f"limit {limit!r} is not a count from 1 to {MAX_EVENTS}; ask for fewer events, or "
            "narrow them by subject or actor"
        )
    a = t.audit_events.c
    query = sa.select(t.audit_events)
    for column, value in (
        (a.subject_type, subject_type),
        (a.subject_id, subject_id),
        (a.actor, actor),
    ):
        if value is not None:
            query = query.where(column == value)
    query = query.order_by(a.seq.desc())
    if limit is not None:
        query = query.limit(limit)
    with db.read() as conn:
        rows = conn.execute(query).all()
    return [event_of(row) for row in reversed(rows)]


def event_of(row: Any) -> AuditEvent:
    """The event an ``audit_log`` row records."""
    return AuditEvent(
        seq=row.seq,
        id=row.id,
        timestamp=row.timestamp,
        actor=row.actor,
        action=row.action,
        subject_type=row.subject_type,
        subject_id=row.subject_id,
        before=json.loads(row.before_json) if row.before_json else None,
        after=json.loads(row.after_json) if row.after_json else None,
        prev_hash=row.prev_hash,
        hash=row.hash,
    )


def verify_chain(db: Database, *, anchor: tuple[int, str] | None = None) -> ChainReport:
    """Recompute every link; report the first event whose hash or link does not hold, or a
    chain that ends before (or runs past) the head recorded with the newest event.

    ``anchor`` is a head ``(seq, hash)`` that ``verify`` printed earlier and was kept outside
    the database: if that event no longer has that hash, the chain was rebuilt since."""
    with db.read() as conn:  # one transaction: the head and the rows are seen together
        head = conn.execute(sa.select(t.audit_head).where(t.audit_head.c.id == 1)).first()
        result = conn.execute(sa.select(t.audit_events).order_by(t.audit_events.c.seq))
        report = _walk(dict(row) for row in result.mappings())
        anchored = None
        if anchor is not None:
            query = sa.select(t.audit_events.c.hash).where(t.audit_events.c.seq == anchor[0])
            anchored = conn.execute(query).scalar()
    if not report.ok:
        return report
    report = _check_head(report, head)
    if report.ok and anchor is not None and anchored != anchor[1]:
        now = "is missing" if anchored is None else f"has hash {anchored[:12]}"
        return replace(
            report,
            ok=False,
            broken_seq=anchor[0],
            reason=f"the anchored event #{anchor[0]} {now}, not {anchor[1][:12]}: the chain "
            "was rewritten (or truncated) since that head was taken",
        )
    return report


def _check_head(report: ChainReport, head: Any) -> ChainReport:
    """The walked chain must end exactly at the recorded head."""
    last_seq, last_hash = report.head_seq, report.head_hash
    if head is None:
        if last_seq is None:
            return report
        return ChainReport(
            False,
            report.checked,
            last_seq,
            "the chain's head record is missing (the audit_head table was emptied): "
            "events may have been removed from the end",
        )
    if head.seq == last_seq and head.hash == last_hash:
        return report
    if last_seq is None or head.seq > last_seq:
        shown = "no events are left" if last_seq is None else f"the chain ends at #{last_seq}"
        reason = f"the head records event #{head.seq} but {shown}: the newest events were deleted"
    else:
        reason = (
            f"the chain runs to #{last_seq} but the head records event #{head.seq} "
            f"({head.hash[:12]}): events were appended past the head or the head was rewritten"
        )
    return ChainReport(False, report.checked, head.seq, reason, last_seq, last_hash)


def _walk(rows: Iterator[dict[str, Any]]) -> ChainReport:
    previous = GENESIS
    checked = 0
    last_seq: int | None = None
    for row in rows:
        if row["prev_hash"] != previous:
            return ChainReport(
                False,
                checked,
                row["seq"],
                "its link does not match the previous event's hash: an event "
                "before it was removed, inserted or reordered",
            )
        if _event_hash(row) != row["hash"]:
            return ChainReport(
                False,
                checked,
                row["seq"],
                "its content does not match its hash: the row was edited",
            )
        previous = row["hash"]
        last_seq = row["seq"]
        checked += 1
    return ChainReport(
        True, checked, head_seq=last_seq, head_hash=None if checked == 0 else previous
    )
