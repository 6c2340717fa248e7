"""The skew check on a real prediction log (written by ``PredictionLog`` as ``serve`` writes it)
against a real offline store (DuckDB over a Parquet source): served values that were stale on
purpose are counted as mismatches with examples, equal ones are not, and the unhappy paths name
what is wrong. SQLite and PostgreSQL for the metadata."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from loopwright.client import Client
from loopwright.config import resolve_settings
from loopwright.errors import InvalidInput, NotFound
from loopwright.features._selection import Selection
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
from loopwright.features.entities import SkewReport, TrainingSet
from loopwright.features.offline import historical
from loopwright.features.skew import SERVICE_TAG, check_skew, feature_columns
from loopwright.serving.prediction_log import PredictionLog, PredictionRecord, log_location
from loopwright.store.home import open_store

T0 = datetime(2026, 12, 1, 8, tzinfo=UTC)
T1 = T0 + timedelta(hours=1)
DEPLOYMENT = "drivers"
NOW = 1_900_000_000_000


@dataclass
class World:
    client: Client
    definitions: DefinitionStore
    log: str
    tmp: Path

    def historical(self, entity_rows: Any, features: str, **options: Any) -> TrainingSet:
        return historical(
            self.definitions.resolve(features, full_feature_names=options["full_feature_names"]),
            entity_rows,
            timestamp_field=options["timestamp_field"],
            full_feature_names=options["full_feature_names"],
            datasets=self.client.datasets,
            settings=self.client.settings,
            workdir=self.tmp / "work",
        )

    def resolve(self, ref: str, *, full_feature_names: bool = False) -> Selection:
        return self.definitions.resolve(ref, full_feature_names=full_feature_names)

    def skew(self, **changes: Any) -> SkewReport:
        arguments: dict[str, Any] = {
            "deployment": DEPLOYMENT,
            "sample": 1000,
            "since_ms": None,
            "until_ms": None,
            "tolerance": 1e-6,
            "predictions": self.client.prediction_log,
            "deployments": self.client.deployments,
            "registry": self.client.registry,
            "historical": self.historical,
            "now_ms": NOW,
            "resolve": self.resolve,
        }
        return check_skew(**{**arguments, **changes})

    def serve(self, *requests: tuple[datetime, dict[str, list[Any]]], version: int = 1) -> None:
        """Log ``requests`` (time, completed inputs) as serving does."""
        with PredictionLog(self.log) as log:
            for number, (at, inputs) in enumerate(requests):
                rows = len(next(iter(inputs.values())))
                log.append(
                    PredictionRecord(
                        request_id=f"r{version}-{number}-{at.timestamp()}",
                        deployment=DEPLOYMENT,
                        variant="primary",
                        model="driver-model",
                        model_version=version,
                        timestamp=at,
                        latency_ms=1.0,
                        status=200,
                        inputs=inputs,
                        outputs={"predict": [0] * rows},
                    )
                )


@on_demand_feature_view(
    sources=["driver_stats", RequestSource("ride", [Field("distance", "float64")])],
    schema=[Field("conv_per_km", "float64")],
)
def conv_per_km(df: Any) -> Any:
    import pandas as pd

    return pd.DataFrame({"conv_per_km": df["conv_rate"] / df["distance"]})


def feature_rows() -> pd.DataFrame:
    """Drivers 1-4 at T0 and T1 (conv_rate, city); driver 5 only from T1."""
    rows = []
    for driver in (1, 2, 3, 4):
        rows.append((driver, T0, driver / 10, f"c{driver}"))
        rows.append((driver, T1, driver / 10 + 0.5, f"c{driver}-new"))
    rows.append((5, T1, 0.9, "c5"))
    return pd.DataFrame(rows, columns=["driver_id", "event_timestamp", "conv_rate", "city"])


@pytest.fixture
def world(tmp_path: Path, db_uri: str) -> Iterator[World]:
    from sklearn.dummy import DummyClassifier

    from loopwright.registry.packaging.package import save_model

    settings = resolve_settings(
        home=tmp_path / "home",
        db_uri=db_uri,
        blob_uri=str(tmp_path / "blobs"),
        default_approval_policy="none",
    )
    source = tmp_path / "driver_stats.parquet"
    feature_rows().to_parquet(source)
    driver = Entity("driver", {"driver_id": "int64"})
    stats = FeatureView(
        "driver_stats",
        entities=[driver],
        source=FileSource(str(source), timestamp_field="event_timestamp"),
        schema=[Field("conv_rate", "float64"), Field("city", "string")],
    )
    service = FeatureService("driver_model", features=[stats])
    package = tmp_path / "model"
    save_model(DummyClassifier().fit([[0.0], [1.0]], [0, 1]), package)
    with Client(settings) as client, open_store(settings) as store:
        definitions = DefinitionStore(store)
        definitions.apply(to_specs([service]))
        client.registry.register("driver-model", package, tags={SERVICE_TAG: "driver_model@v1"})
        client.registry.register("driver-model", package)  # version 2: no feature service
        client.deployments.create(DEPLOYMENT, "models:/driver-model/1")
        yield World(client, definitions, log_location(settings), tmp_path)


def by_feature(report: SkewReport) -> dict[str, tuple[int, int, int, int]]:
    return {
        f.feature: (f.compared, f.mismatched, f.missing_online, f.missing_offline)
        for f in report.features
    }


def test_stale_served_values_are_mismatches_and_fresh_ones_are_not(world: World) -> None:
    after = T1 + timedelta(minutes=10)
    world.serve(
        # Served at T0 + 10 min: the values of T0, as the offline store has them then.
        (T0 + timedelta(minutes=10), {"driver_id": [1, 2], "conv_rate": [0.1, 0.2],
                                      "city": ["c1", "c2"]}),
        # Served after T1: drivers 1 and 2 fresh; 3 and 4 still T0's (not materialized since).
        (after, {"driver_id": [1, 2, 3, 4], "conv_rate": [0.6, 0.7, 0.3, 0.4],
                 "city": ["c1-new", "c2-new", "c3", "c4-new"]}),
    )  # fmt: skip

    report = world.skew()

    assert (report.deployment, report.service, report.sampled) == (
        DEPLOYMENT,
        "driver_model@v1",
        6,
    )
    assert report.checked_at == NOW
    assert by_feature(report) == {
        "driver_stats:conv_rate": (6, 2, 0, 0),
        "driver_stats:city": (6, 1, 0, 0),
    }
    conv_rate, city = report.features
    after_ms = int(after.timestamp() * 1000)
    assert [dict(e) for e in conv_rate.examples] == [
        {"key": {"driver_id": 3}, "time": after_ms, "served": 0.3, "offline": 0.8},
        {"key": {"driver_id": 4}, "time": after_ms, "served": 0.4, "offline": 0.9},
    ]
    assert [dict(e) for e in city.examples] == [
        {"key": {"driver_id": 3}, "time": after_ms, "served": "c3", "offline": "c3-new"}
    ]
    assert conv_rate.mismatch_rate == pytest.approx(2 / 6)
    assert SkewReport.from_dict(report.to_dict()) == report


def test_values_served_as_the_offline_store_has_them_show_no_skew(world: World) -> None:
    world.serve(
        (T0 + timedelta(minutes=1), {"driver_id": [1, 2, 3], "conv_rate": [0.1, 0.2, 0.3],
                                     "city": ["c1", "c2", "c3"]}),
        (T1, {"driver_id": [4], "conv_rate": [0.9], "city": ["c4-new"]}),  # at T1: inclusive
    )  # fmt: skip
    report = world.skew()
    assert by_feature(report) == {
        "driver_stats:conv_rate": (4, 0, 0, 0),
        "driver_stats:city": (4, 0, 0, 0),
    }
    assert all(f.examples == () and f.mismatch_rate == 0.0 for f in report.features)


def test_missing_values_on_either_side_are_counted_apart(world: World) -> None:
    world.serve(
        # Driver 5 has no row before T1: the offline store has nothing (a default was served);
        # driver 1's city was not served (None); driver 9 is unknown on both sides.
        (T0 + timedelta(minutes=5), {"driver_id": [5, 1, 9], "conv_rate": [0.0, 0.1, None],
                                     "city": ["?", None, None]}),
    )  # fmt: skip
    assert by_feature(world.skew()) == {
        "driver_stats:conv_rate": (1, 0, 0, 1),
        "driver_stats:city": (0, 0, 1, 1),
    }


def test_tolerance_is_relative_to_the_offline_value(world: World) -> None:
    world.serve((T0 + timedelta(minutes=1), {"driver_id": [1], "conv_rate": [0.1 + 1e-9],
                                             "city": ["c1"]}))  # fmt: skip
    assert by_feature(world.skew())["driver_stats:conv_rate"] == (1, 0, 0, 0)
    assert by_feature(world.skew(tolerance=0.0))["driver_stats:conv_rate"] == (1, 1, 0, 0)


def test_the_window_bounds_and_the_sample_size(world: World) -> None:
    requests: list[tuple[datetime, dict[str, list[Any]]]] = [
        (T0 + timedelta(minutes=minute), {"driver_id": [1], "conv_rate": [0.1], "city": ["c1"]})
        for minute in range(0, 50)
    ]
    world.serve(*requests)
    since = int((T0 + timedelta(minutes=10)).timestamp() * 1000)
    until = int((T0 + timedelta(minutes=20)).timestamp() * 1000)
    windowed = world.skew(since_ms=since, until_ms=until)
    assert (windowed.sampled, windowed.since, windowed.until) == (10, since, until)

    sampled = world.skew(sample=7)
    assert sampled.sampled == 7
    assert world.skew(sample=7) == sampled  # the same rows: the draw is seeded by the window


def test_rows_of_a_version_without_a_feature_service_are_left_out(world: World) -> None:
    at = T0 + timedelta(minutes=1)
    world.serve((at, {"driver_id": [1], "conv_rate": [0.1], "city": ["c1"]}))
    world.serve((at, {"x": [1.0]}), version=2)  # served by version 2: plain inputs
    assert world.skew().sampled == 1


def test_only_versions_without_a_feature_service_is_not_found(world: World) -> None:
    world.serve((T0, {"x": [1.0]}), version=2)
    with pytest.raises(NotFound, match=r"driver-model/2.*record no feature service"):
        world.skew()


def test_an_unknown_deployment_and_an_empty_window_are_not_found(world: World) -> None:
    with pytest.raises(NotFound, match="no logged prediction"):
        world.skew()
    world.serve((T0, {"driver_id": [1], "conv_rate": [0.1], "city": ["c1"]}))
    with pytest.raises(NotFound, match="no logged prediction from"):
        world.skew(since_ms=int(T1.timestamp() * 1000))
    with pytest.raises(NotFound, match="nope"):
        world.skew(deployment="nope")


def test_a_log_without_the_join_keys_is_refused_naming_them(world: World) -> None:
    world.serve((T0, {"conv_rate": [0.1], "city": ["c1"]}))
    with pytest.raises(InvalidInput, match=r"input\.driver_id"):
        world.skew()


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"sample": 0}, "sample"),
        ({"sample": True}, "sample"),
        ({"sample": 10**9}, "sample"),
        ({"tolerance": -1.0}, "tolerance"),
        ({"tolerance": float("nan")}, "tolerance"),
        ({"since_ms": 10, "until_ms": 10}, "before until"),
        ({"resolve": None}, "resolve"),
    ],
)
def test_bad_arguments_are_refused(world: World, changes: dict[str, Any], match: str) -> None:
    with pytest.raises(InvalidInput, match=match):
        world.skew(**changes)


def test_feature_columns_name_each_served_feature_by_its_ref(world: World) -> None:
    assert feature_columns(world.resolve("driver_model")) == [
        ("driver_stats:conv_rate", "conv_rate"),
        ("driver_stats:city", "city"),
    ]


def test_on_demand_features_are_compared_with_request_data_from_the_log(
    world: World, tmp_path: Path
) -> None:
    world.definitions.apply(to_specs([FeatureService("rides", features=[conv_per_km])]))
    package = tmp_path / "model"
    world.client.registry.register("driver-model", package, tags={SERVICE_TAG: "rides@v1"})
    at = T1 + timedelta(minutes=1)
    world.serve(
        # Driver 1: computed on T1's conv_rate (fresh); driver 2: on T0's (stale).
        (at, {"driver_id": [1, 2], "distance": [2.0, 4.0], "conv_per_km": [0.3, 0.05]}),
        version=3,
    )
    report = world.skew()
    assert report.service == "rides@v1"
    assert by_feature(report) == {"conv_per_km:conv_per_km": (2, 1, 0, 0)}
    (skewed,) = report.features
    assert [(dict(e)["key"], dict(e)["served"], dict(e)["offline"]) for e in skewed.examples] == [
        ({"driver_id": 2}, 0.05, pytest.approx(0.7 / 4.0))
    ]


def test_a_model_served_with_full_feature_names_is_compared_by_them(world: World) -> None:
    world.serve(
        (T1, {"driver_id": [1, 2], "driver_stats__conv_rate": [0.6, 0.2],
              "driver_stats__city": ["c1-new", "c2-new"]}),
    )  # fmt: skip
    assert by_feature(world.skew()) == {
        "driver_stats:conv_rate": (2, 1, 0, 0),
        "driver_stats:city": (2, 0, 0, 0),
    }
