"""The prediction log as a capability: what both backends provide (``client.prediction_log``).

:class:`~loopwright.serving.predictions.PredictionService` reads and maintains a log folder
(local or an fsspec URL such as S3); :class:`~loopwright.remote.predictions.RemotePredictions`
is the same over a server's ``/api/v1/predictions`` (the server's own log). Which log a client
reaches: ``serving.prediction_log.log_location``.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Compaction", "LoggedDeployment", "Predictions", "Pruning"]


@dataclass(frozen=True)
class LoggedDeployment:
    """A deployment with files in the prediction log.

    ``rows``: logged rows (one per input row); ``files``: Parquet files holding them; ``first``
    and ``last``: the earliest and latest request time (UTC), None when no file records them.
    """

    name: str
    rows: int
    files: int
    first: datetime | None
    last: datetime | None


@dataclass(frozen=True)
class Compaction:
    """What a compaction did: ``hours`` merged, ``files_merged`` into one file per hour,
    ``rows`` in the merged files."""

    hours: int
    files_merged: int
    rows: int


@dataclass(frozen=True)
class Pruning:
    """What a prune removed: whole ``hours`` of the log and the ``files`` in them."""

    hours: int
    files: int


class Predictions(Protocol):
    """Read the prediction log back, list what it holds, compact and prune it."""

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
        ...

    def deployments(self) -> builtins.list[LoggedDeployment]:
        """Every deployment in the log with its row count and time span, by name."""
        ...

    def compact(
        self, deployment: str | None = None, *, before: datetime | None = None
    ) -> Compaction:
        """Merge each closed hour's files (before ``before``; default: hours that ended over
        ten minutes ago) into one, for ``deployment`` or every deployment."""
        ...

    def prune(self, older_than: timedelta, *, deployment: str | None = None) -> Pruning:
        """Delete the hours that ended more than ``older_than`` ago."""
        ...
