"""``/api/v1/users``: users and roles. Reading is open to viewers; changes need an admin."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from pydantic import Field

from ._deps import PREFIX, Admin, State, Viewer
from ._schemas import Body, Out

__all__ = ["router"]

router = APIRouter(prefix=PREFIX, tags=["users"])

Role = Literal["viewer", "editor", "approver", "admin"]


class UserIn(Body):
    name: str = Field(min_length=1, max_length=200)
    role: Role
    email: str | None = Field(default=None, max_length=320)


class UserChangeIn(Body):
    role: Role | None = None
    disabled: bool | None = None


class UserOut(Out):
    name: str
    role: str
    email: str | None
    disabled: bool
    created_at: int


@router.get("/users")
def list_users(state: State, who: Viewer) -> list[UserOut]:
    """Every user with role and status."""
    return [UserOut.of(u) for u in state.users(who).list()]


@router.post("/users", status_code=201)
def add_user(body: UserIn, state: State, who: Admin) -> UserOut:
    """Add a user (once an admin exists, only admins may)."""
    return UserOut.of(state.users(who).add(body.name, body.role, email=body.email))


@router.get("/users/{name}")
def get_user(name: str, state: State, who: Viewer) -> UserOut:
    return UserOut.of(state.users(who).get(name))


@router.patch("/users/{name}")
def change_user(name: str, body: UserChangeIn, state: State, who: Admin) -> UserOut:
    """Change a user's role or enable/disable them."""
    users = state.users(who)
    user = users.get(name)
    if body.role is not None:
        user = users.set_role(name, body.role)
    if body.disabled is True:
        user = users.disable(name)
    elif body.disabled is False:
        user = users.enable(name)
    state.tokens.forget()  # the new role or status counts from the next request on
    return UserOut.of(user)
