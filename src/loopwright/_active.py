"""The active run and the default client behind the module-level shortcuts (``lw.log_metric``).

State is per thread and per asyncio task (a ``ContextVar`` holding a stack of runs), so runs
started in one thread never receive another thread's metrics.

Example:
    >>> import loopwright as lw
    >>> with lw.start_run(experiment="demo", home="lw-doc-active-module") as run:
    ...     lw.log_metric("loss", 0.5)
    ...     lw.active_run() is run
    True
    >>> lw.active_run() is None
    True
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from contextvars import ContextVar
from typing import TYPE_CHECKING

from .errors import Conflict, TrackingError

if TYPE_CHECKING:
    from .client import Client
    from .tracking import ActiveRun, Artifact

__all__ = [
    "active_run",
    "default_client",
    "end_run",
    "log_artifact",
    "log_artifacts",
    "log_metric",
    "log_metrics",
    "log_param",
    "log_params",
    "push_run",
    "set_tag",
    "set_tags",
    "start_run",
]

_stack: ContextVar[tuple[ActiveRun, ...]] = ContextVar("loopwright_active_runs", default=())
_client_lock = threading.Lock()
_default_client: Client | None = None


def default_client(home: str | os.PathLike[str] | None = None) -> Client:
    """The client the shortcuts use: made on first use from the settings (embedded by default)."""
    global _default_client
    with _client_lock:
        if _default_client is None or home is not None:
            from .client import connect

            if _default_client is not None:
                _default_client.close()
            _default_client = connect(home=home)
        return _default_client


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


def start_run(
    experiment: str = "Default",
    name: str | None = None,
    *,
    tags: Mapping[str, str] | None = None,
    nested: bool = False,
    home: str | os.PathLike[str] | None = None,
) -> ActiveRun:
    """Start a run on the default client; nested runs get the active run as their parent."""
    return default_client(home).start_run(experiment, name, tags=tags, nested=nested)


def _require_active() -> ActiveRun:
    run = active_run()
    if run is None:
        raise TrackingError("no active run: call loopwright.start_run() first")
    return run


def end_run() -> None:
    """End the active run as FINISHED."""
    _require_active().end()


def log_param(key: str, value: object) -> None:
    _require_active().log_param(key, value)


def log_params(params: Mapping[str, object]) -> None:
    _require_active().log_params(params)


def log_metric(key: str, value: float, step: int = 0, timestamp: int | None = None) -> None:
    _require_active().log_metric(key, value, step=step, timestamp=timestamp)


def log_metrics(metrics: Mapping[str, float], step: int = 0, timestamp: int | None = None) -> None:
    _require_active().log_metrics(metrics, step=step, timestamp=timestamp)


def set_tag(key: str, value: object) -> None:
    _require_active().set_tag(key, value)


def set_tags(tags: Mapping[str, object]) -> None:
    _require_active().set_tags(tags)


def log_artifact(local_path: str | os.PathLike[str], artifact_path: str | None = None) -> Artifact:
    return _require_active().log_artifact(local_path, artifact_path)


def log_artifacts(
    local_dir: str | os.PathLike[str], artifact_path: str | None = None
) -> list[Artifact]:
    return _require_active().log_artifacts(local_dir, artifact_path)
