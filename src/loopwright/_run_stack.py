"""The runs started and not yet ended in this thread or asyncio task (innermost last).

It sits at the base, beside ``_ids``, so both the client and the shortcuts above it can reach it
without importing each other, and importing it loads nothing heavy.

State is a ``ContextVar`` holding a stack, so runs started in one thread never receive another
thread's metrics. The client pushes each run it starts; the run removes itself when it ends.
``loopwright._active`` builds the module-level shortcuts (``lw.log_metric``) on top of it.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import TYPE_CHECKING

from .errors import Conflict

if TYPE_CHECKING:
    from .tracking import ActiveRun

__all__ = ["active_run", "pop_run", "push_run"]

_stack: ContextVar[tuple[ActiveRun, ...]] = ContextVar("loopwright_active_runs", default=())


def active_run() -> ActiveRun | None:
    """The innermost run started and not yet ended in this thread or task, if any."""
    stack = _stack.get()
    return stack[-1] if stack else None


def push_run(run: ActiveRun, *, nested: bool) -> None:
    """Make ``run`` the active run; the run removes itself when it ends."""
    stack = _stack.get()
    if stack and not nested:
        raise Conflict(
            f"run {stack[-1].id} is still active; end it first, or pass nested=True to start "
            "a child run"
        )
    _stack.set((*stack, run))


def pop_run(run: ActiveRun) -> None:
    _stack.set(tuple(r for r in _stack.get() if r is not run))
