"""Named objects on the metadata store: the row of a unique name, and a service's audit events.

Monitors, deployments, schedules and loops are each a table with a unique ``name`` column and a
service that writes them. Their services look a name up the same way (an unknown name is
:class:`~loopwright.errors.NotFound` naming up to 20 that exist and how to create one) and audit
their changes the same way (the service's actor, its subject type); this module is that one way.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

import sqlalchemy as sa

from .._ids import now_ms
from ..errors import NotFound
from .audit import append_event

if TYPE_CHECKING:
    from .database import Database
    from .home import Store

__all__ = ["KNOWN_NAMES", "Audited", "named_row"]

KNOWN_NAMES = 20  # names listed when one is not found: enough to spot a typo, short to read


def named_row(
    conn: sa.Connection, table: sa.Table, name: str, *, what: str, hint: str, lock: bool = False
) -> Any:
    """The row of ``table`` whose ``name`` is ``name`` (locked for update with ``lock``).

    Args:
        conn: the connection (a write transaction when ``lock``).
        table: a table with a unique ``name`` column.
        name: the name, already checked by the caller.
        what: the object's kind in messages (``"loop"``; the list says ``"loops"``).
        hint: how to create one, shown in parentheses after the known names.

    Raises:
        NotFound: no such row; the message lists up to 20 known names and ``hint``.
    """
    column = table.c.name
    query = sa.select(table).where(column == name)
    row = conn.execute(query.with_for_update() if lock else query).first()
    if row is None:
        known = conn.execute(sa.select(column).order_by(column).limit(KNOWN_NAMES)).scalars()
        raise NotFound(
            f"{what} {name!r} does not exist; {what}s: {', '.join(known) or 'none'} ({hint})"
        )
    return row


class Audited:
    """Base of a service on the stores acting for a user: who it acts as and its audit events.

    Its ``__init__`` takes the store, the actor (None: the store's user) and the clock (UTC
    milliseconds; tests pass a fake one); a service with more to set up sets ``store`` and
    ``_actor`` itself. A subclass names the subject type of its events in ``_subject_type``.
    """

    store: Store
    db: Database
    _actor: str | None
    _clock: Callable[[], int]
    _subject_type: ClassVar[str]

    def __init__(
        self, store: Store, *, actor: str | None = None, clock: Callable[[], int] | None = None
    ) -> None:
        self.store = store
        self.db = store.db
        self._actor = actor
        self._clock = clock or now_ms

    def _actor_name(self) -> str:
        return self._actor or self.store.actor

    def _audit(
        self, conn: sa.Connection, action: str, subject: str, *, before: Any = None,
        after: Any = None, kind: str | None = None,
    ) -> None:  # fmt: skip
        """Append an event on ``subject`` (of ``kind``, default the service's subject type)
        inside the caller's write transaction."""
        append_event(
            conn,
            actor=self._actor_name(),
            action=action,
            subject_type=kind or self._subject_type,
            subject_id=subject,
            before=before,
            after=after,
        )
