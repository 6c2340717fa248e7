"""Who may compact or prune a prediction log: one lease file at its root, across processes.

Two compactions of the same hour would each hide its files behind their own merged file, and
then both merged files hold the same rows: duplicates that no later step removes. A threading
lock only orders the compactions of one process, so :func:`compaction_lease` also creates
``compaction.lease`` in the log's root exclusively (``O_EXCL`` locally, a conditional PUT on
S3). Whoever cannot create it gets :class:`~loopwright.errors.Conflict`, naming the holder.

A holder that died keeps its lease: on its own host the next compaction sees its process is
gone and takes the lease over; from another host, after :data:`STALE` without a renewal (the
holder renews it as it goes, :meth:`Lease.renew`). The file can also be deleted by hand once
no compaction runs.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ..errors import Conflict
from ._log_files import LogFiles

__all__ = ["LEASE_NAME", "STALE", "Lease", "compaction_lease"]

LEASE_NAME = "compaction.lease"
STALE = 3600.0  # seconds without a renewal after which another host may take a lease over
_RENEW_AFTER = STALE / 4
# Compactions of one process take turns here first (a server's requests): they wait rather
# than fail on each other's lease.
_TURNS = threading.Lock()


class Lease:
    """A held lease: :meth:`renew` it at least every :data:`STALE` seconds while working."""

    def __init__(self, files: LogFiles, path: str) -> None:
        self._files, self.path = files, path
        self.owner = os.urandom(8).hex()
        self._renewed = 0.0

    def content(self) -> bytes:
        self._renewed = time.monotonic()
        held = {"owner": self.owner, "host": socket.gethostname(), "pid": os.getpid()}
        return json.dumps({**held, "renewed": time.time()}).encode()

    def renew(self) -> None:
        """Tell other hosts the holder is alive (a write only every quarter of STALE)."""
        if time.monotonic() - self._renewed >= _RENEW_AFTER and self._mine():
            self._files.put(self.path, self.content())

    def release(self) -> None:
        if self._mine():
            self._files.remove(self.path)

    def _mine(self) -> bool:
        held = _read(self._files, self.path)
        return held is not None and held.get("owner") == self.owner


@contextmanager
def compaction_lease(files: LogFiles) -> Iterator[Lease]:
    """Hold the log's compaction lease for the block, or raise ``Conflict`` if another
    process holds it."""
    with _TURNS:
        lease = Lease(files, f"{files.root}/{LEASE_NAME}")
        _acquire(files, lease)
        try:
            yield lease
        finally:
            lease.release()


def _acquire(files: LogFiles, lease: Lease) -> None:
    for _ in range(2):  # once more after taking over a dead holder's lease
        if files.create(lease.path, lease.content()):
            return
        held = _read(files, lease.path)
        if held is None:
            continue  # released meanwhile
        if not _dead(held):
            raise Conflict(
                f"the prediction log at {files.uri} is being compacted or pruned by process "
                f"{held.get('pid')} on {held.get('host')}; try again when it is done (if no "
                f"compaction runs, delete {lease.path})"
            )
        files.remove(lease.path)
    raise Conflict(
        f"another process took the compaction lease of {files.uri} meanwhile; try again later"
    )


def _dead(held: dict[str, Any]) -> bool:
    """Whether the lease's holder is gone: its process, on this host; else its renewals."""
    renewed = held.get("renewed")
    if not isinstance(renewed, (int, float)) or time.time() - renewed > STALE:
        return True
    if held.get("host") != socket.gethostname() or not isinstance(held.get("pid"), int):
        return False
    try:
        os.kill(held["pid"], 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    return False


def _read(files: LogFiles, path: str) -> dict[str, Any] | None:
    try:
        held = json.loads(files.read_bytes(path))
    except FileNotFoundError:
        return None
    except ValueError:  # torn or foreign content: treat as stale
        return {}
    return held if isinstance(held, dict) else {}
