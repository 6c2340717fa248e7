"""``loopwright serve``'s /metrics shows ``loopwright_feature_freshness_seconds`` for the online
views of the feature store its models read (a model trained on a feature service, served by
the app on 127.0.0.1), and not when no served model reads one."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from prometheus_client.parser import text_string_to_metric_families

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
from loopwright.features.freshness import GAUGE
from loopwright.serving.repository import ModelRepository
from loopwright.serving.server import ServeConfig, build_app
from loopwright.serving.sources import resolve_source

pytest.importorskip("sklearn")


@contextlib.contextmanager
def live(app: object) -> Iterator[str]:
    import uvicorn

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")  # type: ignore[arg-type]
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the app did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def ages(url: str) -> dict[tuple[str, str], float]:
    text = httpx.get(f"{url}/metrics", timeout=30).text
    return {
        (sample.labels["view"], sample.labels["store"]): sample.value
        for family in text_string_to_metric_families(text)
        if family.name == GAUGE
        for sample in family.samples
    }


@pytest.fixture
def client(tmp_path: Path) -> Iterator[Client]:
    settings = resolve_settings(home=tmp_path / "home", user="ada")
    with Client(settings) as opened:
        yield opened


def test_serve_metrics_show_the_age_of_the_views_its_models_read(
    client: Client, tmp_path: Path
) -> None:
    from sklearn.linear_model import LinearRegression

    newest = datetime.now(UTC) - timedelta(hours=2)
    source = tmp_path / "stats.parquet"
    pd.DataFrame(
        {"driver_id": [1, 2], "event_timestamp": [newest - timedelta(hours=1), newest],
         "conv_rate": [0.5, 0.25]}
    ).to_parquet(source)  # fmt: skip
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
    (online,) = {f.store for f in client.features.freshness()}

    reading = ModelRepository(
        [resolve_source("models:/drivers/1", client)], features=lambda: client.features
    )
    reading.load_all()
    with live(build_app(ServeConfig(sources=(), log_root=str(tmp_path / "log")), reading)) as url:
        found = ages(url)
    assert set(found) == {("driver_stats", online)}
    expected = (datetime.now(UTC) - newest).total_seconds()
    assert expected - 60 < found[("driver_stats", online)] <= expected + 1

    # The same model served without a feature store: no series.
    plain = ModelRepository([resolve_source("models:/drivers/1", client)])
    plain.load_all()
    with live(build_app(ServeConfig(sources=(), log_root=str(tmp_path / "log2")), plain)) as url:
        assert ages(url) == {}
