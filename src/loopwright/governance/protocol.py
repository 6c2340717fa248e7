"""The governance capabilities as protocols: users (``client.users``) and the audit log.

:class:`~loopwright.governance.users.UserService` and :class:`~loopwright.governance.audit.AuditLog`
work on the stores; :mod:`loopwright.remote.users` and :mod:`loopwright.remote.audit` are the same
methods over a server. ``tests/test_service_parity.py`` compares the signatures.
"""

from __future__ import annotations

import builtins
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ..store.audit import AuditEvent, ChainReport
    from .users import User

__all__ = ["Audit", "Users"]


class Users(Protocol):
    """Users and their roles (viewer < editor < approver < admin); changes need an admin."""

    @property
    def actor(self) -> str:
        """Who changes are made as."""
        ...

    def add(self, name: str, role: str, email: str | None = None) -> User:
        """Add a user with ``role`` (one of ``ROLES``)."""
        ...

    def get(self, name: str) -> User:
        """The user called ``name`` (``NotFound`` if there is none)."""
        ...

    def find(self, name: str) -> User | None:
        """The user called ``name``, or None."""
        ...

    def list(self) -> builtins.list[User]:
        """Every user, by name."""
        ...

    def set_role(self, name: str, role: str) -> User:
        """Give ``name`` another role (the last enabled admin cannot be demoted)."""
        ...

    def disable(self, name: str) -> User:
        """Disable a user: it keeps its history but can no longer decide approvals."""
        ...

    def enable(self, name: str) -> User:
        """Enable a disabled user again."""
        ...


class Audit(Protocol):
    """The append-only, hash-chained log of changes."""

    def events(
        self,
        *,
        subject_type: str | None = None,
        subject_id: str | None = None,
        actor: str | None = None,
        limit: int | None = None,
    ) -> builtins.list[AuditEvent]:
        """Events, oldest first (the newest ``limit``), optionally filtered."""
        ...

    def verify(self) -> ChainReport:
        """Recompute the hash chain; ``ok`` is False at the first tampered event."""
        ...
