"""What the feature store records and returns, the same on both backends.

Frozen dataclasses; times are UTC milliseconds (``*_at``). A *ref* names a definition version:
``driver_stats`` (the newest) or ``driver_stats@v3``; a *feature ref* names one feature of a
view, ``driver_stats:conv_rate`` (Feast's form), or all of them, ``driver_stats:*``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

    from .spec import Kind

__all__ = [
    "ApplyPlan",
    "Change",
    "FeatureDefinition",
    "FeatureSkew",
    "Freshness",
    "Materialization",
    "OnlineFeatures",
    "SkewReport",
    "TrainingSet",
]

ChangeKind = Literal["add", "update", "unchanged"]
MaterializationMode = Literal["window", "incremental", "push"]
# Per value of an online lookup, as Feast reports them: found and fresh, no row for the key,
# or a row older than the view's TTL (its value is then None, like a missing one).
FieldStatus = Literal["present", "not_found", "outside_ttl"]


@dataclass(frozen=True)
class FeatureDefinition:
    """One stored version of a definition. ``spec`` is the validated spec (features/spec.py);
    for a feature service it includes ``pins``."""

    id: str
    kind: Kind
    name: str
    version: int
    digest: str
    spec: Mapping[str, Any]
    created_by: str
    created_at: int

    @property
    def ref(self) -> str:
        """``name@vN``, the ref that names this version."""
        return f"{self.name}@v{self.version}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "name": self.name,
            "version": self.version,
            "digest": self.digest,
            "spec": dict(self.spec),
            "created_by": self.created_by,
            "created_at": self.created_at,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeatureDefinition:
        return cls(
            id=data["id"],
            kind=data["kind"],
            name=data["name"],
            version=int(data["version"]),
            digest=data["digest"],
            spec=dict(data["spec"]),
            created_by=data["created_by"],
            created_at=int(data["created_at"]),
        )


@dataclass(frozen=True)
class Change:
    """What applying one definition does. ``diff`` is a unified diff of the canonical specs
    (indented JSON) for an update; ``breaking`` lists why it is breaking (each a sentence:
    ``feature 'conv_rate' changes type float32 -> int64``), empty when it is not."""

    kind: Kind
    name: str
    change: ChangeKind
    from_version: int | None
    to_version: int | None
    diff: str = ""
    breaking: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "change": self.change,
            "from_version": self.from_version,
            "to_version": self.to_version,
            "diff": self.diff,
            "breaking": list(self.breaking),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Change:
        return cls(
            kind=data["kind"],
            name=data["name"],
            change=data["change"],
            from_version=data.get("from_version"),
            to_version=data.get("to_version"),
            diff=data.get("diff", ""),
            breaking=tuple(data.get("breaking", ())),
        )


@dataclass(frozen=True)
class ApplyPlan:
    """The changes an apply makes (or made: ``applied``), in dependency order (entities, views,
    on-demand views, services). ``changes`` lists unchanged definitions too."""

    changes: tuple[Change, ...]
    applied: bool

    @property
    def breaking(self) -> tuple[Change, ...]:
        return tuple(change for change in self.changes if change.breaking)

    @property
    def changed(self) -> tuple[Change, ...]:
        return tuple(change for change in self.changes if change.change != "unchanged")

    def to_dict(self) -> dict[str, Any]:
        return {"changes": [change.to_dict() for change in self.changes], "applied": self.applied}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ApplyPlan:
        return cls(
            changes=tuple(Change.from_dict(item) for item in data["changes"]),
            applied=bool(data["applied"]),
        )


@dataclass(frozen=True)
class TrainingSet:
    """A point-in-time training set: the entity rows, in their order, with feature columns.

    The rows are in ``path``, one Parquet file on local disk (written out of core; through a
    server, downloaded). ``service`` is the feature service ref it was built from
    (``driver_model@v2``) or None for a feature list; ``views`` the view versions used
    (``{"driver_stats": 3}``); ``sources`` the dataset version ids the views read (lineage).
    """

    path: Path
    rows: int
    columns: tuple[str, ...]
    features: tuple[str, ...]  # feature refs, view:feature
    views: Mapping[str, int]
    service: str | None = None
    sources: tuple[str, ...] = ()
    timestamp_field: str = "event_timestamp"

    def to_arrow(self) -> pa.Table:
        import pyarrow.parquet as pq

        return pq.read_table(self.path)

    def to_pandas(self) -> pd.DataFrame:
        return self.to_arrow().to_pandas()

    def to_dict(self) -> dict[str, Any]:
        """The metadata (not the rows): what a server returns beside the file."""
        return {
            "rows": self.rows,
            "columns": list(self.columns),
            "features": list(self.features),
            "views": dict(self.views),
            "service": self.service,
            "sources": list(self.sources),
            "timestamp_field": self.timestamp_field,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], path: Path) -> TrainingSet:
        return cls(
            path=path,
            rows=int(data["rows"]),
            columns=tuple(data["columns"]),
            features=tuple(data["features"]),
            views={str(k): int(v) for k, v in data["views"].items()},
            service=data.get("service"),
            sources=tuple(data.get("sources", ())),
            timestamp_field=data.get("timestamp_field", "event_timestamp"),
        )


@dataclass(frozen=True)
class OnlineFeatures:
    """The answer to an online lookup, one entry per requested entity row, in order.

    ``values`` maps each output column (join keys first, then features, named as requested:
    ``conv_rate``, or ``driver_stats__conv_rate`` with full names) to its list of values;
    ``statuses`` maps each feature column to a :data:`FieldStatus` per row; ``event_at`` maps
    each view to the event time (ms) of the row served per entity row (None: no row).
    """

    values: Mapping[str, list[Any]]
    statuses: Mapping[str, list[FieldStatus]]
    event_at: Mapping[str, list[int | None]]

    def to_dict(self) -> dict[str, Any]:
        return {
            "values": {k: list(v) for k, v in self.values.items()},
            "statuses": {k: list(v) for k, v in self.statuses.items()},
            "event_at": {k: list(v) for k, v in self.event_at.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> OnlineFeatures:
        return cls(
            values={k: list(v) for k, v in data["values"].items()},
            statuses={k: list(v) for k, v in data["statuses"].items()},
            event_at={k: list(v) for k, v in data["event_at"].items()},
        )

    def to_pandas(self) -> pd.DataFrame:
        import pandas as pd

        return pd.DataFrame(dict(self.values))


@dataclass(frozen=True)
class Materialization:
    """One load into the online store: ``window`` (start..end), ``incremental`` (from the
    view's watermark to end) or ``push``. ``rows`` written (newest row per entity in the
    window; a row older than the stored one for its key is skipped, so late data never
    overwrites newer values); ``newest_event_at`` the newest event time written."""

    id: str
    view: str
    view_version: int
    store: str
    mode: MaterializationMode
    start_at: int | None
    end_at: int | None
    rows: int
    newest_event_at: int | None
    created_by: str
    created_at: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "view": self.view,
            "view_version": self.view_version,
            "store": self.store,
            "mode": self.mode,
            "start_at": self.start_at,
            "end_at": self.end_at,
            "rows": self.rows,
            "newest_event_at": self.newest_event_at,
            "created_by": self.created_by,
            "created_at": self.created_at,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Materialization:
        return cls(**{key: data[key] for key in cls.__dataclass_fields__})


@dataclass(frozen=True)
class Freshness:
    """How fresh a view is in the online store: the newest event time written (by any
    materialization or push) and its age at ``checked_at``; None when never loaded."""

    view: str
    store: str
    newest_event_at: int | None
    last_loaded_at: int | None
    checked_at: int
    ttl_seconds: int | None = None

    @property
    def age_seconds(self) -> float | None:
        if self.newest_event_at is None:
            return None
        return max(0.0, (self.checked_at - self.newest_event_at) / 1000)

    def to_dict(self) -> dict[str, Any]:
        return {
            "view": self.view,
            "store": self.store,
            "newest_event_at": self.newest_event_at,
            "last_loaded_at": self.last_loaded_at,
            "checked_at": self.checked_at,
            "ttl_seconds": self.ttl_seconds,
            "age_seconds": self.age_seconds,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Freshness:
        return cls(
            view=data["view"],
            store=data["store"],
            newest_event_at=data.get("newest_event_at"),
            last_loaded_at=data.get("last_loaded_at"),
            checked_at=int(data["checked_at"]),
            ttl_seconds=data.get("ttl_seconds"),
        )


@dataclass(frozen=True)
class FeatureSkew:
    """One feature's served values against the offline store's for the same keys and times:
    ``compared`` rows with both present, ``mismatched`` of them differing (numbers beyond a
    relative tolerance), ``missing_online`` / ``missing_offline`` rows with one side null."""

    feature: str
    compared: int
    mismatched: int
    missing_online: int
    missing_offline: int
    examples: Sequence[Mapping[str, Any]] = field(default_factory=tuple)

    @property
    def mismatch_rate(self) -> float:
        return self.mismatched / self.compared if self.compared else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "feature": self.feature,
            "compared": self.compared,
            "mismatched": self.mismatched,
            "missing_online": self.missing_online,
            "missing_offline": self.missing_offline,
            "mismatch_rate": self.mismatch_rate,
            "examples": [dict(item) for item in self.examples],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeatureSkew:
        return cls(
            feature=data["feature"],
            compared=int(data["compared"]),
            mismatched=int(data["mismatched"]),
            missing_online=int(data["missing_online"]),
            missing_offline=int(data["missing_offline"]),
            examples=tuple(dict(item) for item in data.get("examples", ())),
        )


@dataclass(frozen=True)
class SkewReport:
    """A skew check of a deployment: ``sampled`` logged predictions of ``service`` compared
    feature by feature with the offline store (``features``)."""

    deployment: str
    service: str
    sampled: int
    since: int | None
    until: int | None
    features: tuple[FeatureSkew, ...]
    checked_at: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "deployment": self.deployment,
            "service": self.service,
            "sampled": self.sampled,
            "since": self.since,
            "until": self.until,
            "features": [item.to_dict() for item in self.features],
            "checked_at": self.checked_at,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SkewReport:
        return cls(
            deployment=data["deployment"],
            service=data["service"],
            sampled=int(data["sampled"]),
            since=data.get("since"),
            until=data.get("until"),
            features=tuple(FeatureSkew.from_dict(item) for item in data["features"]),
            checked_at=int(data["checked_at"]),
        )
