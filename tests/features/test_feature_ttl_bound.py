"""A feature view's TTL is bounded: the largest one builds training sets and serves, and a
larger one (timedelta.max) is refused at apply with the way to say "unlimited"."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from loopwright.client import Client
from loopwright.errors import InvalidInput
from loopwright.features._validate import MAX_TTL_SECONDS
from loopwright.features.definitions import Entity, FeatureView, Field, FileSource, to_specs

T0 = datetime(2026, 11, 1, tzinfo=UTC)
driver = Entity("driver", join_keys={"driver_id": "int64"})


def _view(tmp_path: Path, ttl: timedelta | int) -> FeatureView:
    path = tmp_path / "stats.parquet"
    # year 2 as well: t - ttl goes some 317 years before year 1
    times = [datetime(2, 1, 1, tzinfo=UTC), T0]
    pd.DataFrame({"driver_id": [1, 2], "event_timestamp": times, "rate": [0.5, 0.7]}).to_parquet(
        path, index=False
    )
    source = FileSource(str(path), timestamp_field="event_timestamp")
    return FeatureView("stats", entities=[driver], source=source, schema=[Field("rate", "float64")],
                       ttl=ttl)  # fmt: skip


def test_the_largest_ttl_builds_a_training_set(client: Client, tmp_path: Path) -> None:
    client.features.apply(to_specs([driver, _view(tmp_path, MAX_TTL_SECONDS)]))
    entities = pd.DataFrame(
        {"driver_id": [1, 2], "event_timestamp": [datetime(2, 6, 1, tzinfo=UTC), T0]}
    )
    found = client.features.get_historical_features(entities, ["stats:rate"]).to_pandas()
    assert found["rate"].tolist() == [0.5, 0.7]


def test_timedelta_max_is_refused_naming_null(client: Client, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match=r"ttl_seconds .* use null \(None in Python\)"):
        client.features.apply(to_specs([driver, _view(tmp_path, timedelta.max)]))
    assert client.features.list() == []
