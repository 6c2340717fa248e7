"""What handlers take as parameters: the server state and the caller, with the role it needs.

``Viewer``/``Editor``/``Approver``/``Admin`` are the caller's :class:`Identity` after the role
check; a handler declares its access rule by taking one of them (the route-rule test reads it).
A route that starts long work takes ``Depends(cancel_on_disconnect)``: the work is interrupted
once the caller goes away.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from typing import Annotated

import anyio
from fastapi import Depends, Path, Request

from ...store import limits
from .._state import ServerState
from ..auth import Identity, require_async

__all__ = [
    "PREFIX",
    "Admin",
    "Approver",
    "Editor",
    "State",
    "VersionNumber",
    "Viewer",
    "cancel_on_disconnect",
    "get_state",
]

PREFIX = "/api/v1"

# A version in a path: versions are INTEGER columns, so a larger number is refused here (400)
# rather than handed to the database driver, which cannot bind it.
VersionNumber = Annotated[int, Path(le=limits.INT32_MAX)]


async def get_state(request: Request) -> ServerState:
    """Async, as the role checks are: FastAPI would run a sync dependency in its thread pool."""
    state: ServerState = request.app.state.lw
    return state


State = Annotated[ServerState, Depends(get_state)]
Viewer = Annotated[Identity, Depends(require_async("viewer"))]
Editor = Annotated[Identity, Depends(require_async("editor"))]
Approver = Annotated[Identity, Depends(require_async("approver"))]
Admin = Annotated[Identity, Depends(require_async("admin"))]


async def cancel_on_disconnect(request: Request) -> AsyncIterator[None]:
    """Interrupt the DuckDB queries the endpoint runs (validation) once its caller disconnects,
    rather than finishing work nobody will receive. Only for routes whose body is read whole."""
    from ...data._query_guard import cancelled_by

    gone = threading.Event()

    async def watch() -> None:
        while not await request.is_disconnected():
            await anyio.sleep(0.2)
        gone.set()

    # A task, not a task group around the yield: the endpoint's errors must pass through as
    # they are, not wrapped in an ExceptionGroup.
    watcher = asyncio.get_running_loop().create_task(watch())
    try:
        with cancelled_by(gone):
            yield
    finally:
        watcher.cancel()
