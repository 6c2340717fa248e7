"""Training sets saved as dataset versions: lineage tags, the run's input and its tag."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from loopwright.client import Client
from loopwright.config import resolve_settings
from loopwright.errors import NotFound
from loopwright.features._selection import Selection, ViewPick
from loopwright.features.entities import TrainingSet
from loopwright.features.offline import historical
from loopwright.features.training_sets import FILE_NAME, save

T = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def client(tmp_path: Path) -> Iterator[Client]:
    with Client(resolve_settings(home=tmp_path / "home")) as client:
        yield client


def training_set(client: Client, tmp_path: Path, service: str | None) -> TrainingSet:
    """A training set over a view whose source is a dataset version (lineage to follow)."""
    rows = pd.DataFrame(
        {"driver_id": [1, 2], "event_timestamp": [T, T], "created": [T, T], "rate": [0.5, 0.7]}
    )
    source = client.datasets.add("driver_stats", rows)
    view = ViewPick(
        name="drivers",
        version=3,
        spec={"name": "drivers"},
        join_keys=(("driver_id", "int64"),),
        features=(("rate", "float64"),),
        columns=("rate",),
        defaults={},
        ttl_seconds=None,
        source={
            "kind": "dataset",
            "dataset": "driver_stats",
            "timestamp_field": "event_timestamp",
            "created_timestamp_field": "created",
        },
    )
    selection = Selection(
        service=service,
        views=(view,),
        on_demand=(),
        feature_refs=("drivers:rate",),
        columns=("rate",),
        join_keys=(("driver_id", "int64"),),
        request_fields=(),
    )
    entities = pd.DataFrame({"driver_id": [2, 1, 3], "event_timestamp": [T, T, T]})
    result = historical(
        selection,
        entities,
        timestamp_field="event_timestamp",
        full_feature_names=False,
        datasets=client.datasets,
        settings=client.settings,
        workdir=tmp_path / "work",
    )
    assert result.sources == (source.id,)
    return result


def test_save_tags_lineage_and_records_the_run(client: Client, tmp_path: Path) -> None:
    ts = training_set(client, tmp_path, "driver_model@v2")
    with client.start_run(experiment="churn") as run:
        version = save(
            ts,
            "driver_training",
            datasets=client.datasets,
            tracking=client.tracking,
            run_id=run.id,
            message="for the churn model",
        )
    assert version.tags["loopwright.feature_service"] == "driver_model@v2"
    assert version.tags["loopwright.feature_views"] == "drivers@v3"
    assert version.tags["loopwright.sources"] == ts.sources[0]
    assert version.message == "for the churn model"
    assert [entry.path for entry in client.datasets.files(version)] == [FILE_NAME]
    assert run.id in client.datasets.runs_using(version)
    assert client.tracking.get_run(run.id).tags["loopwright.feature_service"] == ("driver_model@v2")
    stored = client.datasets.download(version, tmp_path / "out") / FILE_NAME
    frame = pd.read_parquet(stored)
    assert frame["driver_id"].tolist() == [2, 1, 3]
    assert frame["rate"].tolist()[:2] == [0.7, 0.5]
    assert pd.isna(frame["rate"].tolist()[2])


def test_the_same_rows_give_the_same_version(client: Client, tmp_path: Path) -> None:
    first = training_set(client, tmp_path / "a", None)
    second = training_set(client, tmp_path / "b", None)
    a = save(
        first, "ts", datasets=client.datasets, tracking=client.tracking, run_id=None, message=None
    )
    b = save(
        second, "ts", datasets=client.datasets, tracking=client.tracking, run_id=None, message=None
    )
    assert a.id == b.id
    assert a.tags["loopwright.features"] == "drivers:rate"
    assert "loopwright.feature_service" not in a.tags


def test_an_unknown_run_stores_nothing(client: Client, tmp_path: Path) -> None:
    ts = training_set(client, tmp_path, "svc@v1")
    with pytest.raises(NotFound):
        save(
            ts,
            "late",
            datasets=client.datasets,
            tracking=client.tracking,
            run_id="0" * 32,
            message=None,
        )
    assert "late" not in [d.name for d in client.datasets.list_datasets()]
