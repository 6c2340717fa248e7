"""What handlers take as parameters: the server state and the caller, with the role it needs.

``Viewer``/``Editor``/``Approver``/``Admin`` are the caller's :class:`Identity` after the role
check; a handler declares its access rule by taking one of them (the route-rule test reads it).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from .._state import ServerState
from ..auth import Identity, require

__all__ = ["PREFIX", "Admin", "Approver", "Editor", "State", "Viewer", "get_state"]

PREFIX = "/api/v1"


def get_state(request: Request) -> ServerState:
    state: ServerState = request.app.state.lw
    return state


State = Annotated[ServerState, Depends(get_state)]
Viewer = Annotated[Identity, Depends(require("viewer"))]
Editor = Annotated[Identity, Depends(require("editor"))]
Approver = Annotated[Identity, Depends(require("approver"))]
Admin = Annotated[Identity, Depends(require("admin"))]
