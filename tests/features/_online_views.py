"""Definitions and stores shared by the online lookup and push tests (not a test module)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from loopwright.config import resolve_settings
from loopwright.features.definition_store import DefinitionStore
from loopwright.features.definitions import (
    Entity,
    FeatureService,
    FeatureView,
    Field,
    FileSource,
    RequestSource,
    on_demand_feature_view,
    to_specs,
)
from loopwright.features.entities import Materialization
from loopwright.features.online.base import OnlineStore
from loopwright.features.online.redis import RedisOnlineStore
from loopwright.features.online.sqlite import SQLiteOnlineStore
from loopwright.features.push import push
from loopwright.store.home import Store, open_store

NOW = 1_767_225_600_000  # 2026-01-01 UTC, in ms: the lookups' clock
HOUR = 3_600_000

driver = Entity("driver", join_keys={"driver_id": "int64"})
trip = Entity("trip", join_keys={"city": "string", "day": "int32"})
driver_stats = FeatureView(
    "driver_stats",
    entities=[driver],
    source=FileSource(
        "unused/*.parquet",
        timestamp_field="event_timestamp",
        created_timestamp_field="created",
    ),
    schema=[
        Field("conv_rate", "float64"),
        Field("trips", "int64"),
        Field("last_seen", "timestamp"),
        Field("badge", "bytes"),
    ],
    ttl=timedelta(hours=2),
)
city_days = FeatureView(
    "city_days",
    entities=[trip],
    source=FileSource("unused/*.parquet", timestamp_field="event_timestamp"),
    schema=[Field("demand", "float32"), Field("label", "string")],
)
archive = FeatureView(
    "archive",
    entities=[driver],
    source=FileSource("unused/*.parquet", timestamp_field="event_timestamp"),
    schema=[Field("score", "float64")],
    online=False,
)
request = RequestSource("request", schema=[Field("val_to_add", "float64")])


@on_demand_feature_view(sources=[driver_stats, request], schema=[Field("conv_plus", "float64")])
def conv_plus(frame: Any) -> Any:
    import pandas as pd

    return pd.DataFrame({"conv_plus": frame["conv_rate"] + frame["val_to_add"]})


service = FeatureService("driver_model", features=[driver_stats[["conv_rate"]], conv_plus])


@dataclass
class Online:
    store: Store
    definitions: DefinitionStore
    online: OnlineStore

    def push(self, view: str, rows: Any) -> Materialization:
        return push(
            self.definitions, self.online, self.store, view, rows, actor="ada", clock=lambda: NOW
        )


@pytest.fixture(params=["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
def online(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Online]:
    """The definitions above applied, with an empty online store on SQLite or Redis."""
    if request.param == "sqlite":
        opened: OnlineStore = SQLiteOnlineStore(tmp_path / "online.db")
    else:
        opened = RedisOnlineStore(request.getfixturevalue("redis_url"))
    with open_store(resolve_settings(home=tmp_path / "home", environ={})) as store:
        definitions = DefinitionStore(store, actor="ada")
        definitions.apply(to_specs([driver_stats, city_days, archive, conv_plus, service]))
        yield Online(store, definitions, opened)
    opened.close()
