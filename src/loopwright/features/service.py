"""``FeatureStore``: the embedded feature store (the ``Features`` protocol) on local stores.

It composes the parts behind one object: definitions (:class:`~loopwright.features.
definition_store.DefinitionStore`), the offline store (``offline.historical``, ``training_sets.
save``), the online store (``online.open.open_online_store``, ``materialize``, ``push``,
``online_read.lookup``) and the skew check (``skew.check_skew``). It adds no logic of its own
beyond argument conversion (times to UTC milliseconds) and owning the online store: opened on
first use, closed by :meth:`close` (the client's ``close()`` calls it).

A server keeps one ``FeatureStore`` for every request (one online store connection, one
definitions cache); changes are recorded as the caller through :meth:`_acting_for`, a view of
the same store acting for another user.
"""

from __future__ import annotations

import builtins
import os
import tempfile
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._ids import now_ms
from ..errors import InvalidInput
from .spec import FIRST_MS, LAST_MS

if TYPE_CHECKING:
    from ..config import Settings
    from ..data.entities import DatasetVersion
    from ..data.protocol import Datasets
    from ..registry.protocol import Registry
    from ..serving._prediction_protocol import Predictions
    from ..serving.protocol import Deployments
    from ..store.home import Store
    from ..tracking.protocol import Tracking
    from .definition_store import DefinitionStore
    from .entities import (
        ApplyPlan,
        FeatureDefinition,
        Freshness,
        Materialization,
        OnlineFeatures,
        SkewReport,
        TrainingSet,
    )
    from .online.base import OnlineStore
    from .protocol import EntityRows, FeatureSelection, TimeArg
    from .spec import Kind, Spec

__all__ = ["MAX_MATERIALIZATIONS", "FeatureStore", "time_ms"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)
MAX_MATERIALIZATIONS = 10_000  # rows one materializations() call may list


def time_ms(what: str, value: TimeArg) -> int | None:
    """``value`` as UTC milliseconds: an aware datetime, a naive one (UTC) or milliseconds."""
    if value is None:
        return None
    if isinstance(value, datetime):
        moment = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        return (moment - _EPOCH) // _MS
    if isinstance(value, int) and not isinstance(value, bool):
        if not FIRST_MS <= value <= LAST_MS:
            raise InvalidInput(
                f"{what} {value} ms is outside the years 1-9999; give UTC milliseconds "
                "since 1970 (or a datetime)"
            )
        return value
    raise InvalidInput(
        f"{what} must be a datetime or UTC milliseconds (int), not {type(value).__name__}"
    )


class FeatureStore:
    """Feature definitions, training sets, the online store and its checks on local stores.

    Args:
        store: the metadata database and blob store.
        settings: where the online store is (``online_store``) and the query limits.
        datasets: the data service (dataset sources, saving training sets).
        tracking: the tracking service (a run recording the training set it used).
        predictions_factory: makes the prediction log reader a skew check reads (on first use).
        deployments: the deployment service (a skew check finds the deployment's model).
        registry: the registry (a skew check finds the model version's feature service).
        actor: who changes are recorded as (None: the store's user).
        clock: UTC milliseconds now (tests pass a fake one).
    """

    def __init__(
        self,
        store: Store,
        settings: Settings,
        *,
        datasets: Datasets,
        tracking: Tracking,
        predictions_factory: Callable[[], Predictions] | None = None,
        deployments: Deployments | None = None,
        registry: Registry | None = None,
        actor: str | None = None,
        clock: Callable[[], int] | None = None,
    ) -> None:
        from .definition_store import DefinitionStore

        self._store = store
        self._settings = settings
        self._datasets = datasets
        self._tracking = tracking
        self._predictions_factory = predictions_factory
        self._deployments = deployments
        self._registry = registry
        self._actor = actor
        self._clock = clock or now_ms
        self._definitions: DefinitionStore = DefinitionStore(store, actor=actor, clock=clock)
        # The online store, shared with the views made by _acting_for (the one that opened it
        # closes it).
        self._online_box: list[OnlineStore] = []
        self._online_lock = threading.Lock()
        self._owns_online = True

    def _acting_for(self, actor: str | None) -> FeatureStore:
        """This store recording changes as ``actor``: the same online store and settings, a
        definitions service of its own (a server makes one per changing request)."""
        if actor == self._actor:
            return self
        other = FeatureStore(
            self._store,
            self._settings,
            datasets=self._datasets,
            tracking=self._tracking,
            predictions_factory=self._predictions_factory,
            deployments=self._deployments,
            registry=self._registry,
            actor=actor,
            clock=self._clock,
        )
        other._online_box = self._online_box
        other._online_lock = self._online_lock
        other._owns_online = False
        return other

    @property
    def _online(self) -> OnlineStore:
        if self._online_box:
            return self._online_box[0]
        with self._online_lock:
            if not self._online_box:
                from .online.open import open_online_store

                self._online_box.append(open_online_store(self._settings))
        return self._online_box[0]

    # --- definitions -------------------------------------------------------------------------

    def plan(self, specs: Sequence[Spec]) -> ApplyPlan:
        """What :meth:`apply` would do with ``specs`` (validated; nothing written)."""
        return self._definitions.plan(specs)

    def apply(self, specs: Sequence[Spec], *, force: bool = False) -> ApplyPlan:
        """Store ``specs`` as new versions where their content changed; all or nothing."""
        return self._definitions.apply(specs, force=force)

    def list(self, kind: Kind | None = None) -> builtins.list[FeatureDefinition]:
        """The newest version of every definition (of ``kind``), by kind then name."""
        return self._definitions.list(kind)

    def get(self, ref: str, *, kind: Kind | None = None) -> FeatureDefinition:
        """A version by ``name`` (the newest) or ``name@vN``."""
        return self._definitions.get(ref, kind=kind)

    def versions(self, name: str, *, kind: Kind | None = None) -> builtins.list[FeatureDefinition]:
        """Every version of ``name``, newest first."""
        return self._definitions.versions(name, kind=kind)

    def diff(
        self, name: str, a: int | None = None, b: int | None = None, *, kind: Kind | None = None
    ) -> str:
        """A unified diff of two versions' specs (default: the previous and the newest)."""
        return self._definitions.diff(name, a, b, kind=kind)

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
        """A point-in-time correct training set, written to a Parquet file in ``dest`` (else
        a new temporary folder; the caller keeps or deletes it): ``TrainingSet.path``."""
        return self._historical(
            entity_rows,
            features,
            timestamp_field=timestamp_field,
            full_feature_names=full_feature_names,
            progress=progress,
            workdir=None if dest is None else Path(dest),
        )

    def _historical(
        self,
        entity_rows: Any,
        features: FeatureSelection,
        *,
        timestamp_field: str,
        full_feature_names: bool,
        progress: Callable[[int], None] | None,
        workdir: Path | None,
    ) -> TrainingSet:
        """:meth:`get_historical_features` into ``workdir`` (None: a new temporary folder); a
        server passes its request's folder so the file is removed after it is sent."""
        from . import offline

        selection = self._definitions.resolve(features, full_feature_names=full_feature_names)
        folder = workdir or Path(tempfile.mkdtemp(prefix="loopwright-training-set-"))
        return offline.historical(
            selection,
            entity_rows,
            timestamp_field=timestamp_field,
            full_feature_names=full_feature_names,
            datasets=self._datasets,
            settings=self._settings,
            workdir=folder,
            progress=progress,
        )

    def save_training_set(
        self,
        training_set: TrainingSet,
        dataset: str,
        *,
        run_id: str | None = None,
        message: str | None = None,
    ) -> DatasetVersion:
        """Store the training set as a version of ``dataset``, tagged with its lineage."""
        from . import training_sets

        return training_sets.save(
            training_set,
            dataset,
            datasets=self._datasets,
            tracking=self._tracking,
            run_id=run_id,
            message=message,
        )

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
        """Load each online view's newest row per entity in ``[start, end]`` into the online
        store (``incremental``: from the view's watermark)."""
        from . import materialize as loading

        start_ms = time_ms("start", start)
        end_ms = time_ms("end", end)
        if start_ms is not None and end_ms is not None and start_ms > end_ms:
            raise InvalidInput(
                f"materialize: start ({start_ms} ms) is after end ({end_ms} ms); swap them"
            )
        return loading.materialize(
            self._definitions,
            self._online,
            self._store,
            views,
            start_ms=start_ms,
            end_ms=end_ms,
            incremental=incremental,
            datasets=self._datasets,
            settings=self._settings,
            actor=self._actor_name(),
            progress=progress,
            clock=self._clock,
        )

    def push(self, view: str, rows: Any) -> Materialization:
        """Write ``rows`` straight into the online store (streaming updates)."""
        from . import push as pushing

        return pushing.push(
            self._definitions,
            self._online,
            self._store,
            view,
            rows,
            actor=self._actor_name(),
            clock=self._clock,
        )

    def get_online_features(
        self,
        entity_rows: EntityRows,
        features: FeatureSelection,
        *,
        full_feature_names: bool = False,
    ) -> OnlineFeatures:
        """The served values for each entity row, in one round trip per view."""
        from .online_read import lookup

        selection = self._definitions.resolve(features, full_feature_names=full_feature_names)
        return lookup(selection, self._online, entity_rows, now_ms=self._clock())

    def materializations(
        self, view: str | None = None, *, limit: int = 100
    ) -> builtins.list[Materialization]:
        """Recent loads into the online store, newest first."""
        import sqlalchemy as sa

        from ..store.schema import feature_materializations as table
        from .entities import Materialization

        if not 1 <= limit <= MAX_MATERIALIZATIONS:
            raise InvalidInput(
                f"materializations: limit must be 1..{MAX_MATERIALIZATIONS:,}, not {limit}"
            )
        query = sa.select(table).order_by(table.c.created_at.desc(), table.c.id.desc())
        if view is not None:
            query = query.where(table.c.view == view)
        with self._store.db.read() as conn:
            rows = conn.execute(query.limit(limit)).mappings().all()
        return [Materialization.from_dict(dict(row)) for row in rows]

    def freshness(self, views: Sequence[str] | None = None) -> builtins.list[Freshness]:
        """Per online view, the newest event time in the online store and its age."""
        from .materialize import freshness

        return freshness(self._definitions, self._online, self._store, views, now_ms=self._clock())

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
        """Compare a sample of the features a deployment served with the offline store's."""
        from .skew import check_skew

        if self._predictions_factory is None or self._deployments is None or self._registry is None:
            raise InvalidInput(
                "this feature store was built without the prediction log, deployments and "
                "registry a skew check reads; use client.features, which has them"
            )

        # The training set is read into memory by the check: its file goes with this folder.
        with tempfile.TemporaryDirectory(prefix="loopwright-skew-") as scratch:

            def historical(entity_rows: Any, features: FeatureSelection, **options: Any) -> Any:
                return self._historical(
                    entity_rows,
                    features,
                    timestamp_field=options.get("timestamp_field", "event_timestamp"),
                    full_feature_names=options.get("full_feature_names", False),
                    progress=None,
                    workdir=Path(scratch),
                )

            return check_skew(
                deployment=deployment,
                sample=sample,
                since_ms=time_ms("since", since),
                until_ms=time_ms("until", until),
                tolerance=tolerance,
                predictions=self._predictions_factory(),
                deployments=self._deployments,
                registry=self._registry,
                historical=historical,
                now_ms=self._clock(),
                resolve=self._definitions.resolve,
            )

    def close(self) -> None:
        """Release the online store's connections (a view made for another actor leaves the
        shared store to its owner)."""
        if not self._owns_online:
            return
        with self._online_lock:
            if self._online_box:
                self._online_box.pop().close()

    def _actor_name(self) -> str:
        return self._actor or self._store.actor
