"""The skew check on what serving itself logged: a model trained on a feature service, served
by the app on 127.0.0.1 from entity ids only, its online store not materialized since a new
source row arrived. The check finds that driver's stale value and no other."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from test_freshness_serve import live
from typer.testing import CliRunner

from loopwright.cli.app import app
from loopwright.client import Client
from loopwright.config import resolve_settings
from loopwright.features.definitions import (
    Entity,
    FeatureService,
    FeatureView,
    Field,
    FileSource,
    to_specs,
)
from loopwright.serving.prediction_log import log_location
from loopwright.serving.repository import ModelRepository
from loopwright.serving.server import ServeConfig, build_app
from loopwright.serving.sources import resolve_source

pytest.importorskip("sklearn")

T0 = datetime(2026, 11, 1, tzinfo=UTC)


@pytest.fixture
def client(tmp_path: Path) -> Iterator[Client]:
    settings = resolve_settings(
        home=tmp_path / "home", blob_uri=str(tmp_path / "blobs"), default_approval_policy="none"
    )
    with Client(settings) as opened:
        yield opened


def test_a_row_loaded_offline_but_not_online_shows_as_skew(client: Client, tmp_path: Path) -> None:
    from sklearn.linear_model import LinearRegression

    source = tmp_path / "stats.parquet"
    rows = pd.DataFrame(
        {"driver_id": [1, 2, 3], "event_timestamp": [T0] * 3, "conv_rate": [0.5, 0.25, 0.75]}
    )
    rows.to_parquet(source)
    stats = FeatureView(
        "driver_stats",
        entities=[Entity("driver", {"driver_id": "int64"})],
        source=FileSource(str(source), timestamp_field="event_timestamp"),
        schema=[Field("conv_rate", "float64")],
    )
    client.features.apply(to_specs([FeatureService("svc", features=[stats])]))
    client.features.materialize()
    X = pd.DataFrame({"conv_rate": np.array([0.5, 0.25])})
    with client.start_run(experiment="features") as run:
        run.set_tag("loopwright.feature_service", "svc@v1")
        run.log_model(LinearRegression().fit(X, [1.0, 2.0]), "model", input_example=X,
                      registered_model_name="drivers")  # fmt: skip
    client.deployments.create("drivers", "models:/drivers/1")

    repository = ModelRepository(
        [resolve_source("models:/drivers/1", client)], features=lambda: client.features
    )
    repository.load_all()
    config = ServeConfig(sources=(), log_root=log_location(client.settings))
    sent = datetime.now(UTC)
    with live(build_app(config, repository)) as url:
        body = {"dataframe_records": [{"driver_id": 1}, {"driver_id": 2}]}
        answer = httpx.post(f"{url}/invocations", json=body, timeout=30)
        assert answer.status_code == 200, answer.text
    # Driver 2 got a new row a minute before the request, never materialized: the online
    # store served T0's value, the offline store has the new one at the request's time.
    late = pd.DataFrame(
        {"driver_id": [2], "event_timestamp": [sent - timedelta(minutes=1)], "conv_rate": [0.4]}
    )
    pd.concat([rows, late], ignore_index=True).to_parquet(source)

    report = client.features.skew("drivers")

    assert (report.service, report.sampled) == ("svc@v1", 2)
    (conv_rate,) = report.features
    assert (conv_rate.feature, conv_rate.compared, conv_rate.mismatched) == (
        "driver_stats:conv_rate",
        2,
        1,
    )
    (example,) = conv_rate.examples
    assert (example["key"], example["served"], example["offline"]) == ({"driver_id": 2}, 0.25, 0.4)

    # The CLI prints the mismatched rows under its table, so a mismatch can be looked up.
    settings = client.settings
    printed = CliRunner().invoke(
        app,
        ["--home", str(settings.home), "features", "skew", "drivers"],
        env={"LOOPWRIGHT_BLOB_URI": settings.blob_uri, "COLUMNS": "300"},
    )
    assert printed.exit_code == 0, (printed.stdout, printed.stderr)
    assert "driver_stats:conv_rate [driver_id=2] at " in printed.stdout
    assert "served 0.25, offline 0.4" in printed.stdout
