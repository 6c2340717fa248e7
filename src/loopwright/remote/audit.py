"""``RemoteAudit``: the server's audit log, read and verified over its REST API (needs admin)."""

from __future__ import annotations

import builtins
from typing import TYPE_CHECKING

from . import _codec
from ._http import Http

if TYPE_CHECKING:
    from ..store.audit import AuditEvent, ChainReport

__all__ = ["RemoteAudit"]


class RemoteAudit:
    """The audit events of the server's store."""

    def __init__(self, http: Http) -> None:
        self._http = http

    def events(
        self,
        *,
        subject_type: str | None = None,
        subject_id: str | None = None,
        actor: str | None = None,
        limit: int | None = None,
    ) -> builtins.list[AuditEvent]:
        """Events, oldest first (the newest ``limit``), optionally filtered."""
        found = self._http.get(
            "/audit/events",
            subject_type=subject_type,
            subject_id=subject_id,
            actor=actor,
            limit=limit,
        )
        return [_codec.audit_event(e) for e in found]

    def verify(self) -> ChainReport:
        """Recompute the hash chain on the server; ``ok`` is False at the first tampered event."""
        return _codec.chain_report(self._http.get("/audit/verify"))
