"""What runs one step call where an executor puts it: a thread, a worker process, a Ray task.

:func:`run_step` makes the step's tracked run the active run while the function runs (so
``lw.log_metric`` inside a step lands on it) without ending it, since the engine ends it. In a
worker process the run is reached through a client made from the run's settings, one per
process and settings, kept for the next call. An error raised by the function carries the
worker's traceback as a note, which survives pickling back to the engine.
"""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .._run_stack import pop_run, push_run

if TYPE_CHECKING:
    from ..client import Client
    from ..config import Settings
    from ..tracking import ActiveRun

__all__ = ["Clients", "StepContext", "run_step", "set_start_cell"]

# In a worker process: a shared number where each call writes the time its function starts,
# so the parent counts a timeout from there rather than from the worker's start-up.
_start_cell: Any = None


def set_start_cell(cell: Any) -> None:
    """Worker initializer: remember the shared cell for call start times."""
    global _start_cell
    _start_cell = cell


@dataclass(frozen=True)
class StepContext:
    """Where a step call's records go: the client ``settings``, the step's tracked run
    ``run_id`` and the call's ``invocation`` (for messages).

    ``run``, an active-run handle on the engine's own client, saves an in-process call from
    connecting again; it is not sent to other processes.
    """

    settings: Settings
    run_id: str
    invocation: str
    run: ActiveRun | None = field(default=None, compare=False, repr=False)

    def __reduce__(self) -> tuple[Any, ...]:
        return (StepContext, (self.settings, self.run_id, self.invocation))


class Clients:
    """Clients made from step contexts' settings, one per settings, until :meth:`close`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._made: dict[tuple[object, ...], Client] = {}

    def get(self, settings: Settings) -> Client:
        key = (
            str(settings.home),
            settings.db_uri,
            settings.blob_uri,
            settings.server_uri,
            settings.token,
            settings.user,
        )
        with self._lock:
            found = self._made.get(key)
            if found is None:
                # The public entry point, as user code connects: this runs at the top of a
                # worker process, above the client.
                import loopwright

                found = self._made[key] = loopwright.Client(settings)
            return found

    def close(self) -> None:
        with self._lock:
            made, self._made = list(self._made.values()), {}
        for client in made:
            client.close()


# A worker process's clients live as long as the process.
_worker_clients = Clients()


def run_step(
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: Mapping[str, Any],
    context: StepContext,
    *,
    note_traceback: bool = True,
    clients: Clients | None = None,
) -> Any:
    """Call ``fn(*args, **kwargs)`` with the step's run active; flush its metrics after.

    The run is ``context.run`` if given, else reached through a client from ``clients``
    (default: this process's own, kept for the next call).
    """
    handle = context.run
    client = None
    if handle is None:
        client = (clients or _worker_clients).get(context.settings)
        handle = _attach(client, context.run_id)
    push_run(handle, nested=True)
    if _start_cell is not None:
        _start_cell.value = time.time()
    try:
        return fn(*args, **kwargs)
    except BaseException as exc:
        if note_traceback:
            exc.add_note(
                f"in step {context.invocation} (worker traceback):\n{traceback.format_exc()}"
            )
        raise
    finally:
        pop_run(handle)
        if client is not None:
            # A worker may be killed after returning: its metrics must be stored before.
            client.tracking.writer.flush()


def _attach(client: Client, run_id: str) -> ActiveRun:
    from ..tracking import ActiveRun

    run = client.tracking.get_run(run_id)
    return ActiveRun(client.tracking, run, model_logger=client._log_model)
