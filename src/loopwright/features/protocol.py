"""The feature store as a capability (``client.features``), the same on both backends.

:class:`~loopwright.features.service.FeatureStore` works on the stores (definitions in the
metadata database, the offline store on DuckDB over the views' sources, the online store in
SQLite or Redis); :class:`~loopwright.remote.features.RemoteFeatures` is the same over
``/api/v1/features``. Definitions travel as specs (``features/spec.py``): the Python classes
of ``features/definitions.py`` and YAML files are turned into specs on the caller's side.
"""

from __future__ import annotations

import builtins
import os
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ..data.entities import DatasetVersion
    from .entities import (
        ApplyPlan,
        FeatureDefinition,
        Freshness,
        Materialization,
        OnlineFeatures,
        SkewReport,
        TrainingSet,
    )
    from .spec import Kind, Spec

__all__ = ["EntityRows", "FeatureSelection", "Features", "TimeArg"]

# A feature service ref (``driver_model``, ``driver_model@v2``) or feature refs
# (``["driver_stats:conv_rate", "driver_stats:*", "conv_plus:conv_x2"]``).
FeatureSelection = str | Sequence[str]
# Entity rows for an online lookup: columns (``{"driver_id": [1, 2]}``) or rows
# (``[{"driver_id": 1}, ...]``); columns other than join keys are request data for on-demand
# views.
EntityRows = Mapping[str, Sequence[Any]] | Sequence[Mapping[str, Any]]
# A time: an aware datetime (naive: UTC) or UTC milliseconds.
TimeArg = datetime | int | None


class Features(Protocol):
    """Feature definitions, point-in-time training sets, the online store and its checks."""

    # --- definitions -------------------------------------------------------------------------

    def plan(self, specs: Sequence[Spec]) -> ApplyPlan:
        """What :meth:`apply` would do with ``specs`` (validated; nothing written).

        Raises:
            InvalidInput: a spec is malformed or names what does not exist (an unknown entity,
                view or feature), with the definition and the field to fix.
        """
        ...

    def apply(self, specs: Sequence[Spec], *, force: bool = False) -> ApplyPlan:
        """Validate and store ``specs`` as new versions where their content changed (the same
        content again is a no-op), all or nothing; audited.

        Raises:
            InvalidInput: as :meth:`plan`.
            Conflict: a change is breaking (``ApplyPlan.breaking``) and ``force`` is False;
                the message lists each reason and says to pass ``--force``.
        """
        ...

    def list(self, kind: Kind | None = None) -> builtins.list[FeatureDefinition]:
        """The newest version of every definition (of ``kind``), by kind then name."""
        ...

    def get(self, ref: str, *, kind: Kind | None = None) -> FeatureDefinition:
        """A version by ``name`` (the newest) or ``name@vN``.

        Raises:
            NotFound: no such name or version (the message lists the known ones).
            InvalidInput: the name exists in several kinds and ``kind`` is None.
        """
        ...

    def versions(self, name: str, *, kind: Kind | None = None) -> builtins.list[FeatureDefinition]:
        """Every version of ``name``, newest first."""
        ...

    def diff(
        self, name: str, a: int | None = None, b: int | None = None, *, kind: Kind | None = None
    ) -> str:
        """A unified diff of two versions' specs (default: the previous and the newest)."""
        ...

    # --- offline store -----------------------------------------------------------------------

    def get_historical_features(
        self,
        entity_rows: Any,
        features: FeatureSelection,
        *,
        timestamp_field: str = "event_timestamp",
        full_feature_names: bool = False,
        progress: Callable[[int], None] | None = None,
        dest: str | os.PathLike[str] | None = None,
    ) -> TrainingSet:
        """A point-in-time correct training set.

        ``entity_rows``: a pandas DataFrame, a pyarrow Table, a local Parquet file
        (``pathlib.Path``) or a dataset ref (``str``: ``"name@v3"``), with the join keys of
        every view's entities and ``timestamp_field``. Every entity row comes back, in its
        order, with its columns, then the features: for each view, the row of the same keys
        with the latest event time ``<=`` the entity row's time and ``>=`` that time minus the
        TTL (ties on event time: the newest created time), else nulls; on-demand features
        computed by their code over the row. Out of core (DuckDB spills to disk).

        The rows are written to a Parquet file (``TrainingSet.path``) in the folder ``dest``
        (made if missing), else in a new temporary folder; through a server, the file is
        computed there and downloaded into that folder.

        Raises:
            InvalidInput: a join key or the timestamp column is missing or mistyped; two
                features share an output name (pass ``full_feature_names``).
            NotFound: an unknown service, view or feature.
        """
        ...

    def save_training_set(
        self,
        training_set: TrainingSet,
        dataset: str,
        *,
        run_id: str | None = None,
        message: str | None = None,
    ) -> DatasetVersion:
        """Store the training set as a version of ``dataset``, tagged with its lineage
        (``loopwright.feature_service``, ``loopwright.feature_views``, ``loopwright.sources``);
        with ``run_id``, the run records it as a training input and is tagged
        ``loopwright.feature_service`` (a model version registered from the run takes the tag)."""
        ...

    # --- online store ------------------------------------------------------------------------

    def materialize(
        self,
        views: Sequence[str] | None = None,
        *,
        start: TimeArg = None,
        end: TimeArg = None,
        incremental: bool = False,
        progress: Callable[[int], None] | None = None,
    ) -> builtins.list[Materialization]:
        """Load each online view's newest row per entity with event time in ``[start, end]``
        (default: all time to now) into the online store; ``incremental``: from the view's
        watermark (the last materialization's end) to ``end``. A row older than the stored
        one of its key is skipped. ``progress`` is called with rows written."""
        ...

    def push(self, view: str, rows: Any) -> Materialization:
        """Write ``rows`` (DataFrame, Arrow table or a list of dicts with the join keys, the
        event time and features) straight into the online store: streaming updates. Rows are
        checked against the view's types; a row older than the stored one is skipped."""
        ...

    def get_online_features(
        self,
        entity_rows: EntityRows,
        features: FeatureSelection,
        *,
        full_feature_names: bool = False,
    ) -> OnlineFeatures:
        """The served values for each entity row, in one round trip per view (a view's TTL
        applies: an older row reads as ``outside_ttl`` with value None).

        Raises:
            InvalidInput: a join key is missing or of the wrong type; request data an
                on-demand view needs is missing.
            NotFound: an unknown service, view or feature.
        """
        ...

    def materializations(
        self, view: str | None = None, *, limit: int = 100
    ) -> builtins.list[Materialization]:
        """Recent loads into the online store, newest first."""
        ...

    def freshness(self, views: Sequence[str] | None = None) -> builtins.list[Freshness]:
        """Per online view, the newest event time in the online store and its age."""
        ...

    # --- checks ------------------------------------------------------------------------------

    def skew(
        self,
        deployment: str,
        *,
        sample: int = 1000,
        since: TimeArg = None,
        until: TimeArg = None,
        tolerance: float = 1e-6,
    ) -> SkewReport:
        """Compare a sample of the features a deployment served (its prediction log) with
        what the offline store gives for the same keys at the same times, per feature.

        Raises:
            NotFound: no such deployment, or its model version records no feature service.
        """
        ...

    def close(self) -> None:
        """Release the online store's connections."""
        ...
