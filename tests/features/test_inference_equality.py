"""Issue 15's "Done when" for inference: a model trained on a feature service's training set,
registered from its run and served by a real ``loopwright serve``, answers requests carrying
only entity ids (and request data) with exactly the predictions of the same model on the
offline training-set rows of those entities at the materialization time.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from loopwright.client import Client
from loopwright.config import resolve_settings
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

pd = pytest.importorskip("pandas")
pytest.importorskip("sklearn")

SERVICE = "ride_model"
START = datetime(2026, 11, 1, tzinfo=UTC)
END = datetime(2026, 11, 20, tzinfo=UTC)  # the materialization's end: "now" for serving
DRIVERS = list(range(2001, 2021))
FEATURES = ["conv_rate", "trips", "conv_per_km"]
rider = Entity("driver", join_keys={"driver_id": "int64"})


@on_demand_feature_view(
    sources=["driver_hourly", RequestSource("ride", [Field("distance", "float64")])],
    schema=[Field("conv_per_km", "float64")],
)
def conv_per_km(df: Any) -> Any:
    import pandas as pd

    rate = df["conv_rate"].astype("float64")
    return pd.DataFrame({"conv_per_km": rate / df["distance"] + df["trips"] * 0.001})


def _feature_rows() -> Any:
    """Several rows per driver at random times (a late driver's newest row before START),
    float32 rates whose every bit matters."""
    rng = np.random.default_rng(15)
    rows = []
    for driver in DRIVERS:
        for _ in range(4):
            at = START + timedelta(minutes=int(rng.integers(0, 18 * 24 * 60)))
            rows.append((driver, at, np.float32(rng.random()), int(rng.integers(0, 500))))
    frame = pd.DataFrame(rows, columns=["driver_id", "event_timestamp", "conv_rate", "trips"])
    frame["conv_rate"] = frame["conv_rate"].astype("float32")
    return frame


@pytest.fixture(params=["sqlite", "redis"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    """The store's settings; the online store in SQLite (the default) or on the test Redis."""
    settings = {
        "home": str(tmp_path / "home"),
        "db_uri": f"sqlite:///{tmp_path / 'home' / 'lw.db'}",
        "blob_uri": str(tmp_path / "blobs"),
    }
    if request.param == "redis":
        settings["online_store"] = str(request.getfixturevalue("redis_url"))
    return settings


@pytest.fixture
def client(store: dict[str, str]) -> Iterator[Client]:
    settings = resolve_settings(
        home=store["home"],
        db_uri=store["db_uri"],
        blob_uri=store["blob_uri"],
        online_store=store.get("online_store"),
        user="ada",
    )
    with Client(settings) as opened:
        yield opened


def _train(client: Client, tmp_path: Path) -> tuple[Any, Any]:
    """Apply, build a training set from the service, train on it in a run that saves the
    set, register the model from the run; returns the fitted model."""
    from sklearn.linear_model import LinearRegression

    path = tmp_path / "driver_hourly.parquet"
    _feature_rows().to_parquet(path)
    view = FeatureView(
        "driver_hourly",
        entities=[rider],
        source=FileSource(str(path), timestamp_field="event_timestamp"),
        schema=[Field("conv_rate", "float32"), Field("trips", "int64")],
        ttl=timedelta(days=30),
    )
    client.features.apply(to_specs([FeatureService(SERVICE, features=[view, conv_per_km])]))
    rng = np.random.default_rng(7)
    entities = pd.DataFrame(
        {
            "driver_id": np.array(DRIVERS * 3, dtype="int64"),
            "event_timestamp": [
                END - timedelta(days=int(d)) for d in [0] * 20 + [3] * 20 + [6] * 20
            ],
            "distance": rng.uniform(0.5, 20.0, 60),
        }
    )
    entities = entities[entities["event_timestamp"] >= START]
    training = client.features.get_historical_features(entities, SERVICE)
    frame = training.to_pandas().dropna(subset=FEATURES)
    label = frame["conv_rate"].astype("float64") * 3 + frame["trips"] * 0.01
    with client.start_run(experiment="rides") as run:
        client.features.save_training_set(training, "ride_training", run_id=run.id)
        model = LinearRegression().fit(frame[FEATURES], label)
        logged = run.log_model(model, "model", input_example=frame[FEATURES][:3])
    version = client.registry.register("rides", model_uri=logged.model_uri)
    # The run was tagged with the service version it trained on; the version took the tag.
    assert version.tags["loopwright.feature_service"] == f"{SERVICE}@v1"
    return model, training


@contextmanager
def _serve(store: dict[str, str], *what: str) -> Iterator[str]:
    """A real ``loopwright serve`` process on a free port of 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    command = [
        sys.executable,
        "-m",
        "loopwright.cli",
        "--home",
        store["home"],
        "--db-uri",
        store["db_uri"],
        "--blob-uri",
        store["blob_uri"],
        "serve",
        *what,
        "--port",
        str(port),
    ]
    env = dict(os.environ)
    if "online_store" in store:
        env["LOOPWRIGHT_ONLINE_STORE"] = store["online_store"]
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "serve did not get ready within 90 s"
            try:
                if httpx.get(f"{url}/v2/health/ready", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        yield url
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        process.communicate(timeout=30)


def test_served_by_entity_ids_equals_the_offline_pipeline(
    client: Client, store: dict[str, str], tmp_path: Path
) -> None:
    model, _ = _train(client, tmp_path)
    _check_lineage(client)
    loads = client.features.materialize(end=END)
    kind = "redis" if "online_store" in store else "sqlite"
    assert loads and all(load.store.startswith(kind) for load in loads)
    # The offline rows of every driver at the materialization time, with request data.
    distance = np.linspace(1.0, 9.5, len(DRIVERS))
    now_rows = pd.DataFrame(
        {"driver_id": np.array(DRIVERS, dtype="int64"), "event_timestamp": [END] * len(DRIVERS)}
    )
    now_rows["distance"] = distance
    offline = client.features.get_historical_features(now_rows, SERVICE).to_pandas()
    assert offline["driver_id"].tolist() == DRIVERS  # every row back, in order
    expected = model.predict(offline[FEATURES])
    # The on-demand feature is the same online (computed by the same code) as offline.
    online = client.features.get_online_features(
        {"driver_id": DRIVERS, "distance": distance.tolist()}, SERVICE
    )
    assert online.values["conv_per_km"] == offline["conv_per_km"].tolist()
    assert online.values["conv_rate"] == offline["conv_rate"].astype("float64").tolist()

    with _serve(store, "models:/rides/1") as url:
        oip = httpx.post(
            f"{url}/v2/models/rides/infer",
            json={
                "inputs": [
                    {"name": "driver_id", "shape": [20], "datatype": "INT64", "data": DRIVERS},
                    {
                        "name": "distance",
                        "shape": [20],
                        "datatype": "FP64",
                        "data": distance.tolist(),
                    },
                ]
            },
            timeout=30,
        )
        assert oip.status_code == 200, oip.text
        assert oip.json()["outputs"][0]["data"] == expected.tolist()  # exact
        records = [{"driver_id": d, "distance": x} for d, x in zip(DRIVERS, distance, strict=True)]
        mlflow = httpx.post(f"{url}/invocations", json={"dataframe_records": records}, timeout=30)
        assert mlflow.status_code == 200, mlflow.text
        assert mlflow.json()["predictions"] == expected.tolist()
        # An unknown driver: refused naming it and the feature, never predicted on zeros.
        unknown = [{"driver_id": 9999, "distance": 1.0}]
        refused = httpx.post(f"{url}/invocations", json={"dataframe_records": unknown}, timeout=30)
        assert refused.status_code == 400, refused.text
        assert "driver_id=9999" in refused.json()["message"]
        assert "'conv_rate'" in refused.json()["message"]


def _check_lineage(client: Client) -> None:
    """The version's lineage: the service version it was trained on, the view versions that
    pins, and the saved training set (a dataset version the run read)."""
    from loopwright.loop.lineage import lineage

    graph = lineage(client, "models:/rides/1")
    out = {(edge.relation, node.kind, node.label) for edge, node in graph.out(graph.root)}
    assert ("features_from", "feature_service", f"{SERVICE}@v1") in out
    trained_on = [node for relation, kind, node in out if relation == "trained_on"]
    assert len(trained_on) == 1
    (service,) = graph.of_kind("feature_service")
    views = {(edge.relation, node.label) for edge, node in graph.out(service.id)}
    assert views == {("includes", "driver_hourly@v1"), ("includes", "conv_per_km@v1")}
    (dataset,) = graph.of_kind("dataset_version")
    assert dataset.attrs["dataset"] == "ride_training"


def test_a_deployment_served_by_entity_ids_shows_no_skew(
    client: Client, store: dict[str, str], tmp_path: Path
) -> None:
    """The log of a deployment answering entity ids holds the features as served: the skew
    check finds them equal to the offline store's at the request times."""
    from loopwright.registry.entities import ApprovalPolicy

    _train(client, tmp_path)
    client.features.materialize(end=END)
    client.registry.set_policy("rides", ApprovalPolicy(rules=()))  # no traffic approval here
    client.deployments.create("rides-api", "models:/rides/1")
    records = [{"driver_id": d, "distance": 1.0 + d % 7} for d in DRIVERS]
    with _serve(store, "--deployment", "rides-api") as url:
        answer = httpx.post(f"{url}/invocations", json={"dataframe_records": records}, timeout=30)
        assert answer.status_code == 200, answer.text
    report = client.features.skew("rides-api")
    assert report.service == f"{SERVICE}@v1" and report.sampled == len(DRIVERS)
    compared = {item.feature: (item.compared, item.mismatched) for item in report.features}
    assert compared == {
        f"driver_hourly:{name}": (len(DRIVERS), 0) for name in ("conv_rate", "trips")
    } | {"conv_per_km:conv_per_km": (len(DRIVERS), 0)}


def test_serve_workers_complete_entity_ids_too(tmp_path: Path) -> None:
    """``serve --workers 2``: each worker process opens the feature store on its own (the
    online store in SQLite only: the workers' own store is what this is about)."""
    store = {
        "home": str(tmp_path / "home"),
        "db_uri": f"sqlite:///{tmp_path / 'home' / 'lw.db'}",
        "blob_uri": str(tmp_path / "blobs"),
    }
    settings = resolve_settings(
        home=store["home"], db_uri=store["db_uri"], blob_uri=store["blob_uri"], user="ada"
    )
    with Client(settings) as client:
        _serve_workers(client, store, tmp_path)


def _serve_workers(client: Client, store: dict[str, str], tmp_path: Path) -> None:
    model, _ = _train(client, tmp_path)
    client.features.materialize(end=END)
    rows = pd.DataFrame({"driver_id": DRIVERS[:4], "event_timestamp": [END] * 4})
    rows["distance"] = 2.0
    offline = client.features.get_historical_features(rows, SERVICE).to_pandas()
    expected = model.predict(offline[FEATURES]).tolist()
    records = [{"driver_id": d, "distance": 2.0} for d in DRIVERS[:4]]
    with _serve(store, "models:/rides/1", "--workers", "2") as url:
        for _ in range(6):  # spread over both workers
            answer = httpx.post(
                f"{url}/invocations", json={"dataframe_records": records}, timeout=30
            )
            assert answer.status_code == 200, answer.text
            assert answer.json()["predictions"] == expected
