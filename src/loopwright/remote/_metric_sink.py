"""The remote metric writer's sink: batches of points posted to the server, run by run."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import NoReturn

from .._logging import get_logger
from ..errors import InvalidInput, LoopwrightError, StoreError
from ..tracking._writer import Point, PointsRefused, RunRefused
from ._http import Http

__all__ = ["HttpSink"]

_log = get_logger(__name__)
_POINTS_PER_REQUEST = 10_000


class HttpSink:
    """Posts points to ``/runs/{id}/metrics`` and heartbeats to ``/runs/{id}/heartbeat``.

    An unreachable or failing server (``StoreError``) is worth retrying; a refusal is not: a
    400 names bad points, anything else (the run was deleted, access was revoked) the run. The
    server ignores exact repeats, so a batch sent again after a partial failure is harmless.
    """

    def __init__(self, http: Http) -> None:
        self._http = http

    def write(
        self,
        rows: list[Point],
        heartbeats: Sequence[str],
        then: Callable[[NoReturn], None] | None,
    ) -> None:
        if then is not None:
            raise TypeError("a remote writer has no transaction to run `then` in")
        by_run: dict[str, list[dict[str, object]]] = {}
        for run_id, key, step, timestamp, value, is_nan in rows:
            by_run.setdefault(run_id, []).append(
                {
                    "key": key,
                    "value": math.nan if is_nan else value,
                    "step": step,
                    "timestamp": timestamp,
                }
            )
        for run_id, points in by_run.items():
            for start in range(0, len(points), _POINTS_PER_REQUEST):
                chunk = points[start : start + _POINTS_PER_REQUEST]
                self._post(f"/runs/{run_id}/metrics", {"metrics": chunk})
        for run_id in heartbeats:
            try:
                self._http.post(f"/runs/{run_id}/heartbeat")
            except StoreError:
                raise
            except LoopwrightError as exc:  # the run is gone: nothing left to keep alive
                _log.info("no heartbeat for run %s: %s", run_id, exc.message)

    def _post(self, path: str, body: dict[str, object]) -> None:
        try:
            self._http.post(path, body)
        except StoreError:
            raise
        except InvalidInput as exc:
            raise PointsRefused(exc.message) from exc
        except LoopwrightError as exc:
            raise RunRefused(exc.message) from exc
