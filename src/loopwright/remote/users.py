"""``RemoteUsers``: users and roles over the server's REST API (UserService's methods)."""

from __future__ import annotations

import builtins
from typing import Any

from ..governance.users import User
from ._http import Http, quote_path

__all__ = ["RemoteUsers"]


def _user(data: Any) -> User:
    return User("", data["name"], data["email"], data["role"], data["disabled"], data["created_at"])


class RemoteUsers:
    """Add, list and change users on a Loopwright server (changes need an admin token)."""

    def __init__(self, http: Http) -> None:
        self._http = http

    def add(self, name: str, role: str, email: str | None = None) -> User:
        return _user(self._http.post("/users", {"name": name, "role": role, "email": email}))

    def get(self, name: str) -> User:
        return _user(self._http.get(f"/users/{quote_path(name)}"))

    def list(self) -> builtins.list[User]:
        return [_user(u) for u in self._http.get("/users")]

    def set_role(self, name: str, role: str) -> User:
        return self._change(name, {"role": role})

    def disable(self, name: str) -> User:
        return self._change(name, {"disabled": True})

    def enable(self, name: str) -> User:
        return self._change(name, {"disabled": False})

    def _change(self, name: str, body: dict[str, Any]) -> User:
        return _user(self._http.request("PATCH", f"/users/{quote_path(name)}", json_body=body))
