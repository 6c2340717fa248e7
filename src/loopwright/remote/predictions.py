"""``RemotePredictions``: the server's prediction log over ``/api/v1/predictions``.

Reads come back as an Arrow IPC stream and become the same DataFrame the embedded service
returns; a read past the server's row cap raises ``LimitExceeded`` naming how to narrow it.
Relative bounds (``since=timedelta(hours=1)``) are turned into times here, on the caller's
clock, as the embedded service does.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from ..serving._log_files import check_deployment_name, utc
from ..serving._prediction_protocol import Compaction, LoggedDeployment, Pruning
from ..serving._prediction_read import bounds
from ._http import Http

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["RemotePredictions"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class RemotePredictions:
    """The prediction log of the server (its ``prediction_log`` setting or blob store)."""

    def __init__(self, http: Http) -> None:
        self._http = http

    def read(
        self,
        deployment: str,
        *,
        since: datetime | timedelta | None = None,
        until: datetime | timedelta | None = None,
        columns: Sequence[str] | None = None,
        limit: int | None = None,
    ) -> pd.DataFrame:
        """Rows of ``deployment`` with ``since <= timestamp < until``, oldest first (the newest
        ``limit``); ``columns`` picks columns (default: all)."""
        import pyarrow as pa

        from ..serving._prediction_read import check_columns, check_limit

        check_deployment_name(deployment)  # refused here as embedded: never a wrong URL
        low, high = bounds(since, until)
        data = self._http.get_bytes(
            f"/predictions/{quote(deployment, safe='')}",
            since=None if low is None else low.isoformat(),
            until=None if high is None else high.isoformat(),
            columns=check_columns(columns),
            limit=check_limit(limit),
        )
        return pa.ipc.open_stream(data).read_all().to_pandas()

    def deployments(self) -> builtins.list[LoggedDeployment]:
        """Every deployment in the log with its row count and time span, by name."""
        return [
            LoggedDeployment(
                name=d["name"],
                rows=d["rows"],
                files=d["files"],
                first=_time(d["first"]),
                last=_time(d["last"]),
            )
            for d in self._http.get("/predictions")
        ]

    def compact(
        self, deployment: str | None = None, *, before: datetime | None = None
    ) -> Compaction:
        """Merge each closed hour's files (before ``before``; default: hours that ended over
        ten minutes ago) into one, for ``deployment`` or every deployment."""
        from ..errors import InvalidInput

        body: dict[str, Any] = {"deployment": deployment}
        if before is not None and not isinstance(before, datetime):
            raise InvalidInput(f"before must be a datetime or None, not {type(before).__name__}")
        if before is not None:
            body["before"] = (utc(before) - _EPOCH) // timedelta(milliseconds=1)
        done = self._http.post("/predictions/compact", body)
        return Compaction(hours=done["hours"], files_merged=done["files_merged"], rows=done["rows"])

    def prune(self, older_than: timedelta, *, deployment: str | None = None) -> Pruning:
        """Delete the hours that ended more than ``older_than`` ago."""
        from ..errors import InvalidInput

        if not isinstance(older_than, timedelta) or older_than < timedelta(0):
            raise InvalidInput(
                f"older_than {older_than!r} must be a timedelta of zero or more, "
                "e.g. timedelta(days=30)"
            )
        body = {"older_than_ms": older_than // timedelta(milliseconds=1), "deployment": deployment}
        done = self._http.post("/predictions/prune", body)
        return Pruning(hours=done["hours"], files=done["files"])


def _time(text: str | None) -> datetime | None:
    if text is None:
        return None
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
