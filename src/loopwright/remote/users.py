"""``RemoteUsers``: users and roles over the server's REST API (the ``Users`` protocol)."""

from __future__ import annotations

import builtins
from typing import TYPE_CHECKING, Any

from ..errors import NotFound
from ..governance.users import User
from ._http import Http, quote_path

if TYPE_CHECKING:
    from ._store import RemoteSession

__all__ = ["RemoteUsers"]


def _user(data: Any) -> User:
    return User("", data["name"], data["email"], data["role"], data["disabled"], data["created_at"])


class RemoteUsers:
    """Add, list and change users on a Loopwright server (changes need an admin token)."""

    def __init__(self, http: Http, session: RemoteSession) -> None:
        self._http = http
        self._session = session

    @property
    def actor(self) -> str:
        """Who changes are made as: the user of this client's token."""
        return self._session.actor

    def add(self, name: str, role: str, email: str | None = None) -> User:
        """Add a user with ``role`` (one of ``ROLES``)."""
        return _user(self._http.post("/users", {"name": name, "role": role, "email": email}))

    def get(self, name: str) -> User:
        return _user(self._http.get(f"/users/{quote_path(name)}"))

    def find(self, name: str) -> User | None:
        try:
            return self.get(name)
        except NotFound:
            return None

    def list(self) -> builtins.list[User]:
        """Every user, by name."""
        return [_user(u) for u in self._http.get("/users")]

    def set_role(self, name: str, role: str) -> User:
        return self._change(name, {"role": role})

    def disable(self, name: str) -> User:
        """Disable a user: it keeps its history but can no longer decide approvals."""
        return self._change(name, {"disabled": True})

    def enable(self, name: str) -> User:
        return self._change(name, {"disabled": False})

    def _change(self, name: str, body: dict[str, Any]) -> User:
        return _user(self._http.request("PATCH", f"/users/{quote_path(name)}", json_body=body))
