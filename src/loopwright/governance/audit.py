"""``AuditLog``: the audit log of the stores, read and verified (``client.audit``).

Events are appended by the services, in the transaction of the change they record (see
:mod:`loopwright.store.audit`); this class only reads them.
"""

from __future__ import annotations

import builtins
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..store.audit import AuditEvent, ChainReport
    from ..store.home import Store

__all__ = ["AuditLog"]


class AuditLog:
    """Read and verify the audit events of one store."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def events(
        self,
        *,
        subject_type: str | None = None,
        subject_id: str | None = None,
        actor: str | None = None,
        limit: int | None = None,
    ) -> builtins.list[AuditEvent]:
        """Events, oldest first (the newest ``limit``), optionally filtered."""
        from ..store.audit import events

        return events(
            self._store.db,
            subject_type=subject_type,
            subject_id=subject_id,
            actor=actor,
            limit=limit,
        )

    def verify(self) -> ChainReport:
        """Recompute the hash chain; ``ok`` is False at the first tampered event."""
        from ..store.audit import verify_chain

        return verify_chain(self._store.db)
