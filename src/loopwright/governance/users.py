"""Users and their roles: who may decide approval requests, and who may manage users.

Roles are ordered ``viewer < editor < approver < admin``; :func:`role_at_least` compares them.
Once the store has an enabled admin, only enabled admins may add users or change them; a fresh
store lets anyone add the first users (so that someone can create the first admin). The last
enabled admin can be neither demoted nor disabled, so the store is never locked out. Every
change is appended to the audit log in its own transaction.

Example:
    >>> from loopwright.config import resolve_settings
    >>> from loopwright.store.home import open_store
    >>> store = open_store(resolve_settings(home="lw-doc-users"))
    >>> users = UserService(store, actor="root")
    >>> users.add("root", "admin").role
    'admin'
    >>> users.add("bea", "approver", email="bea@example.com").name
    'bea'
    >>> role_at_least(users.get("bea").role, "editor")
    True
"""

from __future__ import annotations

import builtins
import unicodedata
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from .._ids import new_id, now_ms
from ..errors import AlreadyExists, Conflict, InvalidInput, NotFound, PermissionDenied
from ..store import schema as t
from ..store.audit import append_event

if TYPE_CHECKING:
    from ..store.home import Store

__all__ = ["ROLES", "User", "UserService", "find_user", "role_at_least"]

ROLES = ("viewer", "editor", "approver", "admin")
_RANK = {role: rank for rank, role in enumerate(ROLES)}


def role_at_least(role: str | None, needed: str) -> bool:
    """Whether ``role`` is ``needed`` or a higher role (an unknown role ranks below all)."""
    return role in _RANK and _RANK[role] >= _RANK[check_role(needed)]


def check_role(role: object) -> str:
    if role not in _RANK:
        raise InvalidInput(f"role {role!r} is not one of {', '.join(ROLES)}")
    return str(role)


def _check_name(name: object) -> str:
    if (
        not isinstance(name, str)
        or not name
        or len(name) > 200
        or name != name.strip()
        or any(unicodedata.category(c) == "Cc" for c in name)
    ):
        raise InvalidInput(
            f"user name {name!r} must be 1-200 characters, without control characters or "
            "surrounding spaces"
        )
    return name


def _check_email(email: object) -> str | None:
    if email is None:
        return None
    if not isinstance(email, str) or "@" not in email or len(email) > 320 or email != email.strip():
        raise InvalidInput(f"email {email!r} must look like name@example.org (at most 320 chars)")
    return email


@dataclass(frozen=True)
class User:
    id: str
    name: str
    email: str | None
    role: str
    disabled: bool
    created_at: int


def _user(row: Any) -> User:
    return User(row.id, row.name, row.email, row.role, bool(row.disabled), row.created_at)


def find_user(conn: sa.Connection, name: str) -> User | None:
    """The user called ``name`` as seen by the caller's transaction, or None."""
    row = conn.execute(sa.select(t.users).where(t.users.c.name == name)).first()
    return None if row is None else _user(row)


class UserService:
    """Add, list and change users; changes are audited and, once an admin exists, admin-only."""

    def __init__(self, store: Store, *, actor: str | None = None) -> None:
        self.store = store
        self.db = store.db
        self._actor = actor

    @property
    def actor(self) -> str:
        """Who changes are made as: the ``actor`` given, else the store's user."""
        return self._actor or self.store.actor

    def add(self, name: str, role: str, email: str | None = None) -> User:
        """Add a user with ``role`` (one of :data:`ROLES`)."""
        user_id = new_id()
        row: dict[str, Any] = {
            "id": user_id,
            "name": _check_name(name),
            "email": _check_email(email),
            "role": check_role(role),
            "disabled": False,
            "created_at": now_ms(),
        }
        try:
            with self.db.write() as conn:
                self._require_admin(conn, f"add user {name!r}")
                conn.execute(t.users.insert(), row)
                self._audit(conn, "user.create", user_id, None, _public(row))
        except sa.exc.IntegrityError:
            raise AlreadyExists(
                f"user {name!r} already exists; change it with set_role or pick another name"
            ) from None
        return self.get(name)

    def get(self, name: str) -> User:
        with self.db.read() as conn:
            found = find_user(conn, name)
        if found is None:
            raise NotFound(f"user {name!r} does not exist; an admin adds it with UserService.add")
        return found

    def find(self, name: str) -> User | None:
        with self.db.read() as conn:
            return find_user(conn, name)

    def list(self) -> builtins.list[User]:
        """Every user, by name."""
        with self.db.read() as conn:
            rows = conn.execute(sa.select(t.users).order_by(t.users.c.name)).all()
        return [_user(row) for row in rows]

    def set_role(self, name: str, role: str) -> User:
        role = check_role(role)
        return self._change(name, "user.role", {"role": role}, demotes=role != "admin")

    def disable(self, name: str) -> User:
        """Disable a user: it keeps its history but can no longer decide approvals."""
        return self._change(name, "user.disable", {"disabled": True}, demotes=True)

    def enable(self, name: str) -> User:
        return self._change(name, "user.enable", {"disabled": False}, demotes=False)

    def _change(self, name: str, action: str, values: dict[str, Any], *, demotes: bool) -> User:
        with self.db.write() as conn:
            self._require_admin(conn, f"change user {name!r}")
            user = find_user(conn, name)
            if user is None:
                raise NotFound(f"user {name!r} does not exist; `list()` shows the users")
            before = {key: getattr(user, key) for key in values}
            if before == values:
                return user
            if demotes and user.role == "admin" and not user.disabled and self._admins(conn) == 1:
                raise Conflict(f"{name!r} is the last enabled admin; make another user admin first")
            conn.execute(t.users.update().where(t.users.c.id == user.id).values(**values))
            self._audit(conn, action, user.id, {"name": name, **before}, {"name": name, **values})
        return self.get(name)

    @staticmethod
    def _admins(conn: sa.Connection) -> int:
        u = t.users.c
        query = sa.select(sa.func.count()).where(u.role == "admin", u.disabled.is_(False))
        return int(conn.execute(query).scalar_one())

    def _require_admin(self, conn: sa.Connection, doing: str) -> None:
        if self._admins(conn) == 0:
            return  # bootstrap: no admin yet, so someone must be able to create one
        acting = find_user(conn, self.actor)
        if acting is None or acting.disabled or acting.role != "admin":
            raise PermissionDenied(
                f"{self.actor!r} may not {doing}: only an enabled admin manages users "
                "once an admin exists"
            )

    def _audit(
        self, conn: sa.Connection, action: str, user_id: str, before: Any, after: Any
    ) -> None:
        append_event(
            conn,
            actor=self.actor,
            action=action,
            subject_type="user",
            subject_id=user_id,
            before=before,
            after=after,
        )


def _public(row: dict[str, Any]) -> dict[str, Any]:
    return {key: row[key] for key in ("name", "email", "role", "disabled")}
