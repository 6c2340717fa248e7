"""Failpoints: named places where a test makes the process die (SIGKILL) on purpose.

The loop driver calls :func:`hit` right after each side effect (a pipeline started, a gate
recorded, a canary applied ...) and before the state write that records it, so the kill tests
can prove that a driver started afresh finishes the iteration without doing anything twice.
Set ``LOOPWRIGHT_FAILPOINTS=loop.canary.applied,other.name`` to arm some; unset, ``hit`` costs
one dictionary lookup.
"""

from __future__ import annotations

import os
import signal

__all__ = ["ENVIRONMENT", "hit"]

ENVIRONMENT = "LOOPWRIGHT_FAILPOINTS"


def hit(name: str) -> None:
    """Kill this process with SIGKILL (no cleanup, no finally blocks) if ``name`` is armed."""
    armed = os.environ.get(ENVIRONMENT)
    if armed and name in {part.strip() for part in armed.split(",")}:
        os.kill(os.getpid(), signal.SIGKILL)
