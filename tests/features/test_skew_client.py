"""``client.features.skew`` embedded and through a real server (the server's prediction log,
definitions and offline store): the same report either way, stale served values found."""

from __future__ import annotations

import contextlib
import tempfile
from datetime import timedelta
from pathlib import Path

import pytest
from test_skew import DEPLOYMENT, T0, T1, feature_rows

import loopwright as lw
from loopwright.client import Client
from loopwright.config import resolve_settings
from loopwright.errors import NotFound
from loopwright.features.definitions import (
    Entity,
    FeatureService,
    FeatureView,
    Field,
    FileSource,
    to_specs,
)
from loopwright.features.skew import SERVICE_TAG
from loopwright.serving.prediction_log import PredictionLog, PredictionRecord, log_location
from test_public_api import _add_users, live_server


@pytest.mark.parametrize("backend", ["embedded", "remote"])
def test_skew_through_the_client(
    backend: str, tmp_path: Path, db_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
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
    stats = FeatureView(
        "driver_stats",
        entities=[Entity("driver", {"driver_id": "int64"})],
        source=FileSource(str(source), timestamp_field="event_timestamp"),
        schema=[Field("conv_rate", "float64"), Field("city", "string")],
    )
    package = tmp_path / "model"
    save_model(DummyClassifier().fit([[0.0], [1.0]], [0, 1]), package)
    tokens = _add_users(settings)
    with Client(settings) as local:
        local.features.apply(to_specs([FeatureService("driver_model", features=[stats])]))
        local.registry.register("driver-model", package, tags={SERVICE_TAG: "driver_model@v1"})
        local.deployments.create(DEPLOYMENT, "models:/driver-model/1")
    at = T1 + timedelta(minutes=5)
    with PredictionLog(log_location(settings)) as log:
        log.append(
            PredictionRecord(
                request_id="r1",
                deployment=DEPLOYMENT,
                variant="primary",
                model="driver-model",
                model_version=1,
                timestamp=at,
                latency_ms=1.0,
                status=200,
                inputs={"driver_id": [1, 2], "conv_rate": [0.6, 0.2], "city": ["c1-new"] * 2},
                outputs={"predict": [0, 1]},
            )
        )
    with contextlib.ExitStack() as stack:
        client: Client
        if backend == "embedded":
            client = stack.enter_context(Client(settings))
        else:
            url = stack.enter_context(live_server(settings))
            client = stack.enter_context(lw.connect(url, token=tokens["vic"], home=tmp_path / "v"))
        scratch = tmp_path / "scratch"  # the server runs in this process: its temp folder too
        scratch.mkdir()
        monkeypatch.setattr(tempfile, "tempdir", str(scratch))
        report = client.features.skew(DEPLOYMENT, since=T0, tolerance=1e-9)
        assert not list(scratch.glob("loopwright-*")), "a skew check left a temporary folder"
        with pytest.raises(NotFound, match="no logged prediction"):
            client.features.skew(DEPLOYMENT, until=T0)
        with pytest.raises(NotFound, match="nope"):
            client.features.skew("nope")
    assert (report.service, report.sampled, report.since) == (
        "driver_model@v1",
        2,
        int(T0.timestamp() * 1000),
    )
    counts = {f.feature: (f.compared, f.mismatched) for f in report.features}
    assert counts == {"driver_stats:conv_rate": (2, 1), "driver_stats:city": (2, 1)}
    conv_rate = report.features[0]
    assert [dict(e) for e in conv_rate.examples] == [
        {"key": {"driver_id": 2}, "time": int(at.timestamp() * 1000), "served": 0.2,
         "offline": 0.7},
    ]  # fmt: skip
