"""An on-demand view sees the same input frame in a training set and in a served prediction:
the same values and the same types, so what is served equals what was trained on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from loopwright.client import Client
from loopwright.features.definitions import (
    Entity,
    FeatureService,
    FeatureView,
    Field,
    FileSource,
    on_demand_feature_view,
    to_specs,
)

# A day ago: online reads apply the TTL against the real clock.
T0 = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=1)
driver = Entity("driver", join_keys={"driver_id": "int64"})


def _rates(folder: Path) -> Path:
    """float32 rates whose float32 product differs from their float64 one."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(17)
    frame = pd.DataFrame(
        {
            "driver_id": np.arange(1, 21, dtype="int64"),
            "event_timestamp": [T0] * 20,
            "a": rng.random(20).astype("float32"),
            "b": rng.random(20).astype("float32"),
        }
    )
    path = folder / "rates.parquet"
    frame.to_parquet(path, index=False)
    return path


@on_demand_feature_view(sources=["rates"], schema=[Field("ab", "float64")])
def product(df: Any) -> Any:
    return df.assign(ab=df["a"] * df["b"])


def test_a_float32_product_is_the_same_offline_and_online(client: Client, tmp_path: Path) -> None:
    rates = FeatureView(
        "rates", entities=[driver], source=FileSource(str(_rates(tmp_path / "data")),
        timestamp_field="event_timestamp"), schema=[Field("a", "float32"), Field("b", "float32")],
    )  # fmt: skip
    client.features.apply(
        to_specs([driver, rates, product, FeatureService("m", features=[product])])
    )
    client.features.materialize(end=T0 + timedelta(hours=1))
    ids = list(range(1, 21))
    entities = pd.DataFrame({"driver_id": ids, "event_timestamp": [T0 + timedelta(minutes=5)] * 20})

    training_set = client.features.get_historical_features(entities, "m")
    assert training_set.views == {"rates": 1, "product": 1}  # the on-demand code's version too
    trained = training_set.to_pandas()["ab"].tolist()
    served = client.features.get_online_features({"driver_id": ids}, "m").values["ab"]

    assert served == trained  # exact: every bit
    float64_products = [float(a) * float(b) for a, b in zip(*_read(tmp_path), strict=True)]
    assert trained != float64_products  # the data does tell float32 from float64 inputs


def _read(tmp_path: Path) -> tuple[list[float], list[float]]:
    frame = pd.read_parquet(tmp_path / "data" / "rates.parquet")
    return frame["a"].tolist(), frame["b"].tolist()
