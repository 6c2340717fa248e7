"""The feature store: versioned feature definitions, point-in-time training sets on DuckDB,
an online store (SQLite or Redis) and the checks that keep training and serving equal.

Definitions are written with the classes of :mod:`loopwright.features.definitions` (Feast's
concepts: entities, sources, feature views, on-demand feature views, feature services) or in
YAML, and applied with ``loopwright features apply``; ``client.features`` is the rest.
"""

from .definitions import (
    DatasetSource,
    Entity,
    FeatureService,
    FeatureView,
    Field,
    FileSource,
    OnDemandFeatureView,
    RequestSource,
    SqlSource,
    on_demand_feature_view,
    to_specs,
)
from .entities import (
    ApplyPlan,
    FeatureDefinition,
    Freshness,
    Materialization,
    OnlineFeatures,
    SkewReport,
    TrainingSet,
)
from .protocol import Features

__all__ = [
    "ApplyPlan",
    "DatasetSource",
    "Entity",
    "FeatureDefinition",
    "FeatureService",
    "FeatureView",
    "Features",
    "Field",
    "FileSource",
    "Freshness",
    "Materialization",
    "OnDemandFeatureView",
    "OnlineFeatures",
    "RequestSource",
    "SkewReport",
    "SqlSource",
    "TrainingSet",
    "on_demand_feature_view",
    "to_specs",
]
